//! A policy's `timeout_ms` is wall time: a policy parked in a host call (here `jwt` fetching
//! keys from an endpoint that never answers) fails at its limit, with its failure mode, and the
//! gateway goes on serving.

use serde_json::json;
use tollgate_tests::backend::Backend;
use tollgate_tests::gateway::RunningGateway;
use tollgate_tests::idp::{Key, now};
use tollgate_tests::raw::{Raw, initialize_request};
use tollgate_tests::standard::server;

/// Accepts connections and reads them, never answering.
async fn silent() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    format!("http://{addr}/jwks")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_waiting_in_a_host_call_fails_at_its_time_limit() {
    let backend = Backend::rmcp().start().await;
    let jwt = |fail_open: bool| {
        json!([{
            "policy": "jwt",
            "config": { "jwks_url": "JWKS", "issuers": ["https://idp.test"], "audiences": ["tollgate"] },
            "allow_hosts": ["127.0.0.1"],
            "limits": { "timeout_ms": 300 },
            "fail_open": fail_open,
        }])
    };
    let jwks = silent().await;
    let closed = server("closed", &backend.url(), jwt(false));
    let open = server("open", &backend.url(), jwt(true));
    let text = serde_json::to_string(&json!({ "listen": "127.0.0.1:0", "servers": [closed, open] })).unwrap().replace("JWKS", &jwks);
    let gw = RunningGateway::from_config(serde_json::from_str(&text).unwrap(), &[]).await;
    let token = Key::rsa("k1").sign(&json!({ "iss": "https://idp.test", "aud": "tollgate", "sub": "alice", "exp": now() + 600 }));

    // Without the step's wall-time bound this waits out the fetch's own 5 s timeout, and a
    // fail-closed binding then refuses for another reason (no keys), not its time limit.
    let started = std::time::Instant::now();
    let r = Raw::new(&gw.mcp_url("closed")).post_json(&initialize_request(1)).header("authorization", &format!("Bearer {token}")).send().await;
    assert_eq!(r.code(), Some(tollgate_vocabulary::code::POLICY_FAILED), "{r:?}");
    assert!(r.error_message().contains("exceeded its time limit"), "{r:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(4), "the step ended at its limit, not the fetch's: {:?}", started.elapsed());

    // Failing open lets the message through at the limit.
    let r = Raw::new(&gw.mcp_url("open")).post_json(&initialize_request(1)).header("authorization", &format!("Bearer {token}")).send().await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.result()["serverInfo"].is_object(), "{r:?}");
    assert!(gw.log().contains("exceeded its time limit"), "the failure is logged");
}
