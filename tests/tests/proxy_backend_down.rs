//! A backend that is down: the client is told which server failed and why, with the gateway's
//! code for an unreachable backend, and the gateway goes on serving its other servers.

use rmcp::service::{ClientInitializeError, ServiceError};
use serde_json::json;
use tollgate_tests::backend::{Backend, nothing_listening};
use tollgate_tests::client::{Client, Options};
use tollgate_tests::gateway::Gateway;
use tollgate_tests::raw::{Raw, initialize_request};

/// The gateway's JSON-RPC code for a backend it cannot reach.
use tollgate_vocabulary::code::BACKEND_UNAVAILABLE;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initialize_against_a_down_backend_names_the_server_and_the_cause() {
    let up = Backend::rmcp().start().await;
    let gateway = Gateway::new().server("down", nothing_listening()).server("up", up.url()).start().await;

    let err = Client::try_connect(&gateway.mcp_url("down"), Options { reinit_on_expired_session: true }).await.err().expect("initialize fails");
    let ClientInitializeError::JsonRpcError(e) = err else { panic!("expected a JSON-RPC error, got {err}") };
    assert_eq!(e.code.0, BACKEND_UNAVAILABLE, "{e:?}");
    assert!(e.message.contains("'down'"), "the message names the server: {}", e.message);
    assert!(e.message.contains("unreachable"), "the message gives the cause: {}", e.message);

    let raw = Raw::new(&gateway.mcp_url("down")).post_json(&initialize_request(1)).send().await;
    assert_eq!(raw.status, 200, "with an id the error travels as a JSON-RPC response: {raw:?}");
    assert_eq!(raw.error_code(), BACKEND_UNAVAILABLE);
    assert!(raw.headers.get("mcp-session-id").is_none(), "no session is issued for a failed initialize");

    let client = Client::connect(&gateway.mcp_url("up")).await;
    assert_eq!(client.echo("the other server still works").await, "the other server still works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_goes_down_mid_session_fails_the_call_with_the_server_and_cause() {
    let mut backend = Backend::rmcp().start().await;
    let other = Backend::rmcp().start().await;
    let gateway = Gateway::new().server("flaky", backend.url()).server("steady", other.url()).start().await;
    let client = Client::connect(&gateway.mcp_url("flaky")).await;
    assert_eq!(client.echo("up").await, "up");

    backend.stop().await;

    let err = client.call_tool("echo", json!({ "text": "down" })).await.expect_err("the backend is down");
    let ServiceError::McpError(e) = err else { panic!("expected a JSON-RPC error, got {err}") };
    assert_eq!(e.code.0, BACKEND_UNAVAILABLE, "{e:?}");
    assert!(e.message.contains("'flaky'") && e.message.contains("unreachable"), "{}", e.message);
    let steady = Client::connect(&gateway.mcp_url("steady")).await;
    assert_eq!(steady.echo("unaffected").await, "unaffected");
}
