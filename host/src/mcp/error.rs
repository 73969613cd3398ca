//! The gateway's errors, and the one place where each becomes a JSON-RPC code and an HTTP status.
//!
//! The codes are `tollgate-vocabulary`'s, shared with the policy SDK and the tests;
//! `docs/behaviour.md` lists them.

use std::time::Duration;

use hyper::StatusCode;
use serde_json::{Value, json};

/// JSON-RPC codes the gateway itself uses, defined once for the gateway, its policies and
/// their tests (`tollgate-vocabulary`).
pub use tollgate_vocabulary::code;

/// A refusal as the client will see it: the JSON-RPC error, and optionally an HTTP status
/// and response headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub code: i32,
    pub message: String,
    pub data: Option<Value>,
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
}

/// What went wrong with a backend, as the client is told it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("did not answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("answered HTTP {status}{}", if .detail.is_empty() { String::new() } else { format!(": {}", .detail) })]
    Status { status: u16, detail: String },
    #[error("sent something that is not MCP: {0}")]
    Protocol(String),
    #[error("closed the connection: {0}")]
    Closed(String),
    #[error("lost the session (it restarted or expired it)")]
    SessionLost,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("Parse error: {0}")]
    Parse(String),
    #[error("Invalid Request: {0}")]
    InvalidRequest(String),
    #[error("Invalid params: {0}")]
    InvalidParams(String),
    #[error("Not Acceptable: {0}")]
    NotAcceptable(&'static str),
    #[error("Unsupported Media Type: Content-Type must be application/json")]
    UnsupportedMediaType,
    #[error("Payload Too Large: the body exceeds {0} bytes")]
    PayloadTooLarge(usize),
    #[error("Not Found: no MCP server named '{0}'")]
    UnknownServer(String),
    #[error("Not Found: server '{server}' has no version '{version}' ({known})")]
    UnknownVersion { server: String, version: String, known: String },
    #[error("Gone: version '{version}' of server '{server}' is retired; use version '{instead}' (/{server}/{instead}/mcp, or /{server}/mcp)")]
    VersionRetired { server: String, version: String, instead: String },
    #[error("Method Not Allowed: {0}")]
    MethodNotAllowed(&'static str),
    #[error("Bad Request: {0}")]
    BadRequest(String),
    #[error("Bad Request: Mcp-Session-Id header is required")]
    SessionRequired,
    #[error("Session not found: it expired or was closed; initialize a new session")]
    SessionNotFound,
    #[error("Bad Request: Unsupported protocol version: {requested} (supported versions: {})", .supported.join(", "))]
    UnsupportedVersion { requested: String, supported: Vec<&'static str> },
    #[error("Bad Request: header {header} does not match the body: {detail}")]
    HeaderMismatch { header: String, detail: String },
    #[error("Forbidden: Origin '{0}' is not allowed")]
    ForbiddenOrigin(String),
    #[error("Misdirected Request: Host '{0}' is not allowed")]
    MisdirectedHost(String),
    #[error("Service Unavailable: {0}")]
    Overloaded(&'static str),
    #[error("backend of server '{server}' {cause}")]
    Backend { server: String, cause: BackendError },
    #[error("Method not found: {0}")]
    MethodNotFound(String),
    #[error("Unauthorized: a subscription key is required (header {header})")]
    SubscriptionKeyMissing { header: String },
    #[error("Unauthorized: the subscription key is not valid")]
    SubscriptionKeyInvalid,
    #[error("Forbidden: {0}")]
    SubscriptionForbidden(String),
    #[error("Forbidden: tool '{0}' is not available")]
    ToolNotInProduct(String),
    #[error("storage failed: {0}")]
    Storage(String),
    /// A policy refused the message (or failed closed): its own code, status and headers.
    #[error("{}", .0.message)]
    Denied(Box<Rejection>),
}

/// An error as it goes on the wire.
#[derive(Debug)]
pub struct WireError {
    pub status: StatusCode,
    pub code: i32,
    pub message: String,
    pub data: Option<Value>,
    /// Response headers the error brings (`WWW-Authenticate`, `Retry-After`).
    pub headers: Vec<(String, String)>,
}

impl GatewayError {
    pub fn backend(server: &str, cause: BackendError) -> GatewayError {
        GatewayError::Backend { server: server.to_owned(), cause }
    }

    /// The JSON-RPC code and HTTP status for this error. `has_id` tells whether a request id
    /// can carry the error in a normal response (then a backend failure is not an HTTP failure).
    pub fn wire(&self, has_id: bool) -> WireError {
        use GatewayError as E;
        if let E::Denied(r) = self {
            let fallback = if has_id { StatusCode::OK } else { StatusCode::BAD_REQUEST };
            let status = r.status.and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(fallback);
            return WireError { status, code: r.code, message: r.message.clone(), data: r.data.clone(), headers: r.headers.clone() };
        }
        let (status, code, data) = match self {
            E::Parse(_) => (StatusCode::BAD_REQUEST, code::PARSE_ERROR, None),
            E::InvalidRequest(_) => (StatusCode::BAD_REQUEST, code::INVALID_REQUEST, None),
            E::InvalidParams(_) => (StatusCode::BAD_REQUEST, code::INVALID_PARAMS, None),
            E::NotAcceptable(_) => (StatusCode::NOT_ACCEPTABLE, code::BAD_REQUEST, None),
            E::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, code::BAD_REQUEST, None),
            E::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, code::INVALID_REQUEST, None),
            E::UnknownServer(_) | E::UnknownVersion { .. } => (StatusCode::NOT_FOUND, code::BAD_REQUEST, None),
            E::VersionRetired { instead, .. } => (StatusCode::GONE, code::VERSION_RETIRED, Some(json!({ "use": instead }))),
            E::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, code::BAD_REQUEST, None),
            E::BadRequest(_) | E::SessionRequired => (StatusCode::BAD_REQUEST, code::BAD_REQUEST, None),
            E::SessionNotFound => (StatusCode::NOT_FOUND, code::BAD_REQUEST, None),
            E::UnsupportedVersion { requested, supported } => {
                (StatusCode::BAD_REQUEST, code::BAD_REQUEST, Some(json!({ "supported": supported, "requested": requested })))
            }
            E::HeaderMismatch { .. } => (StatusCode::BAD_REQUEST, code::HEADER_MISMATCH, None),
            E::ForbiddenOrigin(_) => (StatusCode::FORBIDDEN, code::FORBIDDEN, None),
            E::MisdirectedHost(_) => (StatusCode::MISDIRECTED_REQUEST, code::BAD_REQUEST, None),
            E::Overloaded(_) => (StatusCode::SERVICE_UNAVAILABLE, code::OVERLOADED, None),
            E::MethodNotFound(_) => (StatusCode::NOT_FOUND, code::METHOD_NOT_FOUND, None),
            E::SubscriptionKeyMissing { .. } | E::SubscriptionKeyInvalid => (StatusCode::UNAUTHORIZED, code::SUBSCRIPTION_KEY, None),
            E::SubscriptionForbidden(_) => (StatusCode::FORBIDDEN, code::SUBSCRIPTION_FORBIDDEN, None),
            // As a tool a policy hides: the product's other tools do not show through.
            E::ToolNotInProduct(_) => (if has_id { StatusCode::OK } else { StatusCode::FORBIDDEN }, code::FORBIDDEN, None),
            E::Storage(_) => (StatusCode::INTERNAL_SERVER_ERROR, code::INTERNAL_ERROR, None),
            E::Denied(_) => unreachable!("handled above"),
            E::Backend { cause, .. } => {
                let (status, code) = match cause {
                    BackendError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, code::BACKEND_TIMEOUT),
                    BackendError::Unreachable(_) => (StatusCode::BAD_GATEWAY, code::BACKEND_UNAVAILABLE),
                    _ => (StatusCode::BAD_GATEWAY, code::BACKEND_FAILED),
                };
                // With an id the error travels in a normal JSON-RPC response.
                (if has_id { StatusCode::OK } else { status }, code, None)
            }
        };
        WireError { status, code, message: self.to_string(), data, headers: Vec::new() }
    }
}
