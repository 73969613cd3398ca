//! An `rmcp` client uses an `rmcp` Streamable HTTP server through the gateway's `/{name}/mcp`:
//! tools, and the messages the server sends the client while it works on a request.

use serde_json::json;
use tollgate_tests::backend::Backend;
use tollgate_tests::client::Client;
use tollgate_tests::gateway::Gateway;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_lists_and_calls_the_tools_of_its_backend() {
    let backend = Backend::rmcp().start().await;
    let gateway = Gateway::new().server("tools", backend.url()).start().await;
    let client = Client::connect(&gateway.mcp_url("tools")).await;

    let mut tools = client.list_tools().await;
    tools.sort();
    assert_eq!(tools, ["ask", "echo", "log", "meta", "progress", "slow", "whoami"]);
    assert_eq!(client.echo("hello through the gateway").await, "hello through the gateway");
    assert_eq!(client.call_tool("slow", json!({ "ms": 300 })).await.unwrap(), "slept 300 ms");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_reaches_the_client_whose_request_asked_for_it() {
    let backend = Backend::rmcp().start().await;
    let gateway = Gateway::new().server("tools", backend.url()).start().await;
    let watcher = Client::connect(&gateway.mcp_url("tools")).await;
    let worker = Client::connect(&gateway.mcp_url("tools")).await;

    let answer = worker.call_tool("progress", json!({ "steps": 5, "label": "worker" })).await.unwrap();

    assert_eq!(answer, "worker: 5 steps");
    let messages = worker.progress_messages(5).await;
    assert_eq!(messages, ["worker 1", "worker 2", "worker 3", "worker 4", "worker 5"]);
    assert!(watcher.progress().is_empty(), "another session got progress it never asked for: {:?}", watcher.progress());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logging_notification_reaches_the_client() {
    let backend = Backend::rmcp().start().await;
    let gateway = Gateway::new().server("tools", backend.url()).start().await;
    let client = Client::connect(&gateway.mcp_url("tools")).await;

    assert_eq!(client.call_tool("log", json!({ "text": "disk almost full" })).await.unwrap(), "logged disk almost full");

    tollgate_tests::eventually(10, "the log message arrives", || !client.logs().is_empty()).await;
    assert_eq!(client.logs(), ["disk almost full"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_asks_the_clients_model_and_gets_its_answer() {
    let backend = Backend::rmcp().start().await;
    let gateway = Gateway::new().server("tools", backend.url()).start().await;
    let client = Client::connect(&gateway.mcp_url("tools")).await;

    let answer = client.call_tool("ask", json!({ "question": "what is the capital of France?" })).await.unwrap();

    assert_eq!(client.sampling_questions(), ["what is the capital of France?"]);
    assert_eq!(answer, "answer to: what is the capital of France?");
}
