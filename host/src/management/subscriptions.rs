//! `/api/subscriptions`: subscribe, approve, suspend, resume, cancel, regenerate a key, delete.
//! Keys are in the answer once, at creation and regeneration, and nowhere after.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Shared;
use super::api_error::ApiError;
use super::route::{NoContent, Tagged};
use crate::subscription::{Registry, Slot, State as SubState, Subscription, View};

fn registry(m: &Shared) -> Result<Arc<Registry>, ApiError> {
    m.gateway.subscriptions.clone().ok_or(ApiError::NoStore)
}

/// The `If-Match` of a change: required, so a stale read never overwrites a newer state.
pub fn if_match(h: &HeaderMap) -> Result<String, ApiError> {
    h.get(header::IF_MATCH).and_then(|v| v.to_str().ok()).map(|s| s.trim().to_owned()).ok_or(ApiError::IfMatchRequired)
}

fn shown(s: &Subscription) -> Tagged<View> {
    Tagged { status: StatusCode::OK, etag: s.etag(), body: s.view() }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// The product to subscribe to.
    product: String,
    /// Who subscribes.
    subscriber: String,
    /// Who made the change, for the history (the subscriber when unset).
    #[serde(default)]
    by: Option<String>,
}

#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// Who made the change, for the history (`admin` when unset).
    #[serde(default)]
    by: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
pub struct Filter {
    /// Only the subscriptions to this product.
    product: Option<String>,
}

/// The subscriptions, each with its ETag.
#[derive(Serialize, JsonSchema)]
pub struct Subscriptions {
    subscriptions: Vec<ListedSubscription>,
}

#[derive(Serialize, JsonSchema)]
struct ListedSubscription {
    #[serde(flatten)]
    subscription: View,
    /// The subscription's ETag, as `GET /api/subscriptions/{id}` gives it.
    etag: String,
}

/// A new subscription, with both its keys: shown this once.
#[derive(Serialize, JsonSchema)]
pub struct Subscribed {
    #[serde(flatten)]
    subscription: View,
    keys: SubscriptionKeys,
}

#[derive(Serialize, JsonSchema)]
struct SubscriptionKeys {
    primary: String,
    secondary: String,
}

/// A subscription with the key just regenerated: shown this once.
#[derive(Serialize, JsonSchema)]
pub struct Regenerated {
    #[serde(flatten)]
    subscription: View,
    key: RegeneratedKey,
}

#[derive(Serialize, JsonSchema)]
struct RegeneratedKey {
    slot: Slot,
    value: String,
}

pub async fn list(State(m): State<Shared>, Query(f): Query<Filter>) -> Result<Json<Subscriptions>, ApiError> {
    let r = registry(&m)?;
    let subscriptions = r
        .list()
        .iter()
        .filter(|s| f.product.as_ref().is_none_or(|p| &s.product == p))
        .map(|s| ListedSubscription { subscription: s.view(), etag: s.etag() })
        .collect();
    Ok(Json(Subscriptions { subscriptions }))
}

pub async fn get(State(m): State<Shared>, Path(id): Path<String>) -> Result<Tagged<View>, ApiError> {
    let s = registry(&m)?.get(&id).ok_or_else(|| ApiError::NotFound(format!("no subscription '{id}'")))?;
    Ok(shown(&s))
}

pub async fn create(
    State(m): State<Shared>,
    body: Result<Json<NewSubscription>, axum::extract::rejection::JsonRejection>,
) -> Result<Located<Tagged<Subscribed>>, ApiError> {
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
    let body = Subscribed { subscription: s.view(), keys: SubscriptionKeys { primary: keys.primary, secondary: keys.secondary } };
    Ok(Located(format!("/api/subscriptions/{}", s.id), Tagged { status: StatusCode::CREATED, etag: s.etag(), body }))
}

/// An answer with a `Location` header.
pub struct Located<T>(String, T);

impl<T: IntoResponse> IntoResponse for Located<T> {
    fn into_response(self) -> Response {
        let mut resp = self.1.into_response();
        if let Ok(loc) = HeaderValue::from_str(&self.0) {
            resp.headers_mut().insert(header::LOCATION, loc);
        }
        resp
    }
}

impl<T: super::route::Output> super::route::Output for Located<T> {
    fn shape(a: &mut super::route::Answer, g: &mut schemars::SchemaGenerator) {
        T::shape(a, g);
        a.location = true;
    }
}

/// `approve`, `suspend`, `resume`, `cancel`.
pub async fn act(
    State(m): State<Shared>,
    Path((id, action)): Path<(String, String)>,
    h: HeaderMap,
    body: Result<Option<Json<Actor>>, axum::extract::rejection::JsonRejection>,
) -> Result<Tagged<View>, ApiError> {
    // No body is fine; a body that is not the JSON this takes is a problem like any other.
    let body = body.map_err(|e| ApiError::Invalid(e.body_text()))?;
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
pub async fn regenerate(State(m): State<Shared>, Path((id, slot)): Path<(String, String)>, h: HeaderMap) -> Result<Tagged<Regenerated>, ApiError> {
    let slot = match slot.as_str() {
        "primary" => Slot::Primary,
        "secondary" => Slot::Secondary,
        other => return Err(ApiError::NotFound(format!("no key '{other}': use primary or secondary"))),
    };
    let r = registry(&m)?;
    let etag = if_match(&h)?;
    let (s, key) = r.regenerate(&id, &etag, slot).await?;
    tracing::info!(subscription = %s.id, key = ?slot, "subscription key regenerated");
    Ok(Tagged { status: StatusCode::OK, etag: s.etag(), body: Regenerated { subscription: s.view(), key: RegeneratedKey { slot, value: key } } })
}

pub async fn delete(State(m): State<Shared>, Path(id): Path<String>, h: HeaderMap) -> Result<NoContent, ApiError> {
    let r = registry(&m)?;
    let etag = if_match(&h)?;
    r.delete(&id, &etag).await?;
    tracing::info!(subscription = %id, "subscription deleted");
    Ok(NoContent)
}
