//! Pre-initialization: a binding's `init(config)` runs once at load and every exchange starts
//! from the state it left, each in an instance of its own; a binding whose `init` reads
//! something that changes runs it for every instance instead.

use serde_json::json;
use tollgate_tests::gateway::RunningGateway;

use super::support::{guest, upstream};
use super::{gatekeeper, server};

const DEBUG: &[(&str, &str)] = &[("TOLLGATE_LOG", "info,tollgate::policy=debug")];

#[tokio::test]
async fn every_exchange_starts_from_the_initialized_state_and_sees_nothing_of_the_one_before() {
    let up = upstream().await;
    let policies = format!("{}      - policy: ip-filter\n        config: {{ allow: [127.0.0.0/8] }}\n", gatekeeper("{ api_key: k1, count_calls: true }"));
    let gw = RunningGateway::from_yaml(&format!("servers:\n{}", server("s", &up, &policies)), DEBUG).await;
    let log = gw.log();
    // Both: the standard policy (no WASI) and the test policy (built for wasm32-wasip2, whose
    // init makes no WASI call).
    assert_eq!(log.matches("policy pre-initialized").count(), 2, "both bindings are pre-initialized:\n{log}");

    // The config the snapshot holds is in force: without the key, refused; with it, admitted.
    assert_eq!(gw.caller("s").initialize().await.status, 401);
    let mut c = gw.caller("s").header("x-api-key", "k1");
    let init = c.initialize().await;
    assert_eq!(init.status, 200, "{init:?}");
    assert_eq!(init.headers["x-calls"], "1");
    // However many requests pass, each instance has seen exactly one: its own.
    for _ in 0..5 {
        let called = c.call("echo", json!({})).await;
        assert_eq!(called.result()["content"][0]["text"], "ok", "{called:?}");
        assert_eq!(called.headers["x-calls"], "1", "an instance saw another exchange's request");
    }
}

#[tokio::test]
async fn a_policy_whose_init_reads_the_clock_runs_init_for_every_instance() {
    let up = upstream().await;
    let binding = format!("      - policy: {}\n        config: {{ clock_in_init: true, count_calls: true }}\n", guest("gatekeeper"));
    let gw = RunningGateway::from_yaml(&format!("servers:\n{}", server("s", &up, &binding)), DEBUG).await;
    let log = gw.log();
    assert!(log.contains("policy runs init on every instance: its init reads"), "{log}");
    assert!(!log.contains("policy pre-initialized"), "{log}");
    let mut c = gw.caller("s");
    assert_eq!(c.initialize().await.headers["x-calls"], "1");
    let called = c.call("echo", json!({})).await;
    assert_eq!(called.headers["x-calls"], "1", "{called:?}");
}

#[tokio::test]
async fn a_binding_that_reuses_instances_serves_one_exchange_after_another_from_the_same_one() {
    let up = upstream().await;
    let binding = format!("      - policy: {}\n        instances: reused\n        config: {{ api_key: k1, count_calls: true }}\n", guest("gatekeeper"));
    let gw = RunningGateway::from_yaml(&format!("servers:\n{}", server("s", &up, &binding)), DEBUG).await;
    let mut c = gw.caller("s").header("x-api-key", "k1");
    let init = c.initialize().await;
    assert_eq!(init.status, 200, "{init:?}");
    let mut seen: u64 = init.headers["x-calls"].to_str().unwrap().parse().unwrap();
    // A refusal is a verdict, not a fault: the instance that gave it serves on.
    assert_eq!(gw.caller("s").initialize().await.status, 401);
    for _ in 0..5 {
        let called = c.call("echo", json!({})).await;
        assert_eq!(called.result()["content"][0]["text"], "ok", "{called:?}");
        let now: u64 = called.headers["x-calls"].to_str().unwrap().parse().unwrap();
        assert!(now > seen, "the same instance counts on: {seen} then {now}");
        seen = now;
    }
}

/// A reused instance whose memory only grows is retired once past half its binding's limit, so
/// it is replaced before it fails a request: every call passes, and the count starts again.
#[tokio::test]
async fn a_reused_instance_whose_memory_grows_is_replaced_before_it_fails_a_request() {
    let up = upstream().await;
    let binding = format!(
        "      - policy: {}\n        instances: reused\n        limits: {{ memory_mb: 16 }}\n        config: {{ count_calls: true, leak_kib: 1024 }}\n",
        guest("gatekeeper")
    );
    let gw = RunningGateway::from_yaml(&format!("servers:\n{}", server("s", &up, &binding)), DEBUG).await;
    let mut c = gw.caller("s");
    assert_eq!(c.initialize().await.status, 200);
    let mut restarted = false;
    let mut last: u64 = 0;
    // 40 MiB kept in all, past the 16 MiB limit more than twice over.
    for i in 0..40 {
        let called = c.call("echo", json!({})).await;
        assert_eq!(called.result()["content"][0]["text"], "ok", "call {i} failed: {called:?}\n{}", gw.log());
        let now: u64 = called.headers["x-calls"].to_str().unwrap().parse().unwrap();
        restarted |= now < last;
        last = now;
    }
    assert!(restarted, "a fresh instance took over from the grown one");
    assert!(!gw.log().contains("memory limit"), "no request met the limit:\n{}", gw.log());
}

/// `TOLLGATE_WASM_PERFMAP=1` has wasmtime name policy code for `perf`; without it, no map is
/// written.
#[tokio::test]
async fn policy_code_is_named_for_perf_only_when_asked() {
    let up = upstream().await;
    let yaml = format!("servers:\n{}", server("s", &up, "      - policy: ip-filter\n        config: { allow: [127.0.0.0/8] }\n"));
    let map = |pid: u32| std::path::PathBuf::from(format!("/tmp/perf-{pid}.map"));
    let asked = RunningGateway::from_yaml(&yaml, &[("TOLLGATE_WASM_PERFMAP", "1")]).await;
    let written = std::fs::read_to_string(map(asked.pid())).expect("the perf map of a gateway that asked for it");
    assert!(written.lines().any(|l| l.contains("wasm[")), "policy functions are named:\n{}", &written[..written.len().min(500)]);
    let _ = std::fs::remove_file(map(asked.pid()));
    let started = std::time::SystemTime::now();
    let plain = RunningGateway::from_yaml(&yaml, &[]).await;
    // A map left by an earlier process of the same pid is not this one's.
    let fresh = std::fs::metadata(map(plain.pid())).and_then(|m| m.modified()).is_ok_and(|t| t >= started);
    assert!(!fresh, "no map unless asked");
}
