//! The routes the console reads, with the real binary, a real backend and a real JWKS: a
//! backend's tools as the operator sees them, live traffic totals, the playground's calls
//! through the client listener (each door's guard applies to them, and their policy steps
//! come back), and the console's own pages served from the binary.

use serde_json::{Value, json};
use tollgate_tests::admin::Admin;
use tollgate_tests::backend::{Backend, RunningBackend};
use tollgate_tests::gateway::RunningGateway;
use tollgate_tests::idp::{Idp, Key, now};

const ADMIN: &str = "console-api-admin-token";
const READER: &str = "console-api-read-only-token";

struct World {
    _backend: RunningBackend,
    gw: RunningGateway,
    admin: Admin,
    key: Key,
    idp: Idp,
}

/// `guarded`: behind `jwt`; `sold`: only through product `paid` (its `echo` alone); `down`:
/// a backend that is not there; `docs`: versions v1 (the default) and v2.
async fn world() -> World {
    let backend = Backend::rmcp().start().await;
    let idp = Idp::start().await;
    let key = Key::rsa("k1");
    idp.publish(&[&key]);
    let data = tollgate_tests::gateway::write_temp("keep", "").parent().expect("a dir").join("data");
    let config = json!({
        "listen": "127.0.0.1:0",
        "management": { "listen": "127.0.0.1:0", "admin_token_env": "TOLLGATE_ADMIN_TOKEN", "read_only_token_env": "TOLLGATE_READ_TOKEN", "data_dir": data },
        "servers": [
            { "name": "guarded", "backend": { "http": backend.url() }, "policies": [idp.jwt_binding("tools")] },
            { "name": "sold", "backend": { "http": backend.url() } },
            { "name": "down", "backend": { "http": "http://127.0.0.1:1/mcp" } },
            { "name": "docs", "versions": [{ "name": "v1", "backend": { "http": backend.url() } }, { "name": "v2", "backend": { "http": backend.url() } }] },
        ],
        "products": [{ "name": "paid", "servers": [{ "server": "sold", "tools": ["echo"] }] }],
    });
    let gw = RunningGateway::from_config(config, &[("TOLLGATE_ADMIN_TOKEN", ADMIN), ("TOLLGATE_READ_TOKEN", READER)]).await;
    let admin = Admin::new(&gw.management(), ADMIN);
    World { _backend: backend, gw, admin, key, idp }
}

impl World {
    fn token(&self) -> String {
        self.key.sign(&json!({ "iss": self.idp.issuer, "sub": "alice", "aud": "tools", "iat": now(), "exp": now() + 600 }))
    }

    async fn call(&self, body: Value) -> Value {
        let a = self.admin.post("/api/playground/call", body).await;
        assert_eq!(a.status, 200, "{a:?}");
        a.body
    }

    async fn listing(&self, body: Value) -> Value {
        let a = self.admin.post("/api/playground/tools", body).await;
        assert_eq!(a.status, 200, "{a:?}");
        a.body
    }

    async fn traffic(&self, server: &str) -> (u64, u64) {
        let a = self.admin.get("/api/traffic").await;
        assert_eq!(a.status, 200, "{a:?}");
        let s = &a.body["servers"][server];
        (s["requests"].as_u64().unwrap_or(0), s["errors"].as_u64().unwrap_or(0))
    }
}

