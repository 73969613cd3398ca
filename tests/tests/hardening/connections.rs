//! Slow and idle connections are closed, a connection cap holds, and normal traffic flows;
//! HTTP/2's `:authority` meets the host check; the client listener's `/readyz` names nothing.

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tollgate_tests::backend::{Backend, nothing_listening};
use tollgate_tests::client::Client;
use tollgate_tests::gateway::{Gateway, run_tollgate};
use tollgate_tests::within;

/// Reads until the gateway closes the connection; what it sent before.
async fn until_closed(conn: &mut tokio::net::TcpStream) -> String {
    let mut got = Vec::new();
    let _ = conn.read_to_end(&mut got).await;
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_are_closed_and_traffic_flows_past_the_cap() {
    let backend = Backend::rmcp().start().await;
    let gateway = Gateway::new()
        .server("docs", backend.url())
        .top("limits", json!({ "max_connections": 2, "header_read_timeout_ms": 500, "body_read_timeout_ms": 500 }))
        .start()
        .await;
    let addr = gateway.addr();

    // Two connections take the whole cap: one sends nothing, one sends a body a trickle at a time.
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /docs/mcp HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\ncontent-length: 1000\r\n\r\n{{\"jsonrpc\":"
    );
    slow.write_all(head.as_bytes()).await.unwrap();

    // A client arriving now waits for the cap, then is served.
    let url = gateway.mcp_url("docs");
    let normal = tokio::spawn(async move {
        let client = Client::connect(&url).await;
        client.echo("past the cap").await
    });
    let idle_end = within(15, "the idle connection is closed", until_closed(&mut idle)).await;
    assert!(!idle_end.contains("200 OK"), "{idle_end}");
    let slow_end = within(15, "the slow body is cut off", until_closed(&mut slow)).await;
    assert!(!slow_end.contains("200 OK"), "the slow request was not served: {slow_end}");
    assert_eq!(within(30, "the normal client", normal).await.unwrap(), "past the cap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_authority_meets_the_host_check() {
    let backend = Backend::rmcp().start().await;
    let gateway = Gateway::new().server("docs", backend.url()).start().await;
    let addr = gateway.addr();
    let h2 = reqwest::Client::builder().http2_prior_knowledge().resolve("evil.example", addr).build().unwrap();
    let r = h2.get(format!("http://evil.example:{}/healthz", addr.port())).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 421, "a foreign :authority is refused as a foreign Host is");
    let r = h2.get(format!("http://127.0.0.1:{}/healthz", addr.port())).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// HTTP/1 connections are told from HTTP/2 by their first byte: whichever way a connection
/// goes, a request line begun and never finished is cut off at the header read timeout, and
/// both protocols are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_begun_and_left_is_cut_off_on_either_protocol_path() {
    let backend = Backend::rmcp().start().await;
    let gateway = Gateway::new().server("docs", backend.url()).top("limits", json!({ "header_read_timeout_ms": 500 })).start().await;
    let addr = gateway.addr();
    for start in ["G", "GET /docs/mcp HTTP/1.1\r\nhost: x", "P", "POST /docs/mcp HTTP/1.1\r\n", "PRI * HTTP/2.0\r\n"] {
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(start.as_bytes()).await.unwrap();
        let end = within(10, "the unfinished head is cut off", until_closed(&mut conn)).await;
        assert!(!end.contains("200 OK"), "{start:?}: {end}");
    }
    let h1 = reqwest::Client::builder().http1_only().build().unwrap();
    let r = h1.get(format!("http://{addr}/healthz")).send().await.unwrap();
    assert_eq!((r.version(), r.status().as_u16()), (reqwest::Version::HTTP_11, 200));
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let r = h2.get(format!("http://{addr}/healthz")).send().await.unwrap();
    assert_eq!((r.version(), r.status().as_u16()), (reqwest::Version::HTTP_2, 200));
    // A session's GET stream over HTTP/1, the connection this path is for.
    let client = Client::connect(&gateway.mcp_url("docs")).await;
    assert_eq!(client.echo("after the cut-offs").await, "after the cut-offs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_readyz_says_not_ready_without_naming_anything() {
    let down = nothing_listening();
    let gateway = Gateway::new().server("secret-backend-name", down.clone()).management("ready-token").start().await;
    let r = reqwest::get(gateway.url("/readyz")).await.unwrap();
    assert_eq!(r.status(), 503);
    let body = r.text().await.unwrap();
    assert_eq!(body, "not ready");
    let detail = reqwest::get(format!("{}/readyz", gateway.management())).await.unwrap().text().await.unwrap();
    assert!(detail.contains("secret-backend-name"), "the management listener has the detail: {detail}");
}

#[tokio::test]
async fn absurd_limits_are_refused_by_validate() {
    let config = "limits:\n  max_connections: 0\n  body_read_timeout_ms: 99999999999999\n  request_timeout_ms: 18446744073709551615\nservers:\n  - name: a\n    backend: { http: http://127.0.0.1:9/mcp }\n";
    let (status, out) = run_tollgate(&["validate"], config).await;
    assert!(!status.success(), "{out}");
    for place in
        ["limits.max_connections: must be greater than zero", "limits.body_read_timeout_ms: 99999999999999 is out of range", "limits.request_timeout_ms"]
    {
        assert!(out.contains(place), "{place}: {out}");
    }
}
