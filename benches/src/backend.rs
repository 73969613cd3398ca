//! The in-process MCP backend: a Streamable HTTP server with one tool, `echo`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use axum::serve::ListenerExt;
use rmcp::{
    ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{ServerCapabilities, ServerConfig},
    schemars, tool, tool_handler, tool_router,
    transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager},
};
use tokio::task::JoinHandle;

/// How the backend speaks Streamable HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendMode {
    /// Sessions (`mcp-session-id`); rmcp then answers every POST with a
    /// short `text/event-stream`.
    Stateful,
    /// No sessions; rmcp answers with `application/json` bodies.
    Stateless,
}

impl BackendMode {
    pub fn describe(self) -> &'static str {
        match self {
            BackendMode::Stateful => "stateful sessions, SSE responses",
            BackendMode::Stateless => "stateless, JSON responses",
        }
    }
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    /// The text to send back.
    text: String,
}

#[derive(Debug, Clone)]
struct EchoServer {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl EchoServer {
    fn new() -> Self {
        Self { tool_router: Self::tool_router() }
    }

    #[tool(description = "Returns its `text` argument as text content")]
    fn echo(&self, Parameters(EchoArgs { text }): Parameters<EchoArgs>) -> String {
        text
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for EchoServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

/// A running backend; the server task stops when this is dropped.
pub struct Backend {
    pub addr: SocketAddr,
    /// TCP connections accepted so far.
    pub connections: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Backend {
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds 127.0.0.1:0 and serves the echo tool at `/mcp`.
pub async fn start(mode: BackendMode) -> anyhow::Result<Backend> {
    let config = StreamableHttpServerConfig::default()
        // No idle pings: every stream here is one request long.
        .with_sse_keep_alive(None)
        .with_legacy_session_mode(mode == BackendMode::Stateful)
        // Only honoured by rmcp in stateless mode; stateful sessions always
        // answer with SSE.
        .with_json_response(true);
    let service: StreamableHttpService<EchoServer, LocalSessionManager> =
        StreamableHttpService::new(|| Ok(EchoServer::new()), Arc::new(LocalSessionManager::default()), config);
    let router = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the backend")?;
    let addr = listener.local_addr()?;
    // Responses go out in several small writes (SSE events): without
    // TCP_NODELAY, Nagle and delayed ACKs add tens of milliseconds.
    let connections = Arc::new(AtomicU64::new(0));
    let counter = connections.clone();
    let listener = listener.tap_io(move |tcp| {
        let _ = tcp.set_nodelay(true);
        counter.fetch_add(1, Ordering::Relaxed);
    });
    let task = tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, router).await {
            eprintln!("backend stopped: {err}");
        }
    });
    Ok(Backend { addr, connections, task })
}
