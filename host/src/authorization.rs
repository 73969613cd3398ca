//! MCP authorization: the gateway as an OAuth 2.1 resource server (MCP spec, Authorization).
//! Serves RFC 9728 protected resource metadata at
//! `/.well-known/oauth-protected-resource/{name}/mcp` (and at the root form when exactly one
//! server is protected, so the root is unambiguous); the documents come from the config
//! ([`crate::config::authorization`]).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use hyper::StatusCode;
use serde_json::{Value, json};

use crate::config::authorization::of_server;
use crate::gateway::Gateway;

/// `/.well-known/oauth-protected-resource/{name}/mcp`.
pub async fn path_form(State(gw): State<Arc<Gateway>>, Path(name): Path<String>) -> Response {
    answer(gw.server(&name).ok().and_then(|e| of_server(&gw.config, &e.running_config())))
}

/// `/.well-known/oauth-protected-resource`: only when one server alone is protected.
pub async fn root_form(State(gw): State<Arc<Gateway>>) -> Response {
    let servers = gw.server_map();
    let mut docs = servers.values().filter_map(|e| of_server(&gw.config, &e.running_config()));
    match (docs.next(), docs.next()) {
        (Some(doc), None) => answer(Some(doc)),
        _ => answer(None),
    }
}

fn answer(doc: Option<Value>) -> Response {
    match doc {
        Some(d) => ([("cache-control", "max-age=300")], Json(d)).into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({ "error": "not_found", "error_description": "no protected resource here" }))).into_response(),
    }
}
