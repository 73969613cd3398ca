//! The HTTP listener: routes, the checks every request passes first, and graceful shutdown.

pub mod connections;
mod preface;
pub mod shards;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use hyper::StatusCode;
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
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(gw.config.limits.body_read_timeout()))
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
    // HTTP/2 names the host in `:authority`, which takes the place of `Host`.
    let authority = req.uri().authority().map(|a| a.as_str());
    if let Err(e) = headers::check_origin_and_host(req.headers(), authority, &gw.config.security.allowed_origins, &gw.config.security.allowed_hosts) {
        return respond::error(&e, None);
    }
    next.run(req).await
}

/// Ready or not, and nothing more: clients must not learn backends' names, addresses or
/// errors. The detail is on the management listener's `/readyz`.
async fn ready(State(gw): State<Arc<Gateway>>) -> Response {
    let (status, _) = readiness(&gw).await;
    let body = if status.is_success() { "ready" } else { "not ready" };
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
    down.extend(crate::policy::state::outage());
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
    let tls = match &gw.config.tls {
        Some(t) => Some(crate::config::tls::acceptor(t).map_err(std::io::Error::other)?),
        None => None,
    };
    let threads = gw.config.limits.worker_threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let shards = Arc::new(shards::Shards::start(threads)?);
    let settings = connections::Settings { shards: Some(shards.clone()), ..connections::Settings::new(&gw.config.limits, tls) };
    let graceful = connections::accept(listener, app, settings, shutdown).await;
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
    // The connection threads stop once nothing of theirs is needed.
    drop(shards);
    Ok(())
}
