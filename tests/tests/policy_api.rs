//! Policy chains through the management API, with the real binary, a real backend and a real
//! MCP client: a component uploaded and bound by PUT reaches a live session's next request;
//! stale ETags and configs the policy refuses change nothing; garbage is not kept; a file
//! reload and a kill -9 do not undo the chain; `export` then `apply` is no difference, and a
//! changed chain in the file is applied live.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use tollgate_tests::admin::{Admin, Answer};
use tollgate_tests::backend::Backend;
use tollgate_tests::client::Client;
use tollgate_tests::gateway::{Gateway, write_temp};
use tollgate_tests::{eventually, process};

const TOKEN: &str = "policy-api-admin-token";
const SECRET: &str = "backend-credential-7f3a";

/// A data directory of the test's own, kept across restarts of the gateway.
fn data_dir() -> PathBuf {
    let dir = write_temp("keep", "").parent().expect("a dir").join("data");
    std::fs::create_dir_all(&dir).expect("data dir");
    dir
}

fn gatekeeper() -> Vec<u8> {
    std::fs::read(format!("{}/gatekeeper.wasm", env!("TOLLGATE_GUESTS"))).expect("the gatekeeper test policy is built")
}

/// Uploads the gatekeeper policy; the name a binding uses for it.
async fn upload_gatekeeper(admin: &Admin) -> String {
    let a = admin.post_bytes("/api/components", "application/wasm", gatekeeper()).await;
    assert!(a.status == 201 || a.status == 200, "{a:?}");
    a.body["policy"].as_str().expect("a policy reference").to_owned()
}

