//! Policy state in Redis: limits and quotas hold across replicas and restarts, and an outage
//! is refused (or served from memory where the binding says so), shown, and recovered from.

use serde_json::{Value, json};

use tollgate_tests::clear_of_window_edge;
use tollgate_tests::client::Client;
use tollgate_tests::eventually_async;
use tollgate_tests::gateway::RunningGateway;
use tollgate_tests::recorder::Recorder;
use tollgate_tests::redis::Redis;
use tollgate_tests::standard::{POLICY_FAILED, QUOTA_EXCEEDED, RATE_LIMITED, policy, server};

/// A gateway whose policies keep state in `redis`.
fn on_redis(redis: &Redis, servers: Value) -> Value {
    json!({ "listen": "127.0.0.1:0", "state": { "redis": redis.url() }, "servers": servers })
}

async fn replicas(n: usize, config: &Value) -> Vec<RunningGateway> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(RunningGateway::from_config(config.clone(), &[]).await);
    }
    out
}

/// Whether a call an MCP client made was refused with HTTP 429 (the SDK reports the status;
/// the JSON-RPC code is checked with a raw caller where it matters).
fn too_many(e: &tollgate_tests::client::CallError) -> bool {
    e.to_string().contains("HTTP 429")
}

#[tokio::test]
async fn a_limit_of_six_admits_six_calls_spread_over_three_replicas() {
    let redis = Redis::start().await;
    let backend = Recorder::start().await;
    let limit = policy("rate-limit", json!({ "limit": 6, "window": "1h", "methods": ["tools/call"] }));
    let gws = replicas(3, &on_redis(&redis, json!([server("s", &backend.url, json!([limit]))]))).await;
    let mut clients = Vec::new();
    for g in &gws {
        clients.push(Client::connect(&g.mcp_url("s")).await);
    }
    clear_of_window_edge(3600, 20).await;
    let (mut admitted, mut refused) = (0, 0);
    for i in 0..12 {
        match clients[i % 3].call_tool("echo", json!({ "text": format!("call {i}") })).await {
            Ok(t) => {
                assert_eq!(t, format!("call {i}"));
                admitted += 1;
            }
            Err(e) => {
                assert!(too_many(&e), "{e}");
                refused += 1;
            }
        }
    }
    let r = gws[0].caller("s").initialized().await.call("echo", json!({ "text": "raw" })).await;
    assert_eq!((r.status, r.error_code()), (429, RATE_LIMITED), "{r:?}");
    assert_eq!((admitted, refused), (6, 6), "one limit for all replicas, not one each");
    assert_eq!(backend.calls_of("echo"), 6, "refused calls never reached the backend");
    // Keys live under the configured prefix, one namespace per binding.
    let keys = redis.command(&["KEYS", "tollgate:*"]).await;
    assert!(keys.contains("s/rate-limit"), "the binding's keys are under its namespace: {keys}");
}

#[tokio::test]
async fn a_monthly_quota_holds_across_a_restart_of_every_replica() {
    let redis = Redis::start().await;
    let backend = Recorder::start().await;
    let quota = policy("quota", json!({ "calls": 2, "period": "month" }));
    let config = on_redis(&redis, json!([server("s", &backend.url, json!([quota]))]));
    let first = replicas(2, &config).await;
    for (i, g) in first.iter().enumerate() {
        let c = Client::connect(&g.mcp_url("s")).await;
        assert_eq!(c.call_tool("echo", json!({ "text": format!("call {i}") })).await.expect("within the quota"), format!("call {i}"));
        c.close().await;
    }
    for g in &first {
        g.kill_9();
        g.exit_within(std::time::Duration::from_secs(10)).await.expect("killed");
    }
    drop(first);
    for g in replicas(3, &config).await {
        let c = Client::connect(&g.mcp_url("s")).await;
        let e = c.call_tool("echo", json!({ "text": "one too many" })).await.expect_err("the quota was used up before the restart");
        assert!(too_many(&e), "{e}");
        let r = g.caller("s").initialized().await.call("echo", json!({ "text": "raw" })).await;
        assert_eq!((r.status, r.error_code()), (429, QUOTA_EXCEEDED), "{r:?}");
    }
    assert_eq!(backend.calls_of("echo"), 2);
}

#[tokio::test]
async fn a_redis_outage_is_refused_or_served_locally_as_each_binding_says_and_recovered_from() {
    let mut redis = Redis::start().await;
    let backend = Recorder::start().await;
    let strict = policy("rate-limit", json!({ "limit": 100, "window": "1h" }));
    let mut lenient = policy("rate-limit", json!({ "limit": 100, "window": "1h" }));
    lenient["on_state_outage"] = json!("local");
    let mut config = on_redis(&redis, json!([server("strict", &backend.url, json!([strict])), server("lenient", &backend.url, json!([lenient]))]));
    config["management"] = json!({ "listen": "127.0.0.1:0", "admin_token_env": "T" });
    let gw = RunningGateway::from_config(config, &[("T", "admin-token")]).await;
    let admin = gw.management();
    let strict = gw.caller("strict").initialized().await;
    let lenient = gw.caller("lenient").initialized().await;
    let (mut strict, mut lenient) = (strict, lenient);
    assert_eq!(strict.call("echo", json!({ "text": "before" })).await.status, 200);
    assert_eq!(ready(&admin).await.0, 200);

    redis.stop().await;
    eventually_async(10, "the management listener's /readyz names the outage", || async {
        let (status, body) = ready(&admin).await;
        status == 503 && body.contains("policy state (redis)")
    })
    .await;
    let r = strict.call("echo", json!({ "text": "during" })).await;
    assert_eq!((r.status, r.error_code()), (503, POLICY_FAILED), "fails closed by default: {r:?}");
    let r = lenient.call("echo", json!({ "text": "during" })).await;
    assert_eq!(r.status, 200, "on_state_outage: local serves from memory: {r:?}");
    let metrics = reqwest::get(format!("{admin}/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("tollgate_policy_state_up 0"), "{metrics}");
    assert!(!metrics.contains("tollgate_policy_state_errors_total 0\n"), "errors are counted");
    assert!(gw.log().contains("policy state store (redis) is unreachable"), "the outage is logged");

    redis.restart().await;
    eventually_async(10, "ready again once Redis answers", || async { ready(&admin).await.0 == 200 }).await;
    let r = strict.call("echo", json!({ "text": "after" })).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(gw.log().contains("answers again"), "the recovery is logged");
}

async fn ready(admin: &str) -> (u16, String) {
    let r = reqwest::get(format!("{admin}/readyz")).await.expect("the management listener answers");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}
