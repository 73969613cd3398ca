//! `/api/products`: the products the gateway serves, each with its ETag.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Shared;
use super::api_error::ApiError;
use crate::config::ProductConfig;

/// A strong ETag from the product's content, so it changes exactly when the product does.
pub fn etag(p: &ProductConfig) -> String {
    let bytes = serde_json::to_vec(p).expect("a product serializes");
    format!("\"{}\"", &hex::encode(Sha256::digest(bytes))[..16])
}

fn view(p: &ProductConfig) -> Value {
    serde_json::to_value(p).expect("a product serializes")
}

pub async fn list(State(m): State<Shared>) -> Json<Value> {
    let catalog = m.gateway.catalog.load();
    let items: Vec<Value> = catalog
        .products
        .values()
        .map(|p| {
            let mut v = view(&p.config);
            v["etag"] = json!(etag(&p.config));
            v
        })
        .collect();
    Json(json!({ "products": items }))
}

pub async fn get(State(m): State<Shared>, Path(name): Path<String>) -> Result<Response, ApiError> {
    let catalog = m.gateway.catalog.load();
    let p = catalog.products.get(&name).ok_or_else(|| ApiError::NotFound(format!("no product '{name}'")))?;
    let mut r = Json(view(&p.config)).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag(&p.config)) {
        r.headers_mut().insert(header::ETAG, v);
    }
    Ok(r)
}
