//! The words the gateway, its policies and their tests share, defined here once: the JSON-RPC
//! error codes the gateway answers with, and the names of the attributes the gateway and its
//! policies set on an exchange. No dependencies, so every side can use it, the host natively
//! and a policy compiled to a component alike.

/// JSON-RPC error codes. The gateway's own sit in the implementation-defined range
/// -32000..-32019; -32020 and -32022 are protocol revision 2026-07-28's. `i32`, as the policy
/// contract (`s32`) carries them.
pub mod code {
    /// JSON-RPC: the body is not JSON.
    pub const PARSE_ERROR: i32 = -32700;
    /// JSON-RPC: not a valid request.
    pub const INVALID_REQUEST: i32 = -32600;
    /// JSON-RPC: no such method (or one the protocol revision removed).
    pub const METHOD_NOT_FOUND: i32 = -32601;
    /// JSON-RPC: the params are not acceptable.
    pub const INVALID_PARAMS: i32 = -32602;
    /// JSON-RPC: the gateway failed.
    pub const INTERNAL_ERROR: i32 = -32603;
    /// A transport-level refusal: bad header, missing or unknown session, unsupported version.
    pub const BAD_REQUEST: i32 = -32000;
    /// The caller did not prove who it is.
    pub const UNAUTHORIZED: i32 = -32001;
    /// The caller is known and not allowed.
    pub const FORBIDDEN: i32 = -32003;
    /// The backend cannot be reached (or a credential for it cannot be had).
    pub const BACKEND_UNAVAILABLE: i32 = -32004;
    /// The backend did not answer in time.
    pub const BACKEND_TIMEOUT: i32 = -32005;
    /// The backend failed: an HTTP error, a closed stream, a broken protocol.
    pub const BACKEND_FAILED: i32 = -32006;
    /// A policy failed (or what it depends on, such as its state, is unavailable): refused.
    pub const POLICY_FAILED: i32 = -32007;
    /// The gateway is at a limit, or shutting down.
    pub const OVERLOADED: i32 = -32008;
    /// Too many requests in the current window.
    pub const RATE_LIMITED: i32 = -32009;
    /// A longer-term quota is used up.
    pub const QUOTA_EXCEEDED: i32 = -32010;
    /// No subscription key, or one the gateway does not know (HTTP 401).
    pub const SUBSCRIPTION_KEY: i32 = -32011;
    /// A known key that may not be used here: its subscription is not active, or its product
    /// does not include the server (HTTP 403).
    pub const SUBSCRIPTION_FORBIDDEN: i32 = -32012;
    /// The server version named is retired; the message names the one to use (HTTP 410).
    pub const VERSION_RETIRED: i32 = -32013;
    /// 2026-07-28: a request header disagrees with the body.
    pub const HEADER_MISMATCH: i32 = -32020;
    /// 2026-07-28: the requested protocol version is not supported.
    pub const UNSUPPORTED_VERSION: i32 = -32022;
}

/// Attribute names on an exchange: set by the gateway before any policy runs, or by an
/// authenticating policy, and read by later policies (rate-limit and quota keys), by the
/// session's owner check and by telemetry.
pub mod attr {
    /// The authenticated subject (a token's `sub`), set by an authenticating policy.
    pub const SUBJECT: &str = "auth.sub";
    /// Who vouched for the subject (a token's `iss`): a subject is unique only with it.
    pub const ISSUER: &str = "auth.iss";
    /// The granted scopes, space-separated.
    pub const SCOPES: &str = "auth.scopes";
    /// The subscription a request comes under, set by the gateway.
    pub const SUBSCRIPTION: &str = "subscription";
    /// The product a request comes under, set by the gateway.
    pub const PRODUCT: &str = "product";
}
