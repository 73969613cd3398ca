//! `/v0/servers` on the client listener: the servers a caller may use, in the shape of the
//! MCP registry API, so agents and catalogs can find them.
//!
//! A server with versions is listed once per version that serves (retired ones are not), each
//! with its own URLs; `_meta` says which is the default that `/{name}/mcp` reaches.
//!
//! Without a key: servers in no product, and those of open products. With a valid key of an
//! active subscription: its product's servers as well. A key that is not valid gets the 401
//! any MCP request would get.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::gateway::Gateway;
use crate::mcp::error::GatewayError;
use crate::product::Product;
use crate::subscription::State as SubState;

pub async fn servers(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let base = base_url(&gw, &req);
    let catalog = gw.catalog.load();
    let key_cfg = &gw.config.subscription_key;
    let key = req.headers().get(key_cfg.header.as_str()).and_then(|v| v.to_str().ok()).map(|k| k.trim().to_owned()).or_else(|| {
        req.uri().query().and_then(|q| url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == key_cfg.query.as_str()).map(|(_, v)| v.into_owned()))
    });
    let mut product: Option<Arc<Product>> = None;
    if let Some(k) = key {
        let sub = gw.subscriptions.as_ref().and_then(|r| r.find(&k));
        match sub {
            Some(s) if s.state == SubState::Active => product = catalog.products.get(&s.product).cloned(),
            Some(s) => return crate::transport::respond::error(&GatewayError::SubscriptionForbidden(format!("subscription {} is {}", s.id, s.state)), None),
            None => return crate::transport::respond::error(&GatewayError::SubscriptionKeyInvalid, None),
        }
    }
    let servers = gw.server_map();
    let mut names: Vec<&String> = servers.keys().collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let through = match &product {
            Some(p) if p.includes(name) => Some(p.clone()),
            _ if !catalog.governs(name) => None,
            _ => match catalog.products.values().find(|p| p.includes(name) && !p.config.subscription_required) {
                Some(open) => Some(open.clone()),
                None => continue,
            },
        };
        let endpoint = &servers[name.as_str()];
        let mut meta = json!({});
        if let Some(p) = &through {
            meta["product"] = json!(p.name());
            if let Some(tools) = p.tools(name) {
                let mut t: Vec<&String> = tools.iter().collect();
                t.sort();
                meta["tools"] = json!(t);
            }
        }
        let default = endpoint.routing().map(|r| r.default_version);
        // Each version that serves is listed with its own URLs; retired ones are not.
        for server in endpoint.serving() {
            let path = match &server.version {
                Some(v) => format!("{base}/{name}/{v}"),
                None => format!("{base}/{name}"),
            };
            let mut meta = meta.clone();
            if server.version.is_some() {
                meta["default"] = json!(server.version == default);
                meta["server_url"] = json!(format!("{base}/{name}/mcp"));
            }
            out.push(json!({
                "server": {
                    "name": name,
                    "description": server.config.description.clone().unwrap_or_default(),
                    "version": server.version.as_deref().unwrap_or(env!("CARGO_PKG_VERSION")),
                    "remotes": [
                        { "type": "streamable-http", "url": format!("{path}/mcp") },
                        { "type": "sse", "url": format!("{path}/sse") },
                    ],
                },
                "_meta": { "io.github.tollgate/gateway": meta },
            }));
        }
    }
    let count = out.len();
    Json(json!({ "servers": out, "metadata": { "count": count } })).into_response()
}

/// The URL clients reach the gateway at: `public_url`, else the request's own host.
fn base_url(gw: &Gateway, req: &Request) -> String {
    if let Some(u) = &gw.config.public_url {
        return u.trim_end_matches('/').to_owned();
    }
    let scheme = if gw.config.tls.is_some() { "https" } else { "http" };
    let host = req.headers().get(hyper::header::HOST).and_then(|h| h.to_str().ok()).map(str::to_owned).unwrap_or_else(|| gw.config.listen.to_string());
    format!("{scheme}://{host}")
}
