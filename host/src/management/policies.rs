//! `/api/servers/{name}/policies` and `/api/servers/{name}/versions/{version}/policies`: the
//! chain a server (or one version of it) runs, in the config file's shape, with its ETag.
//!
//! A PUT is checked as `tollgate validate` checks a file, then compiled and each binding's
//! config checked by its policy, all before anything changes; it is kept in the store, then
//! swapped in whole. Requests in flight finish on the chain they began with; a live session's
//! next request runs the new one. Secrets stay references (`env`, `file`), never values.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};

use super::api_error::ApiError;
use super::route::Tagged;
use super::subscriptions::if_match;
use super::{Shared, etag};
use crate::config::PolicyBinding;
use crate::gateway::Gateway;
use crate::server::Version;
use crate::subscription::Kind;

/// The server or version a path names.
fn target(gw: &Gateway, name: &str, version: Option<&str>) -> Result<Arc<Version>, ApiError> {
    let e = gw.server(name).map_err(|_| ApiError::NotFound(format!("no server '{name}'")))?;
    match version {
        None if e.has_versions() => {
            Err(ApiError::NotFound(format!("server '{name}' has versions, each with its own chain: use /api/servers/{name}/versions/{{version}}/policies")))
        }
        None => Ok(e.all()[0].clone()),
        Some(v) => e.version(v).cloned().ok_or_else(|| ApiError::NotFound(format!("server '{name}' has no version '{v}'"))),
    }
}

pub async fn get(State(m): State<Shared>, Path(name): Path<String>) -> Result<Tagged<Vec<PolicyBinding>>, ApiError> {
    let server = target(&m.gateway, &name, None)?;
    Ok(Tagged::of(StatusCode::OK, server.policies.load().declared.clone()))
}

pub async fn get_version(State(m): State<Shared>, Path((name, version)): Path<(String, String)>) -> Result<Tagged<Vec<PolicyBinding>>, ApiError> {
    let server = target(&m.gateway, &name, Some(&version))?;
    Ok(Tagged::of(StatusCode::OK, server.policies.load().declared.clone()))
}

pub async fn put(
    State(m): State<Shared>,
    Path(name): Path<String>,
    h: HeaderMap,
    body: Result<Json<Vec<PolicyBinding>>, JsonRejection>,
) -> Result<Tagged<Vec<PolicyBinding>>, ApiError> {
    replace(&m, &name, None, &h, body).await
}

pub async fn put_version(
    State(m): State<Shared>,
    Path((name, version)): Path<(String, String)>,
    h: HeaderMap,
    body: Result<Json<Vec<PolicyBinding>>, JsonRejection>,
) -> Result<Tagged<Vec<PolicyBinding>>, ApiError> {
    replace(&m, &name, Some(&version), &h, body).await
}

/// Replaces a chain whole: If-Match with its ETag, the checks, the store, then the swap.
async fn replace(
    m: &Shared,
    name: &str,
    version: Option<&str>,
    h: &HeaderMap,
    body: Result<Json<Vec<PolicyBinding>>, JsonRejection>,
) -> Result<Tagged<Vec<PolicyBinding>>, ApiError> {
    let Json(bindings) = body.map_err(|e| ApiError::Invalid(e.body_text()))?;
    super::allow::chain(m.allow(), "policies", &bindings)?;
    let server = target(&m.gateway, name, version)?;
    let given = if_match(h)?;
    let problems = crate::config::check_chain(&m.gateway.config, &bindings);
    if !problems.is_empty() {
        return Err(ApiError::Problems(problems));
    }
    let key = server.key();
    let _w = m.gateway.changing.lock().await;
    let current = etag(&server.policies.load().declared);
    if current != given {
        return Err(ApiError::Stale(format!("the chain of '{key}' changed since it was read (its ETag is now {current})")));
    }
    let chain = crate::policy::load_chain(name, &key, &bindings, &m.places()).await.map_err(ApiError::Problems)?;
    persist(&m.gateway, &key, &bindings).await?;
    server.policies.store(chain);
    let names: Vec<&str> = bindings.iter().map(PolicyBinding::name).collect();
    tracing::info!(server = %key, policies = %names.join(", "), "policy chain replaced");
    Ok(Tagged::of(StatusCode::OK, bindings))
}

pub async fn release(State(m): State<Shared>, Path(name): Path<String>, h: HeaderMap) -> Result<Tagged<Vec<PolicyBinding>>, ApiError> {
    hand_back(&m, &name, None, &h).await
}

pub async fn release_version(
    State(m): State<Shared>,
    Path((name, version)): Path<(String, String)>,
    h: HeaderMap,
) -> Result<Tagged<Vec<PolicyBinding>>, ApiError> {
    hand_back(&m, &name, Some(&version), &h).await
}

