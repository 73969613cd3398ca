//! `tool-filter`: one config decides what `tools/list` shows and what `tools/call` may call.

use serde_json::json;
use tollgate_tests::backend::Backend;
use tollgate_tests::client::Client;

use tollgate_tests::caller::text;
use tollgate_tests::gateway::RunningGateway;
use tollgate_tests::standard::FORBIDDEN;
use tollgate_tests::standard::policy;
use tollgate_tests::standard::server;

#[tokio::test]
async fn tool_filter_hides_denied_tools_from_the_list_and_refuses_their_calls() {
    let backend = Backend::rmcp().named("filtered").start().await;
    let filter = policy("tool-filter", json!({ "deny": ["whoami", "sl*"] }));
    let gw = RunningGateway::from_config(json!({ "listen": "127.0.0.1:0", "servers": [server("s", &backend.url(), json!([filter]))] }), &[]).await;

    // The SDK client sees the list as filtered: no whoami, and no slow (by the glob).
    let sdk = Client::connect(&gw.mcp_url("s")).await;
    let mut listed = sdk.list_tools().await;
    listed.sort();
    assert_eq!(listed, ["ask", "echo", "log", "meta", "progress"]);
    assert!(sdk.call_tool("whoami", json!({})).await.is_err(), "a hidden tool cannot be called");
    assert_eq!(sdk.echo("still callable").await, "still callable");
    sdk.close().await;

    // The refusals, as plain JSON-RPC: the gateway's hidden-tool refusal, -32003.
    let mut c = gw.caller("s").initialized().await;
    for hidden in ["whoami", "slow"] {
        let r = c.call(hidden, json!({ "ms": 1 })).await;
        assert_eq!(r.error_code(), FORBIDDEN, "{hidden}: {r:?}");
        assert!(r.error_message().contains(hidden), "{hidden}: {r:?}");
    }
    assert_eq!(text(&c.call("echo", json!({ "text": "plain" })).await), "plain");
}

/// With `rename` the policy also has a response hook that rewrites the list; it must see, and
/// return, the list after the visibility filter, so hidden tools stay hidden.
#[tokio::test]
async fn tool_filter_with_a_rename_still_hides_denied_tools() {
    let backend = Backend::rmcp().named("filtered").start().await;
    let filter = policy(
        "tool-filter",
        json!({
            "deny": ["whoami", "sl*"],
            "rename": [{ "tool": "echo", "as": "say", "description": "Says its text back" }],
        }),
    );
    let gw = RunningGateway::from_config(json!({ "listen": "127.0.0.1:0", "servers": [server("s", &backend.url(), json!([filter]))] }), &[]).await;

    let sdk = Client::connect(&gw.mcp_url("s")).await;
    let mut listed = sdk.list_tools().await;
    listed.sort();
    assert_eq!(listed, ["ask", "log", "meta", "progress", "say"]);
    assert_eq!(sdk.call_tool("say", json!({ "text": "renamed" })).await.expect("say"), "renamed");
    sdk.close().await;

    let mut c = gw.caller("s").initialized().await;
    for hidden in ["whoami", "slow", "echo"] {
        let r = c.call(hidden, json!({ "text": "x", "ms": 1 })).await;
        assert_eq!(r.error_code(), FORBIDDEN, "{hidden}: {r:?}");
    }
}
