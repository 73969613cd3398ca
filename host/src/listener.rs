//! The HTTP listener: routes, the checks every request passes first, and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use hyper::StatusCode;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::authorization;
use crate::gateway::Gateway;
use crate::mcp::error::GatewayError;
use crate::mcp::headers;
use crate::transport::{legacy, respond, streamable};

pub fn router(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/.well-known/oauth-protected-resource", get(authorization::root_form))
        .route("/.well-known/oauth-protected-resource/{name}/mcp", get(authorization::path_form))
        .route("/v0/servers", get(crate::discovery::servers))
        .merge(mcp_routes(gw.clone()))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(gw.clone(), guard))
        .with_state(gw)
}

/// The MCP endpoints, of a server or of one of its versions. Each handler's first step is the
/// one admission ([`crate::transport::admission`]), on the decoded path.
fn mcp_routes(_gw: Arc<Gateway>) -> Router<Arc<Gateway>> {
    Router::new()
        .route("/{name}/mcp", get(streamable::get).post(streamable::post).delete(streamable::delete))
        .route("/{name}/sse", get(legacy::connect))
        .route("/{name}/message", axum::routing::post(legacy::message))
        .route("/{name}/{version}/mcp", get(streamable::get).post(streamable::post).delete(streamable::delete))
        .route("/{name}/{version}/sse", get(legacy::connect))
        .route("/{name}/{version}/message", axum::routing::post(legacy::message))
}

/// Runs before any route: refuse while draining, and refuse foreign origins and host names.
async fn guard(State(gw): State<Arc<Gateway>>, req: Request, next: Next) -> Response {
    if gw.draining.load(Ordering::Acquire) {
        return respond::error(&GatewayError::Overloaded("the gateway is shutting down"), None);
    }
    if let Err(e) = headers::check_origin_and_host(req.headers(), &gw.config.security.allowed_origins, &gw.config.security.allowed_hosts) {
        return respond::error(&e, None);
    }
    next.run(req).await
}

async fn ready(State(gw): State<Arc<Gateway>>) -> Response {
    let (status, body) = readiness(&gw).await;
    Response::builder().status(status).body(body.into()).expect("static response parts")
}

/// Whether the gateway can serve. The config and every policy loaded before the listener
/// opened, so what is left to know is whether every backend answers.
pub async fn readiness(gw: &Gateway) -> (StatusCode, String) {
    let mut down = Vec::new();
    // A retired version serves no one: its backend may well be gone.
    for s in gw.server_map().values().flat_map(|e| e.serving()) {
        if let Err(e) = s.backend.probe().await {
            down.push(format!("{}: {e}", s.key()));
        }
    }
    if down.is_empty() { (StatusCode::OK, "ready".to_owned()) } else { (StatusCode::SERVICE_UNAVAILABLE, down.join("\n")) }
}

async fn not_found(req: Request) -> Response {
    let path = req.uri().path();
    let e = match path.trim_start_matches('/').split('/').collect::<Vec<_>>()[..] {
        [name, "mcp" | "sse" | "message"] => GatewayError::UnknownServer(name.to_owned()),
        _ => GatewayError::MethodNotFound(format!("no route for {path}; MCP servers are at /{{name}}/mcp and /{{name}}/sse")),
    };
    let mut r = respond::error(&e, None);
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish within the grace period.
pub async fn serve(gw: Arc<Gateway>, listener: TcpListener, shutdown: impl std::future::Future<Output = ()>) -> std::io::Result<()> {
    let app = router(gw.clone());
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_buf_size(gw.config.limits.max_header_bytes.max(8192))
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(std::time::Duration::from_secs(30));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let tls = match &gw.config.tls {
        Some(t) => Some(crate::config::tls::acceptor(t).map_err(std::io::Error::other)?),
        None => None,
    };
    tokio::pin!(shutdown);
    loop {
        let (stream, peer): (_, SocketAddr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            let mut app = app.clone();
            async move { tower::Service::call(&mut app, req.map(axum::body::Body::new)).await }
        });
        match &tls {
            None => {
                let conn = graceful.watch(builder.serve_connection_with_upgrades(TokioIo::new(stream), svc).into_owned());
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            Some(acceptor) => {
                // The handshake runs in the connection's own task, bounded, so a slow client cannot stall accepts.
                let (acceptor, builder, watcher) = (acceptor.clone(), builder.clone(), graceful.watcher());
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                    };
                    let conn = watcher.watch(builder.serve_connection_with_upgrades(TokioIo::new(stream), svc).into_owned());
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
        }
    }
    gw.draining.store(true, Ordering::Release);
    tracing::info!("shutting down: no new connections; waiting for requests in flight");
    let grace = gw.config.limits.shutdown_grace();
    // Long-lived streams never finish on their own: closing sessions ends them.
    let drained = tokio::time::timeout(grace, async {
        tokio::select! {
            _ = graceful.shutdown() => {}
            _ = async { tokio::time::sleep(grace / 2).await; gw.sessions.close_all().await; std::future::pending::<()>().await } => {}
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!("grace period over; closing remaining connections");
    }
    gw.sessions.close_all().await;
    crate::backend::shutdown_stdio(std::time::Duration::from_secs(2)).await;
    Ok(())
}
