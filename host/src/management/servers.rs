//! `/api/servers/{name}` and `/api/servers/{name}/versions/{version}`: servers and versions
//! created, replaced and deleted at run time, in the config file's shape.
//!
//! A server sent here is checked as `tollgate validate` checks a file, its `openapi`
//! documents and every chain loaded, all before anything changes; then it is kept in the
//! store and swapped in whole. A version whose config is unchanged but for its chain keeps
//! running as it was (backend, processes, sessions). A replaced backend serves new sessions;
//! live ones finish on the backend they began with. A deleted server or version ends its
//! sessions: their next request is told it is gone.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};

use super::api_error::ApiError;
use super::route::{NoContent, Tagged};
use super::{Shared, etag, named_server, precondition};
use crate::config::{ServerConfig, VersionConfig};
use crate::gateway::Gateway;
use crate::server::Server;
use crate::subscription::{Kind, Write};

/// The servers as they run: the file's in the file's order, then those the API added, by name.
pub fn running(gw: &Gateway) -> Vec<ServerConfig> {
    let servers = gw.server_map();
    let mut names: Vec<&String> = gw.config.servers.iter().map(|s| &s.name).filter(|n| servers.contains_key(*n)).collect();
    let mut added: Vec<&String> = servers.keys().filter(|n| !gw.config.servers.iter().any(|s| &&s.name == n)).collect();
    added.sort();
    names.extend(added);
    names.into_iter().map(|n| servers[n.as_str()].running_config()).collect()
}

pub async fn get(State(m): State<Shared>, Path(name): Path<String>) -> Result<Tagged<ServerConfig>, ApiError> {
    Ok(shown(StatusCode::OK, &named_server(&m, &name)?.running_config()))
}

pub async fn get_version(State(m): State<Shared>, Path((name, version)): Path<(String, String)>) -> Result<Tagged<VersionConfig>, ApiError> {
    let config = named_server(&m, &name)?.running_config();
    let v = config.versions.iter().find(|v| v.name == version).ok_or_else(|| ApiError::NotFound(format!("server '{name}' has no version '{version}'")))?;
    Ok(Tagged { status: StatusCode::OK, etag: etag(v), body: v.masked() })
}

/// A server as the API shows it: its secrets masked, its ETag taken from what runs, so a
/// changed secret changes the ETag.
fn shown(status: StatusCode, server: &ServerConfig) -> Tagged<ServerConfig> {
    Tagged { status, etag: etag(server), body: server.masked() }
}

/// Creates or replaces a server; the body is the server as the config file writes it.
pub async fn put(
    State(m): State<Shared>,
    Path(name): Path<String>,
    h: HeaderMap,
    body: Result<Json<ServerConfig>, JsonRejection>,
) -> Result<Tagged<ServerConfig>, ApiError> {
    let Json(next) = body.map_err(|e| ApiError::Invalid(e.body_text()))?;
    if next.name != name {
        return Err(ApiError::Invalid(format!("server.name: '{}' does not match the path's '{name}'", next.name)));
    }
    super::allow::server(m.allow(), "server", &next)?;
    let _w = m.gateway.changing.lock().await;
    let current = m.gateway.server(&name).ok();
    precondition(&h, &format!("server '{name}'"), current.as_ref().map(|e| etag(&e.running_config())))?;
    let installed = install(&m, next, current.as_deref()).await?;
    tracing::info!(server = %name, "server saved through the management API");
    Ok(shown(if current.is_some() { StatusCode::OK } else { StatusCode::CREATED }, &installed))
}

/// Deletes a server. One that a product includes is refused: the product would then promise
/// what nothing serves.
pub async fn delete(State(m): State<Shared>, Path(name): Path<String>, h: HeaderMap) -> Result<NoContent, ApiError> {
    super::subscriptions::if_match(&h)?;
    let _w = m.gateway.changing.lock().await;
    let current = named_server(&m, &name)?;
    precondition(&h, &format!("server '{name}'"), Some(etag(&current.running_config())))?;
    let mut products: Vec<String> = m.gateway.catalog.load().products.values().filter(|p| p.includes(&name)).map(|p| p.name().to_owned()).collect();
    if !products.is_empty() {
        products.sort();
        return Err(ApiError::Conflict(format!("server '{name}' is in product(s) {}: take it out of them first", products.join(", "))));
    }
    persist(&m.gateway, &name, None, Some(&current)).await?;
    m.gateway.overridden(|o| o.servers.insert(name.clone()));
    m.gateway.set_server(&name, None).await;
    tracing::info!(server = %name, "server deleted through the management API");
    Ok(NoContent)
}

