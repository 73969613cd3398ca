//! A reload's servers: the file's added, changed or removed, but for those the management API
//! created, replaced or deleted.
//!
//! A changed server is rebuilt the way the API rebuilds one: a version unchanged but for its
//! chain keeps running as it was, a changed backend serves new sessions while live ones finish
//! where they began, and a version or server the file dropped ends its sessions.

use std::sync::Arc;

use crate::config::{Config, Routing, ServerConfig};
use crate::gateway::Gateway;
use crate::policy::Loaded;
use crate::server::Server;

/// Adds and changes what the file declares.
pub async fn sync(gw: &Gateway, file: &Config, loaded: &Loaded) {
    let (owned, routed) = {
        let o = gw.overrides.lock().expect("overrides lock");
        (o.servers.clone(), o.routings.clone())
    };
    for s in &file.servers {
        if owned.contains(&s.name) {
            tracing::warn!(server = %s.name, "the file's server is left out: the management API set this server, and its version stays in force");
            continue;
        }
        let current = gw.server(&s.name).ok();
        if current.as_ref().is_some_and(|e| e.declares(s)) {
            continue;
        }
        match rebuild(gw, s, current.as_deref(), loaded, routed.contains(&s.name)) {
            Ok(e) => {
                gw.set_server(&s.name, Some(Arc::new(e))).await;
                tracing::info!(server = %s.name, "server {} from the file", if current.is_some() { "changed" } else { "added" });
            }
            Err(e) => tracing::error!(server = %s.name, error = %e, "the file's server cannot start; what ran stays"),
        }
    }
}

/// Removes the servers the file no longer has, after the products have followed the file: a
/// server a product (of the API's) still includes stays.
pub async fn prune(gw: &Gateway, file: &Config) {
    let owned = gw.overrides.lock().expect("overrides lock").servers.clone();
    let catalog = gw.catalog.load();
    for (name, e) in gw.server_map().iter() {
        if e.from_api || owned.contains(name) || file.servers.iter().any(|s| &s.name == name) {
            continue;
        }
        if let Some(p) = catalog.products.values().find(|p| p.includes(name)) {
            tracing::warn!(server = %name, product = %p.name(), "the file no longer has this server, but a product includes it; it stays");
            continue;
        }
        gw.set_server(name, None).await;
        tracing::info!(server = %name, "server removed: the file no longer has it");
    }
}

/// `s` built in place of `current`, with the file's chains on what is new; a routing the API
/// set stays while it fits the file's versions.
fn rebuild(gw: &Gateway, s: &ServerConfig, current: Option<&Server>, loaded: &Loaded, routed: bool) -> Result<Server, crate::mcp::error::GatewayError> {
    let e = Server::rebuild(s, &gw.config.limits, current)?;
    for server in e.all() {
        let kept = current.is_some_and(|c| c.all().iter().any(|o| Arc::ptr_eq(o, server)));
        if !kept {
            server.policies.store(loaded.chains.get(&server.key()).cloned().unwrap_or_default());
        }
    }
    if let Some(r) = current.and_then(Server::routing).filter(|_| routed) {
        if fits(s, &r) {
            e.set_routing(r);
        } else {
            tracing::warn!(server = %s.name, "the routing set through the management API no longer fits the file's versions; the file's is in force");
        }
    }
    Ok(e)
}

fn fits(s: &ServerConfig, r: &Routing) -> bool {
    crate::config::check_routing(s, r).is_empty()
}