/// Hands a chain back to the file: the API's is forgotten, and the chain the file declares
/// now is loaded and put in force; later reloads of the file change it again.
async fn hand_back(m: &Shared, name: &str, version: Option<&str>, h: &HeaderMap) -> Result<Tagged<Vec<PolicyBinding>>, ApiError> {
    let given = if_match(h)?;
    let server = target(&m.gateway, name, version)?;
    if m.gateway.server(name).is_ok_and(|e| e.from_api) {
        return Err(ApiError::Conflict(format!(
            "server '{name}' was put through the management API, so the file does not speak for it: put the chain you want instead"
        )));
    }
    let key = server.key();
    let _w = m.gateway.changing.lock().await;
    let current = etag(&server.policies.load().declared);
    if current != given {
        return Err(ApiError::Stale(format!("the chain of '{key}' changed since it was read (its ETag is now {current})")));
    }
    let declared = file_chain(&m.file, name, version).await?;
    let chain = crate::policy::load_file_chain(name, &key, &declared, &m.places()).await.map_err(ApiError::Problems)?;
    if let Some(registry) = &m.gateway.subscriptions {
        super::write(registry, vec![crate::subscription::Write::Delete(Kind::Chains, key.clone())]).await?;
    }
    server.policies.store(chain);
    tracing::info!(server = %key, "policy chain handed back to the config file");
    Ok(Tagged::of(StatusCode::OK, declared))
}

/// The chain the config file declares now for `name` (or its `version`).
async fn file_chain(file: &std::path::Path, name: &str, version: Option<&str>) -> Result<Vec<PolicyBinding>, ApiError> {
    let file = file.to_owned();
    let config = tokio::task::spawn_blocking(move || crate::config::Config::load(&file)).await.map_err(|e| ApiError::Internal(e.to_string()))?;
    let config = config.map_err(|e| ApiError::Conflict(format!("the config file does not load, so the chain stays: {e}")))?;
    let key = crate::config::version_key(name, version);
    Ok(config
        .servers
        .iter()
        .find(|s| s.name == name)
        .and_then(|s| s.served().into_iter().find(|v| v.version.as_deref() == version))
        .ok_or_else(|| ApiError::Conflict(format!("the config file has no '{key}' to hand its chain back to")))?
        .config
        .policies)
}

/// Kept in `data_dir` when there is one, so a restart serves the same chain; without it, a
/// change lasts until the gateway stops.
async fn persist(gw: &Gateway, key: &str, chain: &[PolicyBinding]) -> Result<(), ApiError> {
    let Some(registry) = &gw.subscriptions else { return Ok(()) };
    super::keep(registry, Kind::Chains, key, &chain).await
}

/// At start: chains set through the API win over the file's. One that no longer loads stops
/// the start (serving the file's chain instead could loosen what the API tightened); one for a
/// server or version the file no longer has is logged and skipped.
pub async fn restore(gw: &Gateway, places: &crate::policy::Places) -> anyhow::Result<()> {
    let Some(registry) = &gw.subscriptions else { return Ok(()) };
    let store = registry.store();
    let rows = tokio::task::spawn_blocking(move || store.all(Kind::Chains)).await??;
    for (key, bytes) in rows {
        apply(gw, &key, &bytes, places).await?;
    }
    Ok(())
}

fn split_key(key: &str) -> (&str, Option<&str>) {
    match key.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (key, None),
    }
}

/// Puts in force a chain as the store keeps it (at start, or as another replica changed it).
pub async fn apply(gw: &Gateway, key: &str, bytes: &[u8], places: &crate::policy::Places) -> anyhow::Result<()> {
    let bindings: Vec<PolicyBinding> = serde_json::from_slice(bytes).map_err(|e| anyhow::anyhow!("stored chain of '{key}' is unreadable: {e}"))?;
    let (name, version) = split_key(key);
    let Ok(server) = target(gw, name, version) else {
        tracing::warn!(server = %key, "a chain was kept for a server or version the file no longer has; ignored");
        return Ok(());
    };
    let chain = crate::policy::load_chain(name, key, &bindings, places)
        .await
        .map_err(|problems| anyhow::anyhow!("the chain of '{key}' set through the management API no longer loads: {}", super::api_error::joined(&problems)))?;
    server.policies.store(chain);
    tracing::info!(server = %key, "policy chain put in force from the management API's store");
    Ok(())
}

/// Another replica handed a chain back to the file, or replaced its server (whose own chain
/// came with it): the file's chain is loaded, unless the API speaks for the server.
pub async fn released(gw: &Gateway, file: &std::path::Path, key: &str, places: &crate::policy::Places) -> anyhow::Result<()> {
    let (name, version) = split_key(key);
    if gw.server(name).map_or(true, |e| e.from_api) {
        return Ok(());
    }
    let Ok(server) = target(gw, name, version) else { return Ok(()) };
    let declared = file_chain(file, name, version).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let chain = crate::policy::load_file_chain(name, key, &declared, places).await.map_err(|p| anyhow::anyhow!("{}", super::api_error::joined(&p)))?;
    server.policies.store(chain);
    tracing::info!(server = %key, "policy chain handed back to the config file");
    Ok(())
}
