//! What the gateway answers to HTTP that no correct client sends, and what it never passes on
//! to a backend.

use serde_json::json;
use tollgate_tests::backend::{Backend, RunningBackend};
use tollgate_tests::gateway::{Gateway, RunningGateway};
use tollgate_tests::raw::{Raw, initialize_request, request};

use tollgate_vocabulary::code::{INVALID_REQUEST, PARSE_ERROR};

async fn gateway() -> (RunningBackend, RunningGateway) {
    let backend = Backend::rmcp().start().await;
    let gateway = Gateway::new().server("s", backend.url()).max_body_bytes(4096).start().await;
    (backend, gateway)
}

fn tools_list() -> serde_json::Value {
    request(2, "tools/list", json!({}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_a_parse_error() {
    let (_b, gw) = gateway().await;
    let r = Raw::new(&gw.mcp_url("s")).post(r#"{"jsonrpc": "2.0", "id": 1, "method": "#).send().await;
    assert_eq!((r.status, r.error_code()), (400, PARSE_ERROR), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_that_is_not_json_rpc_is_an_invalid_request() {
    let (_b, gw) = gateway().await;
    let raw = Raw::new(&gw.mcp_url("s"));
    for body in [r#"{"jsonrpc": "1.0", "id": 1, "method": "initialize"}"#, r#"{"jsonrpc": "2.0", "id": 1}"#, r#""initialize""#] {
        let r = raw.post(body).send().await;
        assert_eq!((r.status, r.error_code()), (400, INVALID_REQUEST), "{body}: {r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_refused() {
    let (_b, gw) = gateway().await;
    let batch = json!([initialize_request(1), tools_list()]);
    let r = Raw::new(&gw.mcp_url("s")).post_json(&batch).send().await;
    assert_eq!((r.status, r.error_code()), (400, INVALID_REQUEST), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_accept_both_json_and_sse_is_not_acceptable() {
    let (_b, gw) = gateway().await;
    let r = Raw::new(&gw.mcp_url("s")).post_json(&initialize_request(1)).header("accept", "application/json").send().await;
    assert_eq!(r.status, 406, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_declared_json_is_an_unsupported_media_type() {
    let (_b, gw) = gateway().await;
    let r = Raw::new(&gw.mcp_url("s")).post_json(&initialize_request(1)).header("content-type", "text/plain").send().await;
    assert_eq!(r.status, 415, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_server_is_not_found() {
    let (_b, gw) = gateway().await;
    let r = Raw::new(&gw.mcp_url("nope")).post_json(&initialize_request(1)).send().await;
    assert_eq!(r.status, 404, "{r:?}");
    assert!(r.error_message().contains("nope"), "the answer names the missing server: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_a_session_is_a_bad_request() {
    let (_b, gw) = gateway().await;
    let r = Raw::new(&gw.mcp_url("s")).post_json(&tools_list()).send().await;
    assert_eq!(r.status, 400, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_session_is_not_found() {
    let (_b, gw) = gateway().await;
    let raw = Raw::new(&gw.mcp_url("s"));
    let r = raw.post_json(&tools_list()).session("0123456789abcdef0123456789abcdef").send().await;
    assert_eq!(r.status, 404, "{r:?}");
    let get = raw.get("0123456789abcdef0123456789abcdef").send().await;
    assert_eq!(get.status, 404, "{get:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_protocol_version_header_is_a_bad_request() {
    let (_b, gw) = gateway().await;
    let raw = Raw::new(&gw.mcp_url("s"));
    let session = raw.initialize().await;
    let r = raw.post_json(&tools_list()).header("mcp-session-id", &session).header("mcp-protocol-version", "1999-01-01").send().await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.error_message().contains("1999-01-01"), "{r:?}");
    let ok = raw.post_json(&tools_list()).session(&session).send().await;
    assert_eq!(ok.status, 200, "the same request with a supported version is served: {ok:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_origin_is_forbidden_and_a_loopback_one_is_not() {
    let (_b, gw) = gateway().await;
    let raw = Raw::new(&gw.mcp_url("s"));
    let r = raw.post_json(&initialize_request(1)).header("origin", "https://evil.example").send().await;
    assert_eq!(r.status, 403, "{r:?}");
    let local = raw.post_json(&initialize_request(1)).header("origin", "http://localhost:3000").send().await;
    assert_eq!(local.status, 200, "{local:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_too_large() {
    let (_b, gw) = gateway().await;
    let raw = Raw::new(&gw.mcp_url("s"));
    let session = raw.initialize().await;
    let big = request(2, "tools/call", json!({ "name": "echo", "arguments": { "text": "x".repeat(8192) } }));
    let r = raw.post_json(&big).session(&session).send().await;
    assert_eq!(r.status, 413, "{r:?}");
    let small = request(3, "tools/call", json!({ "name": "echo", "arguments": { "text": "x".repeat(1024) } }));
    assert_eq!(raw.post_json(&small).session(&session).send().await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clients_credentials_never_reach_the_backend_and_configured_headers_do() {
    let backend = Backend::rmcp().start().await;
    let gw = Gateway::new().server_with_headers("s", backend.url(), &[("X-Backend-Key", "configured")]).start().await;
    let raw = Raw::new(&gw.mcp_url("s"));
    let secret = |r: tollgate_tests::raw::RawRequest| r.header("authorization", "Bearer client-token").header("cookie", "sid=client-cookie");

    let init = secret(raw.post_json(&initialize_request(1))).send().await;
    assert_eq!(init.status, 200, "{init:?}");
    let session = init.headers["mcp-session-id"].to_str().unwrap().to_owned();
    let done = secret(raw.post_json(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" })).session(&session)).send().await;
    assert_eq!(done.status, 202);
    let call = secret(raw.post_json(&request(2, "tools/call", json!({ "name": "echo", "arguments": { "text": "hi" } }))).session(&session)).send().await;
    assert_eq!(call.status, 200, "{call:?}");
    assert_eq!(secret(raw.delete(&session)).send().await.status, 200);

    let seen = backend.seen().headers();
    assert!(seen.len() >= 3, "initialize, initialized and the call reached the backend: {} requests", seen.len());
    for headers in &seen {
        assert!(headers.get("authorization").is_none(), "the client's Authorization reached the backend: {headers:?}");
        assert!(headers.get("cookie").is_none(), "the client's Cookie reached the backend: {headers:?}");
        assert_eq!(headers.get("x-backend-key").map(|v| v.to_str().unwrap()), Some("configured"), "{headers:?}");
    }
}
