//! Client sessions. The gateway issues its own unguessable session ids, each bound to one
//! upstream session; messages from the backend are routed to the stream of the client
//! request they belong to, or to the session's GET stream.

mod admit;
mod directory;
pub mod owner;
mod registry;
pub mod stream;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use serde_json::Value;
use tokio::sync::oneshot;

pub use directory::{Directory, DirectoryError};
pub use registry::Registry;
pub use stream::{Event, OutStream};

use crate::backend::{self, Deliver, Pump, Upstream};
use crate::dispatch::Client;
use crate::dispatch::{Forward, WayBack};
use crate::mcp::error::{BackendError, GatewayError};
use crate::mcp::jsonrpc::{Id, Kind, Message};
use crate::policy::{ClientHeaders, Delivery, HeaderEdits, Relay};
use crate::server::Version;
use crate::telemetry::{self, Exchange};
use admit::Admitted;
use owner::Owner;

/// Answer streams a session keeps for `Last-Event-ID` before it lets finished ones go.
const MAX_KEPT_STREAMS: usize = 1024;

/// How the client is connected, which decides where messages go.
pub enum Mode {
    /// Streamable HTTP: each request has its own answer stream, plus an optional GET stream.
    Streamable,
    /// Legacy HTTP+SSE: everything goes down one SSE connection.
    Legacy(Arc<OutStream>),
}

/// A request of the client's waiting for its answer.
struct Pending {
    stream: Arc<OutStream>,
    progress: Option<String>,
    /// What its answer passes on the way back: the response phase, the product's tool list.
    back: WayBack,
    /// What operators will see of this request, reported when its answer comes.
    exchange: Option<Exchange>,
    /// The message phase for what the backend sends on this request's behalf.
    relay: Option<Relay>,
}

pub struct Session {
    pub id: String,
    pub server: Arc<Version>,
    mode: Mode,
    upstream: tokio::sync::RwLock<Option<Arc<Upstream>>>,
    /// The client's `initialize`, replayed to open a new upstream session when the backend lost
    /// ours: kept serialized, since it is read only then.
    init: Mutex<Option<Bytes>>,
    /// `clientInfo` (name, version) from the client's `initialize`.
    client: OnceLock<Option<(String, String)>>,
    pending: Mutex<HashMap<Id, Pending>>,
    progress: Mutex<HashMap<String, Id>>,
    /// Answers to requests the gateway itself sent upstream.
    internal: Mutex<HashMap<Id, oneshot::Sender<Message>>>,
    standalone: Arc<OutStream>,
    streams: Mutex<HashMap<u64, Arc<OutStream>>>,
    next_stream: AtomicU64,
    lost: AtomicBool,
    closed: AtomicBool,
    last_used: Mutex<tokio::time::Instant>,
    pub protocol_version: Mutex<Option<String>>,
    /// The caller the session belongs to, bound when its opening was admitted.
    owner: Mutex<Option<Owner>>,
    /// Whether an `initialize` was admitted (or is being): a session has one.
    started: AtomicBool,
    /// Whether the client has had a stream for what the backend sends unasked (a GET stream,
    /// a legacy SSE connection): only then is the backend's own GET stream opened.
    listening: AtomicBool,
    /// Requests the server sent the client that await the client's answer.
    asked: Mutex<VecDeque<Id>>,
    /// The message phase of the session's latest request, for messages outside any request.
    latest: Mutex<Option<Relay>>,
    replay: usize,
    /// Its record in the session directory, for a Streamable HTTP session with `state.redis`.
    listing: Option<directory::Listing>,
    weak: Weak<Session>,
}

/// The session as its backend sees it: a weak handle, so the two do not keep each other alive.
struct Inbox(Weak<Session>);

impl Deliver for Inbox {
    fn deliver(&self, msg: Message, related: Option<Id>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(s) = self.0.upgrade() {
                s.route(msg, related).await;
            }
        })
    }

    fn closed(&self, cause: BackendError) {
        if let Some(s) = self.0.upgrade() {
            s.upstream_lost(cause);
        }
    }
}

