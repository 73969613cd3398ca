//! The management API: JSON over HTTP on a listener of its own (loopback by default), for the
//! people and tools that run the gateway, never for MCP clients.
//!
//! Every route is an entry of one table ([`routes::table`]), which both builds the router
//! ([`router`]) and writes the OpenAPI document (`/openapi.json`, [`openapi`]): add a route
//! there. Open entries (the document, health, metrics) need no token; the others pass
//! [`auth::require_admin`] first.

mod allow;
mod api_error;
pub mod auth;
mod catalog;
pub mod components;
mod config_io;
mod console;
pub mod follow;
mod openapi;
mod ops;
mod playground;
pub mod policies;
pub mod products;
mod route;
mod routes;
pub mod servers;
mod subscriptions;
pub mod versions;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::{Json, middleware};
use tokio::net::TcpListener;

use crate::gateway::Gateway;

/// A strong ETag from a resource's content, so it changes exactly when the resource does.
pub fn etag<T: serde::Serialize + ?Sized>(value: &T) -> String {
    use sha2::Digest;
    let bytes = serde_json::to_vec(value).expect("an API resource serializes");
    format!("\"{}\"", &hex::encode(sha2::Sha256::digest(bytes))[..16])
}

/// Writes one record of what the API changed to the store before the change is answered.
async fn keep<T: serde::Serialize>(
    registry: &crate::subscription::Registry,
    kind: crate::subscription::Kind,
    key: &str,
    value: &T,
) -> Result<(), api_error::ApiError> {
    let bytes = serde_json::to_vec(value).expect("an API record serializes");
    write(registry, vec![crate::subscription::Write::Put(kind, key.to_owned(), bytes)]).await
}

/// Writes what the API changed to the store, as one transaction, before the change is
/// answered. The write syncs to disk, so it runs off the async threads.
async fn write(registry: &crate::subscription::Registry, batch: Vec<crate::subscription::Write>) -> Result<(), api_error::ApiError> {
    let store = registry.store();
    tokio::task::spawn_blocking(move || store.write(&batch)).await.map_err(|e| api_error::ApiError::Internal(e.to_string()))?.map_err(|e| match e {
        crate::subscription::StoreError::Stale(_) => api_error::ApiError::Stale(e.to_string()),
        e => api_error::ApiError::Internal(e.to_string()),
    })
}

/// The server a path names, or 404.
fn named_server(m: &Shared, name: &str) -> Result<Arc<crate::server::Server>, api_error::ApiError> {
    m.gateway.server(name).map_err(|_| api_error::ApiError::NotFound(format!("no server '{name}'")))
}

/// The If-Match a create-or-replace needs: none (or `*`) to create what does not exist yet,
/// the current ETag to replace or delete what does.
fn precondition(h: &axum::http::HeaderMap, what: &str, current: Option<String>) -> Result<(), api_error::ApiError> {
    use api_error::ApiError;
    let given = h.get(axum::http::header::IF_MATCH).and_then(|v| v.to_str().ok()).map(str::trim);
    match (current, given) {
        (Some(_), None) => Err(ApiError::IfMatchRequired),
        (Some(c), Some(g)) if c != g => Err(ApiError::Stale(format!("{what} changed since it was read (its ETag is now {c})"))),
        (None, Some(g)) if g != "*" => Err(ApiError::Stale(format!("{what} does not exist"))),
        _ => Ok(()),
    }
}

/// What the management handlers share.
pub struct Management {
    pub gateway: Arc<Gateway>,
    pub admin: auth::AdminToken,
    /// The read-only token, when the config names one.
    pub reader: Option<auth::AdminToken>,
    /// The config file: a chain handed back to the file is read from it as it is now.
    pub file: std::path::PathBuf,
    /// The config file's directory: policy paths of products sent to the API are relative to it.
    pub base: std::path::PathBuf,
    /// Where the client listener is bound: the playground calls through it.
    pub client: std::net::SocketAddr,
    /// The backends' tool listings the console asked for lately.
    pub catalog: catalog::Cache,
}

