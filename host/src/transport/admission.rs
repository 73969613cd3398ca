//! The one admission every MCP route passes before anything else: which server the decoded
//! path names, and who the caller is (client address, headers, and the product and
//! subscription it comes under). The chain's request phase then runs on each message (or
//! session operation) in the session or the stateless exchange; this is the part that needs
//! no message.
//!
//! Server and version names are restricted (`config::validate::check_name`) so that they
//! never need encoding: a path that spells one with percent-encoded letters decodes to the
//! same name and reaches the same server through this same admission; any other spelling
//! (other case, dot segments, extra slashes) names no server and is refused.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::HeaderMap;

use crate::config::SubscriptionKeyConfig;
use crate::dispatch::Client;
use crate::gateway::Gateway;
use crate::mcp::error::GatewayError;
use crate::policy::Caller;
use crate::product::Access;
use crate::server::Address;
use crate::server::Server;
use crate::subscription::State as SubState;

/// A request admitted to a server: the server, and the client (the caller as policies will
/// see it, with its product and subscription).
pub struct Admitted {
    pub endpoint: Arc<Server>,
    pub client: Client,
}

/// Admits a request to the server `to` names. The subscription key is taken out of the
/// headers here, so no policy or backend ever sees it.
pub fn admit(gw: &Gateway, to: &Address, headers: &HeaderMap, query: Option<&str>, peer: Option<SocketAddr>) -> Result<Admitted, GatewayError> {
    let endpoint = gw.server(&to.name)?;
    let access = product_access(gw, &to.name, headers, query)?;
    let ip = gw.config.client_address.of(peer, headers);
    let mut headers = headers.clone();
    headers.remove(gw.config.subscription_key.header.as_str());
    // `tollgate-via` is the gateway's own word on its members' traffic: kept only with the key
    // this process drew at start; the key itself goes no further.
    let key = headers.get(crate::mcp::headers::VIA_KEY).and_then(|v| v.to_str().ok());
    let vouched = gw.config.limits.loopback.as_ref().zip(key).is_some_and(|(l, k)| l.vouches(k));
    headers.remove(crate::mcp::headers::VIA_KEY);
    if !vouched {
        headers.remove(crate::mcp::headers::VIA);
    }
    let resource = crate::config::authorization::resource_url(&gw.config, &to.name).into();
    Ok(Admitted { endpoint, client: Client { caller: Arc::new(Caller { headers, addr: peer, ip }), access, resource } })
}

/// The key a request presents: the configured header first, then the query parameter.
fn presented<'a>(cfg: &SubscriptionKeyConfig, headers: &'a HeaderMap, query: Option<&'a str>) -> Option<std::borrow::Cow<'a, str>> {
    if let Some(v) = headers.get(cfg.header.as_str()).and_then(|v| v.to_str().ok()) {
        return Some(v.trim().into());
    }
    let q = query?;
    url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == cfg.query.as_str()).map(|(_, v)| v)
}

/// Decides under which product and subscription a request to `server` is served.
/// `Ok(None)`: the server is in no product, and stays open as before products existed.
fn product_access(gw: &Gateway, server: &str, headers: &HeaderMap, query: Option<&str>) -> Result<Option<Access>, GatewayError> {
    let catalog = gw.catalog.load();
    if !catalog.governs(server) {
        return Ok(None);
    }
    let Some(key) = presented(&gw.config.subscription_key, headers, query) else {
        return match catalog.open_for(server) {
            Some(product) => Ok(Some(Access { product, subscription: None })),
            None => Err(GatewayError::SubscriptionKeyMissing { header: gw.config.subscription_key.header.clone() }),
        };
    };
    let sub = gw.subscriptions.as_ref().and_then(|r| r.find(&key)).ok_or(GatewayError::SubscriptionKeyInvalid)?;
    let Some(product) = catalog.products.get(&sub.product).cloned() else {
        return Err(GatewayError::SubscriptionForbidden(format!("the product '{}' of this subscription no longer exists", sub.product)));
    };
    if !product.includes(server) {
        return Err(GatewayError::SubscriptionForbidden(format!("the product '{}' of this subscription does not include server '{server}'", sub.product)));
    }
    if sub.state != SubState::Active {
        return Err(GatewayError::SubscriptionForbidden(format!("subscription {} is {}", sub.id, sub.state)));
    }
    Ok(Some(Access { product, subscription: Some(sub.id) }))
}
