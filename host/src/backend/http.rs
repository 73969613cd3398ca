//! A Streamable HTTP backend: one POST per client message, answers as JSON or an SSE stream,
//! and a GET stream for what the backend sends unasked.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use tokio::task::JoinHandle;

use super::lanes::{Held, Lanes};
use super::{Client, Inbox, Pump, describe, excerpt, failure, http_client, static_headers};
use crate::mcp::error::{BackendError, GatewayError};
use crate::mcp::jsonrpc::{Id, Kind, Message};
use crate::mcp::sse;
use crate::policy::HeaderEdits;

const SESSION: &str = "mcp-session-id";
const VERSION: &str = "mcp-protocol-version";
const ACCEPT_BOTH: &str = "application/json, text/event-stream";
/// Times a broken answer stream is resumed with `Last-Event-ID` before the request is failed.
const MAX_RESUMES: usize = 3;
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a finished answer stream may take to close before its connection is given up.
const DRAIN: Duration = Duration::from_secs(1);

pub struct HttpBackend {
    server: Arc<str>,
    url: reqwest::Url,
    /// A client, and so a pool of connections, per thread that calls this backend: a
    /// connection is driven by the thread that opened it, so a request and the connection it
    /// goes out on share a thread (see `listener/shards.rs`).
    clients: thread_local::ThreadLocal<reqwest::Client>,
    /// The first client, whose settings every thread's copies share.
    first: reqwest::Client,
    client: Client,
    http2: bool,
    /// Where sessions' GET streams go, so held streams never crowd out requests.
    streams: Lanes,
    /// The configured headers, added per request so a policy can leave one out.
    headers: reqwest::header::HeaderMap,
    timeout: Duration,
}

impl HttpBackend {
    /// `http2`: speak HTTP/2 over plain TCP (h2c); over TLS it is negotiated anyway.
    pub fn new(
        server: &str,
        url: &str,
        headers: &std::collections::BTreeMap<String, crate::config::Secret>,
        http2: bool,
        client: Client,
        timeout: Duration,
    ) -> Result<HttpBackend, GatewayError> {
        let url = reqwest::Url::parse(url).map_err(|e| GatewayError::BadRequest(format!("invalid backend URL: {e}")))?;
        let headers = static_headers(headers)?;
        let first = http_client(&client, Default::default(), http2)?;
        let streams = Lanes::new(http2 || url.scheme() == "https", first.clone());
        let clients = thread_local::ThreadLocal::new();
        Ok(HttpBackend { server: server.into(), url, clients, first, client, http2, streams, headers, timeout })
    }

    /// A client of this backend's settings, with a connection pool of its own.
    fn new_client(&self) -> Result<reqwest::Client, GatewayError> {
        http_client(&self.client, Default::default(), self.http2)
    }

    /// This thread's client. The settings were checked when the first was built.
    fn client(&self) -> &reqwest::Client {
        self.clients.get_or(|| self.new_client().unwrap_or_else(|_| self.first.clone()))
    }

    pub fn connect(self: &Arc<Self>, inbox: Inbox) -> HttpUpstream {
        HttpUpstream { backend: self.clone(), inbox, state: Arc::new(Mutex::new(State::default())) }
    }

    /// One request of the stateless protocol revision: no upstream session, the answer relayed as it comes.
    /// `routing` are the client's protocol headers, passed as they are; `edits` are the policies'.
    pub async fn stateless(&self, body: bytes::Bytes, routing: Vec<(String, String)>, edits: &HeaderEdits) -> Result<super::Stateless, BackendError> {
        let mut req = self.post(edits);
        for (k, v) in routing {
            req = req.header(k, v);
        }
        let resp = req.body(body).send().await.map_err(|e| describe(&e, self.timeout))?;
        let status = resp.status().as_u16();
        let content_type = resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let timeout = self.timeout;
        let body = resp.bytes_stream().map(move |r| r.map_err(|e| describe(&e, timeout)));
        Ok(super::Stateless { status, content_type, body: Box::pin(body) })
    }