pub type Shared = Arc<Management>;

impl Management {
    /// The cap on an uploaded component, in MiB.
    pub fn max_component_mb(&self) -> u32 {
        self.gateway.config.management.as_ref().map_or(crate::config::DEFAULT_MAX_COMPONENT_MB, |c| c.max_component_mb)
    }

    /// What `management.allow` opens to the API.
    pub fn allow(&self) -> &[crate::config::ManagementAllow] {
        self.gateway.config.management.as_ref().map_or(&[], |c| &c.allow)
    }

    /// Where the bindings sent to the API find their files: paths from the config file's
    /// directory, uploaded components in `data_dir`.
    pub fn places(&self) -> crate::policy::Places {
        crate::policy::Places::of(&self.gateway.config, &self.base)
    }
}

/// Every management route, from the route table: the open ones, and the admin ones behind
/// the token check.
pub fn router(state: Shared) -> Router {
    let (mut open, mut admin) = (Router::new(), Router::new());
    for op in routes::table() {
        let mut route = op.route;
        if let Some(limit) = op.limit {
            route = route.layer(axum::extract::DefaultBodyLimit::max(limit(&state)));
        }
        if op.open {
            open = open.route(op.path, route);
        } else {
            admin = admin.route(op.path, route);
        }
    }
    open.merge(admin.route_layer(middleware::from_fn_with_state(state.clone(), auth::require_admin)))
        .merge(console::routes())
        // What no route serves is a problem document too, not an empty 404 or 405.
        .fallback(|| async { api_error::ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { api_error::problem("method-not-allowed", "this route does not take that method", None) })
        .with_state(state)
}

/// One server in the list: what tells it apart, and its ETag.
#[derive(serde::Serialize, schemars::JsonSchema)]
struct ServerSummary {
    name: String,
    description: Option<String>,
    /// The server's ETag, as `GET /api/servers/{name}` gives it.
    etag: String,
    /// Created or last replaced through the API (which then speaks for it over the file).
    from_api: bool,
    /// For a server with versions: the one new sessions reach by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    default_version: Option<String>,
    /// For a server with versions: their names.
    #[serde(skip_serializing_if = "Option::is_none")]
    versions: Option<Vec<String>>,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
struct ServerList {
    /// By name.
    servers: Vec<ServerSummary>,
}

async fn list_servers(State(m): State<Shared>) -> Json<ServerList> {
    let mut servers: Vec<ServerSummary> = m
        .gateway
        .server_map()
        .values()
        .map(|e| {
            let routing = e.routing();
            ServerSummary {
                name: e.name.clone(),
                description: e.config.description.clone(),
                etag: etag(&e.running_config()),
                from_api: e.from_api,
                versions: routing.as_ref().map(|_| e.all().iter().filter_map(|s| s.version.clone()).collect()),
                default_version: routing.map(|r| r.default_version),
            }
        })
        .collect();
    servers.sort_by(|a, b| a.name.cmp(&b.name));
    Json(ServerList { servers })
}

/// Serves the management API until `shutdown` resolves, then lets requests in flight finish
/// within `grace` (the same bound the client listener has). Connections are taken as on the
/// client listener: capped, with read timeouts, over TLS when `management.tls` is set.
pub async fn serve(
    state: Shared,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: std::time::Duration,
) -> std::io::Result<()> {
    let config = &state.gateway.config;
    let tls = match config.management.as_ref().and_then(|m| m.tls.as_ref()) {
        Some(t) => Some(crate::config::tls::acceptor(t).map_err(std::io::Error::other)?),
        None => None,
    };
    let settings = crate::listener::connections::Settings::new(&config.limits, tls);
    let app = router(state.clone()).layer(tower_http::timeout::RequestBodyTimeoutLayer::new(config.limits.body_read_timeout()));
    let graceful = crate::listener::connections::accept(listener, app, settings, shutdown).await;
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("management API: grace period over; closing remaining connections");
    }
    Ok(())
}
