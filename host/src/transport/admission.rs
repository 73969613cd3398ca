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

use crate::error::GatewayError;
use crate::gateway::{Endpoint, Gateway};
use crate::policy::Caller;
use crate::version::Address;

/// A request admitted to a server: the server, and the caller as policies will see it.
pub struct Admitted {
    pub endpoint: Arc<Endpoint>,
    pub caller: Arc<Caller>,
}

/// Admits a request to the server `to` names. The subscription key is taken out of the
/// headers here, so no policy or backend ever sees it.
pub fn admit(gw: &Gateway, to: &Address, headers: &HeaderMap, query: Option<&str>, peer: Option<SocketAddr>) -> Result<Admitted, GatewayError> {
    let endpoint = gw.endpoint(&to.name)?;
    let access = crate::product::check(gw, &to.name, headers, query)?;
    let mut headers = headers.clone();
    headers.remove(gw.config.subscription_key.header.as_str());
    Ok(Admitted { endpoint, caller: Arc::new(Caller { headers, addr: peer, access }) })
}
