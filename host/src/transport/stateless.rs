//! Protocol revision 2026-07-28: stateless POSTs. The request passes what a session's message
//! passes: the route's admission (product and subscription), the product's tool check, the
//! chain's request phase, then a Streamable HTTP backend gets it with its routing headers and
//! the trace context, and its answer comes back through the response phase (as it streams,
//! other messages through the message phase). Closing the client's stream closes the
//! backend's, which is how this revision cancels. Backends that cannot take a stateless
//! request (stdio, legacy SSE) get the client to fall back to `initialize`.

mod relay;
mod rules;

use std::borrow::Cow;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use base64::Engine as _;
use bytes::Bytes;
use futures::StreamExt;
use hyper::StatusCode;

pub use rules::is_modern;

use super::{observe, respond};
use crate::backend::Backend;
use crate::dispatch::Client;
use crate::dispatch::{self, Forward, Outcome};
use crate::gateway::Gateway;
use crate::mcp::error::{BackendError, GatewayError};
use crate::mcp::headers::{self, MODERN_VERSION, PROTOCOL_VERSION};
use crate::mcp::jsonrpc::{Kind, Message};
use crate::mcp::sse;
use crate::server::{Server, Version};
use crate::telemetry::Exchange;

/// How the access log and spans name this transport.
const TRANSPORT: &str = "stateless-http";

/// Serves one stateless request admitted to `endpoint`. A preview share is sticky per caller,
/// so one client's `tools/list` and `tools/call` reach the same version.
pub async fn serve(gw: &Gateway, endpoint: &Server, asked: Option<&str>, client: Client, body: Bytes, msg: Message) -> Response {
    let server = match endpoint.pick(asked, client.subscription(), Some(caller_key(&client))) {
        Ok(s) => s,
        Err(e) => return respond::error(&e, msg.id.clone()),
    };
    let takes_stateless = matches!(server.backend, Backend::Http(_));
    if let Err(e) = rules::check(&client.caller.headers, &msg, &rules::supported(takes_stateless)) {
        return rules::refuse(&e, &msg);
    }
    if !takes_stateless {
        // This backend needs a session: the client's answer is to fall back to `initialize`.
        return respond::error(&GatewayError::BadRequest("Server not initialized".into()), msg.id.clone());
    }
    let x = observe::exchange(gw, &server, &msg, &client, None, TRANSPORT);
    x.scope(exchange(&server, &client, body, msg, &x)).await
}

/// Who the caller is for a sticky preview: the subscription, else the token's issuer and
/// subject as the token says (the version's own chain then checks the token), else the
/// client's address.
fn caller_key(client: &Client) -> u64 {
    let caller = &client.caller;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let bearer = headers::get(&caller.headers, "authorization").and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    if let Some(s) = client.subscription() {
        s.hash(&mut h);
    } else if let Some(token) = bearer {
        match token_subject(token) {
            Some((iss, sub)) => (iss, sub).hash(&mut h),
            None => token.hash(&mut h),
        }
    } else {
        caller.addr.map(|a| a.ip()).hash(&mut h);
    }
    h.finish()
}

/// `iss` and `sub` of a JWT's payload, unverified: for placement only, never for trust.
fn token_subject(token: &str) -> Option<(String, String)> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let text = |k: &str| claims.get(k).and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
    Some((text("iss"), text("sub")))
}

