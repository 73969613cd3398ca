//! A running gateway follows its config file: servers, versions, products and routings added,
//! changed and removed by editing the file, with live sessions kept where they can be; what the
//! management API set stays; a file that does not load changes nothing.

use std::path::PathBuf;

use serde_json::{Value, json};
use tollgate_tests::admin::Admin;
use tollgate_tests::backend::{Backend, RunningBackend};
use tollgate_tests::client::Client;
use tollgate_tests::gateway::{Gateway, RunningGateway, write_temp};
use tollgate_tests::raw::{Raw, initialize_request, request};
use tollgate_tests::{eventually, process};

const TOKEN: &str = "config-reload-admin-token";

fn data_dir() -> PathBuf {
    let dir = write_temp("keep", "").parent().expect("a dir").join("data");
    std::fs::create_dir_all(&dir).expect("data dir");
    dir
}

struct Backends {
    a: RunningBackend,
    b: RunningBackend,
    v1: RunningBackend,
    v2: RunningBackend,
}

/// The file: `alpha` on `alpha_url`, `docs` in `versions` with `default`, `extra` servers,
/// and the products given.
fn file(data: &std::path::Path, alpha_url: String, versions: Value, default: &str, extra: Vec<Value>, products: Value) -> Gateway {
    let mut g = Gateway::new()
        .server("alpha", alpha_url)
        .server_entry(json!({ "name": "docs", "versions": versions, "default_version": default }))
        .management_with(TOKEN, json!({ "data_dir": data }))
        .top("products", products);
    for s in extra {
        g = g.server_entry(s);
    }
    g
}

async fn opened(g: &RunningGateway, name: &str) -> u16 {
    Raw::new(&g.mcp_url(name)).post_json(&initialize_request(1)).send().await.status
}

/// Writes `next` over the running gateway's file and waits for the reload it causes.
async fn rewrite(g: &RunningGateway, next: &Gateway) {
    let before = g.log().matches("config reloaded").count();
    std::fs::write(g.config_file(), next.yaml()).expect("rewrite the config");
    process::signal(g.pid(), "HUP");
    eventually(15, "the reload", || g.log().matches("config reloaded").count() > before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_versions_and_products_follow_the_file_but_what_the_api_set_stays() {
    let b = Backends {
        a: Backend::rmcp().named("a").start().await,
        b: Backend::rmcp().named("b").start().await,
        v1: Backend::rmcp().named("v1").start().await,
        v2: Backend::rmcp().named("v2").start().await,
    };
    let data = data_dir();
    let v1_only = json!([{ "name": "v1", "backend": { "http": b.v1.url() } }]);
    let both = json!([{ "name": "v1", "backend": { "http": b.v1.url() } }, { "name": "v2", "backend": { "http": b.v2.url() } }]);
    let open = json!([{ "name": "open", "subscription_required": false, "servers": [{ "server": "alpha" }] }]);
    let g = file(&data, b.a.url(), v1_only.clone(), "v1", vec![], open.clone()).start().await;
    let admin = Admin::new(&g.management(), TOKEN);
    // What the API sets: a server, and a product of its own.
    assert_eq!(admin.put_if("/api/servers/beta", None, json!({ "name": "beta", "backend": { "http": b.b.url() } })).await.status, 201);
    let made =
        admin.put_if("/api/products/api-made", None, json!({ "name": "api-made", "subscription_required": false, "servers": [{ "server": "beta" }] })).await;
    assert_eq!(made.status, 201, "{made:?}");
    let on_alpha = Client::connect(&g.mcp_url("alpha")).await;
    let on_v1 = Raw::new(&format!("{}/docs/v1/mcp", g.base())).initialize().await;

    // The file: alpha on another backend, docs gains v2 as its default, gamma is new and in
    // the product with one tool; it also declares beta, which the API owns.
    let gamma = json!({ "name": "gamma", "backend": { "http": b.a.url() } });
    let beta_in_file = json!({ "name": "beta", "backend": { "http": b.a.url() } });
    let open_with_gamma =
        json!([{ "name": "open", "subscription_required": false, "servers": [{ "server": "alpha" }, { "server": "gamma", "tools": ["whoami"] }] }]);
    rewrite(&g, &file(&data, b.b.url(), both.clone(), "v2", vec![gamma.clone(), beta_in_file.clone()], open_with_gamma)).await;
    assert_eq!(Client::reached(&g.url("/alpha/mcp")).await, "b", "a new session reaches alpha's new backend");
    assert_eq!(on_alpha.whoami().await, "a", "the live session finishes where it began");
    assert_eq!(Client::reached(&g.url("/docs/mcp")).await, "v2", "the file's new default");
    let status = Raw::new(&format!("{}/docs/mcp", g.base())).post_json(&request(2, "tools/list", json!({}))).session(&on_v1).send().await.status;
    assert_eq!(status, 200, "v1's live session is untouched");
    let on_gamma = Client::connect(&g.mcp_url("gamma")).await;
    assert_eq!(on_gamma.list_tools().await, ["whoami"], "gamma is served through the file's product, with its one tool");
    assert_eq!(Client::reached(&g.url("/beta/mcp")).await, "b", "the API's server stays: {}", g.log());
    assert!(g.log().contains("the management API set this server"), "{}", g.log());
    assert_eq!(admin.get("/api/products/api-made").await.status, 200, "the API's product stays");

    // A file that does not load changes nothing.
    let before = g.log().matches("reload failed").count();
    std::fs::write(g.config_file(), "servers: [ { name: 'Not A Name' } ]").unwrap();
    process::signal(g.pid(), "HUP");
    eventually(15, "the failed reload", || g.log().matches("reload failed").count() > before).await;
    assert_eq!(Client::reached(&g.url("/gamma/mcp")).await, "a");

    // Then the file drops gamma, its product and v1.
    rewrite(&g, &file(&data, b.b.url(), json!([{ "name": "v2", "backend": { "http": b.v2.url() } }]), "v2", vec![beta_in_file], json!([]))).await;
    assert_eq!(opened(&g, "gamma").await, 404, "gamma is gone");
    let status = Raw::new(&format!("{}/docs/mcp", g.base())).post_json(&request(3, "tools/list", json!({}))).session(&on_v1).send().await.status;
    assert_eq!(status, 404, "v1's session ended with it");
    assert_eq!(admin.get("/api/products/open").await.status, 404, "the file's product is gone");
    assert_eq!(admin.get("/api/products/api-made").await.status, 200, "the API's product stays");
    let (ok, exported, err) = tollgate_tests::gateway::run_remote(&["export"], &g.management(), TOKEN).await;
    assert!(ok, "{err}");
    assert!(!exported.contains("gamma") && exported.contains("name: beta"), "{exported}");
}
