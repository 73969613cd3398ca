//! A stdio backend: a child process per session, stopped when the session ends and when the
//! gateway stops, never left behind.

use std::time::Duration;

use serde_json::json;
use tollgate_tests::client::Client;
use tollgate_tests::gateway::Gateway;
use tollgate_tests::process::{binary, is_running};

fn echo_stdio() -> std::path::PathBuf {
    binary("echo_stdio")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_lists_and_calls_the_tools_of_a_stdio_server() {
    let gateway = Gateway::new().stdio_server("local", &echo_stdio(), &[]).start().await;
    let client = Client::connect(&gateway.mcp_url("local")).await;

    assert!(client.list_tools().await.contains(&"echo".to_owned()));
    assert_eq!(client.echo("over stdio").await, "over stdio");
    assert_eq!(client.call_tool("progress", json!({ "steps": 2, "label": "stdio" })).await.unwrap(), "stdio: 2 steps");
    let messages = client.progress_messages(2).await;
    assert_eq!(messages, ["stdio 1", "stdio 2"]);
    assert_eq!(client.call_tool("ask", json!({ "question": "ping?" })).await.unwrap(), "answer to: ping?");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_session_has_its_own_process() {
    let gateway = Gateway::new().stdio_server("local", &echo_stdio(), &[]).start().await;
    let a = Client::connect(&gateway.mcp_url("local")).await;
    let b = Client::connect(&gateway.mcp_url("local")).await;

    let pid_a = a.call_tool("whoami", json!({})).await.unwrap();
    let pid_b = b.call_tool("whoami", json!({})).await.unwrap();

    assert_ne!(pid_a, pid_b);
    let children = gateway.children();
    for pid in [&pid_a, &pid_b] {
        assert!(children.contains(&pid.parse().unwrap()), "process {pid} is a child of the gateway: {children:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_of_a_deleted_session_is_stopped() {
    let gateway = Gateway::new().stdio_server("local", &echo_stdio(), &[]).start().await;
    let client = Client::connect(&gateway.mcp_url("local")).await;
    let pid: u32 = client.call_tool("whoami", json!({})).await.unwrap().parse().unwrap();
    assert!(is_running(pid));

    client.close().await;

    tollgate_tests::eventually(15, "the session's process exits", || !is_running(pid)).await;
    let other = Client::connect(&gateway.mcp_url("local")).await;
    assert_eq!(other.echo("the server still serves new sessions").await, "the server still serves new sessions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_process_outlives_a_gateway_stopped_with_sigterm() {
    let gateway = Gateway::new().stdio_server("local", &echo_stdio(), &[]).shutdown_grace_ms(2000).start().await;
    let client = Client::connect(&gateway.mcp_url("local")).await;
    let pid: u32 = client.call_tool("whoami", json!({})).await.unwrap().parse().unwrap();
    let children = gateway.children();
    assert!(children.contains(&pid), "the session's process {pid} is among the gateway's children {children:?}");

    gateway.terminate();

    let status = gateway.exit_within(Duration::from_secs(10)).await.expect("the gateway exits after SIGTERM");
    assert!(status.success(), "a clean stop: {status:?}\n{}", gateway.log());
    tollgate_tests::eventually(5, "every stdio process is gone", || children.iter().all(|p| !is_running(*p))).await;
}
