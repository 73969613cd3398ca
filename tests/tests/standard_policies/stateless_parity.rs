//! A stateless (2026-07-28) client meets the checks a session's client meets: a server sold
//! through a product takes its subscription key and offers only the product's tools, and a
//! preview share keeps each caller on one version.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};
use tollgate_tests::admin::Admin;
use tollgate_tests::gateway::management_addr;
use tollgate_tests::raw::{Raw, RawResponse};

use tollgate_tests::gateway::RunningGateway;
use tollgate_tests::recorder::Recorder;
use tollgate_tests::standard::FORBIDDEN;

const ADMIN: &str = "parity-admin-token";
const KEY_HEADER: &str = "Ocp-Apim-Subscription-Key";

async fn stateless(url: &str, method: &str, params: Value, headers: &[(&str, &str)]) -> RawResponse {
    let mut req = Raw::new(url).stateless(method, params);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    req.send().await
}

fn echo(text: &str) -> Value {
    json!({ "name": "echo", "arguments": { "text": text } })
}

#[tokio::test]
async fn stateless_requests_meet_products_and_versions_as_sessions_do() {
    let a = Recorder::start().await;
    let b = Recorder::start().await;
    let data = tollgate_tests::gateway::write_temp("keep", "").parent().expect("a dir").join("data");
    let config = json!({
        "listen": "127.0.0.1:0",
        "management": { "listen": "127.0.0.1:0", "admin_token_env": "TOLLGATE_ADMIN_TOKEN", "data_dir": data },
        "servers": [
            { "name": "docs", "backend": { "http": a.url } },
            { "name": "v", "versions": [{ "name": "v1", "backend": { "http": a.url } }, { "name": "v2", "backend": { "http": b.url } }],
              "default_version": "v1", "preview": { "version": "v2", "share": 50 } },
        ],
        "products": [{ "name": "paid", "servers": [{ "server": "docs", "tools": ["echo"] }] }],
    });
    let gw = RunningGateway::from_config(config, &[("TOLLGATE_ADMIN_TOKEN", ADMIN)]).await;
    let admin = Admin::new(&format!("http://{}", management_addr(&gw.log()).expect("the management API")), ADMIN);
    let sub = admin.subscribe("paid", "ops@example.com").await;
    let docs = gw.mcp_url("docs");

    // The product's guard: no key, then its key; only its tools, listed and called.
    let none = stateless(&docs, "tools/call", echo("no key"), &[]).await;
    assert_eq!((none.status, none.error_code()), (401, -32011), "{none:?}");
    let keyed = [(KEY_HEADER, sub.primary.as_str())];
    let ok = stateless(&docs, "tools/call", echo("keyed"), &keyed).await;
    assert_eq!(ok.message()["result"]["structuredContent"]["text"], "keyed", "{ok:?}");
    let other = stateless(&docs, "tools/call", json!({ "name": "fragile", "arguments": {} }), &keyed).await;
    assert_eq!(other.error_code(), FORBIDDEN, "{other:?}");
    assert_eq!(a.calls_of("fragile"), 0, "a tool outside the product never reaches the backend");
    let listed = stateless(&docs, "tools/list", json!({}), &keyed).await;
    let names: Vec<Value> = listed.message()["result"]["tools"].as_array().expect("a list").iter().map(|t| t["name"].clone()).collect();
    assert_eq!(names, [json!("echo")], "the product's tools only: {listed:?}");
    let seen = a.seen("tools/call").pop().expect("a call");
    assert!(seen.headers.get(KEY_HEADER).is_none(), "the key never reaches the backend");

    // A preview share: each caller stays on one version, and the share splits the callers.
    let v = gw.mcp_url("v");
    for n in 0..16 {
        let claims = B64.encode(json!({ "iss": "https://idp", "sub": format!("caller-{n}") }).to_string());
        let bearer = format!("Bearer h.{claims}.s");
        let text = format!("caller-{n}");
        for _ in 0..3 {
            let r = stateless(&v, "tools/call", echo(&text), &[("authorization", &bearer)]).await;
            assert_eq!(r.status, 200, "{r:?}");
        }
        let (on_a, on_b) = (count(&a, &text), count(&b, &text));
        assert!((on_a, on_b) == (3, 0) || (on_a, on_b) == (0, 3), "{text} is split over versions: v1 {on_a}, v2 {on_b}");
    }
    let previewed = (0..16).filter(|n| count(&b, &format!("caller-{n}")) > 0).count();
    assert!((1..16).contains(&previewed), "the share splits callers between versions: {previewed} of 16 on the preview");
}

fn count(r: &Recorder, text: &str) -> usize {
    r.seen("tools/call").iter().filter(|s| s.params["arguments"]["text"] == text).count()
}
