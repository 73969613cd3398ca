//! `/api/subscriptions`: subscribe, approve, suspend, resume, cancel, regenerate a key, delete.
//! Keys are in the answer once, at creation and regeneration, and nowhere after.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::api_error::ApiError;
use super::{Shared, with_etag};
use crate::subscription::{Registry, Slot, State as SubState, Subscription};

fn registry(m: &Shared) -> Result<Arc<Registry>, ApiError> {
    m.gateway.subscriptions.clone().ok_or(ApiError::NoStore)
}

/// The `If-Match` of a change: required, so a stale read never overwrites a newer state.
pub fn if_match(h: &HeaderMap) -> Result<String, ApiError> {
    h.get(header::IF_MATCH).and_then(|v| v.to_str().ok()).map(|s| s.trim().to_owned()).ok_or(ApiError::IfMatchRequired)
}

fn shown(s: &Subscription) -> Response {
    with_etag(StatusCode::OK, &s.etag(), s.view())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    product: String,
    subscriber: String,
    #[serde(default)]
    by: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    #[serde(default)]
    by: Option<String>,
}

#[derive(Deserialize)]
pub struct Filter {
    product: Option<String>,
}

pub async fn list(State(m): State<Shared>, Query(f): Query<Filter>) -> Result<Json<Value>, ApiError> {
    let r = registry(&m)?;
    let items: Vec<Value> = r
        .list()
        .iter()
        .filter(|s| f.product.as_ref().is_none_or(|p| &s.product == p))
        .map(|s| {
            let mut v = s.view();
            v["etag"] = json!(s.etag());
            v
        })
        .collect();
    Ok(Json(json!({ "subscriptions": items })))
}

pub async fn get(State(m): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let s = registry(&m)?.get(&id).ok_or_else(|| ApiError::NotFound(format!("no subscription '{id}'")))?;
    Ok(shown(&s))
}

pub async fn create(State(m): State<Shared>, body: Result<Json<NewSubscription>, axum::extract::rejection::JsonRejection>) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::Invalid(e.body_text()))?;
    let r = registry(&m)?;
    let product = m.gateway.catalog.load().products.get(&body.product).cloned();
    let Some(product) = product else {
        return Err(ApiError::Invalid(format!("product: no product is named '{}'", body.product)));
    };
    if body.subscriber.trim().is_empty() {
        return Err(ApiError::Invalid("subscriber: must not be empty".into()));
    }
    let by = body.by.unwrap_or_else(|| body.subscriber.clone());
    let (s, keys) = r.create(&body.product, body.subscriber.trim(), product.config.approval_required, &by).await?;
    tracing::info!(subscription = %s.id, product = %s.product, state = %s.state, "subscription created");
    let mut v = s.view();
    v["keys"] = json!({ "primary": keys.primary, "secondary": keys.secondary });
    let mut resp = with_etag(StatusCode::CREATED, &s.etag(), v);
    if let Ok(loc) = HeaderValue::from_str(&format!("/api/subscriptions/{}", s.id)) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}

/// `approve`, `suspend`, `resume`, `cancel`.
pub async fn act(State(m): State<Shared>, Path((id, action)): Path<(String, String)>, h: HeaderMap, body: Option<Json<Actor>>) -> Result<Response, ApiError> {
    let to = match action.as_str() {
        "approve" | "resume" => SubState::Active,
        "suspend" => SubState::Suspended,
        "cancel" => SubState::Cancelled,
        other => return Err(ApiError::NotFound(format!("no action '{other}': use approve, suspend, resume or cancel"))),
    };
    let r = registry(&m)?;
    let etag = if_match(&h)?;
    if action == "approve" && r.get(&id).is_some_and(|s| s.state != SubState::Pending) {
        return Err(ApiError::Conflict(format!("subscription '{id}' is not pending approval")));
    }
    if action == "resume" && r.get(&id).is_some_and(|s| s.state != SubState::Suspended) {
        return Err(ApiError::Conflict(format!("subscription '{id}' is not suspended")));
    }
    let by = body.and_then(|b| b.0.by).unwrap_or_else(|| "admin".into());
    let s = r.transition(&id, &etag, to, &by).await?;
    tracing::info!(subscription = %s.id, state = %s.state, %by, "subscription changed");
    Ok(shown(&s))
}

/// Regenerates the primary or the secondary key; the other keeps working.
pub async fn regenerate(State(m): State<Shared>, Path((id, slot)): Path<(String, String)>, h: HeaderMap) -> Result<Response, ApiError> {
    let slot = match slot.as_str() {
        "primary" => Slot::Primary,
        "secondary" => Slot::Secondary,
        other => return Err(ApiError::NotFound(format!("no key '{other}': use primary or secondary"))),
    };
    let r = registry(&m)?;
    let etag = if_match(&h)?;
    let (s, key) = r.regenerate(&id, &etag, slot).await?;
    tracing::info!(subscription = %s.id, key = ?slot, "subscription key regenerated");
    let mut v = s.view();
    v["key"] = json!({ "slot": slot, "value": key });
    Ok(with_etag(StatusCode::OK, &s.etag(), v))
}

pub async fn delete(State(m): State<Shared>, Path(id): Path<String>, h: HeaderMap) -> Result<StatusCode, ApiError> {
    let r = registry(&m)?;
    let etag = if_match(&h)?;
    r.delete(&id, &etag).await?;
    tracing::info!(subscription = %id, "subscription deleted");
    Ok(StatusCode::NO_CONTENT)
}
