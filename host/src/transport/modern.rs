//! Protocol revision 2026-07-28: stateless POSTs whose routing headers (`Mcp-Method`,
//! `Mcp-Name`, `MCP-Protocol-Version`) must agree with the body. A Streamable HTTP backend gets
//! the request as it is and its answer comes back as it streams; closing the client's stream
//! closes the backend's, which is how this revision cancels. Backends that cannot take a
//! stateless request (stdio, legacy SSE) get the client to fall back to `initialize`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use base64::Engine as _;
use futures::StreamExt;
use hyper::{HeaderMap, StatusCode};

use super::headers::{self, MODERN_VERSION, PROTOCOL_VERSION, SUPPORTED_VERSIONS};
use super::respond;
use crate::error::{GatewayError, code};
use crate::gateway::Server;
use crate::jsonrpc::{Kind, Message};
use crate::policy::{Admission, Caller, ClientHeaders, Delivery, HeaderEdits, Route, Trail};
use crate::sse;

/// Whether a POST without a session speaks the stateless revision (or a version newer than any known).
pub fn is_modern(h: &HeaderMap, msg: &Message) -> bool {
    let header = headers::get(h, PROTOCOL_VERSION);
    let meta = meta_version(msg);
    match header.or(meta) {
        Some(v) => !SUPPORTED_VERSIONS.contains(&v),
        None => msg.method() == Some("server/discover"),
    }
}

fn meta_version(msg: &Message) -> Option<&str> {
    msg.params()?.get("_meta")?.get("io.modelcontextprotocol/protocolVersion")?.as_str()
}

/// Values that are not plain ASCII travel as `=?base64?…?=`.
fn decode(value: &str) -> Option<String> {
    match value.strip_prefix("=?base64?").and_then(|v| v.strip_suffix("?=")) {
        Some(b64) => base64::engine::general_purpose::STANDARD.decode(b64).ok().and_then(|b| String::from_utf8(b).ok()),
        None => Some(value.to_owned()),
    }
}

/// Checks that the routing headers say what the body says.
fn check_headers(h: &HeaderMap, msg: &Message) -> Result<(), GatewayError> {
    let mismatch = |header: &str, detail: String| GatewayError::HeaderMismatch { header: header.to_owned(), detail };
    let version = headers::get(h, PROTOCOL_VERSION).ok_or_else(|| mismatch("MCP-Protocol-Version", "the header is required".into()))?;
    if version != MODERN_VERSION {
        return Err(GatewayError::UnsupportedVersion { requested: version.to_owned(), supported: modern_supported() });
    }
    match meta_version(msg) {
        Some(v) if v == version => {}
        Some(v) => return Err(mismatch("MCP-Protocol-Version", format!("header says {version}, _meta says {v}"))),
        None if msg.kind == Kind::Request => return Err(mismatch("MCP-Protocol-Version", "params._meta carries no io.modelcontextprotocol/protocolVersion".into())),
        None => {}
    }
    if msg.kind == Kind::Response {
        return Err(GatewayError::InvalidRequest("clients of protocol 2026-07-28 do not send responses".into()));
    }
    let method = msg.method().unwrap_or_default();
    match headers::get(h, "mcp-method").and_then(decode) {
        Some(m) if m == method => {}
        Some(m) => return Err(mismatch("Mcp-Method", format!("header says '{m}', body says '{method}'"))),
        None => return Err(mismatch("Mcp-Method", "the header is required".into())),
    }
    if matches!(method, "tools/call" | "resources/read" | "prompts/get") {
        let target = msg.target().unwrap_or_default();
        match headers::get(h, "mcp-name").and_then(decode) {
            Some(n) if n == target => {}
            Some(n) => return Err(mismatch("Mcp-Name", format!("header says '{n}', body says '{target}'"))),
            None => return Err(mismatch("Mcp-Name", format!("the header is required for {method}"))),
        }
    }
    Ok(())
}

fn modern_supported() -> Vec<&'static str> {
    let mut v = vec![MODERN_VERSION];
    v.extend(SUPPORTED_VERSIONS);
    v
}

/// Renders a refusal the way this revision prescribes (header mismatch: -32020; unknown version: -32022).
fn refuse(e: &GatewayError, msg: &Message) -> Response {
    let (code, data) = match e {
        GatewayError::UnsupportedVersion { requested, supported } => (code::UNSUPPORTED_VERSION, Some(serde_json::json!({ "supported": supported, "requested": requested }))),
        other => (other.wire(true).code, None),
    };
    let w = e.wire(msg.id.is_some());
    let body = Message::error(msg.id.clone(), code, &w.message, data).to_bytes();
    respond::json(w.status, body)
}

