//! The one `bindgen!` of the policy world, and the conversions between its types and the
//! gateway's. Nothing else in the crate names generated paths.

use std::collections::BTreeMap;

use serde_json::Value;

pub use super::exchange::ExchangeRep;
use crate::mcp::jsonrpc::Id;

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "gateway-policy",
        imports: {
            "tollgate:policy/outbound.fetch": async | trappable,
            "tollgate:policy/state": async | trappable,
            default: trappable,
        },
        exports: { default: async },
        with: { "tollgate:policy/exchange.exchange": super::ExchangeRep },
    });
}

pub(super) use generated::GatewayPolicy;
pub use generated::GatewayPolicyPre as PolicyPre;
pub use generated::tollgate::policy::exchange::{Host as ExchangeHost, HostExchange};
pub use generated::tollgate::policy::types::Host as TypesHost;
pub use generated::tollgate::policy::types::{Hooks, Phase, RequestId, RpcError};
pub(super) use generated::tollgate::policy::types::{MessageVerdict as WitMessageVerdict, Mutation, Rejection as WitRejection, Verdict as WitVerdict};
pub use generated::tollgate::policy::{clock, crypto, log, outbound, secrets, state};

/// A policy's answer, in the gateway's terms.
#[derive(Debug, Clone)]
pub enum Verdict {
    Continue(Changes),
    Deny(Rejection),
    Respond(Value),
}

/// What a `continue` changes.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub params: Option<Value>,
    pub set_headers: Vec<(String, String)>,
    pub remove_headers: Vec<String>,
    pub attributes: BTreeMap<String, String>,
    /// Headers for the client's HTTP response, checked by [`client_header`].
    pub client_headers: Vec<(String, String)>,
}

pub use crate::mcp::error::Rejection;

/// What a policy decided about a message from the backend that is not an answer.
#[derive(Debug, Clone)]
pub enum Passage {
    Pass,
    Replace(Value),
    /// Not delivered; a backend request is answered with this error, or a generic refusal.
    Drop(Option<Rejection>),
}

pub(super) fn passage(v: WitMessageVerdict) -> Result<Passage, String> {
    Ok(match v {
        WitMessageVerdict::Pass => Passage::Pass,
        WitMessageVerdict::Replace(json) => Passage::Replace(parse(&json, "a replacement message")?),
        WitMessageVerdict::Drop(e) => Passage::Drop(e.map(|e| rejection(WitRejection { error: e, http_status: None, headers: Vec::new() })).transpose()?),
    })
}

/// Turns what a guest returned into a verdict; JSON that does not parse is the policy's fault.
pub(super) fn verdict(v: WitVerdict) -> Result<Verdict, String> {
    Ok(match v {
        WitVerdict::Continue(m) => Verdict::Continue(changes(m)?),
        WitVerdict::Deny(r) => Verdict::Deny(rejection(r)?),
        WitVerdict::Respond(json) => Verdict::Respond(parse(&json, "respond")?),
    })
}

fn changes(m: Mutation) -> Result<Changes, String> {
    Ok(Changes {
        params: m.params.as_deref().map(|p| parse(p, "params")).transpose()?,
        set_headers: m.set_headers,
        remove_headers: m.remove_headers,
        attributes: m.attributes.into_iter().collect(),
        client_headers: m.client_headers.into_iter().map(client_header).collect::<Result<_, _>>()?,
    })
}

/// Headers that frame the answer or belong to the session: a policy may not set them.
const RESERVED: &[&str] = &[
    "cache-control",
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "keep-alive",
    "mcp-protocol-version",
    "mcp-session-id",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "x-accel-buffering",
];

/// A header for the client's response: a valid name and value, not one the gateway owns.
/// The name comes back in lowercase.
fn client_header((name, value): (String, String)) -> Result<(String, String), String> {
    let name = name.to_ascii_lowercase();
    if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(format!("returned the client header name {name:?}, which is not a valid header name"));
    }
    if RESERVED.contains(&name.as_str()) {
        return Err(format!("returned the client header '{name}', which the gateway sets itself"));
    }
    if hyper::header::HeaderValue::from_str(&value).is_err() {
        return Err(format!("returned a value for the client header '{name}' that is not a valid header value"));
    }
    Ok((name, value))
}

fn rejection(r: WitRejection) -> Result<Rejection, String> {
    if let Some(s) = r.http_status
        && !(400..=599).contains(&s)
    {
        return Err(format!("denied with HTTP status {s}; a denial needs a 4xx or 5xx status"));
    }
    Ok(Rejection {
        code: r.error.code,
        message: r.error.message,
        data: r.error.data.as_deref().map(|d| parse(d, "error data")).transpose()?,
        status: r.http_status,
        headers: r.headers,
    })
}

fn parse(json: &str, what: &str) -> Result<Value, String> {
    serde_json::from_str(json).map_err(|e| format!("returned {what} that is not JSON: {e}"))
}

pub(super) fn request_id(id: &Id) -> RequestId {
    match id {
        Id::Num(n) => RequestId::Number(*n),
        Id::Str(s) => RequestId::Text(s.clone()),
    }
}

pub(super) fn rpc_error(e: &Value) -> RpcError {
    RpcError {
        code: e.get("code").and_then(Value::as_i64).unwrap_or(0) as i32,
        message: e.get("message").and_then(Value::as_str).unwrap_or("").to_owned(),
        data: e.get("data").map(Value::to_string),
    }
}
