//! A stream of messages to one client: the answer stream of one request, the session's GET
//! stream, or a legacy SSE connection. It keeps recent events so a client that lost the
//! connection can resume with `Last-Event-ID`, and never blocks the backend on a slow client.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::Notify;

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
    /// Wakes the reader when an event is pushed or the stream ends.
    wake: Notify,
    /// What reads the request's answer from the backend, for its waiter to drive inline.
    pump: Mutex<Option<Pump>>,
    /// Headers policies added for the HTTP response that carries this request's answer.
    client_headers: Mutex<Vec<(String, String)>>,
}

struct Inner {
    /// The recent events, in order, one sequence number apart: what clients read, and what
    /// one that reconnects resumes from. No second copy is queued per client.
    log: VecDeque<(u64, Event)>,
    next: u64,
    delivered: u64,
    /// The attachment reading now: a later one replaces it, and one that fell behind what
    /// the log keeps is cut off (it resumes with `Last-Event-ID`).
    reader: Option<u64>,
    attachments: u64,
    finished: bool,
    cap: usize,
}

impl Inner {
    /// The event after `seq`, if the log has it.
    fn after(&self, seq: u64) -> Option<&Event> {
        let first = self.log.front()?.0;
        let i = (seq + 1).checked_sub(first)?;
        self.log.get(usize::try_from(i).ok()?).map(|(_, ev)| ev)
    }
}

impl OutStream {
    pub fn new(id: u64, cap: usize) -> OutStream {
        OutStream {
            id,
            inner: Mutex::new(Inner { log: VecDeque::new(), next: 1, delivered: 0, reader: None, attachments: 0, finished: false, cap: cap.max(1) }),
            wake: Notify::new(),
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

    /// Adds a message; `last` ends the stream after it. A reader that does not keep up loses
    /// its connection, not the message: it resumes from the log.
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
        s.log.push_back((seq, ev));
        if last {
            s.finished = true;
        }
        let reading = s.reader.is_some();
        // Handed to the connection reading the stream: it goes to the client from there.
        if reading {
            s.delivered = seq;
        }
        drop(s);
        if reading {
            self.wake.notify_waiters();
        }
    }

    /// Hands over what reads the answer from the backend, for [`OutStream::attach_driving`].
    pub fn drive(&self, pump: Option<Pump>) {
        *self.pump.lock().expect("stream lock") = pump;
    }

    /// As [`OutStream::attach`], and takes the answer's reader for the caller to drive while
    /// it waits: the answer then reaches it on the task that polls it.
    pub fn attach_driving(self: &Arc<Self>) -> (Receiver, Option<Pump>) {
        let pump = self.pump.lock().expect("stream lock").take();
        (self.attach(None), pump)
    }

    /// Connects a client. It first gets what it missed: everything after `after` when it
    /// resumes, else everything not yet delivered (of what the log still holds). Replaces any
    /// earlier connection. The answer's reader, if no one took it to drive, goes on as a task
    /// of its own.
    pub fn attach(self: &Arc<Self>, after: Option<u64>) -> Receiver {
        drop(self.pump.lock().expect("stream lock").take());
        let mut s = self.inner.lock().expect("stream lock");
        let from = after.unwrap_or(s.delivered);
        // What the log no longer holds is skipped, not waited for.
        let oldest = s.log.front().map_or(s.next, |(seq, _)| *seq);
        s.attachments += 1;
        let generation = s.attachments;
        s.reader = Some(generation);
        drop(s);
        // The reader this one replaces ends.
        self.wake.notify_waiters();
        Receiver { stream: self.clone(), generation, last: from.max(oldest.saturating_sub(1)) }
    }

    /// Whether the client still has a connection to this stream.
    pub fn is_live(&self) -> bool {
        let s = self.inner.lock().expect("stream lock");
        s.reader.is_some() && !s.finished
    }

    pub fn is_finished(&self) -> bool {
        self.inner.lock().expect("stream lock").finished
    }

    /// Whether everything on this stream was handed to a connected client (a finished stream
    /// that was need not be kept for resumption).
    pub fn fully_delivered(&self) -> bool {
        let s = self.inner.lock().expect("stream lock");
        s.delivered + 1 == s.next
    }

    /// Ends the stream without an answer (session closed): a reader gets what was pushed, then
    /// the end.
    pub fn close(&self) {
        self.inner.lock().expect("stream lock").finished = true;
        self.wake.notify_waiters();
    }
}

/// One client's connection to a stream: the events after the last it read, in order.
pub struct Receiver {
    stream: Arc<OutStream>,
    generation: u64,
    /// The sequence number of the last event handed to this client.
    last: u64,
}

/// What a receiver finds when it looks.
enum Next {
    Event(Event),
    End,
    Wait,
}

impl Receiver {
    /// The next event, waiting for it; `None` once the stream ended, another connection took
    /// its place, or this one fell behind what the log keeps.
    pub async fn recv(&mut self) -> Option<Event> {
        loop {
            let woken = self.stream.wake.notified();
            tokio::pin!(woken);
            // Registered before looking, so a push between the look and the wait still wakes it.
            woken.as_mut().enable();
            match look(&self.stream, self.generation, &mut self.last) {
                Next::Event(ev) => return Some(ev),
                Next::End => return None,
                Next::Wait => woken.await,
            }
        }
    }

