//! `GET /api/config`: the running configuration as the file writes it, with the products, the
//! routing of versioned servers and every policy chain as they are now (the API may have
//! changed them, and a reload the file's chains). `tollgate export` prints it as YAML, and
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
            for server in e.all() {
                let declared = server.policies.load().declared.clone();
                match &server.version {
                    None => s.policies = declared,
                    Some(v) => {
                        if let Some(vc) = s.versions.iter_mut().find(|c| &c.name == v) {
                            vc.policies = declared;
                        }
                    }
                }
            }
        }
    }
    Json(serde_json::to_value(&config).expect("the config serializes"))
}
