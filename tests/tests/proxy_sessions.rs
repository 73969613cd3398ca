//! Sessions the gateway issues: ended by DELETE, expired when idle, and kept across a backend
//! that restarted and forgot its own session.

use std::time::Duration;

use serde_json::json;
use tollgate_tests::backend::Backend;
use tollgate_tests::client::{Client, Options};
use tollgate_tests::eventually;
use tollgate_tests::gateway::Gateway;
use tollgate_tests::raw::{Raw, request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_ends_the_session_and_a_new_initialize_works() {
    let backend = Backend::rmcp().start().await;
    let gateway = Gateway::new().server("s", backend.url()).start().await;
    let raw = Raw::new(&gateway.mcp_url("s"));
    let session = raw.initialize().await;
    assert_eq!(raw.post_json(&request(2, "tools/list", json!({}))).session(&session).send().await.status, 200);

    assert_eq!(raw.delete(&session).send().await.status, 200);

    let after = raw.post_json(&request(3, "tools/list", json!({}))).session(&session).send().await;
    assert_eq!(after.status, 404, "a deleted session is not found: {after:?}");
    let again = raw.initialize().await;
    assert_ne!(again, session);
    assert_eq!(raw.post_json(&request(4, "tools/list", json!({}))).session(&again).send().await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_client_that_closes_deletes_its_session() {
    let backend = Backend::rmcp().start().await;
    let gateway = Gateway::new().server("s", backend.url()).start().await;
    let client = Client::connect(&gateway.mcp_url("s")).await;
    assert_eq!(client.echo("before close").await, "before close");
    let session = client.session_id();

    client.close().await;

    let raw = Raw::new(&gateway.mcp_url("s"));
    tollgate_tests::within(10, "the closed session is gone", async {
        loop {
            let r = raw.post_json(&request(9, "tools/list", json!({}))).session(&session).send().await;
            if r.status == 404 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let next = Client::connect(&gateway.mcp_url("s")).await;
    assert_eq!(next.echo("after close").await, "after close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_expires_and_the_client_initializes_again() {
    let backend = Backend::rmcp().start().await;
    let gateway = Gateway::new().server("s", backend.url()).idle_timeout_s(1).start().await;
    let raw = Raw::new(&gateway.mcp_url("s"));
    let session = raw.initialize().await;
    assert_eq!(raw.post_json(&request(2, "tools/list", json!({}))).session(&session).send().await.status, 200);

    tokio::time::sleep(Duration::from_millis(2500)).await;

    let expired = raw.post_json(&request(3, "tools/list", json!({}))).session(&session).send().await;
    assert_eq!(expired.status, 404, "an expired session is not found: {expired:?}");
    let fresh = raw.initialize().await;
    assert_eq!(raw.post_json(&request(4, "tools/list", json!({}))).session(&fresh).send().await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_client_whose_session_expired_reinitializes_and_goes_on() {
    let backend = Backend::rmcp().start().await;
    let gateway = Gateway::new().server("s", backend.url()).idle_timeout_s(1).start().await;
    let client = Client::connect(&gateway.mcp_url("s")).await;
    assert_eq!(client.echo("one").await, "one");

    tokio::time::sleep(Duration::from_millis(2500)).await;

    assert_eq!(client.echo("two").await, "two");
    assert_eq!(client.session_ids().len(), 2, "the client got a new session after the 404: {:?}", client.session_ids());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_client_that_does_not_reinitialize_sees_its_expired_session_end() {
    let backend = Backend::rmcp().start().await;
    let gateway = Gateway::new().server("s", backend.url()).idle_timeout_s(1).start().await;
    let options = Options { reinit_on_expired_session: false };
    let client = Client::try_connect(&gateway.mcp_url("s"), options).await.expect("connect");
    assert_eq!(client.echo("one").await, "one");

    tokio::time::sleep(Duration::from_millis(2500)).await;

    let err = client.call_tool("echo", json!({ "text": "two" })).await.expect_err("the session expired");
    assert!(err.to_string().contains("404"), "the client was told its session expired (404): {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_restarted_mid_session_is_invisible_to_the_client() {
    let mut backend = Backend::rmcp().named("first").start().await;
    let gateway = Gateway::new().server("s", backend.url()).start().await;
    let client = Client::connect(&gateway.mcp_url("s")).await;
    assert_eq!(client.call_tool("whoami", json!({})).await.unwrap(), "first");

    backend.restart_as("second").await;

    // The new backend knows nothing of the old session: the gateway opens a new one upstream.
    assert_eq!(client.call_tool("whoami", json!({})).await.unwrap(), "second");
    assert_eq!(client.echo("still here").await, "still here");
    assert_eq!(client.session_ids().len(), 1, "the client kept its gateway session: {:?}", client.session_ids());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_restarted_mid_session_serves_the_session_after_it_settles() {
    let mut backend = Backend::rmcp().named("first").start().await;
    let gateway = Gateway::new().server("s", backend.url()).start().await;
    let client = Client::connect(&gateway.mcp_url("s")).await;
    assert_eq!(client.call_tool("whoami", json!({})).await.unwrap(), "first");

    backend.restart_as("second").await;
    // Long enough for the gateway's stream listener to notice the lost session on its own.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    assert_eq!(client.call_tool("whoami", json!({})).await.unwrap(), "second");
    assert_eq!(client.session_ids().len(), 1, "the client kept its gateway session: {:?}", client.session_ids());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_stream_opens_only_once_the_client_opens_its_own() {
    let backend = Backend::rmcp().start().await;
    let gateway = Gateway::new().server("s", backend.url()).start().await;
    let raw = Raw::new(&gateway.mcp_url("s"));
    let session = raw.initialize().await;
    for id in 2..5 {
        assert_eq!(raw.post_json(&request(id, "tools/list", json!({}))).session(&session).send().await.status, 200);
    }
    assert_eq!(backend.seen().streams(), 0, "a session whose client has no GET stream holds none to the backend");

    let stream = raw.get(&session).header("mcp-protocol-version", "2025-11-25").open().await;
    assert_eq!(stream.status(), 200);
    eventually(10, "the backend's GET stream opened", || backend.seen().streams() == 1).await;
    // The client's stream, reopened, finds the backend's still open: no second one.
    drop(stream);
    let again = raw.get(&session).header("mcp-protocol-version", "2025-11-25").open().await;
    assert_eq!(again.status(), 200);
    assert_eq!(raw.post_json(&request(5, "tools/list", json!({}))).session(&session).send().await.status, 200);
    assert_eq!(backend.seen().streams(), 1);
}

/// More sessions than one HTTP/2 connection carries streams (hyper's servers allow 200): the
/// GET streams spread over a few connections and leave requests room on theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_to_an_http2_backend_share_a_few_connections_and_held_streams_never_starve_calls() {
    const SESSIONS: usize = 210;
    let backend = Backend::rmcp().start().await;
    let gateway = Gateway::new().server_with("s", json!({ "http": backend.url(), "http2": true })).start().await;
    let raw = Raw::new(&gateway.mcp_url("s"));
    let mut held = Vec::new();
    let mut sessions = Vec::new();
    for _ in 0..SESSIONS {
        let session = raw.initialize().await;
        let stream = raw.get(&session).header("mcp-protocol-version", "2025-11-25").open().await;
        assert_eq!(stream.status(), 200);
        held.push(stream);
        sessions.push(session);
    }
    eventually(20, "every session's backend GET stream opened", || backend.seen().streams() == SESSIONS).await;

    for (i, session) in sessions.iter().enumerate().step_by(50) {
        let call = request(10 + i as i64, "tools/call", json!({ "name": "echo", "arguments": { "text": format!("session {i}") } }));
        let r = raw.post_json(&call).session(session).send().await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.result()["content"][0]["text"], format!("session {i}"));
    }
    let connections = backend.seen().connections();
    assert!(connections <= 5, "{SESSIONS} sessions took {connections} backend connections");
}