    /// The next event if one is there now.
    pub fn try_recv(&mut self) -> Option<Event> {
        match look(&self.stream, self.generation, &mut self.last) {
            Next::Event(ev) => Some(ev),
            Next::End | Next::Wait => None,
        }
    }
}

/// What the reader of attachment `generation`, having read up to `last`, finds now.
fn look(stream: &OutStream, generation: u64, last: &mut u64) -> Next {
    let mut s = stream.inner.lock().expect("stream lock");
    if s.reader != Some(generation) {
        return Next::End;
    }
    if let Some(ev) = s.after(*last) {
        let ev = ev.clone();
        *last += 1;
        s.delivered = s.delivered.max(*last);
        return Next::Event(ev);
    }
    let fell_behind = s.log.front().is_some_and(|(oldest, _)| *oldest > *last + 1);
    if fell_behind {
        s.reader = None;
        return Next::End;
    }
    if s.finished { Next::End } else { Next::Wait }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut s = self.stream.inner.lock().expect("stream lock");
        if s.reader == Some(self.generation) {
            s.reader = None;
        }
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
        let s = Arc::new(OutStream::new(3, 16));
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

    #[tokio::test]
    async fn a_new_connection_ends_the_one_it_replaces_and_a_waiting_reader_is_woken() {
        let s = Arc::new(OutStream::new(1, 8));
        let mut old = s.attach(None);
        let waiting = tokio::spawn(async move { old.recv().await.map(|e| e.id) });
        tokio::task::yield_now().await;
        let mut new = s.attach(None);
        assert_eq!(waiting.await.unwrap(), None, "the replaced reader ends");
        assert!(s.is_live());
        let pushed = {
            let s = s.clone();
            tokio::spawn(async move { s.push(Bytes::from_static(b"a"), false) })
        };
        assert_eq!(new.recv().await.unwrap().id, "1-1", "a reader waiting for the next event gets it");
        pushed.await.unwrap();
        drop(new);
        assert!(!s.is_live(), "a dropped reader leaves the stream without a client");
    }

    #[test]
    fn a_reader_that_falls_behind_the_log_is_cut_off_and_resumes_from_what_is_kept() {
        let s = Arc::new(OutStream::new(2, 2));
        let mut slow = s.attach(None);
        for b in [b"a", b"b", b"c"] {
            s.push(Bytes::from_static(b), false);
        }
        assert!(slow.try_recv().is_none(), "event 2-1 left the log unread: the connection ends");
        assert!(!s.is_live());
        let mut again = s.attach(Some(0));
        let ids: Vec<String> = std::iter::from_fn(|| again.try_recv()).map(|e| e.id).collect();
        assert_eq!(ids, ["2-2", "2-3"], "it resumes from the oldest event kept");
    }

    #[tokio::test]
    async fn a_closed_stream_gives_what_was_pushed_then_ends() {
        let s = Arc::new(OutStream::new(4, 8));
        let mut rx = s.attach(None);
        s.push(Bytes::from_static(b"a"), false);
        s.close();
        assert_eq!(rx.recv().await.unwrap().id, "4-1");
        assert!(rx.recv().await.is_none());
        assert!(s.fully_delivered());
    }

    #[test]
    fn an_answer_pushed_to_a_connected_client_counts_as_delivered_and_one_without_does_not() {
        let s = Arc::new(OutStream::new(5, 8));
        s.push(Bytes::from_static(b"early"), false);
        assert!(!s.fully_delivered(), "no client yet: kept for whoever attaches");
        let _rx = s.attach(None);
        s.push(Bytes::from_static(b"answer"), true);
        assert!(s.fully_delivered(), "the session may forget a stream its client is reading");
    }

    #[test]
    fn messages_before_any_client_wait_in_the_log() {
        let s = Arc::new(OutStream::new(0, 4));
        s.push(Bytes::from_static(b"x"), false);
        let mut rx = s.attach(None);
        assert_eq!(rx.try_recv().unwrap().data, Bytes::from_static(b"x"));
        assert!(rx.try_recv().is_none());
        assert_eq!(parse_event_id("12-7"), Some((12, 7)));
    }
}