    /// A POST of one JSON-RPC message on this thread's client, with the configured headers and
    /// a policy's edits.
    fn post(&self, edits: &HeaderEdits) -> reqwest::RequestBuilder {
        self.client()
            .post(self.url.clone())
            .headers(self.headers_with(edits))
            .header(ACCEPT, ACCEPT_BOTH)
            .header(CONTENT_TYPE, "application/json")
            .timeout(self.timeout)
    }

    /// The configured headers with a policy's edits applied; a policy cannot set the headers
    /// the protocol itself manages.
    fn headers_with(&self, edits: &HeaderEdits) -> reqwest::header::HeaderMap {
        let mut headers = self.headers.clone();
        for name in &edits.remove {
            headers.remove(name.as_str());
        }
        for (k, v) in &edits.set {
            match (reqwest::header::HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
                (Ok(k), Ok(mut v)) if settable(k.as_str()) => {
                    v.set_sensitive(true);
                    headers.insert(k, v);
                }
                _ => tracing::debug!(header = %k, "a policy set a header the gateway does not pass on"),
            }
        }
        headers
    }

    pub async fn probe(&self) -> Result<(), BackendError> {
        // Any HTTP answer means something listens; only a transport failure is a failed probe.
        self.client()
            .get(self.url.clone())
            .headers(self.headers.clone())
            .header(ACCEPT, "text/event-stream")
            .timeout(PROBE_TIMEOUT)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| describe(&e, PROBE_TIMEOUT))
    }
}

#[derive(Default)]
struct State {
    session: Option<HeaderValue>,
    version: Option<HeaderValue>,
    /// The backend has had `notifications/initialized`: a GET stream may be opened.
    initialized: bool,
    /// The client has a stream for what the backend sends unasked: open the GET stream.
    wanted: bool,
    listener: Option<JoinHandle<()>>,
    closed: bool,
}

pub struct HttpUpstream {
    backend: Arc<HttpBackend>,
    inbox: Inbox,
    state: Arc<Mutex<State>>,
}

impl HttpUpstream {
    fn post(&self, msg: &Message, edits: &HeaderEdits) -> reqwest::RequestBuilder {
        let mut req = self.backend.post(edits);
        let st = self.state.lock().expect("state lock");
        if let Some(s) = &st.session {
            req = req.header(SESSION, s.clone());
        }
        if let Some(v) = &st.version {
            req = req.header(VERSION, v.clone());
        }
        drop(st);
        req.body(msg.to_bytes())
    }

    /// A GET for the session's stream on `client`, resuming after `last_event` when given.
    fn get(&self, client: &reqwest::Client, last_event: Option<&str>) -> reqwest::RequestBuilder {
        let mut req = client.get(self.backend.url.clone()).headers(self.backend.headers.clone()).header(ACCEPT, "text/event-stream");
        let st = self.state.lock().expect("state lock");
        if let Some(s) = &st.session {
            req = req.header(SESSION, s.clone());
        }
        if let Some(v) = &st.version {
            req = req.header(VERSION, v.clone());
        }
        if let Some(id) = last_event {
            req = req.header("last-event-id", id);
        }
        req
    }