/// The stateless side of [`dispatch`]: the request phase, the backend call over HTTP, then
/// the answer's way back (as it streams, for an SSE answer).
async fn exchange(server: &Arc<Version>, client: &Client, body: Bytes, msg: Message, x: &Exchange) -> Response {
    let fail = |e: GatewayError| {
        x.fail(&e);
        respond::error(&e, msg.id.clone())
    };
    let route = client.route(server, None, Some(MODERN_VERSION.to_owned()));
    let Forward { msg: sent, headers: mut edits, client: mut to_client, back, .. } = match dispatch::request_phase(client, server, route, &msg, Some(x)).await {
        Ok(Outcome::Forward(f)) => f,
        Ok(Outcome::Answered { answer, client: to_client, .. }) => return respond::with_headers(respond::json(StatusCode::OK, answer.to_bytes()), &to_client),
        Ok(Outcome::Dropped) => {
            x.accepted();
            return respond::accepted();
        }
        Err(e) => return fail(e),
    };
    // The routing headers say what the message says after the policies (one may have renamed
    // the tool); only those and the protocol's own headers are forwarded, credentials never.
    let routing = routing_headers(&client.caller.headers, &sent);
    let context = x.to_backend();
    let body = match (&sent, context.is_empty()) {
        // Untouched by any policy and untraced: the client's bytes go as they came.
        (Cow::Borrowed(_), true) => body,
        _ => crate::telemetry::trace::with_context(&sent, &context).to_bytes(),
    };
    edits.set.extend(context);
    let answer = match server.backend.stateless(body, routing, &edits).await {
        Some(Ok(a)) => a,
        Some(Err(cause)) => return fail(GatewayError::backend(&server.name, cause)),
        None => return fail(GatewayError::BadRequest("Server not initialized".into())),
    };
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    if msg.kind == Kind::Notification {
        if status.is_success() {
            x.accepted()
        } else {
            x.relayed(status.as_u16())
        }
        return Response::builder().status(status).body(Body::empty()).expect("static response parts");
    }
    if answer.content_type.starts_with("text/event-stream") {
        let pending = relay::Pending { server: server.name.clone(), request: msg, back: Some(back), exchange: x.clone() };
        // Headers leave before the stream: only those of the request phase can be on it.
        return respond::with_headers(relay::stream(status, answer.body, pending), &to_client);
    }
    let mut bytes = Vec::new();
    let mut stream = answer.body;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) if bytes.len() + c.len() <= sse::MAX_EVENT_BYTES => bytes.extend_from_slice(&c),
            Ok(_) => return fail(GatewayError::backend(&server.name, BackendError::Protocol("answer too large".into()))),
            Err(cause) => return fail(GatewayError::backend(&server.name, cause)),
        }
    }
    match Message::parse(&bytes) {
        Ok(m) => {
            let (m, more) = back.settle(m, Some(x)).await;
            to_client.extend(more);
            respond::with_headers(respond::json(status, m.to_bytes()), &to_client)
        }
        Err(_) if !status.is_success() => {
            x.relayed(status.as_u16());
            Response::builder().status(status).body(Body::from(bytes)).expect("static response parts")
        }
        Err(e) => fail(GatewayError::backend(&server.name, BackendError::Protocol(e.to_string()))),
    }
}

/// The headers a stateless backend routes on: the protocol version and `Mcp-Param-*` as the
/// client sent them, `Mcp-Method` and `Mcp-Name` as the message now says.
fn routing_headers(h: &hyper::HeaderMap, sent: &Message) -> Vec<(String, String)> {
    let mut forward: Vec<(String, String)> = Vec::new();
    for (name, value) in h {
        let n = name.as_str();
        if (n == PROTOCOL_VERSION || n.starts_with("mcp-param-"))
            && let Ok(v) = value.to_str()
        {
            forward.push((n.to_owned(), v.to_owned()));
        }
    }
    forward.push(("mcp-method".into(), encode(sent.method().unwrap_or_default())));
    if let (Some(name), Some("tools/call" | "resources/read" | "prompts/get")) = (sent.target(), sent.method()) {
        forward.push(("mcp-name".into(), encode(name)));
    }
    forward
}

/// A header value as this revision carries it: plain if visible ASCII, else `=?base64?…?=`.
fn encode(value: &str) -> String {
    if value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        value.to_owned()
    } else {
        format!("=?base64?{}?=", base64::engine::general_purpose::STANDARD.encode(value))
    }
}
