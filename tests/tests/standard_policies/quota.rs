//! `quota`: calls beyond the period's quota are refused until it renews.

use serde_json::json;

use tollgate_tests::caller::header;
use tollgate_tests::caller::text;
use tollgate_tests::clear_of_window_edge;
use tollgate_tests::gateway::RunningGateway;
use tollgate_tests::recorder::Recorder;
use tollgate_tests::standard::QUOTA_EXCEEDED;
use tollgate_tests::standard::policy;
use tollgate_tests::standard::server;

#[tokio::test]
async fn quota_refuses_calls_beyond_the_quota_with_429_and_the_time_of_renewal() {
    let backend = Recorder::start().await;
    // Without `jwt` there is no subject: every caller shares the one quota of the missing key.
    let quota = policy("quota", json!({ "calls": 3, "period": "day" }));
    let gw = RunningGateway::from_config(json!({ "listen": "127.0.0.1:0", "servers": [server("s", &backend.url, json!([quota]))] }), &[]).await;
    clear_of_window_edge(86_400, 30).await;

    let mut c = gw.caller("s").initialized().await;
    for i in 0..3 {
        let r = c.call("echo", json!({ "text": format!("call {i}") })).await;
        assert_eq!(text(&r), format!("call {i}"));
    }
    // initialize and tools/list are not counted: only calls, reads and prompts are.
    assert_eq!(c.request("tools/list", json!({})).await.status, 200);
    for _ in 0..2 {
        let r = c.call("echo", json!({ "text": "one too many" })).await;
        assert_eq!((r.status, r.error_code()), (429, QUOTA_EXCEEDED), "{r:?}");
        let retry_after: u64 = header(&r, "retry-after").parse().unwrap_or_else(|_| panic!("Retry-After is whole seconds: {r:?}"));
        assert!((1..=86_400).contains(&retry_after), "{r:?}");
        assert_eq!(header(&r, "x-quota-limit"), "3", "{r:?}");
        assert_eq!(header(&r, "x-quota-remaining"), "0", "{r:?}");
    }
    assert_eq!(backend.calls_of("echo"), 3, "the refused calls never reached the backend");
    // Another caller shares the exhausted quota.
    let mut other = gw.caller("s").initialized().await;
    assert_eq!(other.call("echo", json!({ "text": "late" })).await.error_code(), QUOTA_EXCEEDED);
}
