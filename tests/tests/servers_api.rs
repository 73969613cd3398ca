//! Servers and versions through the management API, with the real binary, real backends and
//! a real MCP client: a server created by PUT serves at once and survives a kill -9; a
//! replaced backend serves new sessions while live ones finish where they began; a deleted
//! server stays deleted; versions are added and deleted under live sessions; `export` then
//! `apply` is no difference, and a file that adds and removes servers is applied live.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use tollgate_tests::admin::{Admin, Answer};
use tollgate_tests::backend::Backend;
use tollgate_tests::client::Client;
use tollgate_tests::gateway::{Gateway, RunningGateway, run_remote, write_temp};
use tollgate_tests::raw::{Raw, initialize_request, request};

const TOKEN: &str = "servers-api-admin-token";

fn data_dir() -> PathBuf {
    let dir = write_temp("keep", "").parent().expect("a dir").join("data");
    std::fs::create_dir_all(&dir).expect("data dir");
    dir
}

fn message(a: &Answer) -> &str {
    a.body["detail"].as_str().unwrap_or_default()
}

/// The status of a request made in session `sid` through `path`.
async fn in_session(g: &RunningGateway, path: &str, sid: &str) -> u16 {
    Raw::new(&format!("{}{path}", g.base())).post_json(&request(9, "tools/list", json!({}))).session(sid).send().await.status
}

