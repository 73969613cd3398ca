//! SIGTERM: the gateway stops within its grace period even with a stream open, and lets a
//! request already in flight finish.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use tollgate_tests::backend::Backend;
use tollgate_tests::client::Client;
use tollgate_tests::gateway::Gateway;
use tollgate_tests::raw::Raw;

const GRACE_MS: u64 = 2000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_gateway_within_its_grace_period_while_a_stream_is_open() {
    let backend = Backend::rmcp().start().await;
    let gateway = Gateway::new().server("s", backend.url()).shutdown_grace_ms(GRACE_MS).start().await;
    let raw = Raw::new(&gateway.mcp_url("s"));
    let session = raw.initialize().await;
    let stream = raw.get(&session).open().await;
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");

    gateway.terminate();

    // The grace period, and time for the process to wind down after it.
    let status = gateway.exit_within(Duration::from_millis(GRACE_MS + 3000)).await;
    let status = status.unwrap_or_else(|| panic!("still running after the grace period:\n{}", gateway.log()));
    assert!(status.success(), "{status:?}\n{}", gateway.log());
    let mut body = stream.bytes_stream();
    let ended = tollgate_tests::within(5, "the open stream ends", async {
        while let Some(chunk) = body.next().await {
            if chunk.is_err() {
                break;
            }
        }
    });
    ended.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_at_sigterm_still_gets_its_answer() {
    let backend = Backend::rmcp().start().await;
    let gateway = Gateway::new().server("s", backend.url()).shutdown_grace_ms(5000).start().await;
    let client = Client::connect(&gateway.mcp_url("s")).await;

    let slow = client.call_tool("slow", json!({ "ms": 1000 }));
    let stop = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        gateway.terminate();
    };
    let (answer, ()) = tokio::join!(slow, stop);

    assert_eq!(answer.expect("the call in flight completes"), "slept 1000 ms");
    assert!(gateway.exit_within(Duration::from_secs(10)).await.is_some(), "the gateway exits once the request is done");
}
