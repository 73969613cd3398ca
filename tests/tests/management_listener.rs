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
