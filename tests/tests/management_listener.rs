//! The management API's listener: its own port, the admin token from the environment
//! (never the file), and the same graceful stop as the client listener.

use std::time::Duration;

use serde_json::Value;
use tollgate_tests::backend::Backend;
use tollgate_tests::gateway::{Gateway, run_tollgate};

const TOKEN: &str = "admin-token-for-tests";

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().expect("client")
}

#[tokio::test]
async fn admin_routes_need_the_admin_token() {
    let backend = Backend::rmcp().start().await;
    let gateway = Gateway::new().server("alpha", backend.url()).management(TOKEN).start().await;
    let url = format!("{}/api/servers", gateway.management());

    let none = http().get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert!(none.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));

    let wrong = http().get(&url).bearer_auth("admin-token-for-test").send().await.unwrap();
    assert_eq!(wrong.status(), 401);

    let ok = http().get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["servers"][0]["name"], "alpha", "{body}");
    assert!(!gateway.log().contains(TOKEN), "the token is never logged:\n{}", gateway.log());
}

#[tokio::test]
async fn the_management_api_is_not_served_on_the_client_listener() {
    let backend = Backend::rmcp().start().await;
    let gateway = Gateway::new().server("alpha", backend.url()).management(TOKEN).start().await;
    let r = http().get(format!("{}/api/servers", gateway.base())).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn serve_refuses_to_start_without_the_token_in_the_environment() {
    let config = "listen: 127.0.0.1:0\nmanagement:\n  listen: 127.0.0.1:0\n  admin_token_env: TOLLGATE_TEST_UNSET_TOKEN\nservers:\n  - name: a\n    backend:\n      http: http://127.0.0.1:9/mcp\n";
    let (status, out) = run_tollgate(&["serve"], config).await;
    assert!(!status.success(), "{out}");
    assert!(out.contains("TOLLGATE_TEST_UNSET_TOKEN, which is not set"), "{out}");
}

#[tokio::test]
async fn validate_names_a_bad_token_variable() {
    let config =
        "listen: 127.0.0.1:0\nmanagement:\n  admin_token_env: \"not a name\"\nservers:\n  - name: a\n    backend:\n      http: http://127.0.0.1:9/mcp\n";
    let (status, out) = run_tollgate(&["validate"], config).await;
    assert!(!status.success(), "{out}");
    assert!(out.contains("line 3: management.admin_token_env: 'not a name' is not an environment variable name"), "{out}");
}

#[tokio::test]
async fn sigterm_stops_both_listeners() {
    let backend = Backend::rmcp().start().await;
    let gateway = Gateway::new().server("alpha", backend.url()).management(TOKEN).shutdown_grace_ms(1000).start().await;
    gateway.terminate();
    let status = gateway.exit_within(Duration::from_secs(5)).await;
    let status = status.unwrap_or_else(|| panic!("still running:\n{}", gateway.log()));
    assert!(status.success(), "{status:?}\n{}", gateway.log());
}

#[tokio::test]
async fn validate_names_each_product_problem_with_its_line() {
    let config = "\
listen: 127.0.0.1:0
servers:
  - name: a
    backend: { http: \"http://127.0.0.1:9/mcp\" }
products:
  - name: p
    servers: [{ server: nope }]
  - name: p
    subscription_required: false
    approval_required: true
    servers: [{ server: a, tools: [] }]
";
    let (status, out) = run_tollgate(&["validate"], config).await;
    assert!(!status.success(), "{out}");
    for shown in [
        "line 7: products[0].servers[0].server: no server is named 'nope'",
        "line 6: products[0]: a product that requires subscriptions needs `management.data_dir`",
        "line 11: products[1].servers[0].tools: list at least one tool",
        "line 10: products[1].approval_required: approval needs subscriptions",
        "line 8: products[1].name: product name 'p' is already used",
    ] {
        assert!(out.contains(shown), "the output names `{shown}`:\n{out}");
    }
}

/// Every error of the management API is an RFC 9457 problem: `application/problem+json`, a
/// `type` documented in docs/management-api.md, the HTTP status repeated, a title and a detail,
/// and the places at fault where the body has some. Tried on each kind the API answers with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_management_error_is_a_documented_problem() {
    use serde_json::json;
    let backend = Backend::rmcp().start().await;
    let gateway = Gateway::new()
        .server("alpha", backend.url())
        .management_with(TOKEN, json!({ "read_only_token_env": "TOLLGATE_READ_TOKEN", "max_component_mb": 1 }))
        .env("TOLLGATE_READ_TOKEN", "read-token-for-tests")
        .top("products", json!([{ "name": "free", "subscription_required": false, "servers": [{ "server": "alpha" }] }]))
        .start()
        .await;
    let base = gateway.management();
    let documented = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/management-api.md")).unwrap();
    let server = json!({ "name": "alpha", "backend": { "http": backend.url() } });
    let etag = http().get(format!("{base}/api/servers/alpha")).bearer_auth(TOKEN).send().await.unwrap().headers()["etag"].to_str().unwrap().to_owned();
    let bad = json!({ "name": "alpha", "backend": { "http": "ftp://nowhere" } });
    let tries: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        ("an unknown route", http().get(format!("{base}/api/nothing")).bearer_auth(TOKEN), 404, "not-found"),
        ("a method the route does not take", http().patch(format!("{base}/api/servers")).bearer_auth(TOKEN), 405, "method-not-allowed"),
        ("no token", http().get(format!("{base}/api/servers")), 401, "unauthorized"),
        ("a change with the read-only token", http().delete(format!("{base}/api/servers/alpha")).bearer_auth("read-token-for-tests"), 403, "read-only"),
        ("an unknown server", http().get(format!("{base}/api/servers/nope")).bearer_auth(TOKEN), 404, "not-found"),
        ("a replace without If-Match", http().put(format!("{base}/api/servers/alpha")).bearer_auth(TOKEN).json(&server), 428, "if-match-required"),
        ("a stale If-Match", http().put(format!("{base}/api/servers/alpha")).bearer_auth(TOKEN).header("if-match", "\"stale\"").json(&server), 412, "stale"),
        ("an invalid server", http().put(format!("{base}/api/servers/alpha")).bearer_auth(TOKEN).header("if-match", &etag).json(&bad), 422, "invalid-config"),
        (
            "a body that is not JSON",
            http().post(format!("{base}/api/subscriptions")).bearer_auth(TOKEN).header("content-type", "application/json").body("{"),
            422,
            "invalid",
        ),
        (
            "a component of the wrong type",
            http().post(format!("{base}/api/components")).bearer_auth(TOKEN).header("content-type", "text/plain").body("x"),
            415,
            "unsupported-media-type",
        ),
        (
            "a component over the cap",
            http().post(format!("{base}/api/components")).bearer_auth(TOKEN).header("content-type", "application/wasm").body(vec![0u8; 2 << 20]),
            413,
            "too-large",
        ),
        (
            "a subscription without a data directory",
            http().post(format!("{base}/api/subscriptions")).bearer_auth(TOKEN).json(&json!({ "product": "free", "subscriber": "ann" })),
            409,
            "no-store",
        ),
        ("a server a product includes", http().delete(format!("{base}/api/servers/alpha")).bearer_auth(TOKEN).header("if-match", &etag), 409, "conflict"),
    ];
    for (what, req, status, kind) in tries {
        let r = req.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(r.status().as_u16(), status, "{what}");
        assert_eq!(r.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/problem+json"), "{what}");
        let body: Value = r.json().await.unwrap_or_else(|e| panic!("{what}: the problem is JSON: {e}"));
        let ty = format!("urn:tollgate:problem:{kind}");
        assert_eq!(body["type"], ty.as_str(), "{what}: {body}");
        assert!(documented.contains(&format!("`{ty}`")), "{what}: {ty} is documented");
        assert_eq!(body["status"], status, "{what}: {body}");
        assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()) && body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{what}: {body}");
        if kind == "invalid-config" {
            assert_eq!(body["errors"][0]["path"], "server.backend.http", "{what}: the place at fault: {body}");
        }
    }
}

/// A subscription action takes an optional body; one that is not JSON is a problem too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_optional_body_is_a_problem_too() {
    use serde_json::json;
    let backend = Backend::rmcp().start().await;
    let data = tollgate_tests::gateway::write_temp("keep", "").parent().unwrap().join("data");
    let gateway = Gateway::new()
        .server("alpha", backend.url())
        .management_with(TOKEN, json!({ "data_dir": data }))
        .top("products", json!([{ "name": "gold", "approval_required": true, "servers": [{ "server": "alpha" }] }]))
        .start()
        .await;
    let admin = tollgate_tests::admin::Admin::new(&gateway.management(), TOKEN);
    let sub = admin.post_if("/api/subscriptions", None, json!({ "product": "gold", "subscriber": "ann" })).await;
    let id = sub.body["id"].as_str().unwrap_or_else(|| panic!("{sub:?}")).to_owned();
    let r = http()
        .post(format!("{}/api/subscriptions/{id}/approve", gateway.management()))
        .bearer_auth(TOKEN)
        .header("if-match", sub.etag.unwrap())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "urn:tollgate:problem:invalid", "{body}");
}
