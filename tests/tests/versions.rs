//! Server versions through the real binary: two versions side by side on two backends whose
//! tools differ, reached by path and by the default; a preview share and a chosen
//! subscription; promote under a live session; retire; export then apply; validation.

use std::path::PathBuf;

use serde_json::{Value, json};
use tollgate_tests::admin::{Admin, Answer};
use tollgate_tests::backend::{Backend, RunningBackend};
use tollgate_tests::client::Client;
use tollgate_tests::gateway::{Gateway, RunningGateway, run_tollgate, write_temp};
use tollgate_tests::raw::{Raw, initialize_request, request};

const TOKEN: &str = "versions-admin-token";

/// `v1` lacks the `meta` tool; each answers `whoami` with its own name.
struct Backends {
    v1: RunningBackend,
    v2: RunningBackend,
}

async fn backends() -> Backends {
    Backends { v1: Backend::rmcp().named("v1").without(&["meta"]).start().await, v2: Backend::rmcp().named("v2").start().await }
}

fn data_dir() -> PathBuf {
    let dir = write_temp("keep", "").parent().expect("a dir").join("data");
    std::fs::create_dir_all(&dir).expect("data dir");
    dir
}

/// Server `docs` in versions `v1` (the default) and `v2`, with `preview` if given; product
/// `open` serves callers without a key, product `pro` those with one.
fn config(b: &Backends, preview: Option<Value>, data: &std::path::Path) -> Gateway {
    let mut docs = json!({
        "name": "docs",
        "description": "The documentation",
        "versions": [
            { "name": "v1", "backend": { "http": b.v1.url() } },
            { "name": "v2", "description": "The documentation, with meta", "backend": { "http": b.v2.url() } },
        ],
        "default_version": "v1",
    });
    if let Some(p) = preview {
        docs["preview"] = p;
    }
    Gateway::new().server_entry(docs).management_with(TOKEN, json!({ "data_dir": data })).top(
        "products",
        json!([
            { "name": "open", "subscription_required": false, "servers": [{ "server": "docs" }] },
            { "name": "pro", "servers": [{ "server": "docs" }] },
        ]),
    )
}

fn url(g: &RunningGateway, path: &str) -> String {
    format!("{}{path}", g.base())
}

