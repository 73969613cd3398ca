//! Where a client message starts being observed: the transport knows the HTTP side of it,
//! the session knows who the client said it was.

use serde_json::Value;

use crate::dispatch::Client;
use crate::gateway::Gateway;
use crate::mcp::headers::{self, PROTOCOL_VERSION};
use crate::mcp::jsonrpc::Message;
use crate::server::Version;
use crate::session::Session;
use crate::telemetry::{Arrival, Exchange};

pub fn exchange(gw: &Gateway, server: &Version, msg: &Message, client: &Client, session: Option<&Session>, transport: &'static str) -> Exchange {
    let h = &client.caller.headers;
    let initialize = msg.method() == Some("initialize");
    let protocol = match session {
        _ if initialize => msg.params().and_then(|p| p.get("protocolVersion")).and_then(Value::as_str).map(str::to_owned),
        Some(s) => s.protocol_version.lock().expect("session lock").clone(),
        None => headers::get(h, PROTOCOL_VERSION).map(str::to_owned),
    };
    let info = match session {
        _ if initialize => msg.client_info(),
        Some(s) => s.client_info(),
        None => None,
    };
    let x = Exchange::start(
        &gw.telemetry,
        Arrival {
            server: &server.name,
            version: server.version.as_deref(),
            payload: server.config.payload_log.as_ref(),
            msg,
            headers: h,
            peer: client.caller.addr,
            client_ip: client.caller.ip,
            session: session.map(|s| s.id.as_str()),
            protocol: protocol.as_deref(),
            client: info,
            transport,
            member: member_of(server, msg),
        },
    );
    // The product and subscription are known before any policy runs (and with none).
    if let Some(a) = &client.access {
        x.note_attributes(&a.attributes());
    }
    x
}

/// The member of a virtual server a call or prompt goes to, as its name spells it: a renamed
/// item, else a name under a member's prefix, else the one member without a prefix.
fn member_of(server: &Version, msg: &Message) -> Option<String> {
    let members = server.config.compose.as_ref()?;
    let name = match msg.method()? {
        "tools/call" | "prompts/get" => msg.target()?,
        _ => return None,
    };
    if let Some(m) = members.iter().find(|m| m.rename.values().any(|v| v == name)) {
        return Some(m.key());
    }
    let prefixed = members.iter().filter(|m| m.prefix.is_some()).filter(|m| m.inward(name).is_some()).max_by_key(|m| m.prefix.as_ref().map_or(0, String::len));
    if let Some(m) = prefixed {
        return Some(m.key());
    }
    let mut bare = members.iter().filter(|m| m.prefix.is_none());
    match (bare.next(), bare.next()) {
        (Some(m), None) => Some(m.key()),
        _ => None,
    }
}
