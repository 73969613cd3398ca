//! One gateway on its embedded stores: what lives long (a quota's period) is kept under
//! `management.data_dir` across a restart; a short rate-limit window is not.

use std::time::Duration;

use serde_json::json;

use tollgate_tests::client::Client;
use tollgate_tests::gateway::{RunningGateway, TempDir};
use tollgate_tests::recorder::Recorder;
use tollgate_tests::standard::{QUOTA_EXCEEDED, policy, server};

#[tokio::test]
async fn a_monthly_quota_holds_across_a_restart_of_an_embedded_gateway() {
    let data = TempDir::new();
    let backend = Recorder::start().await;
    let quota = policy("quota", json!({ "calls": 2, "period": "month" }));
    let config = json!({
        "listen": "127.0.0.1:0",
        "management": { "listen": "127.0.0.1:0", "admin_token_env": "T", "data_dir": data.0.join("data") },
        "servers": [server("s", &backend.url, json!([quota]))],
    });
    let env = [("T", "admin-token")];
    {
        let gw = RunningGateway::from_config(config.clone(), &env).await;
        let c = Client::connect(&gw.mcp_url("s")).await;
        for i in 0..2 {
            assert_eq!(c.call_tool("echo", json!({ "text": format!("call {i}") })).await.expect("within the quota"), format!("call {i}"));
        }
        c.close().await;
        gw.terminate();
        assert!(gw.exit_within(Duration::from_secs(20)).await.is_some_and(|s| s.success()), "a clean stop: {}", gw.log());
    }
    let gw = RunningGateway::from_config(config, &env).await;
    let c = Client::connect(&gw.mcp_url("s")).await;
    let e = c.call_tool("echo", json!({ "text": "one too many" })).await.expect_err("the quota was used up before the restart");
    assert!(e.to_string().contains("HTTP 429"), "{e}");
    let r = gw.caller("s").initialized().await.call("echo", json!({ "text": "raw" })).await;
    assert_eq!((r.status, r.error_code()), (429, QUOTA_EXCEEDED), "{r:?}");
    assert_eq!(backend.calls_of("echo"), 2);
    let file = data.0.join("data/state.redb");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).expect("kept under data_dir").permissions());
    assert_eq!(mode & 0o777, 0o600, "it may hold cached tokens: this user's alone");
}
