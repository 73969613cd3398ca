//! The message phase through the official Rust SDK's client: what a backend streams besides
//! answers (progress, logging, its sampling requests) passes the policies as it goes, over an
//! HTTP backend (messages tied to their request's stream) and a stdio one (tied by progress
//! token, or to no request at all).

use serde_json::{Value, json};
use tollgate_tests::backend::Backend;
use tollgate_tests::client::Client;
use tollgate_tests::gateway::Gateway;
use tollgate_tests::process::binary;

use super::support::guest;

fn redacting() -> Value {
    json!([{ "policy": guest("gatekeeper"), "config": { "redact": "swordfish", "refuse_sampling": true } }])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_backends_progress_and_logs_are_redacted_and_its_sampling_request_refused() {
    let backend = Backend::rmcp().start().await;
    let gw = Gateway::new().server("s", backend.url()).policies("s", redacting()).start().await;
    redacted_and_refused(&Client::connect(&gw.mcp_url("s")).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdio_backends_progress_and_logs_are_redacted_and_its_sampling_request_refused() {
    let gw = Gateway::new().stdio_server("s", &binary("echo_stdio"), &[]).policies("s", redacting()).start().await;
    redacted_and_refused(&Client::connect(&gw.mcp_url("s")).await).await;
}

async fn redacted_and_refused(client: &Client) {
    let answer = client.call_tool("progress", json!({ "steps": 3, "label": "swordfish" })).await.unwrap();
    assert_eq!(answer, "swordfish: 3 steps", "the answer is not a message-phase message: it passes untouched");
    assert_eq!(client.progress_messages(3).await, ["[redacted] 1", "[redacted] 2", "[redacted] 3"]);

    client.call_tool("log", json!({ "text": "the key is swordfish" })).await.unwrap();
    client.call_tool("log", json!({ "text": "nothing to hide" })).await.unwrap();
    let logged = |text: &str| client.logs().iter().any(|l| l == text);
    tollgate_tests::eventually(10, "both log lines arrive", || logged("the key is [redacted]") && logged("nothing to hide")).await;
    assert!(!client.logs().iter().any(|l| l.contains("swordfish")), "{:?}", client.logs());

    // The backend's sampling request never reaches the client; the backend gets the policy's
    // error as its answer instead of waiting for one, and fails the call with it.
    let refused = client.call_tool("ask", json!({ "question": "what is the key?" })).await;
    let err = refused.expect_err("the backend could not sample").to_string();
    assert!(err.contains("sampling is not allowed through this gateway"), "{err}");
    assert!(client.sampling_questions().is_empty(), "{:?}", client.sampling_questions());
    assert_eq!(client.call_tool("echo", json!({ "text": "still here" })).await.unwrap(), "still here");
}

/// A policy that loops on every message of one call: each message is dropped when its time
/// runs out (failing closed), the call's answer still comes, and other calls are untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_that_loops_in_the_message_phase_drops_those_messages_and_nothing_else() {
    let backend = Backend::rmcp().start().await;
    let chain =
        json!([{ "policy": guest("misbehave"), "config": { "mode": "loop", "on_tool": "progress", "in_messages": true }, "limits": { "timeout_ms": 50 } }]);
    let gw = Gateway::new().server("s", backend.url()).policies("s", chain).start().await;
    let client = Client::connect(&gw.mcp_url("s")).await;

    let answer = client.call_tool("progress", json!({ "steps": 2, "label": "lost" })).await.unwrap();
    assert_eq!(answer, "lost: 2 steps");
    client.call_tool("log", json!({ "text": "kept" })).await.unwrap();
    tollgate_tests::eventually(10, "the other call's log line arrives", || client.logs().iter().any(|l| l == "kept")).await;
    assert!(client.progress().is_empty(), "a message whose policy failed closed was delivered: {:?}", client.progress());
    assert!(gw.log().contains("policy failed; refused the message"), "the failure is logged");
}

/// A stateless (2026-07-28) call whose answer streams: the log line before the answer passes
/// the message phase on its way, and the answer still ends the stream.
#[tokio::test]
async fn a_stateless_streamed_answers_messages_pass_the_message_phase() {
    let up = super::support::upstream().await;
    let binding = format!("      - policy: {}\n        config: {{ redact: swordfish }}\n", guest("gatekeeper"));
    let yaml = format!("servers:\n  - name: s\n    backend:\n      http: {}\n    policies:\n{binding}", up.url);
    let gw = tollgate_tests::gateway::RunningGateway::from_yaml(&yaml, &[]).await;

    let version = "2026-07-28";
    let call = json!({ "jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": { "name": "chatty", "arguments": {}, "_meta": { "io.modelcontextprotocol/protocolVersion": version } } });
    let resp = reqwest::Client::new()
        .post(format!("http://{}/s/mcp", gw.addr()))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", version)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "chatty")
        .json(&call)
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let messages: Vec<Value> = text.lines().filter_map(|l| l.strip_prefix("data:")).filter_map(|d| serde_json::from_str(d.trim()).ok()).collect();
    assert_eq!(messages.len(), 2, "{text}");
    assert_eq!(messages[0]["params"]["data"], "the key is [redacted]", "{text}");
    assert_eq!(messages[1]["result"]["content"][0]["text"], "said it", "{text}");
}
