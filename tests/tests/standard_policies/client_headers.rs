//! Headers policies add to the client's response on success: `quota`'s `x-quota-*` and
//! `rate-limit`'s `ratelimit-*`, on a plain JSON answer and on an SSE answer (a tool that
//! sends progress first), while refusals keep their own headers.

use serde_json::json;
use tollgate_tests::backend::Backend;

use tollgate_tests::caller::header;
use tollgate_tests::caller::text;
use tollgate_tests::clear_of_window_edge;
use tollgate_tests::gateway::RunningGateway;
use tollgate_tests::standard::QUOTA_EXCEEDED;
use tollgate_tests::standard::policy;
use tollgate_tests::standard::server;

fn content_type(r: &tollgate_tests::raw::RawResponse) -> &str {
    header(r, "content-type")
}

#[tokio::test]
async fn admitted_calls_tell_the_client_what_is_left_of_its_quota_and_rate_limit_on_json_and_sse_answers() {
    let backend = Backend::rmcp().named("figures").start().await;
    let quota = policy("quota", json!({ "calls": 3, "period": "day" }));
    let limit = policy("rate-limit", json!({ "limit": 100, "window": "1h", "tools": [{ "tools": ["progress"], "limit": 10, "window": "1h" }] }));
    let gw = RunningGateway::from_config(json!({ "listen": "127.0.0.1:0", "servers": [server("s", &backend.url(), json!([limit, quota]))] }), &[]).await;
    clear_of_window_edge(86_400, 30).await;

    let mut c = gw.caller("s").initialized().await;
    // Not counted by the quota (not a call); counted by the rate limit, which says so.
    let list = c.request("tools/list", json!({})).await;
    assert_eq!(list.status, 200, "{list:?}");
    assert!(list.headers.get("x-quota-remaining").is_none(), "tools/list does not count against the quota: {list:?}");

    let r = c.call("echo", json!({ "text": "first" })).await;
    assert_eq!(text(&r), "first");
    assert!(content_type(&r).starts_with("application/json"), "echo answers as plain JSON: {r:?}");
    assert_eq!(header(&r, "x-quota-limit"), "3", "{r:?}");
    assert_eq!(header(&r, "x-quota-remaining"), "2", "{r:?}");
    let reset: u64 = header(&r, "x-quota-reset").parse().expect("whole seconds");
    assert!((1..=86_400).contains(&reset), "{r:?}");
    // initialize, tools/list and this call: three of the hundred.
    assert_eq!(header(&r, "ratelimit-limit"), "100", "{r:?}");
    assert_eq!(header(&r, "ratelimit-remaining"), "97", "{r:?}");
    let reset: u64 = header(&r, "ratelimit-reset").parse().expect("whole seconds");
    assert!((1..=3_600).contains(&reset), "{r:?}");

    // Progress comes before the answer, so the answer is an SSE stream: same headers.
    let r = c.request("tools/call", json!({ "name": "progress", "arguments": { "steps": 2, "label": "p" }, "_meta": { "progressToken": "t1" } })).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(content_type(&r).starts_with("text/event-stream"), "progress answers as SSE: {r:?}");
    assert!(r.body.matches("notifications/progress").count() >= 2, "the progress came first: {r:?}");
    assert!(r.message().get("result").is_some(), "{r:?}");
    assert_eq!(header(&r, "x-quota-remaining"), "1", "{r:?}");
    // The tool's own limit is the tighter one: 10 per hour, this is its first call.
    assert_eq!(header(&r, "ratelimit-limit"), "10", "{r:?}");
    assert_eq!(header(&r, "ratelimit-remaining"), "9", "{r:?}");

    let r = c.call("echo", json!({ "text": "last" })).await;
    assert_eq!(header(&r, "x-quota-remaining"), "0", "{r:?}");
    // A refusal carries the refusal's headers, once each.
    let r = c.call("echo", json!({ "text": "over" })).await;
    assert_eq!((r.status, r.error_code()), (429, QUOTA_EXCEEDED), "{r:?}");
    assert_eq!(r.headers.get_all("x-quota-remaining").iter().count(), 1, "{r:?}");
    assert_eq!(header(&r, "x-quota-remaining"), "0", "{r:?}");
}