/// Adds or replaces one version of a versioned server; the body is the version as the
/// config file writes it under `versions`.
pub async fn put_version(
    State(m): State<Shared>,
    Path((name, version)): Path<(String, String)>,
    h: HeaderMap,
    body: Result<Json<VersionConfig>, JsonRejection>,
) -> Result<Tagged<VersionConfig>, ApiError> {
    let Json(v) = body.map_err(|e| ApiError::Invalid(e.body_text()))?;
    if v.name != version {
        return Err(ApiError::Invalid(format!("version.name: '{}' does not match the path's '{version}'", v.name)));
    }
    super::allow::version(m.allow(), "version", &v)?;
    let _w = m.gateway.changing.lock().await;
    let current = named_server(&m, &name)?;
    if !current.has_versions() {
        return Err(ApiError::Conflict(format!("server '{name}' has no versions: put the whole server, with `versions`, to give it some")));
    }
    let mut next = current.running_config();
    let at = next.versions.iter().position(|c| c.name == version);
    precondition(&h, &format!("version '{version}' of server '{name}'"), at.map(|i| etag(&next.versions[i])))?;
    match at {
        Some(i) => next.versions[i] = v,
        None => next.versions.push(v),
    }
    let installed = install(&m, next, Some(&current)).await?;
    let saved = installed.versions.iter().find(|c| c.name == version).expect("the version just saved");
    tracing::info!(server = %name, %version, "version saved through the management API");
    Ok(Tagged { status: if at.is_some() { StatusCode::OK } else { StatusCode::CREATED }, etag: etag(saved), body: saved.masked() })
}

/// Deletes one version. The default and the preview cannot go: promote another version, or
/// clear the preview, first. A retired version can.
pub async fn delete_version(State(m): State<Shared>, Path((name, version)): Path<(String, String)>, h: HeaderMap) -> Result<NoContent, ApiError> {
    super::subscriptions::if_match(&h)?;
    let _w = m.gateway.changing.lock().await;
    let current = named_server(&m, &name)?;
    let mut next = current.running_config();
    let at = next.versions.iter().position(|c| c.name == version).ok_or_else(|| ApiError::NotFound(format!("server '{name}' has no version '{version}'")))?;
    precondition(&h, &format!("version '{version}' of server '{name}'"), Some(etag(&next.versions[at])))?;
    if next.versions.len() == 1 {
        return Err(ApiError::Conflict(format!("'{version}' is the last version of server '{name}': delete the server instead")));
    }
    if next.default_version.as_deref() == Some(version.as_str()) {
        return Err(ApiError::Conflict(format!("version '{version}' is the default of server '{name}': promote another version first")));
    }
    if next.preview.as_ref().is_some_and(|p| p.version == version) {
        return Err(ApiError::Conflict(format!("version '{version}' is the preview of server '{name}': clear the preview first")));
    }
    next.versions.remove(at);
    install(&m, next, Some(&current)).await?;
    tracing::info!(server = %name, %version, "version deleted through the management API");
    Ok(NoContent)
}

/// Checks, loads, keeps and swaps in `next` in place of `current`; what runs after.
/// Nothing changes unless everything succeeds. The caller holds the write lock.
async fn install(m: &Shared, next: ServerConfig, current: Option<&Server>) -> Result<ServerConfig, ApiError> {
    let endpoint = build(&m.gateway, next, current, &m.base, &m.places()).await.map_err(ApiError::Problems)?;
    persist(&m.gateway, &endpoint.name, Some(&endpoint), current).await?;
    let config = endpoint.running_config();
    let name = endpoint.name.clone();
    m.gateway.overridden(|o| o.servers.insert(name.clone()));
    m.gateway.set_server(&name, Some(Arc::new(endpoint))).await;
    Ok(config)
}

