//! `tollgate policy push`: uploads a component and binds it through the management API,
//! showing the chain's difference first; the same bytes pushed again change nothing.

use serde_json::json;

use super::support::{guest, upstream};
use tollgate_tests::client::Client;
use tollgate_tests::gateway::{Gateway, TempDir, run_remote};

const TOKEN: &str = "push-admin-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_binds_the_component_live_and_a_second_push_changes_nothing() {
    let up = upstream().await;
    let data = TempDir::new();
    let gw = Gateway::new().server("s", up.url.clone()).management_with(TOKEN, json!({ "data_dir": data.0.join("data") })).start().await;
    let live = Client::connect(&gw.mcp_url("s")).await;
    assert!(live.list_tools().await.contains(&"secret-tool".to_owned()), "listed before the push");

    let config = data.0.join("binding.yaml");
    std::fs::write(&config, "hidden: [secret-tool]\n").unwrap();
    let component = guest("gatekeeper");
    let args = ["policy", "push", component.as_str(), "--server", "s", "--config", config.to_str().unwrap()];
    let (ok, out, err) = run_remote(&args, &gw.management(), TOKEN).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("+ policies[0]: {") && out.contains("\"hidden\":[\"secret-tool\"]") && out.trim_end().ends_with("applied"), "{out}");
    // The live session's next calls obey it.
    assert!(!live.list_tools().await.contains(&"secret-tool".to_owned()), "hidden from the same session after the push");

    let (ok, again, err) = run_remote(&args, &gw.management(), TOKEN).await;
    assert!(ok, "{again}{err}");
    assert!(again.trim_end().ends_with("no difference"), "{again}");

    // Another component in its place: --replace names the binding; one the chain lacks is refused.
    let reference = again.lines().next().and_then(|l| l.split_whitespace().nth(1)).expect("the pushed reference").to_owned();
    let noop = guest("noop");
    let (ok, out, err) = run_remote(&["policy", "push", noop.as_str(), "--server", "s", "--replace", "sha256:0000"], &gw.management(), TOKEN).await;
    assert!(!ok && err.contains("no binding of 'sha256:0000' to replace"), "{out}{err}");
    let (ok, out, err) = run_remote(&["policy", "push", noop.as_str(), "--server", "s", "--replace", reference.as_str()], &gw.management(), TOKEN).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains(&format!("- policies[0]: {{\"policy\":\"{reference}\"")), "{out}");
    assert!(
        out.contains("+ policies[0]: {\"policy\":\"sha256:") && out.trim_end().ends_with("applied"),
        "the binding keeps its config, with the new component: {out}"
    );
    assert!(live.list_tools().await.contains(&"secret-tool".to_owned()), "the gatekeeper no longer hides it");
}
