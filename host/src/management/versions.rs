//! `/api/servers/{name}/versions` and `/api/servers/{name}/routing`: which version of a server
//! serves whom. Promote a version, set or clear the preview, retire or reinstate a version, or
//! put a whole routing (what `tollgate apply` does). Each change takes If-Match with the
//! routing's ETag, applies at once to new sessions, and moves no live session.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};

use super::api_error::ApiError;
use super::route::Tagged;
use super::subscriptions::if_match;
use super::{Shared, etag, named_server};
use crate::config::{PreviewConfig, Routing};
use crate::gateway::Gateway;
use crate::server::Server;
use crate::subscription::Kind;

fn routing_of(e: &Server) -> Result<Routing, ApiError> {
    e.routing().ok_or_else(|| ApiError::NotFound(format!("server '{}' has no versions", e.name)))
}

/// A server's versions and its routing: what `GET /api/servers/{name}/versions` and every
/// change of the routing answer.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Versions {
    /// The server's name.
    server: String,
    routing: Routing,
    /// In the order the server declares them.
    versions: Vec<VersionView>,
}

/// One version, and what the routing makes of it.
#[derive(serde::Serialize, schemars::JsonSchema)]
struct VersionView {
    name: String,
    description: Option<String>,
    /// Where clients reach this version: `/{server}/{version}/mcp`.
    url: String,
    /// New sessions reach it by default.
    default: bool,
    /// It is the preview.
    preview: bool,
    retired: bool,
}

/// The versions and the routing, with the routing's ETag.
fn view(e: &Server, r: &Routing) -> Tagged<Versions> {
    let versions = e
        .all()
        .iter()
        .filter_map(|s| s.version.as_ref().map(|v| (v, s)))
        .map(|(v, s)| VersionView {
            name: v.clone(),
            description: s.config.description.clone(),
            url: format!("/{}/{v}/mcp", e.name),
            default: *v == r.default_version,
            preview: r.preview.as_ref().is_some_and(|p| &p.version == v),
            retired: r.retired.contains(v),
        })
        .collect();
    Tagged { status: StatusCode::OK, etag: etag(r), body: Versions { server: e.name.clone(), routing: r.clone(), versions } }
}

pub async fn list(State(m): State<Shared>, Path(name): Path<String>) -> Result<Tagged<Versions>, ApiError> {
    let e = named_server(&m, &name)?;
    let r = routing_of(&e)?;
    Ok(view(&e, &r))
}

pub async fn get_routing(State(m): State<Shared>, Path(name): Path<String>) -> Result<Tagged<Routing>, ApiError> {
    let r = routing_of(&*named_server(&m, &name)?)?;
    Ok(Tagged::of(StatusCode::OK, r))
}

/// Replaces the whole routing; the body is `{default_version, preview, retired}`.
pub async fn put_routing(
    State(m): State<Shared>,
    Path(name): Path<String>,
    h: HeaderMap,
    body: Result<Json<Routing>, JsonRejection>,
) -> Result<Tagged<Versions>, ApiError> {
    let Json(next) = body.map_err(|e| ApiError::Invalid(e.body_text()))?;
    change(&m, &name, &h, |r| {
        *r = next;
        Ok(())
    })
    .await
}

/// `promote`, `retire`, `reinstate` one version.
pub async fn act(State(m): State<Shared>, Path((name, version, action)): Path<(String, String, String)>, h: HeaderMap) -> Result<Tagged<Versions>, ApiError> {
    let e = named_server(&m, &name)?;
    if e.version(&version).is_none() {
        return Err(ApiError::NotFound(format!("server '{name}' has no version '{version}'")));
    }
    match action.as_str() {
        "promote" => {
            change(&m, &name, &h, |r| {
                if r.retired.contains(&version) {
                    return Err(ApiError::Conflict(format!("version '{version}' is retired: reinstate it before promoting it")));
                }
                r.default_version = version.clone();
                // The preview has become the default: nothing is left to preview.
                if r.preview.as_ref().is_some_and(|p| p.version == version) {
                    r.preview = None;
                }
                Ok(())
            })
            .await
        }
        "retire" => {
            change(&m, &name, &h, |r| {
                if r.default_version == version {
                    return Err(ApiError::Conflict(format!("version '{version}' is the default: promote another version before retiring it")));
                }
                if r.preview.as_ref().is_some_and(|p| p.version == version) {
                    return Err(ApiError::Conflict(format!("version '{version}' is in preview: clear the preview before retiring it")));
                }
                r.retired.insert(version.clone());
                Ok(())
            })
            .await
        }
        "reinstate" => {
            change(&m, &name, &h, |r| {
                r.retired.remove(&version);
                Ok(())
            })
            .await
        }
        other => Err(ApiError::NotFound(format!("no action '{other}': use promote, retire or reinstate"))),
    }
}