    pub async fn send(&self, msg: &Message, edits: &HeaderEdits) -> Result<Option<Pump>, BackendError> {
        let resp = self.post(msg, edits).send().await.map_err(|e| describe(&e, self.backend.timeout))?;
        let status = resp.status();
        let had_session = self.state.lock().expect("state lock").session.is_some();
        if status == reqwest::StatusCode::NOT_FOUND && had_session {
            return Err(BackendError::SessionLost);
        }
        if msg.method() == Some("initialize")
            && let Some(s) = resp.headers().get(SESSION)
        {
            self.state.lock().expect("state lock").session = Some(s.clone());
        }
        if status == reqwest::StatusCode::ACCEPTED {
            if msg.kind == Kind::Request {
                return Err(BackendError::Protocol("answered a request with 202 and no body".into()));
            }
            if msg.method() == Some("notifications/initialized") {
                let mut st = self.state.lock().expect("state lock");
                st.initialized = true;
                if st.wanted {
                    drop(st);
                    self.start_listener();
                }
            }
            return Ok(None);
        }
        let is_sse = resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| ct.starts_with("text/event-stream"));
        if !status.is_success() {
            let body = resp.bytes().await.unwrap_or_default();
            // A backend may refuse with a proper JSON-RPC error for this id: pass that on as is.
            if let (Some(id), Ok(answer)) = (&msg.id, Message::parse(&body))
                && answer.kind == Kind::Response
                && answer.id.as_ref() == Some(id)
            {
                self.inbox.deliver(answer, Some(id.clone())).await;
                return Ok(None);
            }
            return Err(BackendError::Status { status: status.as_u16(), detail: excerpt(&body) });
        }
        let Some(id) = msg.id.clone().filter(|_| msg.kind == Kind::Request) else {
            return Ok(None); // a notification or response that got 200: nothing to read
        };
        let init = msg.method() == Some("initialize");
        if is_sse {
            let this = Reader { upstream: self.clone_handle(), id, init };
            return Ok(Some(Pump::new(this.read_stream(resp))));
        }
        let body = resp.bytes().await.map_err(|e| describe(&e, self.backend.timeout))?;
        let answer = Message::parse(&body).map_err(|e| BackendError::Protocol(e.to_string()))?;
        if init {
            self.note_version(&answer);
        }
        self.inbox.deliver(answer, Some(id)).await;
        Ok(None)
    }

    fn clone_handle(&self) -> HttpUpstream {
        HttpUpstream { backend: self.backend.clone(), inbox: self.inbox.clone(), state: self.state.clone() }
    }

    fn note_version(&self, answer: &Message) {
        let v = answer.body.get("result").and_then(|r| r.get("protocolVersion")).and_then(|v| v.as_str());
        if let Some(v) = v.and_then(|v| HeaderValue::from_str(v).ok()) {
            self.state.lock().expect("state lock").version = Some(v);
        }
    }

    /// Opens the session's GET stream once the backend is initialized: asked for when the
    /// client has a stream to carry what comes on it, so a session whose client never
    /// listens holds no backend connection.
    pub fn want_stream(&self) {
        let mut st = self.state.lock().expect("state lock");
        if st.wanted {
            return;
        }
        st.wanted = true;
        if st.initialized {
            drop(st);
            self.start_listener();
        }
    }

    /// The GET stream, reopened while the session lives; a backend that does not offer one (405) is fine.
    fn start_listener(&self) {
        let held: Held = match self.backend.streams.take(|| self.backend.new_client()) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(server = %self.backend.server, error = %e, "cannot open a connection for the session's GET stream");
                return;
            }
        };
        let this = self.clone_handle();
        let task = tokio::spawn(async move {
            let mut last_id: Option<String> = None;
            let mut backoff = Duration::from_millis(100);
            loop {
                match this.get(&held.client, last_id.as_deref()).send().await {
                    Ok(resp) if resp.status().is_success() => {
                        backoff = Duration::from_millis(100);
                        let mut body = resp.bytes_stream();
                        let mut dec = sse::Decoder::default();
                        let mut events = Vec::new();
                        while let Some(Ok(chunk)) = body.next().await {
                            if dec.feed(&chunk, &mut events).is_err() {
                                break;
                            }
                            for ev in events.drain(..) {
                                if ev.id.is_some() {
                                    last_id = ev.id.clone();
                                }
                                if let Ok(m) = Message::parse(ev.data.as_bytes()) {
                                    this.inbox.deliver(m, None).await;
                                }
                            }
                        }
                    }
                    Ok(resp) if resp.status() == reqwest::StatusCode::NOT_FOUND => {
                        this.inbox.closed(BackendError::SessionLost);
                        return;
                    }
                    Ok(_) => return, // 405 and the like: this backend has no GET stream
                    Err(_) => {}
                }
                if this.state.lock().expect("state lock").closed {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        });
        let mut st = self.state.lock().expect("state lock");
        if let Some(old) = st.listener.replace(task) {
            old.abort();
        }
    }

    pub async fn close(&self) {
        let session = {
            let mut st = self.state.lock().expect("state lock");
            st.closed = true;
            if let Some(t) = st.listener.take() {
                t.abort();
            }
            st.session.clone()
        };
        if let Some(s) = session {
            let _ = self
                .backend
                .client()
                .delete(self.backend.url.clone())
                .headers(self.backend.headers.clone())
                .header(SESSION, s)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
        }
    }
}