/// The verdicts of `method`'s step, as `name:verdict`.
fn verdicts(answer: &Value, method: &str) -> Vec<String> {
    let step = answer["steps"].as_array().expect("steps").iter().find(|s| s["method"] == method).unwrap_or_else(|| panic!("no {method} step: {answer}"));
    step["policies"].as_array().expect("policies").iter().map(|p| format!("{}:{}", p["name"].as_str().unwrap(), p["verdict"].as_str().unwrap())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_of_each_backend_as_the_operator_sees_them() {
    let w = world().await;
    // The chain does not run: a jwt policy does not hide the tools from the operator.
    let guarded = w.admin.get("/api/servers/guarded/tools").await;
    assert_eq!((guarded.status, &guarded.body["reachable"]), (200, &json!(true)), "{guarded:?}");
    let tools = guarded.body["tools"].as_array().expect("tools");
    let echo = tools.iter().find(|t| t["name"] == "echo").expect("echo listed");
    assert_eq!(echo["inputSchema"]["properties"]["text"]["type"], "string", "{echo}");
    assert!(tools.iter().any(|t| t["name"] == "whoami"));

    let down = w.admin.get("/api/servers/down/tools").await;
    assert_eq!((down.status, &down.body["reachable"], &down.body["tools"]), (200, &json!(false), &json!([])), "{down:?}");
    assert!(down.body["error"].as_str().is_some_and(|e| !e.is_empty()), "{down:?}");

    let none = w.admin.get("/api/servers/nope/tools").await;
    assert_eq!((none.status, &none.body["type"]), (404, &json!("urn:tollgate:problem:not-found")), "{none:?}");
    let no_version = w.admin.get("/api/servers/guarded/tools?version=v9").await;
    assert_eq!(no_version.status, 404, "{no_version:?}");

    assert_eq!(w.admin.get("/api/whoami").await.body, json!({ "role": "admin" }));
    let reader = Admin::new(&w.gw.management(), READER);
    assert_eq!(reader.get("/api/whoami").await.body, json!({ "role": "read-only" }));
    assert_eq!(reader.get("/api/servers/guarded/tools").await.status, 200, "the read-only token reads");
    let call = reader.post("/api/playground/call", json!({ "server": "guarded", "tool": "echo" })).await;
    assert_eq!((call.status, &call.body["type"]), (403, &json!("urn:tollgate:problem:read-only")), "{call:?}");

    // Admin routes: no token, no tools, no traffic, no calls.
    let anonymous = Admin::new(&w.gw.management(), "not-the-token");
    for path in ["/api/servers/guarded/tools", "/api/traffic", "/api/whoami"] {
        assert_eq!(anonymous.get(path).await.status, 401, "{path}");
    }
    let call = anonymous.post("/api/playground/call", json!({ "server": "guarded", "tool": "echo" })).await;
    assert_eq!(call.status, 401, "{call:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playground_meets_the_chain_and_shows_each_step() {
    let w = world().await;
    let before = w.traffic("guarded").await;

    let refused = w.call(json!({ "server": "guarded", "tool": "echo", "arguments": { "text": "hi" } })).await;
    assert_eq!(refused["status"], 401, "{refused}");
    assert_eq!(refused["response"]["error"]["code"], tollgate_vocabulary::code::UNAUTHORIZED, "{refused}");
    assert_eq!(verdicts(&refused, "initialize"), ["jwt:deny"], "{refused}");
    assert!(refused["steps"].as_array().unwrap().iter().all(|s| s["method"] != "tools/call"), "refused at initialize: {refused}");
    let after_refusal = w.traffic("guarded").await;
    assert_eq!(after_refusal.1 - before.1, 1, "the refusal is an error: {before:?} {after_refusal:?}");

    let answered = w.call(json!({ "server": "guarded", "tool": "echo", "arguments": { "text": "hi" }, "bearer_token": w.token() })).await;
    assert_eq!(answered["status"], 200, "{answered}");
    assert_eq!(answered["response"]["result"]["content"][0]["text"], "hi", "{answered}");
    assert_eq!(verdicts(&answered, "initialize"), ["jwt:continue"], "{answered}");
    assert_eq!(verdicts(&answered, "tools/call"), ["jwt:continue"], "{answered}");
    assert!(answered["duration_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{answered}");
    let after = w.traffic("guarded").await;
    assert!(after.0 - after_refusal.0 >= 2 && after.1 == after_refusal.1, "initialize and tools/call counted, no error: {after_refusal:?} {after:?}");

    // A tool error is an answer, shown as the backend gave it.
    let invalid = w.call(json!({ "server": "guarded", "tool": "nope", "bearer_token": w.token() })).await;
    assert!(invalid["response"]["error"]["code"].is_i64() || invalid["response"]["result"]["isError"] == true, "{invalid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playground_passes_the_products_door_like_any_client() {
    let w = world().await;
    let no_key = w.call(json!({ "server": "sold", "tool": "echo", "arguments": { "text": "x" } })).await;
    assert_eq!(no_key["status"], 401, "a server sold in a product needs a key: {no_key}");
    let step = &no_key["steps"][0];
    assert_eq!((&step["method"], &step["outcome"], &step["policies"]), (&json!("initialize"), &json!("unauthorized"), &json!([])), "{no_key}");

    let sub = w.admin.subscribe("paid", "team@example.com").await;
    assert_eq!(sub.state, "active");
    let with_key = w.call(json!({ "server": "sold", "tool": "echo", "arguments": { "text": "x" }, "subscription_key": sub.primary })).await;
    assert_eq!((&with_key["status"], &with_key["response"]["result"]["content"][0]["text"]), (&json!(200), &json!("x")), "{with_key}");
    // whoami is not in the product: refused at the product's tool check.
    let outside = w.call(json!({ "server": "sold", "tool": "whoami", "subscription_key": sub.primary })).await;
    assert!(outside["response"]["error"]["code"].is_i64(), "a tool outside the product is refused: {outside}");

    let unknown = w.admin.post("/api/playground/call", json!({ "server": "nope", "tool": "echo" })).await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    let bad = w.admin.post("/api/playground/call", json!({ "server": "sold", "tool": "echo", "extra": 1 })).await;
    assert_eq!((bad.status, &bad.body["type"]), (422, &json!("urn:tollgate:problem:invalid")), "{bad:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_from_the_binary() {
    let w = world().await;
    let http = reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let base = w.gw.management();
    let moved = http.get(format!("{base}/ui")).send().await.unwrap();
    assert_eq!((moved.status().as_u16(), moved.headers()["location"].to_str().unwrap()), (308, "/ui/"));

    // No token needed for the pages: they ask for it.
    let index = http.get(format!("{base}/ui/")).send().await.unwrap();
    assert_eq!(index.status(), 200, "the console is built into the binary (scripts/setup.sh builds console/)");
    assert!(index.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = index.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    let html = index.text().await.unwrap();
    let script = html.split("src=\"").nth(1).and_then(|s| s.split('"').next()).expect("index.html names its script");
    assert!(script.starts_with("/ui/assets/"), "{script}");
    let js = http.get(format!("{base}{script}")).send().await.unwrap();
    assert_eq!(js.status(), 200);
    assert!(js.headers()["content-type"].to_str().unwrap().contains("javascript"));
    assert!(js.headers()["cache-control"].to_str().unwrap().contains("immutable"));

    let missing = http.get(format!("{base}/ui/assets/nope.js")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_is_counted_per_server_and_per_version() {
    let w = world().await;
    let answered = w.call(json!({ "server": "docs", "version": "v2", "tool": "echo", "arguments": { "text": "v2" } })).await;
    assert_eq!(answered["response"]["result"]["content"][0]["text"], "v2", "{answered}");
    let refused = w.call(json!({ "server": "docs", "version": "v2", "tool": "nope" })).await;
    assert!(refused["response"]["error"].is_object() || refused["response"]["result"]["isError"] == true, "{refused}");

    let a = w.admin.get("/api/traffic").await;
    let docs = &a.body["servers"]["docs"];
    let v2 = &docs["versions"]["v2"];
    assert!(v2["requests"].as_u64().is_some_and(|n| n >= 4), "initialize, initialized and tools/call, twice: {docs}");
    assert_eq!(docs["requests"], v2["requests"], "every request went to v2: {docs}");
    assert!(docs["versions"].get("v1").is_none(), "v1 served nothing: {docs}");
    assert!(a.body["servers"]["guarded"].get("versions").is_none(), "a server without versions has no per-version totals: {}", a.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playground_lists_the_tools_a_caller_is_shown() {
    let w = world().await;
    let names = |a: &Value| -> Vec<String> {
        a["response"]["result"]["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("a tool list: {a}"))
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    // The product sells `echo` alone: its caller is shown that, though the backend has more.
    let sub = w.admin.subscribe("paid", "lister@example.com").await;
    let sold = w.listing(json!({ "server": "sold", "subscription_key": sub.primary })).await;
    assert_eq!(names(&sold), ["echo"], "{sold}");
    assert_eq!(verdicts(&sold, "tools/list"), Vec::<String>::new(), "{sold}");
    // The chain refuses a caller without a token, as it would any client.
    let refused = w.listing(json!({ "server": "guarded" })).await;
    assert_eq!((&refused["status"], &refused["response"]["error"]["code"]), (&json!(401), &json!(tollgate_vocabulary::code::UNAUTHORIZED)), "{refused}");
    let shown = w.listing(json!({ "server": "guarded", "bearer_token": w.token() })).await;
    assert!(names(&shown).contains(&"whoami".to_owned()), "{shown}");
    assert_eq!(verdicts(&shown, "tools/list"), ["jwt:continue"], "{shown}");
}
