//! Backends: the MCP servers behind the gateway. Each client session gets its own upstream
//! session, and every message the backend sends comes back through the session's [`Deliver`].

pub mod compose;
mod http;
mod lanes;
pub mod openapi;
mod sse;
mod stdio;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::config::{BackendKind, Limits, Secret, ServerConfig, TlsMaterial};
use crate::mcp::error::{BackendError, GatewayError};
use crate::mcp::jsonrpc::{Id, Message};
use crate::policy::HeaderEdits;
use crate::telemetry::Exchange;

pub use stdio::shutdown_all as shutdown_stdio;

/// Where a backend's messages go: implemented by the client session.
pub trait Deliver: Send + Sync + 'static {
    /// A message from the backend. `related` names the client request whose stream carried it.
    fn deliver(&self, msg: Message, related: Option<Id>) -> BoxFuture<'_, ()>;
    /// The upstream session ended on its own (process exit, stream closed, session lost).
    fn closed(&self, cause: BackendError);
}

pub type Inbox = Arc<dyn Deliver>;

/// One configured backend, shared by all sessions of its server.
#[derive(Clone)]
pub enum Backend {
    Http(Arc<http::HttpBackend>),
    Sse(Arc<sse::SseBackend>),
    Stdio(Arc<stdio::StdioBackend>),
    OpenApi(Arc<openapi::OpenApiBackend>),
    /// A virtual server: its members, each reached through the client listener.
    Compose(Arc<compose::ComposeBackend>),
}

/// One upstream MCP session, owned by one client session.
pub enum Upstream {
    Http(http::HttpUpstream),
    Sse(sse::SseUpstream),
    Stdio(stdio::StdioUpstream),
    OpenApi(openapi::OpenApiUpstream),
    Compose(compose::ComposeUpstream),
}

impl Backend {
    pub fn new(server: &ServerConfig, limits: &Limits) -> Result<Backend, GatewayError> {
        let timeout = server.backend.request_timeout_ms.map(Duration::from_millis).unwrap_or(limits.request_timeout());
        let tls = match &server.backend.tls {
            Some(t) => t.load().map_err(|(field, why)| GatewayError::BadRequest(format!("backend.tls.{field}: {why}")))?,
            None => TlsMaterial::default(),
        };
        let http = Client { limits: limits.clone(), tls };
        if let Some(members) = &server.compose {
            let Some(loopback) = &limits.loopback else {
                return Err(GatewayError::BadRequest(format!("virtual server {}: the client listener's address is not known yet", server.name)));
            };
            return Ok(Backend::Compose(Arc::new(compose::ComposeBackend::new(&server.name, members, loopback, http, timeout)?)));
        }
        Ok(match server.backend.kind() {
            BackendKind::Http(url) => {
                Backend::Http(Arc::new(http::HttpBackend::new(&server.name, url, &server.backend.headers, server.backend.http2, http, timeout)?))
            }
            BackendKind::Sse(url) => Backend::Sse(Arc::new(sse::SseBackend::new(&server.name, url, &server.backend.headers, &http)?)),
            BackendKind::Stdio(cfg) => Backend::Stdio(stdio::StdioBackend::start(&server.name, cfg.clone())),
            BackendKind::OpenApi(cfg) => Backend::OpenApi(Arc::new(openapi::OpenApiBackend::new(&server.name, cfg, &http, timeout)?)),
        })
    }

    /// Opens a new upstream session. The first message sent on it must be `initialize`.
    pub async fn connect(&self, inbox: Inbox) -> Result<Upstream, BackendError> {
        match self {
            Backend::Http(b) => Ok(Upstream::Http(b.connect(inbox))),
            Backend::Sse(b) => Ok(Upstream::Sse(b.connect(inbox).await?)),
            Backend::Stdio(b) => Ok(Upstream::Stdio(b.connect(inbox).await?)),
            Backend::OpenApi(b) => Ok(Upstream::OpenApi(b.connect(inbox))),
            Backend::Compose(b) => Ok(Upstream::Compose(b.connect(inbox))),
        }
    }