/// The status of an `initialize` at server `name`.
async fn opened(g: &RunningGateway, name: &str) -> u16 {
    Raw::new(&g.mcp_url(name)).post_json(&initialize_request(1)).send().await.status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_created_replaced_and_deleted_through_the_api_survives_kill_9() {
    let (a, b, c) = (Backend::rmcp().named("a").start().await, Backend::rmcp().named("b").start().await, Backend::rmcp().named("c").start().await);
    let config = Gateway::new().server("alpha", a.url()).management_with(TOKEN, json!({ "data_dir": data_dir() }));
    let gateway = config.clone().start().await;
    let admin = Admin::new(&gateway.management(), TOKEN);

    // Refusals first: each in the words of `tollgate validate`, and nothing is created.
    let bad = admin.put_if("/api/servers/beta", None, json!({ "name": "beta", "backend": { "http": "ftp://example.com/mcp" } })).await;
    assert_eq!(bad.status, 422, "{bad:?}");
    assert_eq!(message(&bad), "server.backend.http: 'ftp://example.com/mcp' must be an http or https URL, not ftp");
    assert_eq!(bad.body["errors"][0]["path"], "server.backend.http");
    let mismatch = admin.put_if("/api/servers/beta", None, json!({ "name": "gamma", "backend": { "http": b.url() } })).await;
    assert_eq!(mismatch.status, 422, "{mismatch:?}");
    let policy = admin
        .put_if(
            "/api/servers/beta",
            None,
            json!({ "name": "beta", "backend": { "http": b.url() }, "policies": [{ "policy": "rate-limit", "config": { "nonsense": 1 } }] }),
        )
        .await;
    assert_eq!(policy.status, 422, "a chain the policy refuses refuses the server: {policy:?}");
    assert!(message(&policy).starts_with("policies[0].config: policy 'rate-limit' refused its config"), "{policy:?}");
    assert_eq!(admin.get("/api/servers/beta").await.status, 404);

    let created = admin.put_if("/api/servers/beta", None, json!({ "name": "beta", "description": "Made live", "backend": { "http": b.url() } })).await;
    assert_eq!(created.status, 201, "{created:?}");
    let etag = created.etag.clone().expect("an ETag");
    let live = Client::connect(&gateway.mcp_url("beta")).await;
    assert_eq!(live.whoami().await, "b", "served at once");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let listed: Value = http.get(format!("{}/v0/servers", gateway.base())).send().await.unwrap().json().await.unwrap();
    assert!(listed.to_string().contains("Made live"), "discovery lists it: {listed}");

    let again = admin.put_if("/api/servers/beta", None, json!({ "name": "beta", "backend": { "http": c.url() } })).await;
    assert_eq!(again.status, 428, "replacing needs If-Match: {again:?}");
    let stale = admin.put_if("/api/servers/beta", Some("\"0000000000000000\""), json!({ "name": "beta", "backend": { "http": c.url() } })).await;
    assert_eq!(stale.status, 412, "{stale:?}");

    // Replaced: new sessions reach the new backend; the live one finishes where it began.
    let replaced = admin.put_if("/api/servers/beta", Some(&etag), json!({ "name": "beta", "backend": { "http": c.url() } })).await;
    assert_eq!(replaced.status, 200, "{replaced:?}");
    assert_eq!(Client::reached(&gateway.url("/beta/mcp")).await, "c");
    assert_eq!(live.whoami().await, "b", "the live session stays on its backend");
    assert_eq!(live.session_ids().len(), 1, "no session was dropped");

    // The file's server, deleted: its live session ends, and it is gone.
    let alpha_live = Raw::new(&gateway.mcp_url("alpha")).initialize().await;
    assert_eq!(in_session(&gateway, "/alpha/mcp", &alpha_live).await, 200);
    let alpha = admin.get("/api/servers/alpha").await;
    assert_eq!((alpha.status, alpha.body["backend"]["http"].as_str()), (200, Some(a.url().as_str())), "{alpha:?}");
    assert_eq!(admin.delete_if("/api/servers/alpha", None).await.status, 428);
    let deleted = admin.delete_if("/api/servers/alpha", alpha.etag.as_deref()).await;
    assert_eq!(deleted.status, 204, "{deleted:?}");
    assert_eq!(in_session(&gateway, "/alpha/mcp", &alpha_live).await, 404, "the session ended with its server");
    assert_eq!(opened(&gateway, "alpha").await, 404, "alpha is gone");

    gateway.kill_9();
    assert!(gateway.exit_within(Duration::from_secs(5)).await.is_some(), "killed");
    let restarted = config.start().await;
    assert_eq!(Client::reached(&restarted.url("/beta/mcp")).await, "c", "the replaced server is kept");
    assert_eq!(opened(&restarted, "alpha").await, 404, "deleted stays deleted, though the file has it");
    let admin = Admin::new(&restarted.management(), TOKEN);
    let servers = admin.get("/api/servers").await;
    assert_eq!(servers.body["servers"].as_array().map(Vec::len), Some(1), "{servers:?}");
    assert_eq!((servers.body["servers"][0]["name"].as_str(), &servers.body["servers"][0]["from_api"]), (Some("beta"), &json!(true)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_are_added_and_deleted_under_live_sessions() {
    let (v1, v2) = (Backend::rmcp().named("v1").start().await, Backend::rmcp().named("v2").start().await);
    let gateway = Gateway::new()
        .server_entry(json!({ "name": "docs", "versions": [{ "name": "v1", "backend": { "http": v1.url() } }] }))
        .server("plain", v1.url())
        .management_with(TOKEN, json!({ "data_dir": data_dir() }))
        .top("products", json!([{ "name": "open", "subscription_required": false, "servers": [{ "server": "plain" }] }]))
        .start()
        .await;
    let admin = Admin::new(&gateway.management(), TOKEN);
    let on_v1 = Client::connect(&format!("{}/docs/v1/mcp", gateway.base())).await;

    let added = admin.put_if("/api/servers/docs/versions/v2", None, json!({ "name": "v2", "backend": { "http": v2.url() } })).await;
    assert_eq!(added.status, 201, "{added:?}");
    assert_eq!(Client::reached(&gateway.url("/docs/v2/mcp")).await, "v2");
    assert_eq!(Client::reached(&gateway.url("/docs/mcp")).await, "v1", "the default is unchanged");
    assert_eq!(on_v1.whoami().await, "v1", "v1's live session is untouched");
    let bad = admin.put_if("/api/servers/docs/versions/v3", None, json!({ "name": "v3", "backend": {} })).await;
    assert_eq!(bad.status, 422, "{bad:?}");
    assert_eq!(message(&bad), "server.versions[2].backend: a backend needs one of `http`, `sse`, `stdio` or `openapi`");
    let plain = admin.put_if("/api/servers/plain/versions/v2", None, json!({ "name": "v2", "backend": { "http": v2.url() } })).await;
    assert_eq!(plain.status, 409, "{plain:?}");

    let v1_tag = admin.get("/api/servers/docs/versions/v1").await.etag.expect("an ETag");
    let default = admin.delete_if("/api/servers/docs/versions/v1", Some(&v1_tag)).await;
    assert_eq!(default.status, 409, "{default:?}");
    assert!(message(&default).contains("promote another version first"), "{default:?}");
    let routing = admin.get("/api/servers/docs/versions").await.etag.unwrap();
    assert_eq!(admin.post_if("/api/servers/docs/versions/v2/promote", Some(&routing), Value::Null).await.status, 200);
    let v1_tag = admin.get("/api/servers/docs/versions/v1").await.etag.unwrap();
    let sid = on_v1.session_id();
    let deleted = admin.delete_if("/api/servers/docs/versions/v1", Some(&v1_tag)).await;
    assert_eq!(deleted.status, 204, "{deleted:?}");
    assert_eq!(in_session(&gateway, "/docs/mcp", &sid).await, 404, "v1's session ended with it");
    assert_eq!(Client::reached(&gateway.url("/docs/mcp")).await, "v2");
    let versions = admin.get("/api/servers/docs/versions").await;
    assert_eq!(versions.body["versions"].as_array().map(Vec::len), Some(1), "{versions:?}");
    let v2_tag = admin.get("/api/servers/docs/versions/v2").await.etag.unwrap();
    assert_eq!(admin.delete_if("/api/servers/docs/versions/v2", Some(&v2_tag)).await.status, 409, "the last version stays");

    let plain_tag = admin.get("/api/servers/plain").await.etag.unwrap();
    let in_product = admin.delete_if("/api/servers/plain", Some(&plain_tag)).await;
    assert_eq!(in_product.status, 409, "{in_product:?}");
    assert_eq!(message(&in_product), "server 'plain' is in product(s) open: take it out of them first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_apply_is_no_difference_and_a_file_adds_and_removes_servers_live() {
    let (a, b) = (Backend::rmcp().named("a").start().await, Backend::rmcp().named("b").start().await);
    let gateway = Gateway::new().server("alpha", a.url()).management_with(TOKEN, json!({ "data_dir": data_dir() })).start().await;
    let mgmt = gateway.management();
    let admin = Admin::new(&mgmt, TOKEN);
    assert_eq!(admin.put_if("/api/servers/beta", None, json!({ "name": "beta", "backend": { "http": b.url() } })).await.status, 201);

    let (ok, exported, err) = run_remote(&["export"], &mgmt, TOKEN).await;
    assert!(ok, "{err}");
    assert!(exported.contains("name: beta"), "the server made through the API is exported: {exported}");
    let file = write_temp("exported.yaml", &exported);
    let (ok, out, err) = run_remote(&["apply", file.to_str().unwrap()], &mgmt, TOKEN).await;
    assert!(ok, "{out}{err}");
    assert_eq!(out.trim(), "no difference");

    // The file drops alpha, points beta at a, and adds gamma.
    let alpha_live = Raw::new(&gateway.mcp_url("alpha")).initialize().await;
    let mut doc: Value = serde_norway::from_str(&exported).unwrap();
    let servers = doc["servers"].as_array_mut().unwrap();
    servers.retain(|s| s["name"] != "alpha");
    servers[0]["backend"]["http"] = json!(a.url());
    servers.push(json!({ "name": "gamma", "backend": { "http": b.url() } }));
    let changed = write_temp("changed.yaml", &serde_norway::to_string(&doc).unwrap());
    let (ok, out, err) = run_remote(&["apply", "--dry-run", changed.to_str().unwrap()], &mgmt, TOKEN).await;
    assert!(!ok, "a dry run that finds a difference exits 1: {out}{err}");
    assert_eq!(out.trim(), format!("~ server beta\n    backend.http: \"{}\" -> \"{}\"\n+ server gamma\n- server alpha", b.url(), a.url()));
    assert_eq!(in_session(&gateway, "/alpha/mcp", &alpha_live).await, 200, "a dry run changes nothing");

    let (ok, out, err) = run_remote(&["apply", changed.to_str().unwrap()], &mgmt, TOKEN).await;
    assert!(ok && out.contains("applied"), "{out}{err}");
    assert_eq!(Client::reached(&gateway.url("/beta/mcp")).await, "a");
    assert_eq!(Client::reached(&gateway.url("/gamma/mcp")).await, "b");
    assert_eq!(in_session(&gateway, "/alpha/mcp", &alpha_live).await, 404);
    let (_, out, _) = run_remote(&["apply", changed.to_str().unwrap()], &mgmt, TOKEN).await;
    assert_eq!(out.trim(), "no difference");
}
