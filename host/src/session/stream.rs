//! A stream of messages to one client: the answer stream of one request, the session's GET
//! stream, or a legacy SSE connection. It keeps recent events so a client that lost the
//! connection can resume with `Last-Event-ID`, and never blocks the backend on a slow client.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::backend::Pump;

/// One event on its way to a client.
#[derive(Debug, Clone)]
pub struct Event {
    /// `{stream}-{seq}`: unique within the session and naming its stream, as resumption needs.
    pub id: String,
    pub data: Bytes,
    /// The answer that completes a request's stream.
    pub last: bool,
}

pub struct OutStream {
    pub id: u64,
    inner: Mutex<Inner>,
    /// What reads the request's answer from the backend, for its waiter to drive inline.
    pump: Mutex<Option<Pump>>,
    /// Headers policies added for the HTTP response that carries this request's answer.
    client_headers: Mutex<Vec<(String, String)>>,
}

struct Inner {
    log: VecDeque<(u64, Event)>,
    next: u64,
    delivered: u64,
    live: Option<mpsc::Sender<Event>>,
    finished: bool,
    cap: usize,
}

impl OutStream {
    pub fn new(id: u64, cap: usize) -> OutStream {
        OutStream {
            id,
            inner: Mutex::new(Inner { log: VecDeque::new(), next: 1, delivered: 0, live: None, finished: false, cap: cap.max(1) }),
            pump: Mutex::new(None),
            client_headers: Mutex::new(Vec::new()),
        }
    }

    /// Adds headers for the client's HTTP response. Those added before the answer is pushed
    /// reach a plain JSON answer; an SSE answer gets those there when its first event came.
    pub fn add_client_headers(&self, headers: Vec<(String, String)>) {
        if !headers.is_empty() {
            self.client_headers.lock().expect("stream lock").extend(headers);
        }
    }

    pub fn client_headers(&self) -> Vec<(String, String)> {
        self.client_headers.lock().expect("stream lock").clone()
    }

    /// Adds a message; `last` ends the stream after it.
    pub fn push(&self, data: Bytes, last: bool) {
        let mut s = self.inner.lock().expect("stream lock");
        if s.finished {
            return;
        }
        let seq = s.next;
        s.next += 1;
        let ev = Event { id: format!("{}-{seq}", self.id), data, last };
        if s.log.len() == s.cap {
            s.log.pop_front();
        }
        s.log.push_back((seq, ev.clone()));
        if let Some(tx) = &s.live {
            // A client that does not keep up loses the connection, not the message: it resumes from the log.
            if tx.try_send(ev).is_ok() {
                s.delivered = seq;
            } else {
                s.live = None;
            }
        }
        if last {
            s.finished = true;
            s.live = None;
        }
    }

    /// Hands over what reads the answer from the backend, for [`OutStream::attach_driving`].
    pub fn drive(&self, pump: Option<Pump>) {
        *self.pump.lock().expect("stream lock") = pump;
    }

    /// As [`OutStream::attach`], and takes the answer's reader for the caller to drive while
    /// it waits: the answer then reaches it on the task that polls it.
    pub fn attach_driving(&self) -> (mpsc::Receiver<Event>, Option<Pump>) {
        let pump = self.pump.lock().expect("stream lock").take();
        (self.attach(None), pump)
    }

    /// Connects a client. It first gets what it missed: everything after `after` when it
    /// resumes, else everything not yet delivered. Replaces any earlier connection. The
    /// answer's reader, if no one took it to drive, goes on as a task of its own.
    pub fn attach(&self, after: Option<u64>) -> mpsc::Receiver<Event> {
        drop(self.pump.lock().expect("stream lock").take());
        let mut s = self.inner.lock().expect("stream lock");
        let from = after.unwrap_or(s.delivered);
        let backlog: Vec<(u64, Event)> = s.log.iter().filter(|(seq, _)| *seq > from).cloned().collect();
        let (tx, rx) = mpsc::channel(s.cap + backlog.len());
        for (seq, ev) in backlog {
            let _ = tx.try_send(ev);
            s.delivered = s.delivered.max(seq);
        }
        if !s.finished {
            s.live = Some(tx);
        }
        rx
    }

    /// Whether the client still has a connection to this stream.
    pub fn is_live(&self) -> bool {
        self.inner.lock().expect("stream lock").live.as_ref().is_some_and(|tx| !tx.is_closed())
    }

    pub fn is_finished(&self) -> bool {
        self.inner.lock().expect("stream lock").finished
    }

    /// Whether everything on this stream reached a live client.
    pub fn fully_delivered(&self) -> bool {
        let s = self.inner.lock().expect("stream lock");
        s.delivered + 1 == s.next
    }

    /// Ends the stream without an answer (session closed).
    pub fn close(&self) {
        let mut s = self.inner.lock().expect("stream lock");
        s.finished = true;
        s.live = None;
    }
}

/// Splits an event id into its stream and sequence number.
pub fn parse_event_id(id: &str) -> Option<(u64, u64)> {
    let (stream, seq) = id.split_once('-')?;
    Some((stream.parse().ok()?, seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_client_that_reconnects_gets_what_it_missed_and_no_more() {
        let s = OutStream::new(3, 16);
        let mut first = s.attach(None);
        s.push(Bytes::from_static(b"a"), false);
        assert_eq!(first.recv().await.unwrap().id, "3-1");
        drop(first);
        s.push(Bytes::from_static(b"b"), false);
        s.push(Bytes::from_static(b"c"), true);
        let mut again = s.attach(Some(1));
        let got: Vec<String> = [again.recv().await.unwrap(), again.recv().await.unwrap()].iter().map(|e| e.id.clone()).collect();
        assert_eq!(got, ["3-2", "3-3"]);
        assert!(again.recv().await.is_none(), "a finished stream ends after its backlog");
    }

    #[test]
    fn messages_before_any_client_wait_in_the_log() {
        let s = OutStream::new(0, 4);
        s.push(Bytes::from_static(b"x"), false);
        let mut rx = s.attach(None);
        assert_eq!(rx.try_recv().unwrap().data, Bytes::from_static(b"x"));
        assert_eq!(parse_event_id("12-7"), Some((12, 7)));
    }
}