/// Reads the versions of `docs`, then runs `change` on them with the ETag just read.
async fn change(admin: &Admin, path: &str, body: Option<Value>, put: bool) -> Answer {
    let etag = admin.get("/api/servers/docs/versions").await.etag.expect("an ETag");
    let path = format!("/api/servers/docs{path}");
    match (put, body) {
        (true, Some(b)) => admin.put_if(&path, Some(&etag), b).await,
        (true, None) => admin.delete_if(&path, Some(&etag)).await,
        (false, b) => admin.post_if(&path, Some(&etag), b.unwrap_or(Value::Null)).await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_versions_side_by_side_by_path_and_the_default_at_the_server_path() {
    let b = backends().await;
    let g = config(&b, None, &data_dir()).start().await;

    let v1 = Client::connect(&url(&g, "/docs/v1/mcp")).await;
    let v2 = Client::connect(&url(&g, "/docs/v2/mcp")).await;
    assert_eq!(v1.whoami().await, "v1");
    assert_eq!(v2.whoami().await, "v2");
    assert!(!v1.list_tools().await.contains(&"meta".to_owned()), "v1's own tools");
    assert!(v2.list_tools().await.contains(&"meta".to_owned()), "v2's own tools");
    assert_eq!(Client::reached(&g.url("/docs/mcp")).await, "v1", "the default");

    // A session belongs to its version: another version's path does not know it.
    let raw_v1 = Raw::new(&url(&g, "/docs/v1/mcp"));
    let session = raw_v1.initialize().await;
    let elsewhere = Raw::new(&url(&g, "/docs/v2/mcp")).post_json(&request(2, "tools/list", json!({}))).session(&session).send().await;
    assert_eq!(elsewhere.status, 404, "{elsewhere:?}");
    let via_server = Raw::new(&url(&g, "/docs/mcp")).post_json(&request(3, "tools/list", json!({}))).session(&session).send().await;
    assert_eq!(via_server.status, 200, "the server's own path reaches the session's version: {via_server:?}");

    let unknown = Raw::new(&url(&g, "/docs/v9/mcp")).post_json(&initialize_request(1)).send().await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    assert!(unknown.error_message().contains("no version 'v9' (its versions: v1, v2)"), "{unknown:?}");

    // The legacy SSE transport at a version's path announces that version's message path.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut sse = http.get(url(&g, "/docs/v2/sse")).header("accept", "text/event-stream").send().await.unwrap();
    assert_eq!(sse.status(), 200);
    let mut text = String::new();
    while !text.contains("sessionId=") {
        let chunk = tollgate_tests::within(10, "the endpoint event", sse.chunk()).await.unwrap().expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("data: /docs/v2/message?sessionId="), "{text}");
    drop(sse);

    // Discovery lists each version with its own URLs, and which one is the default.
    let listed: Value = http.get(url(&g, "/v0/servers")).send().await.unwrap().json().await.unwrap();
    let versions: Vec<(String, String, bool)> = listed["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let meta = &s["_meta"]["io.github.tollgate/gateway"];
            (s["server"]["version"].as_str().unwrap().to_owned(), s["server"]["remotes"][0]["url"].as_str().unwrap().to_owned(), meta["default"] == true)
        })
        .collect();
    assert_eq!(versions, [("v1".into(), url(&g, "/docs/v1/mcp"), true), ("v2".into(), url(&g, "/docs/v2/mcp"), false)], "{listed}");
    assert_eq!(listed["servers"][1]["server"]["description"], "The documentation, with meta");

    // Metrics say which version served.
    let metrics = http.get(format!("{}/metrics", g.management())).send().await.unwrap().text().await.unwrap();
    for v in ["v1", "v2"] {
        assert!(
            metrics.lines().any(|l| l.starts_with("tollgate_requests")
                && l.contains(r#"server="docs""#)
                && l.contains(&format!(r#"version="{v}""#))
                && l.contains(r#"method="tools/call""#)),
            "no tools/call line for {v}:\n{metrics}"
        );
    }
    v1.close().await;
    v2.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_share_and_chosen_subscriptions_reach_the_preview() {
    let b = backends().await;
    let g = config(&b, Some(json!({ "version": "v2", "share": 100 })), &data_dir()).start().await;
    let admin = Admin::new(&g.management(), TOKEN);
    for _ in 0..3 {
        assert_eq!(Client::reached(&g.url("/docs/mcp")).await, "v2", "a share of 100: every new session");
    }
    assert_eq!(Client::reached(&g.url("/docs/v1/mcp")).await, "v1", "a version's own path is not routed");

    let chosen = admin.subscribe("pro", "tester@example.com").await;
    let other = admin.subscribe("pro", "someone@example.com").await;
    let set = change(&admin, "/preview", Some(json!({ "version": "v2", "share": 0, "subscriptions": [chosen.id] })), true).await;
    assert_eq!(set.status, 200, "{set:?}");
    for _ in 0..3 {
        assert_eq!(Client::reached(&g.url("/docs/mcp")).await, "v1", "a share of 0: no new session");
    }
    let tester = Client::connect_with_key(&url(&g, "/docs/mcp"), &chosen.primary).await;
    assert_eq!(tester.whoami().await, "v2", "the chosen subscription reaches the preview");
    let someone = Client::connect_with_key(&url(&g, "/docs/mcp"), &other.primary).await;
    assert_eq!(someone.whoami().await, "v1");

    let cleared = change(&admin, "/preview", None, true).await;
    assert_eq!(cleared.status, 200, "{cleared:?}");
    assert_eq!(cleared.body["routing"]["preview"], Value::Null);
    let later = Client::connect_with_key(&url(&g, "/docs/mcp"), &chosen.primary).await;
    assert_eq!(later.whoami().await, "v1", "no preview any more");
    assert_eq!(tester.whoami().await, "v2", "the live session stays on its version");

    let bad = change(&admin, "/preview", Some(json!({ "version": "v1", "share": 101 })), true).await;
    assert_eq!(bad.status, 422, "{bad:?}");
    let message = bad.body["detail"].as_str().unwrap();
    assert!(message.contains("routing.preview.version: version 'v1' is the default already"), "{message}");
    assert!(message.contains("routing.preview.share: 101 is not a percentage"), "{message}");
    for c in [tester, someone, later] {
        c.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_moves_new_sessions_and_a_live_session_keeps_its_version() {
    let b = backends().await;
    let g = config(&b, None, &data_dir()).start().await;
    let admin = Admin::new(&g.management(), TOKEN);
    let live = Client::connect(&url(&g, "/docs/mcp")).await;
    assert_eq!(live.whoami().await, "v1");

    let read = admin.get("/api/servers/docs/versions").await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body["routing"]["default_version"], "v1");
    let etag = read.etag.expect("an ETag");
    let missing = admin.post_if("/api/servers/docs/versions/v2/promote", None, Value::Null).await;
    assert_eq!(missing.status, 428, "{missing:?}");
    let promoted = admin.post_if("/api/servers/docs/versions/v2/promote", Some(&etag), Value::Null).await;
    assert_eq!(promoted.status, 200, "{promoted:?}");
    assert_eq!(promoted.body["routing"]["default_version"], "v2");
    let stale = admin.post_if("/api/servers/docs/versions/v1/promote", Some(&etag), Value::Null).await;
    assert_eq!(stale.status, 412, "the ETag read before the promote: {stale:?}");

    assert_eq!(Client::reached(&g.url("/docs/mcp")).await, "v2", "new sessions reach the new default");
    let session = live.session_id();
    assert_eq!(live.whoami().await, "v1", "the live session keeps its version");
    assert_eq!(live.session_ids(), [session], "on the same session");
    live.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retired_version_answers_410_naming_the_version_to_use_and_it_survives_a_restart() {
    let b = backends().await;
    let data = data_dir();
    let cfg = config(&b, None, &data);
    let g = cfg.clone().start().await;
    let admin = Admin::new(&g.management(), TOKEN);
    let raw = Raw::new(&url(&g, "/docs/v1/mcp"));
    let session = raw.initialize().await;

    let refused = change(&admin, "/versions/v1/retire", None, false).await;
    assert_eq!(refused.status, 409, "the default cannot be retired: {refused:?}");
    assert!(refused.body["detail"].as_str().unwrap().contains("promote another version"), "{refused:?}");
    assert_eq!(change(&admin, "/versions/v2/promote", None, false).await.status, 200);
    let retired = change(&admin, "/versions/v1/retire", None, false).await;
    assert_eq!(retired.status, 200, "{retired:?}");

    let fresh = raw.post_json(&initialize_request(1)).send().await;
    assert_eq!(fresh.status, 410, "{fresh:?}");
    assert_eq!(fresh.error_code(), -32013);
    assert!(fresh.error_message().contains("version 'v1' of server 'docs' is retired; use version 'v2' (/docs/v2/mcp"), "{fresh:?}");
    let live = raw.post_json(&request(2, "tools/list", json!({}))).session(&session).send().await;
    assert_eq!(live.status, 410, "a live session on it is told too: {live:?}");
    assert!(live.error_message().contains("use version 'v2'"), "{live:?}");
    assert_eq!(Client::reached(&g.url("/docs/mcp")).await, "v2");

    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let listed: Value = http.get(url(&g, "/v0/servers")).send().await.unwrap().json().await.unwrap();
    let listed: Vec<&str> = listed["servers"].as_array().unwrap().iter().map(|s| s["server"]["version"].as_str().unwrap()).collect();
    assert_eq!(listed, ["v2"], "a retired version is not offered");

    // A kill -9: what the API acknowledged is kept in data_dir and wins over the file.
    g.kill_9();
    assert!(g.exit_within(std::time::Duration::from_secs(10)).await.is_some());
    let again = cfg.start().await;
    assert_eq!(Client::reached(&again.url("/docs/mcp")).await, "v2", "the promote survived");
    let gone = Raw::new(&url(&again, "/docs/v1/mcp")).post_json(&initialize_request(1)).send().await;
    assert_eq!(gone.status, 410, "the retirement survived: {gone:?}");

    let admin = Admin::new(&again.management(), TOKEN);
    assert_eq!(change(&admin, "/versions/v1/reinstate", None, false).await.status, 200);
    assert_eq!(Client::reached(&again.url("/docs/v1/mcp")).await, "v1", "reinstated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateless_request_is_routed_by_the_same_rule_one_by_one() {
    let b = backends().await;
    // No products: requests of the stateless revision are for servers in none.
    let docs = json!({
        "name": "docs",
        "versions": [{ "name": "v1", "backend": { "http": b.v1.url() } }, { "name": "v2", "backend": { "http": b.v2.url() } }],
        "preview": { "version": "v2", "share": 100 },
    });
    let g = Gateway::new().server_entry(docs).start().await;
    let stateless = |path: &str, id: i64| {
        let msg = request(id, "tools/list", json!({ "_meta": { "io.modelcontextprotocol/protocolVersion": "2026-07-28" } }));
        Raw::new(&url(&g, path)).post_json(&msg).header("mcp-protocol-version", "2026-07-28").header("mcp-method", "tools/list").send()
    };
    let stateless_at = |b: &RunningBackend| b.seen().headers().iter().filter(|h| h.get("mcp-method").is_some()).count();
    stateless("/docs/mcp", 1).await;
    stateless("/docs/mcp", 2).await;
    assert_eq!((stateless_at(&b.v1), stateless_at(&b.v2)), (0, 2), "a share of 100: each request reaches the preview");
    stateless("/docs/v1/mcp", 3).await;
    assert_eq!((stateless_at(&b.v1), stateless_at(&b.v2)), (1, 2), "a version's own path");
}

/// Runs `tollgate ARGS --management URL` with the admin token in its environment.
async fn tollgate(args: &[&str], management: &str) -> (bool, String, String) {
    tollgate_tests::gateway::run_remote(args, management, TOKEN).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_apply_is_no_difference_and_a_routing_change_applies_live() {
    let b = backends().await;
    let g = config(&b, Some(json!({ "version": "v2", "share": 0 })), &data_dir()).start().await;
    let mgmt = g.management();

    let (ok, exported, err) = tollgate(&["export"], &mgmt).await;
    assert!(ok, "{err}");
    assert!(exported.contains("default_version: v1") && exported.contains("name: v2"), "{exported}");
    let file = write_temp("exported.yaml", &exported);
    let (ok, out, err) = tollgate(&["apply", file.to_str().unwrap()], &mgmt).await;
    assert!(ok, "{out}{err}");
    assert_eq!(out.trim(), "no difference");

    // The file promotes v2 (which ends its preview) and retires v1: applied live, no restart.
    let mut doc: Value = serde_norway::from_str(&exported).expect("the export is YAML");
    let docs = &mut doc["servers"][0];
    docs["default_version"] = json!("v2");
    docs.as_object_mut().unwrap().remove("preview");
    docs["versions"][0]["retired"] = json!(true);
    let changed = serde_norway::to_string(&doc).unwrap();
    let changed_file = write_temp("changed.yaml", &changed);
    let (ok, out, err) = tollgate(&["apply", "--dry-run", changed_file.to_str().unwrap()], &mgmt).await;
    assert!(!ok, "a dry run that finds a difference exits 1: {out}{err}");
    assert_eq!(out.trim(), "~ server docs versions: default v2, no preview, retired v1", "{changed}");
    assert_eq!(Client::reached(&g.url("/docs/mcp")).await, "v1", "a dry run changes nothing");

    let (ok, out, err) = tollgate(&["apply", changed_file.to_str().unwrap()], &mgmt).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("applied"), "{out}");
    assert_eq!(Client::reached(&g.url("/docs/mcp")).await, "v2");
    let (_, out, _) = tollgate(&["apply", changed_file.to_str().unwrap()], &mgmt).await;
    assert_eq!(out.trim(), "no difference");
    let (ok, again, _) = tollgate(&["export"], &mgmt).await;
    assert!(ok && again.contains("retired: true"), "{again}");
}

#[tokio::test]
async fn validate_refuses_a_default_that_names_no_version_with_its_place() {
    let text = "\
servers:
  - name: docs
    versions:
      - name: v1
        backend: { http: http://127.0.0.1:9/mcp }
      - name: v2
        backend: { http: http://127.0.0.1:9/mcp }
    default_version: v3
";
    let (status, out) = run_tollgate(&["validate"], text).await;
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(out.contains("line 8: servers[0].default_version: no version is named 'v3' (versions: v1, v2)"), "{out}");
    let (status, out) = run_tollgate(&["validate"], &text.replace("v3", "v2")).await;
    assert!(status.success(), "{out}");
}

/// A policy bound to each version reads which version serves the exchange (`server-version`
/// in the contract), so one component can hold rules that differ between versions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_is_told_which_version_serves_the_exchange() {
    let b = backends().await;
    let tag = json!([{ "policy": format!("{}/gatekeeper.wasm", env!("TOLLGATE_GUESTS")), "config": { "version_header": true } }]);
    let docs = json!({
        "name": "docs",
        "versions": [
            { "name": "v1", "backend": { "http": b.v1.url() }, "policies": tag },
            { "name": "v2", "backend": { "http": b.v2.url() }, "policies": tag },
        ],
        "default_version": "v2",
    });
    let g = Gateway::new().server_entry(docs).start().await;
    for (path, backend, version) in [("/docs/v1/mcp", &b.v1, "v1"), ("/docs/mcp", &b.v2, "v2")] {
        let c = Client::connect(&url(&g, path)).await;
        c.echo("hi").await;
        let told: Vec<String> = backend.seen().headers().iter().filter_map(|h| h.get("x-server-version")).map(|v| v.to_str().unwrap().to_owned()).collect();
        assert!(!told.is_empty() && told.iter().all(|v| v == version), "{path}: the backend was told {told:?}");
    }
}
