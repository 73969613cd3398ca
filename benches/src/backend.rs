//! The MCP backend: a Streamable HTTP server built with the `rmcp` SDK, with one tool,
//! `echo`. It runs in a process of its own (`loadgen backend`, started by the harness), so
//! its CPU is not mixed with the driver's and the two do not share a runtime.
//!
//! The parent talks to it over its stdin and stdout: the child prints `listening ADDR` once
//! bound, answers each `stats` line with `stats ACCEPTED OPEN` (TCP connections accepted so
//! far, and open now), and exits when its stdin closes, so it never outlives the harness.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context as TaskContext, Poll};

use anyhow::{Context, bail};
use rmcp::{
    ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{ServerCapabilities, ServerConfig},
    schemars, tool, tool_handler, tool_router,
    transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager},
};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// How the backend speaks Streamable HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendMode {
    /// Sessions (`mcp-session-id`); rmcp then answers every POST with a short
    /// `text/event-stream`.
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

    fn arg(self) -> &'static str {
        match self {
            BackendMode::Stateful => "stateful",
            BackendMode::Stateless => "stateless",
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

/// Connections accepted so far and open now, shared by the listener and the `stats` answer.
#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    open: AtomicU64,
}

/// A TCP listener that counts its connections, and when each one closes.
struct CountingListener {
    inner: TcpListener,
    counters: Arc<Counters>,
}

/// An accepted connection; dropping it (hyper does when the connection ends) counts it closed.
struct CountedStream {
    inner: TcpStream,
    counters: Arc<Counters>,
}

impl Drop for CountedStream {
    fn drop(&mut self) {
        self.counters.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl axum::serve::Listener for CountingListener {
    type Io = CountedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((tcp, addr)) => {
                    // Responses go out in several small writes (SSE events): without
                    // TCP_NODELAY, Nagle and delayed ACKs add tens of milliseconds.
                    let _ = tcp.set_nodelay(true);
                    self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                    self.counters.open.fetch_add(1, Ordering::Relaxed);
                    return (CountedStream { inner: tcp, counters: self.counters.clone() }, addr);
                }
                Err(err) => {
                    // Out of file descriptors, mostly: wait rather than spin.
                    eprintln!("backend: accept failed: {err}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The child's side (`loadgen backend`): serves the echo tool at `/mcp` on `127.0.0.1:PORT`
/// until stdin closes.
pub fn serve(mode: BackendMode, port: u16, threads: usize) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(threads.max(1)).enable_all().build()?;
    runtime.block_on(async move {
        let config = StreamableHttpServerConfig::default()
            // No idle pings: the driver's streams are one request long, and the sessions
            // mode measures memory, not keep-alive traffic.
            .with_sse_keep_alive(None)
            .with_legacy_session_mode(mode == BackendMode::Stateful)
            // Only honoured by rmcp in stateless mode; stateful sessions always answer with SSE.
            .with_json_response(true);
        let service: StreamableHttpService<EchoServer, LocalSessionManager> =
            StreamableHttpService::new(|| Ok(EchoServer::new()), Arc::new(LocalSessionManager::default()), config);
        let router = axum::Router::new().nest_service("/mcp", service);
        let inner = TcpListener::bind(("127.0.0.1", port)).await.context("binding the backend")?;
        let addr = inner.local_addr()?;
        let counters = Arc::new(Counters::default());
        let listener = CountingListener { inner, counters: counters.clone() };
        tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, router).await {
                eprintln!("backend stopped: {err}");
            }
        });
        let mut out = std::io::stdout();
        writeln!(out, "listening {addr}")?;
        out.flush()?;
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Some(line) = lines.next_line().await? {
            if line.trim() == "stats" {
                let (accepted, open) = (counters.accepted.load(Ordering::Relaxed), counters.open.load(Ordering::Relaxed));
                writeln!(out, "stats {accepted} {open}")?;
                out.flush()?;
            }
        }
        anyhow::Ok(())
    })?;
    // Open connections and sessions need no orderly goodbye.
    std::process::exit(0)
}

/// What the backend has seen so far.
#[derive(Clone, Copy, Debug, Default)]
pub struct BackendStats {
    pub accepted: u64,
    pub open: u64,
}

/// The parent's side: a running backend process, killed when dropped (also while
/// unwinding, and when the harness is interrupted).
pub struct BackendProc {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub addr: SocketAddr,
    pub mode: BackendMode,
    pub threads: usize,
}

impl BackendProc {
    /// Starts `loadgen backend` (this same binary) and waits for its address.
    pub fn spawn(mode: BackendMode, threads: usize) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding the loadgen binary")?;
        let mut child = Command::new(exe)
            .args(["backend", "--mode", mode.arg(), "--port", "0", "--threads", &threads.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the backend process")?;
        let stdin = child.stdin.take().context("backend stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("backend stdout")?);
        let mut backend = BackendProc { child, stdin, stdout, addr: SocketAddr::from(([127, 0, 0, 1], 0)), mode, threads };
        let line = backend.read_line()?;
        let Some(addr) = line.strip_prefix("listening ") else {
            bail!("the backend said {line:?} instead of its address");
        };
        backend.addr = addr.trim().parse().with_context(|| format!("the backend's address {addr:?}"))?;
        Ok(backend)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// Connections accepted so far and open now, as the backend counts them.
    pub fn stats(&mut self) -> anyhow::Result<BackendStats> {
        self.stdin.write_all(b"stats\n")?;
        self.stdin.flush()?;
        let line = self.read_line()?;
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next().and_then(|a| a.parse().ok()), parts.next().and_then(|o| o.parse().ok())) {
            (Some("stats"), Some(accepted), Some(open)) => Ok(BackendStats { accepted, open }),
            _ => bail!("the backend answered {line:?} to stats"),
        }
    }

    fn read_line(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            let status = self.child.try_wait()?.map_or_else(|| "still running".to_string(), |s| s.to_string());
            bail!("the backend process closed its output ({status})");
        }
        Ok(line.trim_end().to_string())
    }
}

impl Drop for BackendProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
