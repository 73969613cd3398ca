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
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
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
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().max_buf_size(s.max_header_bytes.max(8192)).timer(TokioTimer::new()).header_read_timeout(s.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_PING_INTERVAL)
        .keep_alive_timeout(H2_PING_TIMEOUT)
        .max_header_list_size(s.max_header_bytes as u32);
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
        let (builder, watcher, tls, first_byte) = (builder.clone(), graceful.watcher(), s.tls.clone(), s.header_read_timeout);
        let connection = async move {
            let _permit = permit;
            let stream = match stream {
                Accepted::Here(s) => s,
                Accepted::Moving(std) => match tokio::net::TcpStream::from_std(std) {
                    Ok(s) => s,
                    Err(e) => return tracing::warn!(%peer, error = %e, "cannot take the connection on its thread"),
                },
            };
            let result = match tls {
                None => {
                    // Telling HTTP/1 from HTTP/2 reads the first bytes with no deadline of its own:
                    // a connection that sends nothing is closed at the header read timeout.
                    let mut byte = [0u8; 1];
                    if !matches!(tokio::time::timeout(first_byte, stream.peek(&mut byte)).await, Ok(Ok(1..))) {
                        return tracing::debug!(%peer, "connection closed: nothing arrived in time");
                    }
                    watcher.watch(builder.serve_connection_with_upgrades(TokioIo::new(stream), svc).into_owned()).await
                }
                // The handshake runs in the connection's own task, bounded, so a slow client cannot stall accepts.
                Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        // ALPN has chosen the protocol, so nothing is read before HTTP's own timeouts apply.
                        let builder = if stream.get_ref().1.alpn_protocol() == Some(b"h2") { builder.http2_only() } else { builder.http1_only() };
                        watcher.watch(builder.serve_connection_with_upgrades(TokioIo::new(stream), svc).into_owned()).await
                    }
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

/// A connection as accepted: kept on this runtime, or on its way to a shard's.
enum Accepted {
    Here(tokio::net::TcpStream),
    Moving(std::net::TcpStream),
}
