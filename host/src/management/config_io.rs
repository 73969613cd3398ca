//! `GET /api/config`: the running configuration as the file writes it, with the products, the
//! routing of versioned servers and every policy chain as they are now (the API may have
//! changed them, and a reload the file's chains). `tollgate export` prints it as YAML, and
//! `tollgate apply` compares a file with it. Secrets written in place are masked.

use axum::Json;
use axum::extract::State;

use super::Shared;
use crate::config::Config;

pub async fn get(State(m): State<Shared>) -> Json<Config> {
    let mut config = m.gateway.config.clone();
    config.products = m.gateway.catalog.load().products.values().map(|p| p.config.clone()).collect();
    config.servers = super::servers::running(&m.gateway);
    Json(config.masked())
}
