//! Components compile in a bounded child process: one that needs more memory than
//! `limits.policy_compile_memory_mb` fails to load with that reason, and the gateway itself is
//! never the one that runs out.

use tollgate_tests::gateway::run_tollgate;

fn config(memory_mb: u64) -> String {
    format!(
        "limits: {{ policy_compile_memory_mb: {memory_mb}, policy_compile_cache: off }}\nservers:\n  - name: a\n    backend: {{ http: http://127.0.0.1:9/mcp }}\n    policies:\n      - policy: rate-limit\n        config: {{ limit: 10, window: 1m }}\n"
    )
}

#[tokio::test]
async fn a_compile_past_its_memory_bound_fails_the_load_with_the_reason() {
    let (status, out) = run_tollgate(&["validate"], &config(128)).await;
    assert!(!status.success(), "{out}");
    assert!(out.contains("servers[0].policies[0].policy: 'rate-limit' needed more than 128 MiB to compile (limits.policy_compile_memory_mb)"), "{out}");
    let (status, out) = run_tollgate(&["validate"], &config(1024)).await;
    assert!(status.success(), "{out}");
}
