//! `/api/products`: the products the gateway serves, each with its ETag.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};

use super::api_error::ApiError;
use super::route::{NoContent, Tagged};
use super::{Shared, etag};
use crate::config::ProductConfig;
use crate::gateway::Gateway;
use crate::product::Product;
use crate::subscription::Kind;

/// The products, each with its ETag.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Products {
    products: Vec<ListedProduct>,
}

/// A product as the config file writes it, and its ETag.
#[derive(serde::Serialize, schemars::JsonSchema)]
struct ListedProduct {
    #[serde(flatten)]
    product: ProductConfig,
    /// The product's ETag, as `GET /api/products/{name}` gives it.
    etag: String,
}

pub async fn list(State(m): State<Shared>) -> Json<Products> {
    let catalog = m.gateway.catalog.load();
    let products = catalog.products.values().map(|p| ListedProduct { product: p.config.clone(), etag: etag(&p.config) }).collect();
    Json(Products { products })
}

pub async fn get(State(m): State<Shared>, Path(name): Path<String>) -> Result<Tagged<ProductConfig>, ApiError> {
    let catalog = m.gateway.catalog.load();
    let p = catalog.products.get(&name).ok_or_else(|| ApiError::NotFound(format!("no product '{name}'")))?;
    Ok(Tagged::of(StatusCode::OK, p.config.clone()))
}

/// A product as the store keeps it: defined through the API, or deleted through it (which
/// must hide the file's product of that name across restarts too).
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    product: Option<ProductConfig>,
    #[serde(default)]
    deleted: bool,
}

/// At start: products created, changed or deleted through the API win over the file's.
pub async fn restore(gw: &Gateway, base: &std::path::Path) -> anyhow::Result<()> {
    let Some(registry) = &gw.subscriptions else { return Ok(()) };
    let store = registry.store();
    let rows = tokio::task::spawn_blocking(move || store.all(Kind::Products)).await??;
    for (name, bytes) in rows {
        apply(gw, &name, &bytes, base).await?;
    }
    Ok(())
}

/// Puts in force a product as the store keeps it (at start, or as another replica changed it).
pub async fn apply(gw: &Gateway, name: &str, bytes: &[u8], base: &std::path::Path) -> anyhow::Result<()> {
    let stored: Stored = serde_json::from_slice(bytes).map_err(|e| anyhow::anyhow!("stored product '{name}' is unreadable: {e}"))?;
    let product = match stored.product {
        Some(p) if !stored.deleted => {
            let chain = crate::policy::load_product(&p, &crate::policy::Places::of(&gw.config, base))
                .await
                .map_err(|problems| anyhow::anyhow!("stored product '{name}': {}", problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; ")))?;
            let product = Product::new(p);
            product.chain.store(chain);
            Some(Arc::new(product))
        }
        _ => None,
    };
    let next = gw.catalog.load().with(name, product);
    gw.catalog.store(Arc::new(next));
    gw.overridden(|o| o.products.insert(name.to_owned()));
    Ok(())
}

/// Creates or replaces a product. Replacing needs `If-Match` with its current ETag; creating
/// needs none. The body is the product as the config file writes it, in JSON.
pub async fn put(
    State(m): State<Shared>,
    Path(name): Path<String>,
    h: HeaderMap,
    body: Result<Json<ProductConfig>, JsonRejection>,
) -> Result<Tagged<ProductConfig>, ApiError> {
    let Json(p) = body.map_err(|e| ApiError::Invalid(e.body_text()))?;
    let registry = m.gateway.subscriptions.clone().ok_or(ApiError::NoStore)?;
    if p.name != name {
        return Err(ApiError::Invalid(format!("product.name: '{}' does not match the path's '{name}'", p.name)));
    }
    super::allow::chain(m.allow(), "product.policies", &p.policies)?;
    let servers = m.gateway.server_map();
    let problems = crate::config::check_product(servers.keys().map(String::as_str), &p);
    if !problems.is_empty() {
        return Err(ApiError::Invalid(joined(&problems)));
    }
    let _w = m.gateway.changing.lock().await;
    let current = m.gateway.catalog.load().products.get(&name).map(|c| etag(&c.config));
    super::precondition(&h, &format!("product '{name}'"), current.clone())?;
    let chain = crate::policy::load_product(&p, &m.places()).await.map_err(|problems| ApiError::Invalid(joined(&problems)))?;
    persist(&registry, &name, &Stored { product: Some(p.clone()), deleted: false }).await?;
    let tag = etag(&p);
    let product = Product::new(p);
    product.chain.store(chain);
    let view = product.config.clone();
    let next = m.gateway.catalog.load().with(&name, Some(Arc::new(product)));
    m.gateway.catalog.store(Arc::new(next));
    m.gateway.overridden(|o| o.products.insert(name.clone()));
    tracing::info!(product = %name, "product saved");
    let status = if current.is_some() { StatusCode::OK } else { StatusCode::CREATED };
    Ok(Tagged { status, etag: tag, body: view })
}

/// Deletes a product; its subscriptions then get 403 until it exists again.
pub async fn delete(State(m): State<Shared>, Path(name): Path<String>, h: HeaderMap) -> Result<NoContent, ApiError> {
    let registry = m.gateway.subscriptions.clone().ok_or(ApiError::NoStore)?;
    let given = super::subscriptions::if_match(&h)?;
    let _w = m.gateway.changing.lock().await;
    let current = m.gateway.catalog.load().products.get(&name).map(|c| etag(&c.config)).ok_or_else(|| ApiError::NotFound(format!("no product '{name}'")))?;
    if current != given {
        return Err(ApiError::Stale(format!("product '{name}' changed since it was read (its ETag is now {current})")));
    }
    persist(&registry, &name, &Stored { product: None, deleted: true }).await?;
    let next = m.gateway.catalog.load().with(&name, None);
    m.gateway.catalog.store(Arc::new(next));
    m.gateway.overridden(|o| o.products.insert(name.clone()));
    tracing::info!(product = %name, "product deleted");
    Ok(NoContent)
}

async fn persist(registry: &crate::subscription::Registry, name: &str, stored: &Stored) -> Result<(), ApiError> {
    super::keep(registry, Kind::Products, name, stored).await
}

fn joined(problems: &[crate::config::Problem]) -> String {
    problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; ")
}
