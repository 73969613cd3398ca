//! `log: { format: json }`: every line the gateway writes to stderr is a JSON object, from start
//! to stop, through requests, a policy failure and a refused config reload; a line written
//! inside a traced exchange carries its `trace_id`, the one its spans are exported under.

use serde_json::{Value, json};
use tollgate_tests::gateway::RunningGateway;
use tollgate_tests::otlp::{Collector, KIND_SERVER};
use tollgate_tests::recorder::Recorder;
use tollgate_tests::{eventually, eventually_async};

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_json_logs_every_stderr_line_is_json_and_names_its_trace() {
    let (collector, endpoint) = Collector::http().await;
    let backend = Recorder::start().await;
    let trap = format!("{}/misbehave.wasm", env!("TOLLGATE_GUESTS"));
    let config = json!({
        "listen": "127.0.0.1:0",
        "log": { "format": "json", "level": "info" },
        "telemetry": { "traces": { "endpoint": endpoint, "protocol": "http" } },
        "servers": [{
            "name": "tools",
            "backend": { "http": backend.url },
            "policies": [{ "policy": trap, "config": { "mode": "panic", "on_tool": "boom" } }],
        }],
    });
    let gw = RunningGateway::from_config(config, &[]).await;
    let mut c = gw.caller("tools").initialized().await;
    assert_eq!(c.call("echo", json!({ "text": "hi" })).await.status, 200);
    let traceparent = format!("00-{TRACE_ID}-00f067aa0ba902b7-01");
    let failed = c.request("tools/call", json!({ "name": "boom", "arguments": {}, "_meta": { "traceparent": traceparent } })).await;
    assert_eq!(failed.code(), Some(-32007), "{failed:?}");
    eventually(20, "the failed call's server span reaches the collector", || collector.spans().iter().any(|s| s.kind == KIND_SERVER && s.trace_id == TRACE_ID))
        .await;
    gw.rewrite("servers: [ this is not a config");
    eventually_async(20, "the refused reload is logged", || async { gw.log().contains("reload") }).await;
    gw.terminate();
    assert!(gw.exit_within(std::time::Duration::from_secs(30)).await.is_some(), "the gateway stops on SIGTERM");
    let log = gw.log();

    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a stderr line is not JSON ({e}): {l}\n{log}")))
        .collect();
    assert!(lines.len() >= 4, "{log}");
    for l in &lines {
        for key in ["time", "level", "target", "message"] {
            assert!(l.get(key).is_some(), "every line has `{key}`: {l}");
        }
    }
    let failure = lines
        .iter()
        .find(|l| l["message"].as_str().is_some_and(|m| m.contains("policy failed")))
        .unwrap_or_else(|| panic!("the policy failure is logged: {log}"));
    assert_eq!((failure["level"].as_str(), failure["server"].as_str()), (Some("WARN"), Some("tools")), "{failure}");
    assert_eq!(failure["trace_id"], TRACE_ID, "the line names the trace it happened in: {failure}");
    assert!(lines.iter().any(|l| l["message"].as_str().is_some_and(|m| m.contains("listening"))), "{log}");
}
