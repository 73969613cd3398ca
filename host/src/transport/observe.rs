//! Where a client message starts being observed: the transport knows the HTTP side of it,
//! the session knows who the client said it was.

use std::net::SocketAddr;

use axum::body::Body;
use hyper::HeaderMap;
use serde_json::Value;

use crate::dispatch::Client;
use crate::gateway::Gateway;
use crate::mcp::error::GatewayError;
use crate::mcp::headers::{self, PROTOCOL_VERSION, SESSION_ID};
use crate::mcp::jsonrpc::{Kind, Message};
use crate::server::{Address, Version};
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

/// A POST refused at admission (a subscription key missing or not valid, a subscription not
/// active, a product without the server) is observed like any other refusal: a span, a line
/// in the access log and a sample in the metrics for each message it carried. Only under a
/// server that exists (and a version it has), so no client can add label values.
pub async fn refused(gw: &Gateway, to: &Address, h: &HeaderMap, peer: Option<SocketAddr>, body: Body, transport: &'static str, e: &GatewayError) {
    let Ok(endpoint) = gw.server(&to.name) else { return };
    let version = to.version.as_deref().filter(|v| endpoint.version(v).is_some());
    let Ok(bytes) = axum::body::to_bytes(body, gw.config.limits.max_body_bytes).await else { return };
    let Ok(value) = serde_json::from_slice::<Value>(&bytes) else { return };
    let items = match value {
        Value::Array(items) => items,
        one => vec![one],
    };
    // What policies would have seen: the key taken out.
    let mut seen = h.clone();
    seen.remove(gw.config.subscription_key.header.as_str());
    for item in items {
        let Ok(msg) = Message::from_value(item) else { continue };
        if msg.kind == Kind::Response {
            continue;
        }
        let arrival = Arrival {
            server: &endpoint.name,
            version,
            payload: None,
            msg: &msg,
            headers: &seen,
            peer,
            client_ip: gw.config.client_address.of(peer, h),
            session: headers::get(h, SESSION_ID),
            protocol: headers::get(h, PROTOCOL_VERSION),
            client: None,
            transport,
        };
        Exchange::start(&gw.telemetry, arrival).fail(e);
    }
}
