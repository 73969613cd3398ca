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
        },
    );
    // The product and subscription are known before any policy runs (and with none).
    if let Some(a) = &client.access {
        x.note_attributes(&a.attributes());
    }
    x
}