/// Handles one stateless POST. The server's policy chain runs on it as on any message: the
/// request phase before it goes out, the response phase on its answer.
pub async fn handle(server: Arc<Server>, h: &HeaderMap, peer: Option<SocketAddr>, body: bytes::Bytes, msg: Message) -> Response {
    if let Err(e) = check_headers(h, &msg) {
        return refuse(&e, &msg);
    }
    let chain = crate::policy::current(&server);
    let (body, edits, client, trail) = if chain.is_empty() {
        (body, HeaderEdits::default(), ClientHeaders::new(), None)
    } else {
        let caller = Arc::new(Caller { headers: h.clone(), addr: peer, access: None });
        let route = Route { server: server.name.as_str().into(), version: server.version.as_deref().map(Into::into), session_id: None, protocol_version: Some(MODERN_VERSION.to_owned()), attributes: Default::default() };
        match chain.admit(msg.clone(), route, caller).await {
            Admission::Forward { msg: changed, headers, client, trail, .. } => (changed.to_bytes(), headers, client, trail.map(|t| (t, changed))),
            Admission::Answer { msg: answer, mut client, trail, .. } => {
                let answer = Trail::settle_into(trail, answer, &mut client).await;
                return answered(answer, StatusCode::OK, &client);
            }
            Admission::Deny(r) => return respond::error(&GatewayError::Denied(r), msg.id.clone()),
            Admission::Drop => return respond::accepted(),
        }
    };
    // The routing headers say what the message says after the policies (one may have renamed
    // the tool); only those and the protocol's own headers are forwarded, credentials never.
    let sent = trail.as_ref().map(|(_, m)| m).unwrap_or(&msg);
    let mut forward: Vec<(String, String)> = Vec::new();
    for (name, value) in h {
        let n = name.as_str();
        if n == PROTOCOL_VERSION || n.starts_with("mcp-param-") {
            if let Ok(v) = value.to_str() {
                forward.push((n.to_owned(), v.to_owned()));
            }
        }
    }
    forward.push(("mcp-method".into(), encode(sent.method().unwrap_or_default())));
    if let (Some(name), Some("tools/call" | "resources/read" | "prompts/get")) = (sent.target(), sent.method()) {
        forward.push(("mcp-name".into(), encode(name)));
    }
    let trail = trail.map(|(t, _)| t);
    let answer = match server.backend.stateless(body, forward, &edits).await {
        Some(Ok(a)) => a,
        Some(Err(cause)) => return respond::error(&GatewayError::backend(&server.name, cause), msg.id.clone()),
        // This backend needs a session: the client's answer is to fall back to `initialize`.
        None => return respond::error(&GatewayError::BadRequest("Server not initialized".into()), msg.id.clone()),
    };
    if msg.kind == Kind::Notification {
        return Response::builder().status(answer.status).body(Body::empty()).expect("static response parts");
    }
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    if answer.content_type.starts_with("text/event-stream") {
        // Headers leave before the stream: only those of the request phase can be on it.
        return respond::with_headers(relay_stream(status, answer.body, server.name.clone(), msg, trail), &client);
    }
    let mut bytes = Vec::new();
    let mut body = answer.body;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) if bytes.len() + c.len() <= sse::MAX_EVENT_BYTES => bytes.extend_from_slice(&c),
            Ok(_) => return respond::error(&GatewayError::backend(&server.name, crate::error::BackendError::Protocol("answer too large".into())), msg.id.clone()),
            Err(cause) => return respond::error(&GatewayError::backend(&server.name, cause), msg.id.clone()),
        }
    }
    match Message::parse(&bytes) {
        Ok(m) => {
            let mut client = client;
            let trail = trail.filter(|_| m.kind == Kind::Response);
            let m = Trail::settle_into(trail, m, &mut client).await;
            answered(m, status, &client)
        }
        Err(_) if !status.is_success() => Response::builder().status(status).body(Body::from(bytes)).expect("static response parts"),
        Err(e) => respond::error(&GatewayError::backend(&server.name, crate::error::BackendError::Protocol(e.to_string())), msg.id.clone()),
    }
}

/// The answer as JSON, reported to the exchange being observed.
fn answered(m: Message, status: StatusCode, client: &ClientHeaders) -> Response {
    if let Some(x) = crate::telemetry::current() {
        x.answer(&m);
    }
    respond::with_headers(respond::json(status, m.to_bytes()), client)
}

