//! A flood of distinct client-chosen keys leaves the policies' state within its budget: the
//! store evicts, says so in its metrics, and the gateway goes on answering.

use serde_json::json;
use tollgate_tests::backend::Backend;
use tollgate_tests::caller::text;
use tollgate_tests::gateway::Gateway;

/// The value of one unlabelled sample in a Prometheus text exposition.
fn sample(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {name} in:\n{metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distinct_keys_past_the_budget_are_evicted_and_counted() {
    let backend = Backend::rmcp().start().await;
    let gateway = Gateway::new()
        .server("docs", backend.url())
        .policies("docs", json!([{ "policy": "cache", "config": { "tools": ["echo"], "ttl": "10m" } }]))
        .top("limits", json!({ "max_policy_state_mb": 1 }))
        .management("state-token")
        .start()
        .await;
    let mut caller = gateway.caller("docs").initialized().await;
    // Thirty distinct arguments of 100 KB: each a cache entry, three times the budget together.
    for i in 0..30 {
        let arg = format!("{i:03}{}", "x".repeat(100_000));
        let r = caller.call("echo", json!({ "text": arg })).await;
        assert_eq!(text(&r).len(), arg.len(), "call {i}: {r:?}");
    }
    let metrics = reqwest::get(format!("{}/metrics", gateway.management())).await.unwrap().text().await.unwrap();
    let held = sample(&metrics, "tollgate_policy_state_bytes");
    assert!(held > 0.0 && held <= (1 << 20) as f64, "state holds {held} bytes, over its budget");
    assert!(sample(&metrics, "tollgate_policy_state_evictions_total") > 0.0, "evictions are counted");
}
