//! A stateless (2026-07-28) client is observed as a session's client is, because its request
//! runs the same exchange: a streamed `tools/list` teaches the tool names, a `jwt` refusal is
//! a refusal (not a backend failure), and the backend gets the trace context of the gateway's
//! client span, which reaches the collector.

use serde_json::{Value, json};
use tollgate_tests::eventually;
use tollgate_tests::gateway::management_addr;
use tollgate_tests::otlp::{Collector, KIND_CLIENT};
use tollgate_tests::raw::{Raw, RawResponse};

use tollgate_tests::gateway::RunningGateway;
use tollgate_tests::idp::{Idp, Key, now};
use tollgate_tests::recorder::Recorder;

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";

async fn stateless(url: &str, method: &str, params: Value, token: Option<&str>) -> RawResponse {
    let mut req = Raw::new(url).stateless(method, params);
    if let Some(t) = token {
        req = req.header("authorization", &format!("Bearer {t}"));
    }
    req.send().await
}

fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| l.starts_with(&format!("{name}{{"))).find_map(|l| {
        let (head, value) = l.rsplit_once(' ')?;
        labels.iter().all(|(k, v)| head.contains(&format!("{k}=\"{v}\""))).then(|| value.parse().ok())?
    })
}

#[tokio::test]
async fn a_stateless_client_is_observed_like_a_session() {
    let (collector, endpoint) = Collector::http().await;
    let backend = Recorder::start().await;
    let idp = Idp::start().await;
    let key = Key::rsa("k1");
    idp.publish(&[&key]);
    let token = key.sign(&json!({ "iss": idp.issuer, "sub": "alice", "aud": "tools", "iat": now(), "exp": now() + 600 }));
    let jwt = idp.jwt_binding("tools");
    let config = json!({
        "listen": "127.0.0.1:0",
        "management": { "listen": "127.0.0.1:0", "admin_token_env": "ADMIN_TOKEN" },
        "telemetry": { "service_name": "tollgate-stateless", "traces": { "endpoint": endpoint, "protocol": "http" } },
        "servers": [{ "name": "tools", "backend": { "http": backend.url }, "policies": [jwt] }],
    });
    let gw = RunningGateway::from_config(config, &[("ADMIN_TOKEN", "admin-token")]).await;
    let url = gw.mcp_url("tools");

    let listed = stateless(&url, "tools/list", json!({}), Some(&token)).await;
    assert_eq!(listed.status, 200, "{listed:?}");
    assert!(listed.headers["content-type"].to_str().unwrap().starts_with("text/event-stream"), "a streamed answer: {listed:?}");
    assert_eq!(listed.message()["result"]["tools"][0]["name"], "echo", "{listed:?}");

    let traceparent = format!("00-{TRACE_ID}-b7ad6b7169203331-01");
    let called =
        stateless(&url, "tools/call", json!({ "name": "echo", "arguments": { "text": "hi" }, "_meta": { "traceparent": traceparent } }), Some(&token)).await;
    assert_eq!(called.status, 200, "{called:?}");
    let seen = backend.seen("tools/call").pop().expect("the call reached the backend");
    let header = seen.headers.get("traceparent").and_then(|v| v.to_str().ok()).expect("the backend gets a traceparent");
    assert_eq!(header.split('-').nth(1), Some(TRACE_ID), "the backend call is part of the client's trace: {header}");

    let refused = stateless(&url, "tools/call", json!({ "name": "echo", "arguments": { "text": "no token" } }), None).await;
    assert_eq!(refused.status, 401, "{refused:?}");
    assert_eq!(backend.calls_of("echo"), 1, "the refused call never reached the backend");

    let admin = format!("http://{}", management_addr(&gw.log()).expect("the management listener"));
    let text = reqwest::Client::builder().no_proxy().build().unwrap().get(format!("{admin}/metrics")).send().await.unwrap().text().await.unwrap();
    let ok_echo = [("server", "tools"), ("method", "tools/call"), ("tool", "echo"), ("outcome", "ok")];
    assert_eq!(sample(&text, "tollgate_requests_total", &ok_echo), Some(1.0), "a streamed list taught the tool's name:\n{text}");
    assert_eq!(sample(&text, "tollgate_requests_total", &[("server", "tools"), ("outcome", "unauthorized")]), Some(1.0), "{text}");
    assert_eq!(sample(&text, "tollgate_denials_total", &[("server", "tools"), ("reason", "unauthorized")]), Some(1.0), "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with("tollgate_requests_total") && l.contains("outcome=\"backend_failed\"")),
        "a refusal is no backend failure:\n{text}"
    );

    eventually(20, "the client span of the stateless call reaches the collector", || {
        collector.spans().iter().any(|s| s.kind == KIND_CLIENT && s.trace_id == TRACE_ID)
    })
    .await;
}