    /// Sends a request of the stateless revision, where the backend can take one (HTTP only).
    pub async fn stateless(&self, body: bytes::Bytes, routing: Vec<(String, String)>, edits: &HeaderEdits) -> Option<Result<Stateless, BackendError>> {
        match self {
            Backend::Http(b) => Some(b.stateless(body, routing, edits).await),
            _ => None,
        }
    }

    /// Whether the backend answers at all: for readiness.
    pub async fn probe(&self) -> Result<(), BackendError> {
        match self {
            Backend::Http(b) => b.probe().await,
            Backend::Sse(b) => b.probe().await,
            // Members are probed as the servers they are.
            Backend::Stdio(_) | Backend::Compose(_) => Ok(()),
            Backend::OpenApi(b) => b.probe().await,
        }
    }
}

/// The rest of a request's delivery, when its answer comes on a stream (an SSE response):
/// driven by the task that waits for the answer, so the answer reaches it without a hop to
/// another task (and, on a multi-threaded runtime, often another thread). Dropped before it
/// finished, it goes on as a task of its own: an answer is never lost for want of a reader.
pub struct Pump(Option<BoxFuture<'static, ()>>);

impl Pump {
    fn new(work: impl std::future::Future<Output = ()> + Send + 'static) -> Pump {
        Pump(Some(Box::pin(work)))
    }
}

impl std::future::Future for Pump {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        let Some(work) = self.0.as_mut() else { return std::task::Poll::Ready(()) };
        let done = work.as_mut().poll(cx);
        if done.is_ready() {
            self.0 = None;
        }
        done
    }
}

impl Drop for Pump {
    fn drop(&mut self) {
        if let Some(work) = self.0.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(work);
        }
    }
}

/// The answer to a stateless request, relayed without buffering.
pub struct Stateless {
    pub status: u16,
    pub content_type: String,
    pub body: futures::stream::BoxStream<'static, Result<bytes::Bytes, BackendError>>,
}

impl Upstream {
    /// Sends one message. For a request, the answer comes later through the inbox;
    /// an error here means the request never reached the backend.
    pub async fn send(&self, msg: &Message) -> Result<(), BackendError> {
        self.send_with(msg, &HeaderEdits::default(), None).await.map(drop)
    }

    /// Sends one message with the headers policies set for it (HTTP backends only: a stdio
    /// or legacy SSE backend has no per-message headers). A request whose answer comes on
    /// a stream of its own returns the [`Pump`] that reads it into the inbox.
    /// `x` is the exchange the message belongs to, for what only the upstream knows (the
    /// member of a virtual server that serves it).
    pub async fn send_with(&self, msg: &Message, headers: &HeaderEdits, x: Option<&Exchange>) -> Result<Option<Pump>, BackendError> {
        match self {
            Upstream::Http(u) => u.send(msg, headers).await,
            Upstream::Sse(u) => u.send(msg).await.map(|()| None),
            Upstream::Stdio(u) => u.send(msg).await.map(|()| None),
            Upstream::OpenApi(u) => u.send(msg).await.map(|()| None),
            Upstream::Compose(u) => u.send(msg, headers, x).await,
        }
    }

    /// The client now has a stream for what the backend sends unasked: an HTTP backend's
    /// GET stream opens (the other transports always have theirs).
    pub fn want_stream(&self) {
        match self {
            Upstream::Http(u) => u.want_stream(),
            Upstream::Compose(u) => u.want_stream(),
            _ => {}
        }
    }

    /// Ends the upstream session (DELETE, closing the stream, stopping the process).
    pub async fn close(&self) {
        match self {
            Upstream::Http(u) => u.close().await,
            Upstream::Sse(u) => u.close(),
            Upstream::Stdio(u) => u.close().await,
            Upstream::OpenApi(u) => u.close(),
            Upstream::Compose(u) => u.close().await,
        }
    }
}

