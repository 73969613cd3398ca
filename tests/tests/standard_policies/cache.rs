//! `cache`: a repeated call of a cached tool is answered by the gateway; errors are not kept.

use serde_json::json;

use tollgate_tests::caller::text;
use tollgate_tests::gateway::RunningGateway;
use tollgate_tests::recorder::Recorder;
use tollgate_tests::standard::policy;
use tollgate_tests::standard::server;

#[tokio::test]
async fn cache_answers_a_repeated_call_without_the_backend_and_never_keeps_errors() {
    let backend = Recorder::start().await;
    let cache = policy("cache", json!({ "tools": ["echo", "fragile", "broken"], "ttl": "5m" }));
    let gw = RunningGateway::from_config(json!({ "listen": "127.0.0.1:0", "servers": [server("s", &backend.url, json!([cache]))] }), &[]).await;
    let mut c = gw.caller("s").initialized().await;

    assert_eq!(text(&c.call("echo", json!({ "text": "once", "n": 1 })).await), "once");
    assert_eq!(backend.calls_of("echo"), 1);
    // The same arguments, keys in another order: the same entry, from another session too.
    assert_eq!(text(&c.call("echo", json!({ "n": 1, "text": "once" })).await), "once");
    let mut other = gw.caller("s").initialized().await;
    assert_eq!(text(&other.call("echo", json!({ "text": "once", "n": 1 })).await), "once");
    assert_eq!(backend.calls_of("echo"), 1, "the repeated calls were answered by the cache");
    // Other arguments are another entry.
    assert_eq!(text(&c.call("echo", json!({ "text": "twice", "n": 1 })).await), "twice");
    assert_eq!(backend.calls_of("echo"), 2);

    // A tool result with isError, and a JSON-RPC error: each call goes to the backend.
    for _ in 0..2 {
        let r = c.call("fragile", json!({})).await;
        assert_eq!(r.message()["result"]["isError"], true, "{r:?}");
        let r = c.call("broken", json!({})).await;
        assert!(r.message().get("error").is_some(), "{r:?}");
    }
    assert_eq!(backend.calls_of("fragile"), 2, "an isError result is not cached");
    assert_eq!(backend.calls_of("broken"), 2, "an error is not cached");
}