/// A server checked and built with its chains in place, not yet serving.
async fn build(
    gw: &Gateway,
    mut next: ServerConfig,
    current: Option<&Server>,
    base: &std::path::Path,
    places: &crate::policy::Places,
) -> Result<Server, Vec<crate::config::Problem>> {
    let (mut config, base) = (gw.config.clone(), base.to_owned());
    if next.compose.is_some() {
        // A virtual server's members are checked against the servers running now, and it may
        // not become one where it is a member itself.
        config.servers = gw.server_map().values().map(|s| s.current_config()).collect();
        let within = config.servers.iter().find(|s| s.compose.iter().flatten().any(|m| m.server == next.name));
        if let Some(v) = within {
            let message = format!("'{}' is a member of the virtual server '{}': a member cannot be virtual", next.name, v.name);
            return Err(vec![crate::config::Problem { path: "server.compose".into(), line: None, column: None, message }]);
        }
    }
    // Checking loads `openapi` documents, which may be fetched over the network.
    let (problems, next) =
        tokio::task::spawn_blocking(move || (crate::config::check_server(&config, &mut next, &base), next)).await.map_err(|e| vec![internal(e.to_string())])?;
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut chains = Vec::new();
    for served in next.served() {
        let key = served.key();
        let chain = crate::policy::load_chain(&next.name, &key, &served.config.policies, places).await?;
        chains.push((served.version, chain));
    }
    let mut endpoint = Server::rebuild(&next, &gw.config.limits, current).map_err(|e| vec![internal(e.to_string())])?;
    endpoint.from_api = true;
    for (version, chain) in chains {
        if let Some(server) = endpoint.all().iter().find(|s| s.version == version) {
            server.policies.store(chain);
        }
    }
    Ok(endpoint)
}

fn internal(message: String) -> crate::config::Problem {
    crate::config::Problem { path: "server".into(), line: None, column: None, message }
}

/// A server as the store keeps it: defined through the API, or deleted through it (which
/// must hide the file's server of that name across restarts too).
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    server: Option<ServerConfig>,
}

/// Keeps the server (or its deletion) in one write with the removal of the routing and chains
/// kept for it: the record carries both, and a restart must not lay older ones over it.
async fn persist(gw: &Gateway, name: &str, next: Option<&Server>, current: Option<&Server>) -> Result<(), ApiError> {
    let Some(registry) = &gw.subscriptions else { return Ok(()) };
    let record = serde_json::to_vec(&Stored { server: next.map(Server::running_config) }).expect("a server serializes");
    let mut batch = vec![Write::Put(Kind::Servers, name.to_owned(), record), Write::Delete(Kind::Routing, name.to_owned())];
    let keys = next.into_iter().chain(current).flat_map(|e| e.all().iter().map(|s| s.key()));
    batch.extend(keys.map(|k| Write::Delete(Kind::Chains, k)));
    super::write(registry, batch).await
}

/// At start, before the routing and chains kept by the API: servers created, replaced or
/// deleted through the API win over the file's. One that no longer loads stops the start,
/// rather than quietly serving the file's.
pub async fn restore(gw: &Gateway, base: &std::path::Path, places: &crate::policy::Places) -> anyhow::Result<()> {
    let Some(registry) = &gw.subscriptions else { return Ok(()) };
    let store = registry.store();
    let rows = tokio::task::spawn_blocking(move || store.all(Kind::Servers)).await??;
    for (name, bytes) in rows {
        apply(gw, &name, &bytes, base, places).await?;
    }
    Ok(())
}

/// Puts in force a server as the store keeps it (at start, or as another replica changed it).
pub async fn apply(gw: &Gateway, name: &str, bytes: &[u8], base: &std::path::Path, places: &crate::policy::Places) -> anyhow::Result<()> {
    let stored: Stored = serde_json::from_slice(bytes).map_err(|e| anyhow::anyhow!("stored server '{name}' is unreadable: {e}"))?;
    gw.overridden(|o| o.servers.insert(name.to_owned()));
    let Some(server) = stored.server else {
        gw.set_server(name, None).await;
        tracing::info!(server = %name, "server deleted through the management API stays deleted");
        return Ok(());
    };
    let current = gw.server(name).ok();
    let endpoint = build(gw, server, current.as_deref(), base, places)
        .await
        .map_err(|problems| anyhow::anyhow!("server '{name}' set through the management API no longer loads: {}", super::api_error::joined(&problems)))?;
    gw.set_server(name, Some(Arc::new(endpoint))).await;
    tracing::info!(server = %name, "server put in force from the management API's store");
    Ok(())
}
