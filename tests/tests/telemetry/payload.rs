//! Payload logging: off by default; where a server turns it on, tool arguments and results
//! appear in its access log lines, redacted by key and cut to size.

use serde_json::json;
use tollgate_tests::eventually;
use tollgate_tests::gateway::write_temp;

use crate::access_log;
use tollgate_tests::gateway::RunningGateway;
use tollgate_tests::recorder::Recorder;

const PASSWORD: &str = "hunter2-never-logged";

#[tokio::test]
async fn payloads_are_logged_only_where_configured_redacted_and_truncated() {
    let backend = Recorder::start().await;
    let log_file = write_temp("access.log", "");
    let config = json!({
        "listen": "127.0.0.1:0",
        "telemetry": { "access_log": { "to": log_file, "notifications": true } },
        "servers": [
            { "name": "plain", "backend": { "http": backend.url } },
            { "name": "logged", "backend": { "http": backend.url }, "payload_log": { "max_bytes": 64, "redact": ["Password"] } },
        ],
    });
    let gw = RunningGateway::from_config(config, &[]).await;

    let long = "x".repeat(200);
    let mut plain = gw.caller("plain").initialized().await;
    plain.call("echo", json!({ "password": PASSWORD, "text": "short" })).await;
    let mut logged = gw.caller("logged").initialized().await;
    logged.call("echo", json!({ "password": PASSWORD, "text": "short" })).await;
    logged.call("echo", json!({ "password": PASSWORD, "text": long })).await;
    logged.call("fragile", json!({})).await;

    eventually(10, "the access log has the calls", || access_log(&log_file).iter().filter(|l| l["method"] == "tools/call").count() == 4).await;
    let lines = access_log(&log_file);
    let calls: Vec<_> = lines.iter().filter(|l| l["method"] == "tools/call").collect();

    let on_plain = calls.iter().find(|l| l["server"] == "plain").expect("the plain server's call");
    assert!(on_plain.get("arguments").is_none() && on_plain.get("result").is_none(), "{on_plain}");

    let logged_calls: Vec<_> = calls.iter().filter(|l| l["server"] == "logged").collect();
    // A small payload stays structured, with the configured key redacted (compared without case).
    assert_eq!(logged_calls[0]["arguments"], json!({ "password": "[redacted]", "text": "short" }), "{}", logged_calls[0]);
    // The result (over 64 bytes) is cut the same way.
    let result = logged_calls[0]["result"].as_str().expect("a cut result is a string");
    assert!(result.starts_with(r#"{"content":[{"type":"text","text":"short"}]"#) && result.contains("[truncated, "), "{result}");
    // A large one is redacted first, then cut, and says how large it was.
    let cut = logged_calls[1]["arguments"].as_str().expect("a cut payload is a string");
    let full = json!({ "password": "[redacted]", "text": long }).to_string();
    assert!(cut.starts_with(r#"{"password":"[redacted]","text":"xxx"#), "{cut}");
    assert!(cut.ends_with(&format!("[truncated, {} bytes]", full.len())), "{cut}");
    // A tool error is an outcome of its own.
    assert_eq!(logged_calls[2]["outcome"], "tool_error", "{}", logged_calls[2]);

    // Notifications are logged when asked for.
    assert!(lines.iter().any(|l| l["method"] == "notifications/initialized" && l["status"] == 202), "{lines:?}");
    let text = std::fs::read_to_string(&log_file).expect("the access log");
    assert!(!text.contains(PASSWORD), "a redacted value was logged");
}
