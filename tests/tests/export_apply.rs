//! `tollgate export` then `tollgate apply` of the same file yields no difference; a product
//! added to or removed from the file is applied to the running gateway through its API.

use serde_json::json;
use tollgate_tests::admin::Admin;
use tollgate_tests::backend::Backend;
use tollgate_tests::gateway::{Gateway, write_temp};
use tollgate_tests::process;

const TOKEN: &str = "export-apply-admin-token";

/// Runs `tollgate ARGS --management URL` with the admin token in its environment.
async fn tollgate(args: &[&str], management: &str) -> (bool, String, String) {
    tollgate_tests::gateway::run_remote(args, management, TOKEN).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_apply_is_no_difference_and_product_changes_apply() {
    let backend = Backend::rmcp().start().await;
    let data = write_temp("keep", "").parent().unwrap().join("data");
    let gateway = Gateway::new()
        .server("alpha", backend.url())
        .management_with(TOKEN, json!({ "data_dir": data }))
        .top("products", json!([{ "name": "free", "servers": [{ "server": "alpha", "tools": ["echo"] }] }]))
        .start()
        .await;
    let mgmt = gateway.management();

    let (ok, exported, err) = tollgate(&["export"], &mgmt).await;
    assert!(ok, "{err}");
    assert!(exported.contains("name: free"), "{exported}");
    let file = write_temp("exported.yaml", &exported);
    let file = file.to_str().unwrap();

    let (ok, out, err) = tollgate(&["apply", file], &mgmt).await;
    assert!(ok, "{out}{err}");
    assert_eq!(out.trim(), "no difference");

    // The file gains a product: apply shows it, then makes it so.
    let more = exported.replacen("products:\n", "products:\n- name: pro\n  servers:\n  - server: alpha\n", 1);
    let more_file = write_temp("more.yaml", &more);
    let (ok, out, err) = tollgate(&["apply", "--dry-run", more_file.to_str().unwrap()], &mgmt).await;
    assert!(ok, "{out}{err}");
    assert_eq!(out.trim(), "+ product pro", "{more}");
    let admin = Admin::new(&mgmt, TOKEN);
    assert_eq!(admin.get("/api/products/pro").await.status, 404, "a dry run changes nothing");

    let (ok, out, err) = tollgate(&["apply", more_file.to_str().unwrap()], &mgmt).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("+ product pro") && out.contains("applied"), "{out}");
    assert_eq!(admin.get("/api/products/pro").await.status, 200);
    let (_, out, _) = tollgate(&["apply", more_file.to_str().unwrap()], &mgmt).await;
    assert_eq!(out.trim(), "no difference");

    // Back to the first file: the product goes again.
    let (ok, out, err) = tollgate(&["apply", file], &mgmt).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("- product pro"), "{out}");
    assert_eq!(admin.get("/api/products/pro").await.status, 404);
}

#[tokio::test]
async fn export_without_the_token_says_so() {
    let out = tokio::process::Command::new(process::binary("tollgate")).args(["export"]).env_remove("TOLLGATE_ADMIN_TOKEN").output().await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TOLLGATE_ADMIN_TOKEN is not set"));
}
