//! `tollgate policy new` in every language: the project it writes builds as it is, passes its
//! cases, checks its config, and, bound by path into a running gateway, governs a live session.

use std::process::Command;

use serde_json::json;

use super::support::{upstream, validate};
use tollgate_tests::gateway::{RunningGateway, TempDir};
use tollgate_tests::process::binary;

/// Writes a policy crate and builds it with `tollgate policy build`; the path of its component.
fn scaffold_and_build(dir: &TempDir) -> std::path::PathBuf {
    let out = Command::new(binary("tollgate")).args(["policy", "new", "blocklist", "--dir"]).arg(&dir.0).output().unwrap();
    assert!(out.status.success(), "policy new: {}", String::from_utf8_lossy(&out.stderr));
    let krate = dir.0.join("blocklist");
    // Its own target directory, kept between runs; a nested cargo on ours would wait on its lock.
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaffold");
    let built = super::cases::policy_build(&krate, |c| {
        c.env("CARGO_TARGET_DIR", &target).env_remove("CARGO_ENCODED_RUSTFLAGS").env_remove("RUSTFLAGS");
    });
    assert_eq!(std::path::PathBuf::from(&built), target.join("wasm32-wasip2/release/blocklist.wasm"));
    built.into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_template_builds_checks_its_config_and_governs_a_live_session_once_loaded() {
    let dir = TempDir::new();
    let wasm = scaffold_and_build(&dir);

    // The cases it comes with pass on it, offline.
    let (code, out) = super::cases::policy_test(&wasm.display().to_string(), &dir.0.join("blocklist/cases.yaml"));
    assert_eq!((code, out.trim()), (0, "3 passed, 0 failed"), "{out}");

    let again = Command::new(binary("tollgate")).args(["policy", "new", "blocklist", "--dir"]).arg(&dir.0).output().unwrap();
    assert!(!again.status.success(), "an existing crate is never overwritten");

    let up = upstream().await;
    let bind = |config: &str| {
        format!("servers:\n  - name: s\n    backend:\n      http: {}\n    policies:\n      - policy: {}\n        config: {config}\n", up.url, wasm.display())
    };
    let (code, out) = validate(&bind("{ blocked: [\"\"] }")).await;
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("line 7") && out.contains("blocked: tool names must not be empty"), "{out}");

    governs_a_live_session(&wasm.display().to_string()).await;
}

/// The Python template: `new --lang python`, `build` (componentize-py), its cases pass, and the
/// component, loaded by path into a running gateway while a session is live, governs that
/// session's next calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_template_builds_passes_its_cases_and_governs_a_live_session_once_loaded() {
    template_governs_a_live_session("python", super::cases::python_build).await;
}

/// The JavaScript template, likewise (`new --lang js`, `build` with componentize-js).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_template_builds_passes_its_cases_and_governs_a_live_session_once_loaded() {
    template_governs_a_live_session("js", super::cases::js_build).await;
}

async fn template_governs_a_live_session(lang: &str, build: fn(&std::path::Path) -> String) {
    let dir = TempDir::new();
    let out = Command::new(binary("tollgate")).args(["policy", "new", "blocklist", "--lang", lang, "--dir"]).arg(&dir.0).output().unwrap();
    assert!(out.status.success(), "policy new: {}", String::from_utf8_lossy(&out.stderr));
    let project = dir.0.join("blocklist");
    let wasm = build(&project);
    assert_eq!(wasm, project.join("blocklist.wasm").display().to_string());
    let (code, text) = super::cases::policy_test(&wasm, &project.join("cases.yaml"));
    assert_eq!((code, text.trim()), (0, "3 passed, 0 failed"), "{text}");
    governs_a_live_session(&wasm).await;
}

/// A gateway serving a session with no chain; the component, bound by path in the file it
/// follows, hides and refuses `secret-tool` in that same session's next calls.
async fn governs_a_live_session(wasm: &str) {
    let up = upstream().await;
    let plain = format!("servers:\n  - name: s\n    backend:\n      http: {}\n", up.url);
    let gw = RunningGateway::from_yaml(&plain, &[]).await;
    let mut live = gw.caller("s");
    assert_eq!(live.initialize().await.status, 200);
    let tools = |r: &tollgate_tests::raw::RawResponse| -> Vec<String> {
        r.result()["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
    };
    assert!(tools(&live.request("tools/list", json!({})).await).contains(&"secret-tool".to_owned()));
    gw.rewrite(&format!("{plain}    policies:\n      - policy: {wasm}\n        config: {{ blocked: [secret-tool] }}\n"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while tools(&live.request("tools/list", json!({})).await).contains(&"secret-tool".to_owned()) {
        assert!(std::time::Instant::now() < deadline, "the reloaded chain never applied to the live session: {}", gw.log());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(live.call("secret-tool", json!({})).await.code(), Some(-32003), "the same session's calls obey it");
    assert!(up.seen("tools/call").is_empty(), "a refused call never reaches the backend");
}
