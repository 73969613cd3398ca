//! Backends: an MCP server written with the official Rust SDK (`rmcp`), served over Streamable
//! HTTP on a port of its own, or over stdio by the `echo_stdio` binary.
//!
//! Each HTTP backend runs on its own tokio runtime in its own thread, so stopping it closes every
//! connection it had at once, as a process that exits would.
//!
//! Sampling and logging belong to the session-based protocol revisions the gateway carries; the
//! SDK marks them deprecated in favour of the stateless revision, hence the `allow`.
#![allow(deprecated)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CreateMessageRequestParams, LoggingLevel, LoggingMessageNotificationParam, ProgressNotificationParam, RequestMetaObject, SamplingMessage,
    ServerCapabilities, ServerConfig,
};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;

/// The tools every test backend offers.
#[derive(Clone)]
pub struct EchoServer {
    /// Names this backend instance, so a test can tell which one answered.
    instance: String,
    tool_router: ToolRouter<Self>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct Text {
    pub text: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct Steps {
    /// How many progress notifications to send.
    pub steps: u32,
    /// Put into every progress message, so a client can tell whose progress it got.
    pub label: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct Question {
    pub question: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct Millis {
    pub ms: u64,
}

fn internal(e: impl std::fmt::Display) -> ErrorData {
    ErrorData::internal_error(e.to_string(), None)
}

#[tool_router]
impl EchoServer {
    pub fn new(instance: impl Into<String>) -> EchoServer {
        EchoServer { instance: instance.into(), tool_router: Self::tool_router() }
    }

    /// As [`EchoServer::new`], without the tools named: a backend whose tool set differs.
    pub fn without(instance: impl Into<String>, hidden: &[String]) -> EchoServer {
        let mut server = EchoServer::new(instance);
        for tool in hidden {
            server.tool_router.remove_route(tool);
        }
        server
    }

    #[tool(description = "Returns its text unchanged")]
    async fn echo(&self, Parameters(Text { text }): Parameters<Text>) -> String {
        text
    }

    #[tool(description = "Returns the `_meta` its request carried, as JSON (trace context, progress token)")]
    async fn meta(&self, meta: RequestMetaObject) -> String {
        serde_json::to_string(&meta).unwrap_or_default()
    }

    #[tool(description = "Names the backend instance that answers")]
    async fn whoami(&self) -> String {
        self.instance.clone()
    }

    #[tool(description = "Sends `steps` progress notifications for this request, then answers")]
    async fn progress(
        &self,
        Parameters(Steps { steps, label }): Parameters<Steps>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<String, ErrorData> {
        let token = meta.get_progress_token().ok_or_else(|| ErrorData::invalid_params("this tool needs a progress token", None))?;
        for step in 1..=steps {
            let note = ProgressNotificationParam::new(token.clone(), f64::from(step)).with_total(f64::from(steps)).with_message(format!("{label} {step}"));
            peer.notify_progress(note).await.map_err(internal)?;
        }
        Ok(format!("{label}: {steps} steps"))
    }

    #[tool(description = "Sends its text as a logging notification, then answers")]
    async fn log(&self, Parameters(Text { text }): Parameters<Text>, peer: Peer<RoleServer>) -> Result<String, ErrorData> {
        peer.notify_logging_message(LoggingMessageNotificationParam::new(LoggingLevel::Info, serde_json::Value::String(text.clone())))
            .await
            .map_err(internal)?;
        Ok(format!("logged {text}"))
    }

    #[tool(description = "Asks the client's model (sampling) and returns its answer")]
    async fn ask(&self, Parameters(Question { question }): Parameters<Question>, peer: Peer<RoleServer>) -> Result<String, ErrorData> {
        let params = CreateMessageRequestParams::new(vec![SamplingMessage::user_text(question)], 100);
        let answer = peer.create_message(params).await.map_err(internal)?;
        let text = answer.message.content.first().and_then(|c| c.as_text()).map(|t| t.text.clone());
        text.ok_or_else(|| internal("the sampling answer had no text"))
    }

    #[tool(description = "Answers after `ms` milliseconds")]
    async fn slow(&self, Parameters(Millis { ms }): Parameters<Millis>) -> String {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        format!("slept {ms} ms")
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for EchoServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_logging().build())
    }
}

/// What an HTTP backend saw of the requests that reached it, and of its connections.
#[derive(Clone, Default)]
pub struct Seen {
    requests: Arc<Mutex<Vec<(axum::http::Method, HeaderMap)>>>,
    connections: Arc<std::sync::atomic::AtomicUsize>,
}

impl Seen {
    /// The headers of every request that reached the backend, in order.
    pub fn headers(&self) -> Vec<HeaderMap> {
        self.requests.lock().expect("seen lock").iter().map(|(_, h)| h.clone()).collect()
    }

    /// GET requests for a session's stream that reached the backend.
    pub fn streams(&self) -> usize {
        self.requests.lock().expect("seen lock").iter().filter(|(m, h)| m == axum::http::Method::GET && h.contains_key("mcp-session-id")).count()
    }

    /// TCP connections the backend accepted (HTTP/1.1 and HTTP/2 alike).
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// How to start a backend.
pub struct Backend {
    instance: String,
    hidden: Vec<String>,
}

impl Backend {
    /// An `rmcp` Streamable HTTP server with the [`EchoServer`] tools.
    pub fn rmcp() -> Backend {
        Backend { instance: "first".into(), hidden: Vec::new() }
    }

    /// Names the instance; its `whoami` tool answers with this name.
    pub fn named(mut self, instance: &str) -> Backend {
        self.instance = instance.into();
        self
    }

    /// Leaves these tools out: they are neither listed nor callable.
    pub fn without(mut self, tools: &[&str]) -> Backend {
        self.hidden = tools.iter().map(|t| (*t).to_owned()).collect();
        self
    }

    pub async fn start(self) -> RunningBackend {
        let seen = Seen::default();
        let thread = ServerThread::start(None, self.instance, self.hidden.clone(), seen.clone()).await;
        RunningBackend { addr: thread.addr, seen, hidden: self.hidden, thread: Some(thread) }
    }
}

/// A backend that is listening. Stopped when dropped.
pub struct RunningBackend {
    addr: SocketAddr,
    seen: Seen,
    hidden: Vec<String>,
    thread: Option<ServerThread>,
}

impl RunningBackend {
    /// The Streamable HTTP endpoint.
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    pub fn seen(&self) -> &Seen {
        &self.seen
    }

    /// Stops the backend: its listener and every connection close, and its sessions are gone.
    pub async fn stop(&mut self) {
        if let Some(t) = self.thread.take() {
            t.stop().await;
        }
    }

    /// Starts a fresh backend on the same port: it knows none of the old one's sessions.
    pub async fn restart_as(&mut self, instance: &str) {
        self.stop().await;
        self.thread = Some(ServerThread::start(Some(self.addr), instance.into(), self.hidden.clone(), self.seen.clone()).await);
    }
}

impl Drop for RunningBackend {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.stop.send(());
        }
    }
}

struct ServerThread {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl ServerThread {
    async fn start(at: Option<SocketAddr>, instance: String, hidden: Vec<String>, seen: Seen) -> ServerThread {
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("backend runtime");
            rt.block_on(async move {
                let listener = match bind(at) {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(listener.local_addr());
                let service: StreamableHttpService<EchoServer, LocalSessionManager> = StreamableHttpService::new(
                    move || Ok(EchoServer::without(instance.clone(), &hidden)),
                    Default::default(),
                    StreamableHttpServerConfig::default().with_sse_keep_alive(Some(Duration::from_secs(5))),
                );
                let record = seen.clone();
                let app = axum::Router::new().nest_service("/mcp", service).layer(axum::middleware::from_fn(
                    move |req: axum::extract::Request, next: axum::middleware::Next| {
                        record.requests.lock().expect("seen lock").push((req.method().clone(), req.headers().clone()));
                        next.run(req)
                    },
                ));
                let accepted = seen.connections.clone();
                let listener = axum::serve::ListenerExt::tap_io(listener, move |_| {
                    accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                });
                tokio::select! {
                    r = axum::serve(listener, app) => { let _ = r; }
                    _ = stop_rx => {}
                }
            });
            // Dropping the runtime drops every connection task: the backend is gone, as after an exit.
            rt.shutdown_timeout(Duration::from_millis(200));
        });
        let addr = crate::within(10, "backend listening", ready_rx).await.expect("backend thread started").expect("backend bound its port");
        ServerThread { addr, stop, thread }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let thread = self.thread;
        crate::within(10, "backend stopping", tokio::task::spawn_blocking(move || thread.join())).await.expect("join").expect("backend thread");
    }
}

/// Binds a port (reusing `at`, for a restart, even while old connections linger in TIME_WAIT).
fn bind(at: Option<SocketAddr>) -> std::io::Result<tokio::net::TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(at.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))))?;
    socket.listen(1024)
}

/// A loopback URL where nothing listens: a backend that is down.
pub fn nothing_listening() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = l.local_addr().expect("local addr").port();
    drop(l);
    format!("http://127.0.0.1:{port}/mcp")
}
