//! Prometheus metrics on the management listener: counters and histograms move with the
//! traffic, label values stay bounded, and an injected credential never shows.

use serde_json::json;
use tollgate_tests::eventually;
use tollgate_tests::gateway::management_addr;

use tollgate_tests::gateway::RunningGateway;
use tollgate_tests::recorder::Recorder;
use tollgate_tests::standard::FORBIDDEN;
use tollgate_tests::standard::policy;

const BACKEND_SECRET: &str = "metrics-backend-s3cret";

/// The value of the sample `name` whose labels include all of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| l.starts_with(&format!("{name}{{"))).find_map(|l| {
        let (head, value) = l.rsplit_once(' ')?;
        labels.iter().all(|(k, v)| head.contains(&format!("{k}=\"{v}\""))).then(|| value.parse().ok())?
    })
}

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::Client::builder().no_proxy().build().expect("client").get(url).send().await.expect("GET");
    (r.status().as_u16(), r.text().await.expect("a body"))
}

#[tokio::test]
async fn metrics_count_outcomes_policy_verdicts_and_sessions_with_bounded_labels() {
    let backend = Recorder::start().await;
    let filter = policy("tool-filter", json!({ "deny": ["broken"] }));
    let mut creds = policy("credentials", json!({ "header": "x-backend-key", "secret": "k" }));
    creds["secrets"] = json!({ "k": { "env": "BACKEND_KEY" } });
    let config = json!({
        "listen": "127.0.0.1:0",
        "management": { "listen": "127.0.0.1:0", "admin_token_env": "ADMIN_TOKEN" },
        "servers": [{ "name": "tools", "backend": { "http": backend.url }, "policies": [filter, creds] }],
    });
    let gw = RunningGateway::from_config(config, &[("BACKEND_KEY", BACKEND_SECRET), ("ADMIN_TOKEN", "admin-token")]).await;
    eventually(10, "the management listener is up", || management_addr(&gw.log()).is_some()).await;
    let admin = format!("http://{}", management_addr(&gw.log()).expect("its address"));
    assert_eq!(get(&format!("{admin}/healthz")).await.0, 200);
    assert_eq!(get(&format!("{admin}/readyz")).await.0, 200);
    // Operators' routes are not on the listener clients use.
    assert_eq!(get(&format!("{}/metrics", gw.base())).await.0, 404);

    let mut c = gw.caller("tools").initialized().await;
    c.request("tools/list", json!({})).await;
    for _ in 0..2 {
        assert_eq!(c.call("echo", json!({ "text": "hi" })).await.status, 200);
    }
    assert_eq!(c.call("broken", json!({})).await.error_code(), FORBIDDEN);
    c.call("no-such-tool-zq81", json!({})).await;

    let (status, text) = get(&format!("{admin}/metrics")).await;
    assert_eq!(status, 200);
    let ok_echo = [("server", "tools"), ("method", "tools/call"), ("tool", "echo"), ("outcome", "ok")];
    assert_eq!(sample(&text, "tollgate_requests_total", &ok_echo), Some(2.0), "{text}");
    assert_eq!(sample(&text, "mcp_server_operation_duration_seconds_count", &ok_echo), Some(2.0), "{text}");
    // A tool the backend never listed to this caller is one label value, whatever its name.
    assert_eq!(sample(&text, "tollgate_requests_total", &[("tool", "_other"), ("outcome", "forbidden")]), Some(1.0), "{text}");
    assert!(!text.contains("no-such-tool-zq81") && !text.contains("broken"), "unlisted tool names never become labels:\n{text}");
    assert_eq!(sample(&text, "tollgate_denials_total", &[("server", "tools"), ("reason", "forbidden")]), Some(1.0), "{text}");
    let verdict =
        |policy: &str, verdict: &str| sample(&text, "tollgate_policy_verdicts_total", &[("policy", policy), ("phase", "request"), ("verdict", verdict)]);
    assert!(verdict("credentials", "continue").is_some_and(|n| n >= 3.0), "{text}");
    assert_eq!(verdict("tool-filter", "hidden"), Some(1.0), "{text}");
    assert!(sample(&text, "tollgate_policy_duration_seconds_count", &[("policy", "tool-filter")]).is_some_and(|n| n >= 1.0), "{text}");
    assert_eq!(sample(&text, "tollgate_sessions_active", &[("server", "tools")]), Some(1.0), "{text}");

    // The counters move with the next call.
    c.call("echo", json!({ "text": "again" })).await;
    let (_, after) = get(&format!("{admin}/metrics")).await;
    assert_eq!(sample(&after, "tollgate_requests_total", &ok_echo), Some(3.0), "{after}");
    assert!(!after.contains(BACKEND_SECRET) && !gw.log().contains(BACKEND_SECRET), "the injected credential leaked");
}
