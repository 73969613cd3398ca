//! The web console at `/ui/`, in a real browser: `console/tests/console.mjs` drives Chromium
//! (playwright-core) against the real binary, with an identity provider and an rmcp backend.
//! It signs in with the admin token, sees the servers and their tools, subscribes to a product
//! that needs approval, approves it and regenerates a key, calls a tool in the playground
//! without and with a bearer token, has a chain refused by its policy and then applies one
//! that hides a tool, and sees the call refused.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::json;
use tollgate_tests::backend::Backend;
use tollgate_tests::gateway::{Gateway, TempDir};
use tollgate_tests::idp::{Idp, Key, now};

const TOKEN: &str = "console-admin-token";
const READ_ONLY: &str = "console-read-only-token";
/// The audience the `jwt` binding of `guarded` expects, and the test's tokens name.
const AUDIENCE: &str = "tollgate-console-test";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the tests crate is in the repository").to_path_buf()
}

/// What the browser test needs on this machine; what to run when it is missing.
fn prerequisites(root: &Path) -> String {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).is_file(),
        "{chromium} is missing: the console's browser test drives Debian's chromium; run scripts/setup.sh (it installs it)"
    );
    assert!(
        root.join("console/node_modules/playwright-core").is_dir(),
        "console/node_modules is missing: run scripts/setup.sh (npm ci and npm run build in console/), then build tollgate again"
    );
    chromium
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_manages_the_gateway_in_a_real_browser() {
    let root = repo_root();
    let chromium = prerequisites(&root);

    let backend = Backend::rmcp().start().await;
    let idp = Idp::start().await;
    let key = Key::rsa("console");
    idp.publish(&[&key]);
    let data = TempDir::new();
    let data_dir = data.0.join("data");
    std::fs::create_dir_all(&data_dir).expect("data dir");
    let gateway = Gateway::new()
        .server("guarded", backend.url())
        .policies("guarded", json!([idp.jwt_binding(AUDIENCE)]))
        .server("open", backend.url())
        .server_entry(json!({
            "name": "docs",
            "versions": [{ "name": "v1", "backend": { "http": backend.url() } }, { "name": "v2", "backend": { "http": backend.url() } }],
            "default_version": "v1",
        }))
        .management_with(TOKEN, json!({ "data_dir": data_dir, "read_only_token_env": "CONSOLE_READ_ONLY_TOKEN" }))
        .env("CONSOLE_READ_ONLY_TOKEN", READ_ONLY)
        .top("products", json!([{ "name": "team", "approval_required": true, "servers": [{ "server": "open" }] }]))
        .start()
        .await;

    // The binary embeds console/dist as it was when it was built.
    let ui = format!("{}/ui/", gateway.management());
    let page = reqwest::Client::builder().no_proxy().build().expect("client").get(&ui).send().await.expect("GET /ui/");
    let status = page.status();
    let text = page.text().await.unwrap_or_default();
    assert!(
        status == 200 && text.contains("<div id=\"root\">"),
        "{ui} does not serve the console ({status}): run scripts/setup.sh (it builds console/dist), then build tollgate again. {text}"
    );

    let bearer = key.sign(&json!({ "iss": idp.issuer, "sub": "console-user", "aud": AUDIENCE, "iat": now(), "exp": now() + 3600 }));
    let shots = root.join("target/console-screenshots");
    let run = tokio::process::Command::new("node")
        .arg("console/tests/console.mjs")
        .current_dir(&root)
        .env("CONSOLE_URL", &ui)
        .env("ADMIN_TOKEN", TOKEN)
        .env("BEARER_TOKEN", &bearer)
        .env("READ_ONLY_TOKEN", READ_ONLY)
        .env("SCREENSHOT_DIR", &shots)
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tollgate_tests::within(600, "the console's browser test", run).await.expect("run node console/tests/console.mjs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    if !stderr.trim().is_empty() {
        println!("stderr:\n{stderr}");
    }
    assert!(
        out.status.success(),
        "the console's browser test failed ({}); screenshots of the failed steps are in {}\n{stdout}\n{stderr}\ngateway log:\n{}",
        out.status,
        shots.display(),
        gateway.log()
    );
}
