//! Accepting connections, for the client listener and the management listener alike: a cap on
//! how many are open, TLS, HTTP/1 and HTTP/2 timeouts, and graceful shutdown.
//!
//! A client that opens connections and sends nothing, or sends a body a byte at a time, holds
//! a connection for at most the header or body read timeout; past `max_connections` the
//! listener stops accepting until one closes, so such clients cannot exhaust the gateway's
//! memory or file descriptors while normal traffic goes on.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use super::preface::{self, Protocol};
use super::shards::Shards;
use crate::config::Limits;

/// How connections are taken.
#[derive(Clone)]
pub struct Settings {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub max_header_bytes: usize,
    pub tls: Option<TlsAcceptor>,
    /// Where connections run: the client listener's own threads, or (for the management
    /// listener) the runtime that accepts them.
    pub shards: Option<Arc<Shards>>,
}

/// A TLS handshake that has not finished by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 pings an idle connection this often, and drops it when a ping goes unanswered this long.
const H2_PING_INTERVAL: Duration = Duration::from_secs(30);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

impl Settings {
    pub fn new(limits: &Limits, tls: Option<TlsAcceptor>) -> Settings {
        Settings {
            max_connections: limits.max_connections,
            header_read_timeout: limits.header_read_timeout(),
            max_header_bytes: limits.max_header_bytes,
            tls,
            shards: None,
        }
    }
}

/// Serves `app` on every connection `listener` accepts until `shutdown` resolves; then stops
/// accepting and hands back the connections still open, for the caller to drain.
pub async fn accept(listener: TcpListener, app: Router, s: Settings, shutdown: impl std::future::Future<Output = ()>) -> GracefulShutdown {
    // One builder per protocol rather than hyper-util's detecting one, whose per-connection
    // state is sized for both protocols: most of an idle HTTP/1 connection's memory.
    let mut h1 = http1::Builder::new();
    h1.max_buf_size(s.max_header_bytes.max(8192)).timer(TokioTimer::new()).header_read_timeout(s.header_read_timeout);
    let mut h2 = http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new()).keep_alive_interval(H2_PING_INTERVAL).keep_alive_timeout(H2_PING_TIMEOUT).max_header_list_size(s.max_header_bytes as u32);
    let graceful = GracefulShutdown::new();
    let open = Arc::new(Semaphore::new(s.max_connections));
    let mut full_since: Option<tokio::time::Instant> = None;
    tokio::pin!(shutdown);
    loop {
        // At the cap, wait for a connection to close before taking another.
        let permit = tokio::select! {
            p = open.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        if open.available_permits() == 0 && full_since.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
            tracing::warn!(max_connections = s.max_connections, "the listener is at its connection cap; new connections wait");
            full_since = Some(tokio::time::Instant::now());
        }
        let (stream, peer): (_, SocketAddr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // A connection handed to a shard is taken off this runtime's reactor and put on the
        // shard's, so its readiness wakes the shard's thread and no other.
        let stream = match &s.shards {
            Some(_) => match stream.into_std() {
                Ok(std) => Accepted::Moving(std),
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "cannot hand the connection to a connection thread");
                    continue;
                }
            },
            None => Accepted::Here(stream),
        };
        // What a connection needs only to begin (TLS, telling the protocol) is boxed and freed
        // once it has begun; the task then holds little beside the running connection's box,
        // which is sized for its own protocol. A held stream keeps its task for its whole life.
        let start = Box::new(Start {
            stream,
            app: App { router: app.clone(), peer },
            h1: h1.clone(),
            h2: h2.clone(),
            watcher: graceful.watcher(),
            tls: s.tls.clone(),
            first_bytes: s.header_read_timeout,
        });
        let connection = async move {
            let _permit = permit;
            let Some(serving) = Box::pin(start.begin()).await else { return };
            if let Err(e) = serving.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        };
        match &s.shards {
            Some(shards) => shards.spawn(connection),
            None => {
                tokio::spawn(connection);
            }
        }
    }
    graceful
}

/// The router as hyper calls it, for one connection: each request learns its peer.
#[derive(Clone)]
struct App {
    router: Router,
    peer: SocketAddr,
}

impl hyper::service::Service<hyper::Request<Incoming>> for App {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = axum::routing::future::RouteFuture<Infallible>;

    fn call(&self, mut req: hyper::Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(axum::extract::ConnectInfo(self.peer));
        tower::Service::call(&mut self.router.clone(), req.map(axum::body::Body::new))
    }
}

/// A connection being served, whichever its protocol and transport.
type Serving = Pin<Box<dyn Future<Output = Result<(), hyper::Error>> + Send>>;

/// A connection accepted and not yet begun.
struct Start {
    stream: Accepted,
    app: App,
    h1: http1::Builder,
    h2: http2::Builder<TokioExecutor>,
    watcher: Watcher,
    tls: Option<TlsAcceptor>,
    first_bytes: Duration,
}

impl Start {
    /// The TLS handshake, if any, and the protocol: the connection ready to serve, or `None`
    /// when it ended first (said at debug level).
    async fn begin(self: Box<Self>) -> Option<Serving> {
        let Start { stream, app, h1, h2, watcher, tls, first_bytes } = *self;
        let peer = app.peer;
        let stream = match stream {
            Accepted::Here(s) => s,
            Accepted::Moving(std) => match tokio::net::TcpStream::from_std(std) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "cannot take the connection on its thread");
                    return None;
                }
            },
        };
        let Some(acceptor) = tls else {
            return match tokio::time::timeout(first_bytes, preface::protocol(stream)).await {
                Ok(Ok((Protocol::Http1, io))) => Some(Box::pin(watcher.watch(h1.serve_connection(TokioIo::new(io), app)))),
                Ok(Ok((Protocol::Http2, io))) => Some(Box::pin(watcher.watch(h2.serve_connection(TokioIo::new(io), app)))),
                _ => {
                    tracing::debug!(%peer, "connection closed: no request began in time");
                    None
                }
            };
        };
        // The handshake runs in the connection's own task, bounded, so a slow client cannot stall accepts.
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            // ALPN has chosen the protocol, so nothing is read before HTTP's own timeouts apply.
            Ok(Ok(stream)) if stream.get_ref().1.alpn_protocol() == Some(b"h2") => {
                Some(Box::pin(watcher.watch(h2.serve_connection(TokioIo::new(stream), app))))
            }
            Ok(Ok(stream)) => Some(Box::pin(watcher.watch(h1.serve_connection(TokioIo::new(stream), app)))),
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                None
            }
        }
    }
}

/// A connection as accepted: kept on this runtime, or on its way to a shard's.
enum Accepted {
    Here(tokio::net::TcpStream),
    Moving(std::net::TcpStream),
}