/// Sets the preview: `{version, share, subscriptions}`.
pub async fn put_preview(
    State(m): State<Shared>,
    Path(name): Path<String>,
    h: HeaderMap,
    body: Result<Json<PreviewConfig>, JsonRejection>,
) -> Result<Tagged<Versions>, ApiError> {
    let Json(p) = body.map_err(|e| ApiError::Invalid(e.body_text()))?;
    change(&m, &name, &h, |r| {
        r.preview = Some(p);
        Ok(())
    })
    .await
}

pub async fn delete_preview(State(m): State<Shared>, Path(name): Path<String>, h: HeaderMap) -> Result<Tagged<Versions>, ApiError> {
    change(&m, &name, &h, |r| {
        r.preview = None;
        Ok(())
    })
    .await
}

/// One change: the ETag checked and the result validated (in `tollgate validate`'s words)
/// under the write lock, kept where the store is, then in force at once.
async fn change(m: &Shared, name: &str, h: &HeaderMap, edit: impl FnOnce(&mut Routing) -> Result<(), ApiError>) -> Result<Tagged<Versions>, ApiError> {
    let given = if_match(h)?;
    let e = named_server(m, name)?;
    let _w = m.gateway.changing.lock().await;
    let current = routing_of(&e)?;
    let tag = etag(&current);
    if tag != given {
        return Err(ApiError::Stale(format!("the routing of server '{name}' changed since it was read (its ETag is now {tag})")));
    }
    let mut next = current;
    edit(&mut next)?;
    let problems = crate::config::check_routing(&e.config, &next);
    if !problems.is_empty() {
        return Err(ApiError::Invalid(problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; ")));
    }
    persist(&m.gateway, name, &next).await?;
    e.set_routing(next.clone());
    m.gateway.overridden(|o| o.routings.insert(name.to_owned()));
    tracing::info!(server = %name, default = %next.default_version, preview = ?next.preview.as_ref().map(|p| (&p.version, p.share)), retired = ?next.retired, "routing changed");
    Ok(view(&e, &next))
}

/// Kept in `data_dir` when there is one, so a restart serves the same versions to the same
/// callers; without it, a change lasts until the gateway stops.
async fn persist(gw: &Gateway, name: &str, r: &Routing) -> Result<(), ApiError> {
    let Some(registry) = &gw.subscriptions else { return Ok(()) };
    super::keep(registry, Kind::Routing, name, r).await
}

/// At start: routings changed through the API win over the file's, as long as they still fit
/// its versions; one that no longer does is logged and the file's stays.
pub async fn restore(gw: &Gateway) -> anyhow::Result<()> {
    let Some(registry) = &gw.subscriptions else { return Ok(()) };
    let store = registry.store();
    let rows = tokio::task::spawn_blocking(move || store.all(Kind::Routing)).await??;
    for (name, bytes) in rows {
        apply(gw, &name, &bytes)?;
    }
    Ok(())
}

/// Puts in force a routing as the store keeps it (at start, or as another replica changed it).
pub fn apply(gw: &Gateway, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let routing: Routing = serde_json::from_slice(bytes).map_err(|e| anyhow::anyhow!("stored routing of server '{name}' is unreadable: {e}"))?;
    let Some(e) = gw.server(name).ok().filter(|e| e.has_versions()) else {
        tracing::warn!(server = %name, "a routing was kept for a server that has no versions now; ignored");
        return Ok(());
    };
    let problems = crate::config::check_routing(&e.config, &routing);
    if problems.is_empty() {
        e.set_routing(routing);
        gw.overridden(|o| o.routings.insert(name.to_owned()));
    } else {
        let why = problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; ");
        tracing::warn!(server = %name, %why, "the routing kept from the management API no longer fits the file; the file's is in force");
    }
    Ok(())
}
