//! `/api/components`: policy components uploaded for bindings to use. The body of a POST is the
//! component itself (`application/wasm`); it is compiled and checked to be a policy component
//! before it is kept, content-addressed, in `data_dir`. The answer's `policy` is what a
//! binding's `policy:` says to use it: `sha256:<hex>`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};

use super::Shared;
use super::api_error::ApiError;
use crate::policy::uploads;

fn dir(m: &Shared) -> Result<std::path::PathBuf, ApiError> {
    m.places().components.ok_or(ApiError::NoUploads)
}

/// The bindings, by server or version, that use each component now.
fn used_by(m: &Shared) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for server in m.gateway.all_versions() {
        for b in &server.policies.load().declared {
            if let Some(hex) = b.digest() {
                out.entry(hex.to_owned()).or_default().push(server.key());
            }
        }
    }
    out
}

/// The uploaded components.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Components {
    components: Vec<Component>,
}

/// One uploaded component, and the chains that use it now.
#[derive(serde::Serialize, schemars::JsonSchema)]
struct Component {
    /// What a binding's `policy:` names to use it: `sha256:<hex>`.
    policy: String,
    sha256: String,
    /// In bytes.
    size: u64,
    /// The servers and versions (`server@version`) whose chains bind it.
    used_by: Vec<String>,
}

/// A component kept: what a binding names to use it.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Uploaded {
    /// What a binding's `policy:` names to use it: `sha256:<hex>`.
    policy: String,
    sha256: String,
    /// In bytes.
    size: usize,
}

pub async fn list(State(m): State<Shared>) -> Result<Json<Components>, ApiError> {
    let dir = dir(&m)?;
    let stored = tokio::task::spawn_blocking(move || uploads::list(&dir))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let used = used_by(&m);
    let components = stored
        .into_iter()
        .map(|s| Component { used_by: used.get(&s.sha256).cloned().unwrap_or_default(), policy: s.policy, sha256: s.sha256, size: s.size })
        .collect();
    Ok(Json(Components { components }))
}

/// Keeps a component: 201 when new, 200 when the same bytes were kept already.
pub async fn upload(State(m): State<Shared>, h: HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    let kind = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if kind.split(';').next().map(str::trim) != Some("application/wasm") {
        return Err(ApiError::UnsupportedMedia(format!("send the component as `Content-Type: application/wasm` (not '{kind}')")));
    }
    let bytes = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(format!("a component may be at most {} MiB (`management.max_component_mb`)", m.max_component_mb())),
        _ => ApiError::Invalid(e.body_text()),
    })?;
    if bytes.is_empty() {
        return Err(ApiError::Invalid("the body is empty: send the component's bytes".into()));
    }
    let dir = dir(&m)?;
    let (hex, size) = (uploads::digest(&bytes), bytes.len());
    // Compiling takes a while: off the async workers, as at load.
    let checked = bytes.clone();
    tokio::task::spawn_blocking(move || crate::policy::check_component(&checked))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Invalid(format!("the upload is not a policy component: {e}")))?;
    let (at, name, kept) = (dir.clone(), hex.clone(), bytes.clone());
    let created = tokio::task::spawn_blocking(move || uploads::save(&at, &name, &bytes))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(format!("cannot keep the component in {}: {e}", dir.display())))?;
    if let Some(registry) = m.gateway.subscriptions.as_ref().filter(|r| r.store().shared()) {
        // Other replicas write their own copy from the database. The bytes are their name, so
        // a copy another replica kept first is this one.
        let put = crate::subscription::Write::Put(crate::subscription::Kind::Components, hex.clone(), kept.to_vec());
        match super::write(registry, vec![put]).await {
            Ok(()) | Err(ApiError::Stale(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let reference = uploads::reference(&hex);
    tracing::info!(component = %reference, created, "policy component uploaded");
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(Uploaded { policy: reference, sha256: hex, size })))
}

/// Writes the copy of a component another replica uploaded, checked against its name.
pub async fn keep_copy(gw: &crate::gateway::Gateway, hex: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
    if uploads::digest(&bytes) != hex {
        anyhow::bail!("the stored component '{hex}' does not match its digest");
    }
    let Some(dir) = gw.config.management.as_ref().and_then(|m| m.data_dir.as_deref()).map(uploads::dir) else { return Ok(()) };
    let name = hex.to_owned();
    tokio::task::spawn_blocking(move || uploads::save(&dir, &name, &bytes)).await??;
    Ok(())
}

/// At start, with a shared store: the components other replicas uploaded, copied here before
/// any chain names them.
pub async fn restore(gw: &crate::gateway::Gateway) -> anyhow::Result<()> {
    let Some(registry) = gw.subscriptions.as_ref().filter(|r| r.store().shared()) else { return Ok(()) };
    let store = registry.store();
    let rows = tokio::task::spawn_blocking(move || store.all(crate::subscription::Kind::Components)).await??;
    for (hex, bytes) in rows {
        keep_copy(gw, &hex, bytes).await?;
    }
    Ok(())
}
