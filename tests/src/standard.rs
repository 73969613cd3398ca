//! The standard policies as a test binds them in a config, and the codes they answer with.

use serde_json::{Value, json};

/// Gateway error codes (host/src/mcp/error.rs, `code`).
pub const UNAUTHORIZED: i64 = -32001;
pub const FORBIDDEN: i64 = -32003;
pub const RATE_LIMITED: i64 = -32009;
pub const QUOTA_EXCEEDED: i64 = -32010;

/// A standard policy bound by name, with time for outbound fetches on a busy machine.
pub fn policy(name: &str, config: Value) -> Value {
    json!({ "policy": name, "config": config, "limits": { "timeout_ms": 5000 } })
}

/// A server entry with a Streamable HTTP backend and a chain of policies.
pub fn server(name: &str, backend_url: &str, policies: Value) -> Value {
    json!({ "name": name, "backend": { "http": backend_url }, "policies": policies })
}

/// A free port on `ip`, for a config that must know its own address before it starts (the
/// canonical URL of a protected server is `http://{listen}/{name}/mcp`).
pub fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0)).expect("a free port").local_addr().expect("local addr").port()
}
