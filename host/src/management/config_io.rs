//! `GET /api/config`: the running configuration as the file writes it, with the products and
//! the routing of versioned servers as they are now (the API may have changed them). `tollgate export` prints it as YAML, and
//! `tollgate apply` compares a file with it.

use axum::Json;
use axum::extract::State;
use serde_json::Value;

use super::Shared;

pub async fn get(State(m): State<Shared>) -> Json<Value> {
    let mut config = m.gateway.config.clone();
    config.products = m.gateway.catalog.load().products.values().map(|p| p.config.clone()).collect();
    for s in &mut config.servers {
        if let Some(e) = m.gateway.servers.get(&s.name) {
            *s = e.current_config();
        }
    }
    Json(serde_json::to_value(&config).expect("the config serializes"))
}
