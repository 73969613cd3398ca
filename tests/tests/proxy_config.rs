//! `tollgate validate` names every problem of a config file with its line, and `serve`
//! refuses the same file.

use tollgate_tests::gateway::run_tollgate;

/// Three problems, on lines 3, 5 and 7.
const BROKEN: &str = "\
listen: 127.0.0.1:0
servers:
  - name: Not A Name
    backend:
      http: ftp://127.0.0.1/mcp
  - name: other
    backend: {}
";

const FINE: &str = "\
listen: 127.0.0.1:0
servers:
  - name: fine
    backend:
      http: http://127.0.0.1:9/mcp
";

#[tokio::test]
async fn validate_names_each_problem_with_its_line() {
    let (status, out) = run_tollgate(&["validate"], BROKEN).await;

    assert!(!status.success(), "a broken config fails validation:\n{out}");
    for (line, what) in [(3, "servers[0].name"), (5, "servers[0].backend.http"), (7, "servers[1].backend")] {
        let shown = format!("line {line}: {what}:");
        assert!(out.contains(&shown), "the output names `{shown}`:\n{out}");
    }
    assert!(out.contains("3 problem(s)"), "{out}");
}

#[tokio::test]
async fn validate_accepts_a_good_config() {
    let (status, out) = run_tollgate(&["validate"], FINE).await;
    assert!(status.success(), "{out}");
    assert!(out.contains("ok (1 server(s)"), "{out}");
}

#[tokio::test]
async fn serve_refuses_a_broken_config_with_the_same_problems() {
    let (status, out) = run_tollgate(&["serve"], BROKEN).await;

    assert!(!status.success(), "serve refuses a broken config:\n{out}");
    assert!(out.contains("line 3: servers[0].name:") && out.contains("line 7: servers[1].backend:"), "{out}");
    assert!(!out.contains("listening"), "the gateway never started listening:\n{out}");
}

#[tokio::test]
async fn an_unknown_key_is_reported_where_it_is() {
    let text = "servers:\n  - name: a\n    backend:\n      http: http://127.0.0.1:9/mcp\n      headerz: {}\n";
    let (status, out) = run_tollgate(&["validate"], text).await;
    assert!(!status.success(), "{out}");
    assert!(out.contains("line 5") && out.contains("headerz"), "{out}");
}

#[tokio::test]
async fn worker_threads_sets_how_many_threads_run_requests_and_zero_is_refused() {
    let backend = tollgate_tests::backend::Backend::rmcp().start().await;
    // Three: not the machine's CPU count, the default.
    let yaml = format!("limits: {{ worker_threads: 3 }}\nservers:\n  - name: echo\n    backend:\n      http: {}\n", backend.url());
    let gw = tollgate_tests::gateway::RunningGateway::from_yaml(&yaml, &[]).await;
    // Three callers, each on a connection of its own, all served.
    for i in 0..3 {
        let mut c = gw.caller("echo");
        assert_eq!(c.initialize().await.status, 200);
        let called = c.call("echo", serde_json::json!({ "text": format!("caller {i}") })).await;
        assert!(called.status == 200 && called.code().is_none(), "{called:?}");
    }
    // The connection threads are named for what they do.
    let names: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", gw.pid()))
        .expect("the gateway's threads")
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|c| c.trim().to_owned())
        .filter(|c| c.starts_with("tollgate-conn-"))
        .collect();
    assert_eq!(names.len(), 3, "limits.worker_threads: 3 runs three connection threads: {names:?}");

    let (status, out) = run_tollgate(&["validate"], &FINE.replace("servers:", "limits: { worker_threads: 0 }\nservers:")).await;
    assert!(!status.success() && out.contains("limits.worker_threads") && out.contains("greater than zero"), "{out}");
}