impl Session {
    pub(crate) fn new(id: String, server: Arc<Version>, mode: Mode, replay: usize, directory: Option<Arc<Directory>>) -> Arc<Session> {
        let legacy = matches!(mode, Mode::Legacy(_));
        // A legacy session lives with its SSE connection on this replica: it cannot move.
        let listing = directory.filter(|_| !legacy).map(directory::Listing::new);
        Arc::new_cyclic(|weak| Session {
            id,
            server,
            mode,
            upstream: tokio::sync::RwLock::new(None),
            init: Mutex::new(None),
            client: OnceLock::new(),
            pending: Mutex::new(HashMap::new()),
            progress: Mutex::new(HashMap::new()),
            internal: Mutex::new(HashMap::new()),
            standalone: Arc::new(OutStream::new(0, replay)),
            streams: Mutex::new(HashMap::new()),
            next_stream: AtomicU64::new(1),
            lost: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            last_used: Mutex::new(tokio::time::Instant::now()),
            protocol_version: Mutex::new(None),
            owner: Mutex::new(None),
            started: AtomicBool::new(false),
            listening: AtomicBool::new(legacy),
            asked: Mutex::new(VecDeque::new()),
            latest: Mutex::new(None),
            replay,
            listing,
            weak: weak.clone(),
        })
    }

    fn inbox(&self) -> Arc<dyn Deliver> {
        Arc::new(Inbox(self.weak.clone()))
    }

    /// `clientInfo` (name, version) from the client's `initialize`, for logs and spans.
    pub fn client_info(&self) -> Option<(String, String)> {
        self.client.get().cloned().flatten()
    }

    /// Keeps the client's `initialize` (as its chain passed it) for a replay, and its `clientInfo`.
    fn keep_initialize(&self, msg: &Message) {
        *self.init.lock().expect("session lock") = Some(msg.to_bytes());
        let _ = self.client.set(msg.client_info());
    }

    /// The client's `initialize`, for a replay or the session's record.
    fn initialize_message(&self) -> Option<Message> {
        let bytes = self.init.lock().expect("session lock").clone()?;
        Message::parse(&bytes).ok()
    }

    /// Client streams open now: the GET stream and request streams a client is reading.
    pub fn open_streams(&self) -> usize {
        let mut n = usize::from(self.standalone.is_live());
        n += self.streams.lock().expect("session lock").values().filter(|s| s.is_live()).count();
        if let Mode::Legacy(out) = &self.mode {
            n += usize::from(out.is_live());
        }
        n
    }

    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    pub fn touch(&self) {
        *self.last_used.lock().expect("session lock") = tokio::time::Instant::now();
    }

