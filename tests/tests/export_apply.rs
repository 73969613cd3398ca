//! `tollgate export` then `tollgate apply` of the same file yields no difference; a product
//! added to or removed from the file is applied to the running gateway through its API;
//! `--dry-run` exits 1 on a difference and 0 without; changes show the fields they change; a
//! local component is uploaded and bound by digest; a saved plan is refused where the gateway
//! changed since.

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

/// As [`tollgate`], with the exit code.
async fn tollgate_code(args: &[&str], management: &str) -> (i32, String, String) {
    tollgate_tests::gateway::run_remote_code(args, management, TOKEN).await
}

/// A gateway with a management API and a data directory, serving `alpha` (an rmcp backend,
/// returned to keep it running) in the product `free` limited to `echo`.
async fn alpha_with_a_product() -> (tollgate_tests::backend::RunningBackend, tollgate_tests::gateway::RunningGateway) {
    let backend = Backend::rmcp().start().await;
    let data = write_temp("keep", "").parent().unwrap().join("data");
    let gateway = Gateway::new()
        .server("alpha", backend.url())
        .management_with(TOKEN, json!({ "data_dir": data }))
        .top("products", json!([{ "name": "free", "servers": [{ "server": "alpha", "tools": ["echo"] }] }]))
        .start()
        .await;
    (backend, gateway)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_apply_is_no_difference_and_product_changes_apply() {
    let (_backend, gateway) = alpha_with_a_product().await;
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
    let (code, out, err) = tollgate_code(&["apply", "--dry-run", more_file.to_str().unwrap()], &mgmt).await;
    assert_eq!(code, 1, "a dry run that finds a difference exits 1: {out}{err}");
    assert_eq!(out.trim(), "+ product pro", "{more}");
    let admin = Admin::new(&mgmt, TOKEN);
    assert_eq!(admin.get("/api/products/pro").await.status, 404, "a dry run changes nothing");

    let (ok, out, err) = tollgate(&["apply", more_file.to_str().unwrap()], &mgmt).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("+ product pro") && out.contains("applied"), "{out}");
    assert_eq!(admin.get("/api/products/pro").await.status, 200);
    let (code, out, _) = tollgate_code(&["apply", "--dry-run", more_file.to_str().unwrap()], &mgmt).await;
    assert_eq!((code, out.trim()), (0, "no difference"), "a dry run without a difference exits 0");

    // Back to the first file: the product goes again.
    let (ok, out, err) = tollgate(&["apply", file], &mgmt).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("- product pro"), "{out}");
    assert_eq!(admin.get("/api/products/pro").await.status, 404);
}

/// A changed product shows each field it changes; a chain naming a local component uploads it
/// and binds it by digest, after which the same file is no difference; a plan saved by a dry
/// run is refused once someone changed what it was computed against, and that change stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_shows_fields_uploads_local_components_and_refuses_what_changed_since() {
    let (_backend, gateway) = alpha_with_a_product().await;
    let mgmt = gateway.management();
    let admin = Admin::new(&mgmt, TOKEN);
    let (ok, exported, err) = tollgate(&["export"], &mgmt).await;
    assert!(ok, "{err}");

    // A field of a product: named with its old and new value.
    let wider = exported.replacen("tools:\n    - echo\n", "tools:\n    - echo\n    - add\n", 1);
    assert_ne!(wider, exported, "the export lists the product's tools: {exported}");
    let file = write_temp("wider.yaml", &wider);
    let (code, out, err) = tollgate_code(&["apply", "--dry-run", file.to_str().unwrap()], &mgmt).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("~ product free") && out.contains(r#"+ servers[0].tools[1]: "add""#), "{out}");

    // A chain naming a local component: uploaded, bound by its digest.
    let component = std::path::Path::new(env!("TOLLGATE_GUESTS")).join("noop.wasm");
    let out = std::process::Command::new("sha256sum").arg(&component).output().expect("sha256sum runs");
    let digest = String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_owned();
    let dir = file.parent().unwrap();
    let chained = exported.replacen("- name: alpha\n", "- name: alpha\n  policies:\n  - policy: ./noop.wasm\n", 1);
    let chained_file = write_temp("chained.yaml", &chained);
    std::fs::copy(&component, chained_file.parent().unwrap().join("noop.wasm")).unwrap();
    let (ok, out, err) = tollgate(&["apply", chained_file.to_str().unwrap()], &mgmt).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("~ server alpha policies: sha256:") && out.contains("applied"), "{out}");
    let chain = admin.get("/api/servers/alpha/policies").await;
    assert_eq!(chain.body[0]["policy"], format!("sha256:{digest}"), "{:?}", chain.body);
    let (code, out, _) = tollgate_code(&["apply", "--dry-run", chained_file.to_str().unwrap()], &mgmt).await;
    assert_eq!((code, out.trim()), (0, "no difference"));

    // A plan saved, then the product changed by someone else: the plan is refused, their change stands.
    let plan = dir.join("plan.json");
    let (code, out, err) = tollgate_code(&["apply", "--dry-run", "--plan", plan.to_str().unwrap(), file.to_str().unwrap()], &mgmt).await;
    assert_eq!(code, 1, "{out}{err}");
    let etag = admin.get("/api/products/free").await.etag;
    let theirs = json!({ "name": "free", "servers": [{ "server": "alpha", "tools": ["echo", "sum"] }] });
    assert_eq!(admin.put_if("/api/products/free", etag.as_deref(), theirs).await.status, 200);
    let (code, out, err) = tollgate_code(&["apply", "--plan", plan.to_str().unwrap(), file.to_str().unwrap()], &mgmt).await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("changed after the difference was shown"), "{err}");
    assert_eq!(admin.get("/api/products/free").await.body["servers"][0]["tools"], json!(["echo", "sum"]), "their change stands");
}

#[tokio::test]
async fn export_without_the_token_says_so() {
    let out = tokio::process::Command::new(process::binary("tollgate")).args(["export"]).env_remove("TOLLGATE_ADMIN_TOKEN").output().await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TOLLGATE_ADMIN_TOKEN is not set"));
}