/// A header value as this revision carries it: plain if visible ASCII, else `=?base64?…?=`.
fn encode(value: &str) -> String {
    if value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        value.to_owned()
    } else {
        format!("=?base64?{}?=", base64::engine::general_purpose::STANDARD.encode(value))
    }
}

/// Relays an SSE answer message by message; dropping the client's body drops the backend's
/// stream. The answer passes the response phase of the chain on its way, and every other
/// message the message phase.
fn relay_stream(status: StatusCode, body: futures::stream::BoxStream<'static, Result<bytes::Bytes, crate::error::BackendError>>, server: String, msg: Message, trail: Option<Trail>) -> Response {
    struct Relay {
        body: futures::stream::BoxStream<'static, Result<bytes::Bytes, crate::error::BackendError>>,
        dec: sse::Decoder,
        out: std::collections::VecDeque<bytes::Bytes>,
        done: bool,
        answered: bool,
        server: String,
        msg: Message,
        trail: Option<Trail>,
        relay: Option<crate::policy::Relay>,
    }
    let relay = trail.as_ref().and_then(Trail::relay);
    let relay = Relay { body, dec: sse::Decoder::default(), out: Default::default(), done: false, answered: false, server, msg, trail, relay };
    let s = futures::stream::unfold(relay, |mut r| async move {
        loop {
            if let Some(b) = r.out.pop_front() {
                return Some((Ok::<_, std::convert::Infallible>(b), r));
            }
            if r.done {
                return None;
            }
            let mut events = Vec::new();
            match r.body.next().await {
                Some(Ok(chunk)) => {
                    if r.dec.feed(&chunk, &mut events).is_err() {
                        r.done = true;
                    }
                }
                Some(Err(_)) | None => {
                    r.done = true;
                    if !r.answered {
                        // The backend's stream ended without an answer: say so, so the client can retry.
                        let cause = crate::error::BackendError::Closed("the stream ended before the answer".into());
                        let w = GatewayError::backend(&r.server, cause).wire(true);
                        r.out.push_back(sse::encode(None, Some("message"), &Message::error(r.msg.id.clone(), w.code, &w.message, None).to_bytes()));
                    }
                }
            }
            for ev in events {
                if ev.data.trim().is_empty() {
                    continue;
                }
                let Ok(mut m) = Message::parse(ev.data.as_bytes()) else { continue };
                if m.kind == Kind::Response && m.id == r.msg.id {
                    r.answered = true;
                    if let Some(t) = r.trail.take() {
                        m = t.settle(m).await.0;
                    }
                } else if let Some(relay) = &r.relay {
                    // No session to answer a dropped request of the backend's on: it is just not delivered.
                    match relay.pass(m).await {
                        Delivery::Deliver(passed) => m = passed,
                        Delivery::Drop(_) => continue,
                    }
                }
                r.out.push_back(sse::encode(None, Some("message"), &m.to_bytes()));
            }
        }
    });
    Response::builder()
        .status(status)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .header("x-accel-buffering", "no")
        .body(Body::from_stream(s))
        .expect("static response parts")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn req(method: &str, params: Value) -> Message {
        Message::request(crate::jsonrpc::Id::Num(1), method, params)
    }

    fn hdrs(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn headers_must_agree_with_the_body() {
        let meta = serde_json::json!({ "name": "echo", "_meta": { "io.modelcontextprotocol/protocolVersion": MODERN_VERSION } });
        let m = req("tools/call", meta);
        let good = hdrs(&[("mcp-protocol-version", MODERN_VERSION), ("mcp-method", "tools/call"), ("mcp-name", "echo")]);
        assert!(check_headers(&good, &m).is_ok());
        let b64 = hdrs(&[("mcp-protocol-version", MODERN_VERSION), ("mcp-method", "tools/call"), ("mcp-name", "=?base64?ZWNobw==?=")]);
        assert!(check_headers(&b64, &m).is_ok());
        let wrong = hdrs(&[("mcp-protocol-version", MODERN_VERSION), ("mcp-method", "tools/call"), ("mcp-name", "other")]);
        assert!(matches!(check_headers(&wrong, &m), Err(GatewayError::HeaderMismatch { .. })));
        let missing = hdrs(&[("mcp-protocol-version", MODERN_VERSION), ("mcp-method", "tools/call")]);
        assert!(matches!(check_headers(&missing, &m), Err(GatewayError::HeaderMismatch { .. })));
        let future = hdrs(&[("mcp-protocol-version", "2099-01-01"), ("mcp-method", "tools/call"), ("mcp-name", "echo")]);
        assert!(matches!(check_headers(&future, &m), Err(GatewayError::UnsupportedVersion { .. })));
    }
}