    pub fn idle_for(&self) -> Duration {
        self.last_used.lock().expect("session lock").elapsed()
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Admits the client's `initialize`, and only then opens the upstream session (a stdio
    /// process, a backend session) and forwards it. A session has one `initialize`.
    /// `x` is the exchange operators see, handed down to the chain and kept for the answer.
    pub async fn initialize(&self, msg: &Message, client: &Client, x: Option<&Exchange>) -> Result<Arc<OutStream>, GatewayError> {
        if self.started.swap(true, Ordering::AcqRel) {
            return Err(GatewayError::InvalidRequest("the session is already initialized".into()));
        }
        let admitted = match self.admit(msg, client, x).await {
            Ok(a) => a,
            Err(e) => {
                self.started.store(false, Ordering::Release);
                return Err(e);
            }
        };
        let Admitted::Forward(Forward { msg, headers, client, back, .. }) = admitted else {
            // A policy answered `initialize` itself: there is no upstream session to open.
            return match admitted {
                Admitted::Answered(stream) => Ok(stream),
                _ => Err(GatewayError::InvalidRequest("a policy dropped a request".into())),
            };
        };
        self.keep_initialize(&msg);
        let upstream = match self.server.backend.connect(self.inbox()).await {
            Ok(u) => u,
            Err(e) => {
                self.started.store(false, Ordering::Release);
                return Err(self.fail(e));
            }
        };
        let upstream = Arc::new(upstream);
        *self.upstream.write().await = Some(upstream.clone());
        // After storing it: a GET stream that came meanwhile found no upstream to ask.
        self.listen_on(&upstream);
        self.forward(&msg, &headers, client, back, x).await
    }

    /// The client opened its stream for what the backend sends unasked: the backend's GET
    /// stream opens now (once the upstream session is initialized), and with every new
    /// upstream session after.
    pub async fn listen(&self) {
        if self.listening.swap(true, Ordering::AcqRel) {
            return;
        }
        let upstream = self.upstream.read().await.clone();
        if let Some(up) = upstream {
            up.want_stream();
        } else if self.lost.load(Ordering::Acquire)
            && let Err(e) = self.recover().await
        {
            // A session continued from another replica has no upstream session until now.
            tracing::warn!(server = %self.server.name, session = %self.id, error = %e, "cannot open the upstream session yet; the next request tries again");
        }
    }

    fn listen_on(&self, upstream: &Upstream) {
        if self.listening.load(Ordering::Acquire) {
            upstream.want_stream();
        }
    }

    /// Passes a client request through the policy chain, then sends it upstream (or answers
    /// it, if a policy did).
    pub async fn request(&self, msg: &Message, client: &Client, x: Option<&Exchange>) -> Result<Arc<OutStream>, GatewayError> {
        if !self.started.load(Ordering::Acquire) {
            return Err(GatewayError::BadRequest("Server not initialized: send initialize first".into()));
        }
        match self.admit(msg, client, x).await? {
            Admitted::Forward(f) => self.forward(&f.msg, &f.headers, f.client, f.back, x).await,
            Admitted::Answered(stream) => Ok(stream),
            Admitted::Dropped => Err(GatewayError::InvalidRequest("a policy dropped a request".into())),
        }
    }

    /// Registers a client request's answer stream, then sends the request upstream.
    /// `client` headers go on the HTTP response of a Streamable HTTP request (a legacy SSE
    /// connection has no response per request).
    async fn forward(
        &self,
        msg: &Message,
        headers: &HeaderEdits,
        client: ClientHeaders,
        back: WayBack,
        x: Option<&Exchange>,
    ) -> Result<Arc<OutStream>, GatewayError> {
        let id = msg.id.clone().expect("a request has an id");
        let stream = match &self.mode {
            Mode::Legacy(out) => out.clone(),
            Mode::Streamable => {
                let n = self.next_stream.fetch_add(1, Ordering::Relaxed);
                let s = Arc::new(OutStream::new(n, self.replay));
                s.add_client_headers(client);
                let mut streams = self.streams.lock().expect("session lock");
                // Streams whose client never came back for the rest are kept for resumption,
                // but not without bound: past the cap, the finished ones go.
                if streams.len() >= MAX_KEPT_STREAMS {
                    streams.retain(|_, s| !s.is_finished());
                }
                streams.insert(n, s.clone());
                drop(streams);
                s
            }
        };
        let progress = msg.progress_token().map(Value::to_string);
        if let Some(t) = &progress {
            self.progress.lock().expect("session lock").insert(t.clone(), id.clone());
        }
        let exchange = x.cloned();
        let traced = exchange.as_ref().map(|x| x.to_backend()).filter(|ctx| !ctx.is_empty()).map(|ctx| {
            let mut edits = headers.clone();
            edits.set.extend(ctx.iter().cloned());
            (telemetry::trace::with_context(msg, &ctx), edits)
        });
        let (msg, headers) = match &traced {
            Some((m, h)) => (m, h),
            None => (msg, headers),
        };
        let relay = back.relay();
        *self.latest.lock().expect("session lock") = relay.clone();
        let prior = self.pending.lock().expect("session lock").insert(id.clone(), Pending { stream: stream.clone(), progress, back, exchange, relay });
        if prior.is_some() {
            self.forget(&id);
            return Err(GatewayError::InvalidRequest(format!("request id {id} is already in use by a request in flight")));
        }
        match self.send_request(msg, headers, x).await {
            // A request's own stream is read by whoever waits for its answer; a legacy
            // connection's is shared by every request, so the answer's reader runs on its own.
            Ok(pump) if matches!(self.mode, Mode::Streamable) => stream.drive(pump),
            Ok(pump) => drop(pump),
            Err(e) => {
                self.forget(&id);
                return Err(e);
            }
        }
        Ok(stream)
    }

    async fn notify_upstream(&self, msg: &Message, headers: &HeaderEdits) -> Result<(), GatewayError> {
        if msg.method() == Some("notifications/cancelled") {
            // The client gave up on a request: no answer will be shown, so stop waiting for one.
            let cancelled = msg.params().and_then(|p| p.get("requestId")).and_then(Id::from_value);
            if let Some(id) = cancelled
                && let Some(p) = self.forget(&id)
                && matches!(self.mode, Mode::Streamable)
            {
                p.stream.close();
            }
        }
        self.send(msg, headers).await
    }

    /// Sends upstream a message whose answer (if any) no one waits for here.
    async fn send(&self, msg: &Message, headers: &HeaderEdits) -> Result<(), GatewayError> {
        self.send_request(msg, headers, None).await.map(drop)
    }

    /// Sends upstream, recovering the upstream session once if the backend lost it; returns
    /// what reads the answer's stream, for the task that waits on it to drive.
    async fn send_request(&self, msg: &Message, headers: &HeaderEdits, x: Option<&Exchange>) -> Result<Option<Pump>, GatewayError> {
        if self.lost.load(Ordering::Acquire) {
            self.recover().await?;
        }
        let upstream = self.upstream.read().await.clone().ok_or(GatewayError::SessionNotFound)?;
        match upstream.send_with(msg, headers, x).await {
            Err(BackendError::SessionLost) if msg.method() != Some("initialize") => {
                tracing::info!(server = %self.server.name, session = %self.id, "backend lost the session; opening a new one");
                self.lost.store(true, Ordering::Release);
                self.recover().await?;
                let upstream = self.upstream.read().await.clone().ok_or(GatewayError::SessionNotFound)?;
                upstream.send_with(msg, headers, x).await.map_err(|e| self.fail(e))
            }
            other => other.map_err(|e| self.fail(e)),
        }
    }

    fn fail(&self, cause: BackendError) -> GatewayError {
        GatewayError::backend(&self.server.name, cause)
    }

    /// Opens a new upstream session and replays the client's `initialize` on it.
    async fn recover(&self) -> Result<(), GatewayError> {
        let mut slot = self.upstream.write().await;
        if !self.lost.load(Ordering::Acquire) {
            return Ok(()); // another request recovered while this one waited
        }
        let Some(init) = self.initialize_message() else {
            return Err(GatewayError::SessionNotFound);
        };
        if let Some(old) = slot.take() {
            old.close().await;
        }
        let upstream = self.server.backend.connect(self.inbox()).await.map_err(|e| self.fail(e))?;
        let id = Id::Str(format!("tollgate-reinit-{}", self.next_stream.fetch_add(1, Ordering::Relaxed)));
        let mut replay = init;
        replay.id = Some(id.clone());
        replay.body.insert("id".into(), id.to_value());
        let (tx, rx) = oneshot::channel();
        self.internal.lock().expect("session lock").insert(id.clone(), tx);
        upstream.send(&replay).await.map_err(|e| self.fail(e))?;
        let answer = tokio::time::timeout(self.server.timeout, rx)
            .await
            .map_err(|_| self.fail(BackendError::Timeout(self.server.timeout)))?
            .map_err(|_| self.fail(BackendError::Closed("the new session closed during initialize".into())))?;
        if answer.is_error() {
            return Err(self.fail(BackendError::Protocol("the backend refused the replayed initialize".into())));
        }
        self.listen_on(&upstream);
        upstream.send(&Message::notification("notifications/initialized", Value::Object(Default::default()))).await.map_err(|e| self.fail(e))?;
        *slot = Some(Arc::new(upstream));
        self.lost.store(false, Ordering::Release);
        Ok(())
    }

    /// Sends `notifications/cancelled` for a request the client will no longer wait for.
    pub async fn cancel(&self, id: &Id, reason: &str) {
        if let Some(p) = self.forget(id) {
            if let Some(x) = &p.exchange {
                x.fail(&GatewayError::backend(&self.server.name, BackendError::Timeout(self.server.timeout)));
            }
            let note = Message::notification("notifications/cancelled", serde_json::json!({ "requestId": id.to_value(), "reason": reason }));
            if let Some(up) = self.upstream.read().await.clone() {
                let _ = up.send(&note).await;
            }
        }
    }

    fn forget(&self, id: &Id) -> Option<Pending> {
        let p = self.pending.lock().expect("session lock").remove(id)?;
        if let Some(t) = &p.progress {
            self.progress.lock().expect("session lock").remove(t);
        }
        Some(p)
    }

    /// Routes one message from the backend to the client stream it belongs on. An answer to
    /// a client request first passes the response phase of the chain the request ran on.
    async fn route(&self, msg: Message, related: Option<Id>) {
        if msg.kind == Kind::Response {
            let Some(id) = msg.id.clone() else { return };
            if let Some(tx) = self.internal.lock().expect("session lock").remove(&id) {
                let _ = tx.send(msg);
                return;
            }
            if msg.body.get("result").and_then(|r| r.get("protocolVersion")).is_some() {
                let v = msg.body["result"]["protocolVersion"].as_str().map(str::to_owned);
                *self.protocol_version.lock().expect("session lock") = v;
                self.publish().await;
            }
            let Some(p) = self.forget(&id) else {
                tracing::debug!(server = %self.server.name, session = %self.id, %id, "answer to a request no one waits for");
                return;
            };
            let legacy = matches!(self.mode, Mode::Legacy(_));
            let (msg, client) = p.back.settle(msg, p.exchange.as_ref()).await;
            if !legacy {
                p.stream.add_client_headers(client);
            }
            p.stream.push(msg.to_bytes(), !legacy);
            if !legacy && p.stream.fully_delivered() {
                self.streams.lock().expect("session lock").remove(&p.stream.id);
            }
            return;
        }
        let owner = self.owner(&msg, related);
        let msg = match self.relay_for(owner.as_ref()) {
            Some((relay, exchange)) => {
                let delivery = match exchange {
                    Some(x) => relay.pass(msg, Some(&x)).await,
                    None => relay.pass(msg, None).await,
                };
                match delivery {
                    Delivery::Deliver(m) => m,
                    Delivery::Drop(answer) => {
                        if let (Some(answer), Some(up)) = (answer, self.upstream.read().await.clone()) {
                            let _ = up.send(&answer).await;
                        }
                        return;
                    }
                }
            }
            None => msg,
        };
        if msg.kind == Kind::Request
            && let Some(id) = msg.id.clone()
        {
            self.asked(id);
        }
        let stream = self.stream_for(&msg, owner);
        stream.push(msg.to_bytes(), false);
    }

    /// The client request a message from the backend belongs to: the one its progress token
    /// names, else the one the backend sent it in answer to.
    fn owner(&self, msg: &Message, related: Option<Id>) -> Option<Id> {
        if msg.method() == Some("notifications/progress") {
            let token = msg.params().and_then(|p| p.get("progressToken")).map(Value::to_string);
            let owner = token.and_then(|t| self.progress.lock().expect("session lock").get(&t).cloned());
            if owner.is_some() {
                return owner;
            }
        }
        related.filter(|id| self.pending.lock().expect("session lock").contains_key(id))
    }

    /// The message phase a message from the backend passes: its request's, else the
    /// session's latest request's; with the request's exchange, so its steps are traced there.
    fn relay_for(&self, owner: Option<&Id>) -> Option<(Relay, Option<Exchange>)> {
        if let Some(p) = owner.and_then(|id| self.pending.lock().expect("session lock").get(id).map(|p| (p.relay.clone(), p.exchange.clone()))) {
            return p.0.map(|r| (r, p.1));
        }
        self.latest.lock().expect("session lock").clone().map(|r| (r, None))
    }

    fn stream_for(&self, msg: &Message, owner: Option<Id>) -> Arc<OutStream> {
        if let Mode::Legacy(out) = &self.mode {
            return out.clone();
        }
        let pending = self.pending.lock().expect("session lock");
        if let Some(p) = owner.and_then(|id| pending.get(&id)) {
            return p.stream.clone();
        }
        // A backend request with no known origin (stdio, legacy SSE) must still reach a client
        // that has no GET stream open: give it to a request stream the client is reading.
        if msg.kind == Kind::Request
            && !self.standalone.is_live()
            && let Some(p) = pending.values().find(|p| p.stream.is_live())
        {
            return p.stream.clone();
        }
        self.standalone.clone()
    }

    /// The backend ended our upstream session: fail what waits on it; the next request reconnects.
    fn upstream_lost(&self, cause: BackendError) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        tracing::warn!(server = %self.server.name, session = %self.id, %cause, "upstream session ended");
        self.lost.store(true, Ordering::Release);
        let waiting: Vec<(Id, Pending)> = self.pending.lock().expect("session lock").drain().collect();
        self.progress.lock().expect("session lock").clear();
        let legacy = matches!(self.mode, Mode::Legacy(_));
        for (id, p) in waiting {
            let err = backend::failure(&self.server.name, &id, cause.clone());
            if let Some(x) = &p.exchange {
                x.answer(&err);
            }
            p.stream.push(err.to_bytes(), !legacy);
        }
    }

    /// The GET stream, or a request stream being resumed after `Last-Event-ID`.
    pub fn stream(&self, id: u64) -> Option<Arc<OutStream>> {
        if id == 0 {
            return Some(self.standalone.clone());
        }
        self.streams.lock().expect("session lock").get(&id).cloned()
    }

    pub fn standalone(&self) -> Arc<OutStream> {
        self.standalone.clone()
    }

    /// Ends the session and its upstream session.
    pub async fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        for (_, p) in self.pending.lock().expect("session lock").drain() {
            p.stream.close();
        }
        self.standalone.close();
        if let Mode::Legacy(out) = &self.mode {
            out.close();
        }
        for (_, s) in self.streams.lock().expect("session lock").drain() {
            s.close();
        }
        if let Some(up) = self.upstream.write().await.take() {
            up.close().await;
        }
    }
}
