//! The standard policies as a test binds them in a config, and the codes they answer with.

use serde_json::{Value, json};

/// The gateway's error codes, as the gateway and its policies define them.
pub use tollgate_vocabulary::code::{FORBIDDEN, POLICY_FAILED, QUOTA_EXCEEDED, RATE_LIMITED, UNAUTHORIZED};

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