/// Headers the gateway owns on the way to a backend: a policy cannot set these.
fn settable(lower: &str) -> bool {
    !(crate::mcp::headers::is_hop_by_hop(lower) || matches!(lower, "host" | "content-length" | "content-type" | "accept" | SESSION | VERSION))
}

/// Reads one request's SSE answer, resuming with `Last-Event-ID` if the backend drops the connection early.
struct Reader {
    upstream: HttpUpstream,
    id: Id,
    init: bool,
}

impl Reader {
    async fn read_stream(self, first: reqwest::Response) {
        let mut resp = first;
        let mut last_event: Option<String> = None;
        let mut retry = Duration::from_millis(0);
        let mut resumes = 0;
        loop {
            let mut body = resp.bytes_stream();
            let mut dec = sse::Decoder::default();
            let mut events = Vec::new();
            let mut cause = BackendError::Closed("the stream ended before the answer".into());
            loop {
                match body.next().await {
                    Some(Ok(chunk)) => {
                        if let Err(e) = dec.feed(&chunk, &mut events) {
                            cause = BackendError::Protocol(e.to_string());
                            break;
                        }
                        for ev in events.drain(..) {
                            if ev.id.is_some() {
                                last_event = ev.id.clone();
                            }
                            if let Some(r) = ev.retry {
                                retry = Duration::from_millis(r.min(10_000));
                            }
                            if ev.data.trim().is_empty() {
                                continue; // priming event
                            }
                            let Ok(m) = Message::parse(ev.data.as_bytes()) else { continue };
                            let done = m.kind == Kind::Response && m.id.as_ref() == Some(&self.id);
                            if done && self.init {
                                self.upstream.note_version(&m);
                            }
                            self.upstream.inbox.deliver(m, Some(self.id.clone())).await;
                            if done {
                                // Read the stream to its end so the connection goes back to the pool.
                                let _ = tokio::time::timeout(DRAIN, async { while let Some(Ok(_)) = body.next().await {} }).await;
                                return;
                            }
                        }
                    }
                    Some(Err(e)) => {
                        cause = describe(&e, self.upstream.backend.timeout);
                        break;
                    }
                    None => break,
                }
            }
            // The backend closed before answering: resume if it gave us an event id to resume from.
            let Some(last) = last_event.clone().filter(|_| resumes < MAX_RESUMES) else {
                let server = self.upstream.backend.server.clone();
                self.upstream.inbox.deliver(failure(&server, &self.id, cause), Some(self.id.clone())).await;
                return;
            };
            resumes += 1;
            tokio::time::sleep(retry).await;
            match self.upstream.get(self.upstream.backend.client(), Some(&last)).send().await {
                Ok(r) if r.status().is_success() => resp = r,
                Ok(r) => {
                    let server = self.upstream.backend.server.clone();
                    let cause = BackendError::Status { status: r.status().as_u16(), detail: "resuming the answer stream failed".into() };
                    self.upstream.inbox.deliver(failure(&server, &self.id, cause), Some(self.id.clone())).await;
                    return;
                }
                Err(e) => {
                    let server = self.upstream.backend.server.clone();
                    self.upstream.inbox.deliver(failure(&server, &self.id, describe(&e, self.upstream.backend.timeout)), Some(self.id.clone())).await;
                    return;
                }
            }
        }
    }
}