fn message(a: &Answer) -> &str {
    a.body["detail"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_put_through_the_api_reaches_a_live_session_and_survives_reload_and_kill_9() {
    let backend = Backend::rmcp().start().await;
    let config = Gateway::new().server("alpha", backend.url()).management_with(TOKEN, json!({ "data_dir": data_dir() })).env("POLICY_API_SECRET", SECRET);
    let gateway = config.clone().start().await;
    let admin = Admin::new(&gateway.management(), TOKEN);
    let client = Client::connect(&gateway.mcp_url("alpha")).await;
    assert!(client.list_tools().await.contains(&"echo".to_owned()));

    let first = admin.post_bytes("/api/components", "application/wasm", gatekeeper()).await;
    assert_eq!(first.status, 201, "{first:?}");
    let policy = first.body["policy"].as_str().unwrap().to_owned();
    assert!(policy.starts_with("sha256:") && policy.len() == 7 + 64, "{policy}");
    let again = admin.post_bytes("/api/components", "application/wasm", gatekeeper()).await;
    assert_eq!((again.status, again.body["policy"].as_str()), (200, Some(policy.as_str())), "the same bytes, the same name: {again:?}");

    let read = admin.get("/api/servers/alpha/policies").await;
    assert_eq!((read.status, &read.body), (200, &json!([])), "{read:?}");
    let etag = read.etag.expect("an ETag");

    let chain = json!([{
        "policy": policy,
        "config": { "hidden": ["echo"], "bearer_secret": "token" },
        "secrets": { "token": { "env": "POLICY_API_SECRET" } },
    }]);
    let unconditional = admin.put_if("/api/servers/alpha/policies", None, chain.clone()).await;
    assert_eq!(unconditional.status, 428, "{unconditional:?}");
    let put = admin.put_if("/api/servers/alpha/policies", Some(&etag), chain.clone()).await;
    assert_eq!(put.status, 200, "{put:?}");
    let current = put.etag.clone().expect("the new ETag");
    assert_ne!(current, etag);

    // The live session's next requests run the new chain.
    let tools = client.list_tools().await;
    assert!(!tools.contains(&"echo".to_owned()) && tools.contains(&"whoami".to_owned()), "{tools:?}");
    assert!(client.call_tool("echo", json!({ "text": "hi" })).await.is_err(), "a hidden tool cannot be called");
    assert_eq!(client.call_tool("whoami", json!({})).await.unwrap(), "first");
    let sent = backend.seen().headers();
    assert_eq!(sent.last().unwrap()["authorization"], format!("Bearer {SECRET}"), "the secret reached the policy");
    assert_eq!(client.session_ids().len(), 1, "no session was dropped");

    // The secret stays a reference.
    let read = admin.get("/api/servers/alpha/policies").await;
    assert_eq!(read.body[0]["secrets"], json!({ "token": { "env": "POLICY_API_SECRET" } }));
    assert!(!read.body.to_string().contains(SECRET));
    assert_eq!(read.etag.as_deref(), Some(current.as_str()));

    let stale = admin.put_if("/api/servers/alpha/policies", Some(&etag), json!([])).await;
    assert_eq!(stale.status, 412, "{stale:?}");

    // A config the policy refuses: its own words, and the chain in force stays.
    let refused = admin.put_if("/api/servers/alpha/policies", Some(&current), json!([{ "policy": policy, "config": { "hidden": [""] } }])).await;
    assert_eq!(refused.status, 422, "{refused:?}");
    let short = &policy[..7 + 12];
    assert_eq!(message(&refused), format!("policies[0].config: policy '{short}' refused its config: hidden: tool names must not be empty"));
    assert_eq!(refused.body["errors"][0]["path"], "policies[0].config");
    let invalid = admin.put_if("/api/servers/alpha/policies", Some(&current), json!([{ "policy": "rate-limit", "limits": { "memory_mb": 0 } }])).await;
    assert_eq!(invalid.status, 422, "{invalid:?}");
    assert!(message(&invalid).contains("policies[0].limits.memory_mb: must be between 1 and"), "the words of `tollgate validate`: {invalid:?}");
    assert!(!client.list_tools().await.contains(&"echo".to_owned()), "the old chain keeps serving");

    let listed = admin.get("/api/components").await;
    assert_eq!(listed.body["components"][0]["policy"], policy.as_str(), "{listed:?}");
    assert_eq!(listed.body["components"][0]["used_by"], json!(["alpha"]));

    // A reload of the file (which binds nothing) does not undo the chain set through the API.
    process::signal(gateway.pid(), "HUP");
    eventually(10, "the reload", || gateway.log().contains("config reloaded")).await;
    assert!(gateway.log().contains("the file's chain differs from the one set through the management API"), "{}", gateway.log());
    assert!(!client.list_tools().await.contains(&"echo".to_owned()), "the API's chain stays after a reload");

    gateway.kill_9();
    assert!(gateway.exit_within(Duration::from_secs(5)).await.is_some(), "killed");
    let restarted = config.start().await;
    let admin = Admin::new(&restarted.management(), TOKEN);
    let kept = admin.get("/api/servers/alpha/policies").await;
    assert_eq!((kept.status, kept.etag.as_deref()), (200, Some(current.as_str())), "{kept:?}");
    let client = Client::connect(&restarted.mcp_url("alpha")).await;
    assert!(!client.list_tools().await.contains(&"echo".to_owned()), "the chain is in force after a kill -9");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_not_a_policy_component_is_refused_and_not_kept() {
    let backend = Backend::rmcp().start().await;
    let gateway = Gateway::new().server("alpha", backend.url()).management_with(TOKEN, json!({ "data_dir": data_dir() })).start().await;
    let admin = Admin::new(&gateway.management(), TOKEN);

    let garbage = admin.post_bytes("/api/components", "application/wasm", b"this is not WebAssembly".to_vec()).await;
    assert_eq!(garbage.status, 422, "{garbage:?}");
    assert!(message(&garbage).starts_with("the upload is not a policy component: not a valid component"), "{garbage:?}");
    // A core module (the magic number, version 1, nothing else) is WebAssembly but no component.
    let module = admin.post_bytes("/api/components", "application/wasm", b"\0asm\x01\0\0\0".to_vec()).await;
    assert_eq!(module.status, 422, "{module:?}");
    let untyped = admin.post_bytes("/api/components", "application/octet-stream", gatekeeper()).await;
    assert_eq!(untyped.status, 415, "{untyped:?}");
    assert!(message(&untyped).contains("application/wasm"), "{untyped:?}");
    let empty = admin.post_bytes("/api/components", "application/wasm", Vec::new()).await;
    assert_eq!(empty.status, 422, "{empty:?}");

    let listed = admin.get("/api/components").await;
    assert_eq!(listed.body["components"], json!([]), "{listed:?}");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let doc = http.get(format!("{}/openapi.json", gateway.management())).send().await.unwrap().json::<serde_json::Value>().await.unwrap();
    assert!(doc["paths"]["/api/components"]["post"]["requestBody"]["content"]["application/wasm"].is_object(), "{doc}");
    assert!(doc["paths"]["/api/servers/{name}/versions/{version}/policies"]["put"].is_object(), "{doc}");
    let unknown = format!("sha256:{}", "0".repeat(64));
    let etag = admin.get("/api/servers/alpha/policies").await.etag.unwrap();
    let unbound = admin.put_if("/api/servers/alpha/policies", Some(&etag), json!([{ "policy": unknown }])).await;
    assert_eq!(unbound.status, 422, "{unbound:?}");
    assert!(message(&unbound).contains("has been uploaded"), "{unbound:?}");
    let malformed = admin.put_if("/api/servers/alpha/policies", Some(&etag), json!([{ "policy": "sha256:abc" }])).await;
    assert_eq!(malformed.status, 422, "{malformed:?}");
    assert!(message(&malformed).contains("is not a component reference"), "{malformed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_over_the_configured_cap_is_refused_with_413() {
    let backend = Backend::rmcp().start().await;
    let gateway = Gateway::new().server("alpha", backend.url()).management_with(TOKEN, json!({ "data_dir": data_dir(), "max_component_mb": 1 })).start().await;
    let admin = Admin::new(&gateway.management(), TOKEN);
    let mut big = gatekeeper();
    assert!(big.len() < 1024 * 1024, "the test policy fits under the cap");
    big.resize(1024 * 1024 + 1, 0);
    let over = admin.post_bytes("/api/components", "application/wasm", big).await;
    assert_eq!(over.status, 413, "{over:?}");
    assert_eq!(message(&over), "a component may be at most 1 MiB (`management.max_component_mb`)");
    assert_eq!(admin.get("/api/components").await.body["components"], json!([]), "nothing kept");
    upload_gatekeeper(&admin).await;

    let (status, out) = tollgate_tests::gateway::run_tollgate(
        &["validate"],
        "servers: [{ name: a, backend: { http: http://127.0.0.1:1/mcp } }]\nmanagement: { admin_token_env: T, max_component_mb: 0 }\n",
    )
    .await;
    assert!(!status.success());
    assert!(out.contains("management.max_component_mb: 0 is out of range: use 1 to 1024"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_version_has_a_chain_of_its_own() {
    let backend = Backend::rmcp().start().await;
    let gateway = Gateway::new()
        .server_entry(json!({ "name": "docs", "versions": [
            { "name": "v1", "backend": { "http": backend.url() } },
            { "name": "v2", "backend": { "http": backend.url() } },
        ] }))
        .management_with(TOKEN, json!({ "data_dir": data_dir() }))
        .start()
        .await;
    let admin = Admin::new(&gateway.management(), TOKEN);
    let policy = upload_gatekeeper(&admin).await;
    let v1 = Client::connect(&format!("{}/docs/v1/mcp", gateway.base())).await;
    let v2 = Client::connect(&format!("{}/docs/v2/mcp", gateway.base())).await;

    let whole = admin.get("/api/servers/docs/policies").await;
    assert_eq!(whole.status, 404, "{whole:?}");
    assert!(message(&whole).contains("/api/servers/docs/versions/{version}/policies"), "{whole:?}");
    let etag = admin.get("/api/servers/docs/versions/v2/policies").await.etag.unwrap();
    let put = admin.put_if("/api/servers/docs/versions/v2/policies", Some(&etag), json!([{ "policy": policy, "config": { "hidden": ["echo"] } }])).await;
    assert_eq!(put.status, 200, "{put:?}");

    assert!(!v2.list_tools().await.contains(&"echo".to_owned()), "v2 runs its new chain");
    assert!(v1.list_tools().await.contains(&"echo".to_owned()), "v1's chain is its own");
    assert_eq!(admin.get("/api/servers/docs/versions/v3/policies").await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_handed_back_to_the_file_is_the_files_again_after_a_restart() {
    let backend = Backend::rmcp().start().await;
    // The client below holds a GET stream, which ends only when sessions close, at half the
    // grace period: a short one keeps the stop quick on a loaded machine.
    let config = Gateway::new().server("alpha", backend.url()).management_with(TOKEN, json!({ "data_dir": data_dir() })).shutdown_grace_ms(2000);
    let gateway = config.clone().start().await;
    let admin = Admin::new(&gateway.management(), TOKEN);
    let policy = upload_gatekeeper(&admin).await;
    let etag = admin.get("/api/servers/alpha/policies").await.etag.unwrap();
    let put = admin.put_if("/api/servers/alpha/policies", Some(&etag), json!([{ "policy": policy, "config": { "hidden": ["echo"] } }])).await;
    let current = put.etag.clone().expect("an ETag");
    let client = Client::connect(&gateway.mcp_url("alpha")).await;
    assert!(!client.list_tools().await.contains(&"echo".to_owned()));

    assert_eq!(admin.delete_if("/api/servers/alpha/policies", None).await.status, 428);
    assert_eq!(admin.delete_if("/api/servers/alpha/policies", Some(&etag)).await.status, 412, "a stale ETag");
    let released = admin.delete_if("/api/servers/alpha/policies", Some(&current)).await;
    assert_eq!((released.status, &released.body), (200, &json!([])), "the file binds nothing: {released:?}");
    assert!(client.list_tools().await.contains(&"echo".to_owned()), "the live session runs the file's chain");

    // A reload of the file no longer finds an API chain to keep.
    process::signal(gateway.pid(), "HUP");
    eventually(10, "the reload", || gateway.log().contains("config reloaded")).await;
    assert!(!gateway.log().contains("the file's chain differs"), "{}", gateway.log());

    gateway.terminate();
    assert!(gateway.exit_within(Duration::from_secs(10)).await.is_some(), "stopped:\n{}", gateway.log());
    let restarted = config.start().await;
    let client = Client::connect(&restarted.mcp_url("alpha")).await;
    assert!(client.list_tools().await.contains(&"echo".to_owned()), "the API's chain is not restored");
}

/// Runs `tollgate ARGS --management URL` with the admin token in its environment.
async fn tollgate(args: &[&str], management: &str) -> (bool, String, String) {
    tollgate_tests::gateway::run_remote(args, management, TOKEN).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_apply_is_no_difference_and_a_changed_chain_applies_live() {
    let backend = Backend::rmcp().start().await;
    let gateway = Gateway::new().server("alpha", backend.url()).management_with(TOKEN, json!({ "data_dir": data_dir() })).start().await;
    let mgmt = gateway.management();
    let admin = Admin::new(&mgmt, TOKEN);
    let policy = upload_gatekeeper(&admin).await;
    let etag = admin.get("/api/servers/alpha/policies").await.etag.unwrap();
    let put = admin.put_if("/api/servers/alpha/policies", Some(&etag), json!([{ "policy": policy, "config": { "hidden": ["echo"] } }])).await;
    assert_eq!(put.status, 200, "{put:?}");
    let client = Client::connect(&gateway.mcp_url("alpha")).await;

    let (ok, exported, err) = tollgate(&["export"], &mgmt).await;
    assert!(ok, "{err}");
    assert!(exported.contains(&policy), "the chain in force is exported: {exported}");
    let file = write_temp("exported.yaml", &exported);
    let (ok, out, err) = tollgate(&["apply", file.to_str().unwrap()], &mgmt).await;
    assert!(ok, "{out}{err}");
    assert_eq!(out.trim(), "no difference");

    // The file hides whoami instead: apply shows it, then puts it in force for the live session.
    assert_eq!(exported.matches("- echo").count(), 1, "{exported}");
    let changed = write_temp("changed.yaml", &exported.replace("- echo", "- whoami"));
    let (ok, out, err) = tollgate(&["apply", "--dry-run", changed.to_str().unwrap()], &mgmt).await;
    assert!(!ok, "a dry run that finds a difference exits 1: {out}{err}");
    assert_eq!(out.trim(), format!("~ server alpha policies: {}\n    [0].config.hidden[0]: \"echo\" -> \"whoami\"", &policy[..7 + 12]));
    assert!(!client.list_tools().await.contains(&"echo".to_owned()), "a dry run changes nothing");

    let (ok, out, err) = tollgate(&["apply", changed.to_str().unwrap()], &mgmt).await;
    assert!(ok && out.contains("applied"), "{out}{err}");
    let tools = client.list_tools().await;
    assert!(tools.contains(&"echo".to_owned()) && !tools.contains(&"whoami".to_owned()), "{tools:?}");
    let (_, out, _) = tollgate(&["apply", changed.to_str().unwrap()], &mgmt).await;
    assert_eq!(out.trim(), "no difference");
    assert_eq!(client.session_ids().len(), 1, "no session was dropped");
}

#[tokio::test]
async fn validate_resolves_uploaded_components_in_the_data_dir() {
    let data = data_dir();
    let hex = "0".repeat(64);
    let config = |management: &str| {
        format!("servers:\n  - name: alpha\n    backend: {{ http: http://127.0.0.1:1/mcp }}\n    policies:\n      - policy: sha256:{hex}\n{management}")
    };
    let (status, out) =
        tollgate_tests::gateway::run_tollgate(&["validate"], &config(&format!("management: {{ admin_token_env: T, data_dir: {} }}\n", data.display()))).await;
    assert!(!status.success());
    assert!(out.contains(&format!("servers[0].policies[0].policy: no component sha256:{hex} has been uploaded")), "{out}");
    let (status, out) = tollgate_tests::gateway::run_tollgate(&["validate"], &config("")).await;
    assert!(!status.success());
    assert!(out.contains("names an uploaded component, and uploads are kept in `management.data_dir`, which is not set"), "{out}");
}
