//! Stateless requests (protocol 2026-07-28) pass the server's chain like any other message:
//! a refused tool never reaches the backend, an injected credential does, and the client's own
//! `Authorization` does not.

use serde_json::json;
use tollgate_tests::raw::{Raw, RawResponse};

use tollgate_tests::gateway::RunningGateway;
use tollgate_tests::recorder::Recorder;
use tollgate_tests::standard::FORBIDDEN;
use tollgate_tests::standard::policy;
use tollgate_tests::standard::server;

const VERSION: &str = "2026-07-28";
const SECRET: &str = "stateless-backend-s3cret";

async fn stateless_call(url: &str, tool: &str) -> RawResponse {
    let msg = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": { "name": tool, "arguments": { "text": "hello" }, "_meta": { "io.modelcontextprotocol/protocolVersion": VERSION } } });
    Raw::new(url)
        .post_json(&msg)
        .header("mcp-protocol-version", VERSION)
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .header("authorization", "Bearer the-clients-own-token")
        .send()
        .await
}

#[tokio::test]
async fn stateless_requests_pass_the_chain() {
    let backend = Recorder::start().await;
    let filter = policy("tool-filter", json!({ "deny": ["broken"] }));
    let mut creds = policy("credentials", json!({ "header": "x-backend-key", "secret": "k" }));
    creds["secrets"] = json!({ "k": { "env": "BACKEND_KEY" } });
    let config = json!({ "listen": "127.0.0.1:0", "servers": [server("s", &backend.url, json!([filter, creds]))] });
    let gw = RunningGateway::from_config(config, &[("BACKEND_KEY", SECRET)]).await;

    let ok = stateless_call(&gw.mcp_url("s"), "echo").await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.message()["result"]["structuredContent"]["text"], "hello", "{ok:?}");
    let seen = backend.seen("tools/call").pop().expect("the call reached the backend");
    assert_eq!(seen.headers.get("x-backend-key").and_then(|v| v.to_str().ok()), Some(SECRET), "{seen:?}");
    assert_eq!(seen.headers.get("authorization"), None, "the client's token stays at the gateway: {seen:?}");
    assert_eq!(seen.headers.get("mcp-name").and_then(|v| v.to_str().ok()), Some("echo"), "{seen:?}");
    assert!(seen.headers.get("mcp-session-id").is_none(), "no session is opened: {seen:?}");

    let refused = stateless_call(&gw.mcp_url("s"), "broken").await;
    assert_eq!(refused.error_code(), FORBIDDEN, "{refused:?}");
    assert_eq!(backend.calls_of("broken"), 0, "a refused call never reaches the backend");
}