/// The error a client request gets when its backend failed it, as a JSON-RPC response.
pub fn failure(server: &str, id: &Id, cause: BackendError) -> Message {
    let w = GatewayError::backend(server, cause).wire(true);
    Message::error(Some(id.clone()), w.code, &w.message, w.data)
}

/// A bounded excerpt of a backend's body for error messages, which reach clients and logs:
/// at most 300 bytes, on one line, with no control characters (no terminal escapes, no forged
/// log lines).
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
    let clean: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    clean.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Builds the headers configured for a backend, refusing values that are not valid header text.
/// Secrets are read here, when the backend starts, so a rotated file takes effect on reload.
fn static_headers(headers: &std::collections::BTreeMap<String, Secret>) -> Result<reqwest::header::HeaderMap, GatewayError> {
    let mut map = reqwest::header::HeaderMap::new();
    for (k, v) in headers {
        let name = reqwest::header::HeaderName::from_bytes(k.as_bytes()).map_err(|_| GatewayError::BadRequest(format!("invalid header name {k}")))?;
        let v = v.reveal().map_err(|e| GatewayError::BadRequest(format!("header {k}: {e}")))?;
        let mut value = reqwest::header::HeaderValue::from_str(&v).map_err(|_| GatewayError::BadRequest(format!("invalid value for header {k}")))?;
        value.set_sensitive(true);
        map.insert(name, value);
    }
    Ok(map)
}

/// How long an idle pooled connection may be reused. Node's and uvicorn's HTTP servers, which
/// most MCP servers run on, close a keep-alive connection after 5 s idle; a request written
/// on it at that instant is reset. Giving idle connections up first avoids the race.
const POOL_IDLE: Duration = Duration::from_secs(4);

/// What every HTTP client of one backend is built from: the limits, and its TLS material.
#[derive(Debug, Clone)]
pub struct Client {
    limits: Limits,
    tls: TlsMaterial,
}

/// `http2`: HTTP/2 over plain TCP by prior knowledge (h2c), kept alive with pings so a
/// connection that died silently is found before a held stream waits on it forever.
fn http_client(c: &Client, headers: reqwest::header::HeaderMap, http2: bool) -> Result<reqwest::Client, GatewayError> {
    let bad = |e: reqwest::Error| GatewayError::BadRequest(format!("cannot build HTTP client: {e}"));
    let limits = &c.limits;
    let mut builder = reqwest::Client::builder();
    if http2 {
        builder = builder.http2_prior_knowledge();
    }
    c.tls
        .apply(builder)
        .map_err(bad)?
        .http2_keep_alive_interval(Duration::from_secs(30))
        .http2_keep_alive_timeout(Duration::from_secs(10))
        .http2_keep_alive_while_idle(true)
        .connect_timeout(limits.connect_timeout())
        .default_headers(headers)
        .pool_idle_timeout(POOL_IDLE)
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(bad)
}

/// Names the cause of a failed HTTP exchange; `timeout` is the bound that applied to it.
fn describe(e: &reqwest::Error, timeout: Duration) -> BackendError {
    if e.is_timeout() {
        return BackendError::Timeout(timeout);
    }
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = s.to_string();
        src = s.source();
    }
    // A backend URL may carry credentials (`https://user:key@host/`); errors reach clients.
    if let Some(url) = e.url().filter(|u| !u.username().is_empty() || u.password().is_some()) {
        let mut shown = url.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        msg = msg.replace(url.as_str(), shown.as_str());
    }
    if e.is_connect() { BackendError::Unreachable(msg) } else { BackendError::Closed(msg) }
}

#[cfg(test)]
mod tests {
    use super::excerpt;

    #[test]
    fn an_error_body_reaches_clients_bounded_on_one_line_without_control_characters() {
        let body = format!("line one\r\n\x1b[31mred\x1b[0m\u{7}\nforged: log line\t{}", "x".repeat(1000));
        let shown = excerpt(body.as_bytes());
        assert!(shown.len() <= 300, "{}", shown.len());
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert!(shown.starts_with("line one [31mred [0m forged: log line x"), "{shown:?}");
    }
}
