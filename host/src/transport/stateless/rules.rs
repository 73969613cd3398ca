//! The rules of protocol revision 2026-07-28 that hold before anything runs: the routing
//! headers (`Mcp-Method`, `Mcp-Name`, `MCP-Protocol-Version`) agree with the body, `_meta`
//! carries the protocol version, and the methods the revision removed are unknown.

use axum::response::Response;
use base64::Engine as _;
use hyper::HeaderMap;

use crate::mcp::error::{GatewayError, code};
use crate::mcp::headers::{self, MODERN_VERSION, PROTOCOL_VERSION, SUPPORTED_VERSIONS};
use crate::mcp::jsonrpc::{Kind, Message};
use crate::transport::respond;

/// Methods of the session revisions that 2026-07-28 removed: unknown methods to its clients.
const REMOVED: [&str; 6] = ["initialize", "notifications/initialized", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"];

/// Whether a POST without a session speaks the stateless revision (or a version newer than any known).
pub fn is_modern(h: &HeaderMap, msg: &Message) -> bool {
    let header = headers::get(h, PROTOCOL_VERSION);
    let meta = meta_version(msg);
    match header.or(meta) {
        Some(v) => !SUPPORTED_VERSIONS.contains(&v),
        None => msg.method() == Some("server/discover"),
    }
}

const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";

fn meta_version(msg: &Message) -> Option<&str> {
    msg.params()?.get("_meta")?.get(META_VERSION)?.as_str()
}

/// Values that are not plain ASCII travel as `=?base64?…?=`.
pub fn decode(value: &str) -> Option<String> {
    match value.strip_prefix("=?base64?").and_then(|v| v.strip_suffix("?=")) {
        Some(b64) => base64::engine::general_purpose::STANDARD.decode(b64).ok().and_then(|b| String::from_utf8(b).ok()),
        None => Some(value.to_owned()),
    }
}

/// Checks a stateless request against the revision: its version (`supported` is what this
/// server can serve through the gateway), its `_meta`, its method, and that the routing
/// headers say what the body says.
pub fn check(h: &HeaderMap, msg: &Message, supported: &[&'static str]) -> Result<(), GatewayError> {
    let mismatch = |header: &str, detail: String| GatewayError::HeaderMismatch { header: header.to_owned(), detail };
    let version = headers::get(h, PROTOCOL_VERSION).ok_or_else(|| mismatch("MCP-Protocol-Version", "the header is required".into()))?;
    if version != MODERN_VERSION {
        return Err(GatewayError::UnsupportedVersion { requested: version.to_owned(), supported: supported.to_vec() });
    }
    if msg.kind == Kind::Response {
        return Err(GatewayError::InvalidRequest("clients of protocol 2026-07-28 do not send responses".into()));
    }
    let method = msg.method().unwrap_or_default();
    if REMOVED.contains(&method) {
        return Err(GatewayError::MethodNotFound(format!("{method} is not part of protocol 2026-07-28")));
    }
    if msg.kind == Kind::Request {
        let meta =
            msg.params().and_then(|p| p.get("_meta")).ok_or_else(|| GatewayError::InvalidParams("params._meta is required in protocol 2026-07-28".into()))?;
        if meta.get(META_VERSION).and_then(serde_json::Value::as_str).is_none() {
            return Err(GatewayError::InvalidParams(format!("params._meta must carry {META_VERSION}")));
        }
    }
    match meta_version(msg) {
        Some(v) if v == version => {}
        Some(v) => return Err(mismatch("MCP-Protocol-Version", format!("header says {version}, _meta says {v}"))),
        None => {}
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

/// What a server can serve through the gateway: sessions of every revision the gateway
/// carries, and 2026-07-28 where its backend takes stateless requests.
pub fn supported(stateless: bool) -> Vec<&'static str> {
    let mut v = Vec::with_capacity(SUPPORTED_VERSIONS.len() + 1);
    if stateless {
        v.push(MODERN_VERSION);
    }
    v.extend(SUPPORTED_VERSIONS);
    v
}

/// Renders a refusal the way this revision prescribes (header mismatch: -32020; unknown version: -32022).
pub fn refuse(e: &GatewayError, msg: &Message) -> Response {
    let (code, data) = match e {
        GatewayError::UnsupportedVersion { requested, supported } => {
            (code::UNSUPPORTED_VERSION, Some(serde_json::json!({ "supported": supported, "requested": requested })))
        }
        other => (other.wire(true).code, None),
    };
    let w = e.wire(msg.id.is_some());
    let body = Message::error(msg.id.clone(), code, &w.message, data).to_bytes();
    respond::json(w.status, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn req(method: &str, params: Value) -> Message {
        Message::request(crate::mcp::jsonrpc::Id::Num(1), method, params)
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
        let all = supported(true);
        assert!(check(&good, &m, &all).is_ok());
        let b64 = hdrs(&[("mcp-protocol-version", MODERN_VERSION), ("mcp-method", "tools/call"), ("mcp-name", "=?base64?ZWNobw==?=")]);
        assert!(check(&b64, &m, &all).is_ok());
        let wrong = hdrs(&[("mcp-protocol-version", MODERN_VERSION), ("mcp-method", "tools/call"), ("mcp-name", "other")]);
        assert!(matches!(check(&wrong, &m, &all), Err(GatewayError::HeaderMismatch { .. })));
        let missing = hdrs(&[("mcp-protocol-version", MODERN_VERSION), ("mcp-method", "tools/call")]);
        assert!(matches!(check(&missing, &m, &all), Err(GatewayError::HeaderMismatch { .. })));
        let future = hdrs(&[("mcp-protocol-version", "2099-01-01"), ("mcp-method", "tools/call"), ("mcp-name", "echo")]);
        assert!(matches!(check(&future, &m, &all), Err(GatewayError::UnsupportedVersion { .. })));
    }

    #[test]
    fn the_revision_own_rules() {
        let h = |method: &'static str| hdrs(&[("mcp-protocol-version", MODERN_VERSION), ("mcp-method", method)]);
        let all = supported(true);
        // No _meta, or no version in it: invalid params, not a header mismatch.
        let bare = req("tools/list", serde_json::json!({}));
        assert!(matches!(check(&h("tools/list"), &bare, &all), Err(GatewayError::InvalidParams(_))));
        let no_version = req("tools/list", serde_json::json!({ "_meta": {} }));
        assert!(matches!(check(&h("tools/list"), &no_version, &all), Err(GatewayError::InvalidParams(_))));
        // Methods the revision removed are unknown: 404 and -32601.
        for method in REMOVED {
            let m = req(method, serde_json::json!({ "_meta": { META_VERSION: MODERN_VERSION } }));
            let e = check(&h(method), &m, &all).expect_err(method);
            let w = e.wire(true);
            assert_eq!((w.status.as_u16(), w.code), (404, code::METHOD_NOT_FOUND), "{method}");
        }
        // The unsupported-version error lists exactly what the server serves.
        let future = hdrs(&[("mcp-protocol-version", "2099-01-01"), ("mcp-method", "tools/list")]);
        let m = req("tools/list", serde_json::json!({ "_meta": { META_VERSION: "2099-01-01" } }));
        match check(&future, &m, &supported(false)) {
            Err(GatewayError::UnsupportedVersion { supported, .. }) => assert_eq!(supported, SUPPORTED_VERSIONS.to_vec()),
            other => panic!("{other:?}"),
        }
    }
}
