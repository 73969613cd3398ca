//! The exchange both policy benches run: one `tools/call` on a session, as the server admits it.

use serde_json::json;
use tollgate::mcp::jsonrpc::{Id, Message};
use tollgate::policy::Route;

/// `tools/call echo` with a small argument.
pub fn call() -> Message {
    Message::request(Id::Num(7), "tools/call", json!({ "name": "echo", "arguments": { "text": "hello" } }))
}

/// Where the call goes: a session of server `s`.
pub fn route() -> Route {
    Route {
        server: "s".into(),
        version: None,
        session_id: Some("sess".into()),
        protocol_version: Some("2025-06-18".into()),
        resource: "http://127.0.0.1:8080/s/mcp".into(),
        attributes: Default::default(),
    }
}
