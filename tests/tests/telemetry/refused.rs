//! A request refused at admission, before any session or policy (a subscription key missing,
//! not valid, or of a subscription that is not active), is observed like any other refusal:
//! a line in the access log and a sample in the metrics, on every door that carries messages.
//! A path naming no server adds nothing, so no client can grow the label values.

use serde_json::json;
use tollgate_tests::admin::Admin;
use tollgate_tests::eventually;
use tollgate_tests::gateway::{RunningGateway, write_temp};
use tollgate_tests::raw::Raw;
use tollgate_tests::recorder::Recorder;

use crate::access_log;

const ADMIN: &str = "refused-admin-token";

#[tokio::test]
async fn refusals_at_admission_are_logged_and_counted_on_every_door() {
    let backend = Recorder::start().await;
    let log_file = write_temp("access.log", "");
    let data = write_temp("keep", "").parent().expect("a dir").join("data");
    let config = json!({
        "listen": "127.0.0.1:0",
        "management": { "listen": "127.0.0.1:0", "admin_token_env": "ADMIN_TOKEN", "data_dir": data },
        "telemetry": { "access_log": { "to": log_file, "notifications": true } },
        "servers": [{ "name": "sold", "backend": { "http": backend.url } }],
        "products": [{ "name": "paid", "servers": [{ "server": "sold" }] }],
    });
    let gw = RunningGateway::from_config(config, &[("ADMIN_TOKEN", ADMIN)]).await;
    let admin = Admin::new(&gw.management(), ADMIN);
    let sub = admin.subscribe("paid", "team@example.com").await;
    admin.act(&sub.id, "suspend").await;

    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } } });
    let mcp = Raw::new(&gw.mcp_url("sold"));
    assert_eq!(mcp.post_json(&init).send().await.status, 401, "no key");
    assert_eq!(mcp.post_json(&init).header("ocp-apim-subscription-key", "not-a-key-5f2c").send().await.status, 401, "a wrong key");
    assert_eq!(mcp.post_json(&init).header("ocp-apim-subscription-key", &sub.primary).send().await.status, 403, "a suspended subscription");
    let call = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": { "name": "echo", "arguments": {} } });
    let legacy = Raw::new(&gw.url("/sold/message?sessionId=whatever"));
    assert_eq!(legacy.post_json(&call).send().await.status, 401, "the legacy message door, no key");
    assert_eq!(Raw::new(&gw.mcp_url("nope-x41")).post_json(&init).send().await.status, 404);

    eventually(10, "four refusals in the access log", || access_log(&log_file).len() >= 4).await;
    let lines = access_log(&log_file);
    let seen: Vec<(&str, &str, &str, i64)> = lines
        .iter()
        .map(|l| (l["transport"].as_str().unwrap(), l["method"].as_str().unwrap(), l["outcome"].as_str().unwrap(), l["code"].as_i64().unwrap()))
        .collect();
    let key = tollgate_vocabulary::code::SUBSCRIPTION_KEY as i64;
    let forbidden = tollgate_vocabulary::code::SUBSCRIPTION_FORBIDDEN as i64;
    assert_eq!(
        seen,
        [
            ("streamable-http", "initialize", "unauthorized", key),
            ("streamable-http", "initialize", "unauthorized", key),
            ("streamable-http", "initialize", "forbidden", forbidden),
            ("sse", "tools/call", "unauthorized", key),
        ],
        "{lines:?}"
    );
    assert!(lines.iter().all(|l| l["server"] == "sold" && l["status"].as_u64().is_some_and(|s| s == 401 || s == 403)), "{lines:?}");
    let text = std::fs::read_to_string(&log_file).unwrap();
    assert!(!text.contains(&sub.primary) && !text.contains("not-a-key-5f2c"), "a presented key is never logged");

    let metrics =
        reqwest::Client::builder().no_proxy().build().unwrap().get(format!("{}/metrics", gw.management())).send().await.unwrap().text().await.unwrap();
    let denied = |reason: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with("tollgate_denials_total{") && l.contains("server=\"sold\"") && l.contains(&format!("reason=\"{reason}\"")))
            .and_then(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
    };
    assert_eq!((denied("unauthorized"), denied("forbidden")), (Some(3.0), Some(1.0)), "{metrics}");
    assert!(!metrics.contains("nope-x41"), "a path naming no server adds no label value");
}
