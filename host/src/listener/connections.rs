//! Accepting connections, for the client listener and the management listener alike: a cap on
//! how many are open, TLS, HTTP/1 and HTTP/2 timeouts, and graceful shutdown.
//!
//! A client that opens connections and sends nothing, or sends a body a byte at a time, holds
//! a connection for at most the header or body read timeout; past `max_connections` the
//! listener stops accepting until one closes, so such clients cannot exhaust the gateway's
//! memory or file descriptors while normal traffic goes on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

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
        let app = app.clone();
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            let mut app = app.clone();
            async move { tower::Service::call(&mut app, req.map(axum::body::Body::new)).await }
        });
        let (h1, h2, watcher, tls, first_bytes) = (h1.clone(), h2.clone(), graceful.watcher(), s.tls.clone(), s.header_read_timeout);
        let connection = async move {
            let _permit = permit;
            let stream = match stream {
                Accepted::Here(s) => s,
                Accepted::Moving(std) => match tokio::net::TcpStream::from_std(std) {
                    Ok(s) => s,
                    Err(e) => return tracing::warn!(%peer, error = %e, "cannot take the connection on its thread"),
                },
            };
            // Each connection's future is boxed apart from the task, at its own protocol's size.
            let result = match tls {
                None => match tokio::time::timeout(first_bytes, protocol(&stream)).await {
                    Ok(Ok(Protocol::Http1)) => Box::pin(watcher.watch(h1.serve_connection(TokioIo::new(stream), svc))).await,
                    Ok(Ok(Protocol::Http2)) => Box::pin(watcher.watch(h2.serve_connection(TokioIo::new(stream), svc))).await,
                    _ => return tracing::debug!(%peer, "connection closed: no request began in time"),
                },
                // The handshake runs in the connection's own task, bounded, so a slow client cannot stall accepts.
                Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, Box::pin(acceptor.accept(stream))).await {
                    // ALPN has chosen the protocol, so nothing is read before HTTP's own timeouts apply.
                    Ok(Ok(stream)) if stream.get_ref().1.alpn_protocol() == Some(b"h2") => {
                        Box::pin(watcher.watch(h2.serve_connection(TokioIo::new(stream), svc))).await
                    }
                    Ok(Ok(stream)) => Box::pin(watcher.watch(h1.serve_connection(TokioIo::new(stream), svc))).await,
                    Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                },
            };
            if let Err(e) = result {
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

/// What HTTP/2 without TLS sends first ("prior knowledge"); nothing else starts with it.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// How often a connection that sent part of the HTTP/2 preface is looked at again.
const PREFACE_RECHECK: Duration = Duration::from_millis(2);

enum Protocol {
    Http1,
    Http2,
}

/// Which protocol a plain connection speaks, from the bytes it sent so far, none of them
/// consumed. HTTP/1 is known from the first byte that differs from the HTTP/2 preface (for
/// every method but `PRI`, the first or second); only a client still sending the preface
/// is looked at again. The caller bounds the wait with the header read timeout.
async fn protocol(stream: &tokio::net::TcpStream) -> std::io::Result<Protocol> {
    let mut seen = [0u8; 24];
    loop {
        let n = stream.peek(&mut seen).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if seen[..n] != H2_PREFACE[..n] {
            return Ok(Protocol::Http1);
        }
        if n == H2_PREFACE.len() {
            return Ok(Protocol::Http2);
        }
        tokio::time::sleep(PREFACE_RECHECK).await;
    }
}

/// A connection as accepted: kept on this runtime, or on its way to a shard's.
enum Accepted {
    Here(tokio::net::TcpStream),
    Moving(std::net::TcpStream),
}
