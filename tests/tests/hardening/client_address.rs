//! Behind a trusted proxy, the client's address is what the proxy appended: a client's own
//! first line, or a header of the other kind, decides nothing, on any door.

use serde_json::{Value, json};
use tollgate_tests::backend::{Backend, RunningBackend};
use tollgate_tests::gateway::RunningGateway;
use tollgate_tests::raw::{Raw, RawRequest, initialize_request, request};
use tollgate_tests::standard::{FORBIDDEN, policy, server};

/// An allow-list of the inside network, with this test (at 127.0.0.1) as the trusted proxy.
async fn behind_proxy(header: &str) -> (RunningGateway, RunningBackend) {
    let backend = Backend::rmcp().start().await;
    let chain = json!([policy("ip-filter", json!({ "allow": ["10.0.0.0/8"] }))]);
    let config = json!({
        "listen": "127.0.0.1:0",
        "client_address": { "trusted_proxies": ["127.0.0.1"], "header": header },
        "servers": [server("inside", &backend.url(), chain)],
    });
    (RunningGateway::from_config(config, &[]).await, backend)
}

fn with(mut req: RawRequest, lines: &[(&str, &str)]) -> RawRequest {
    for (k, v) in lines {
        req = req.append(k, v);
    }
    req
}

async fn initialize(raw: &Raw, lines: &[(&str, &str)]) -> (u16, Value) {
    let r = with(raw.post_json(&initialize_request(1)), lines).send().await;
    (r.status, r.message())
}

const INSIDE: (&str, &str) = ("x-forwarded-for", "10.1.2.3");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_for_is_read_whole_from_the_right() {
    let (gw, _backend) = behind_proxy("x-forwarded-for").await;
    let raw = Raw::new(&gw.mcp_url("inside"));
    // The client at 203.0.113.9 forges an inside address; the proxy appends the real one.
    let forged: [&[(&str, &str)]; 3] = [
        &[("x-forwarded-for", "10.1.2.3"), ("x-forwarded-for", "203.0.113.9")],
        &[("x-forwarded-for", "10.1.2.3, 203.0.113.9")],
        &[("forwarded", "for=10.1.2.3"), ("x-forwarded-for", "203.0.113.9")],
    ];
    for lines in forged {
        let (status, msg) = initialize(&raw, lines).await;
        assert_eq!((status, msg["error"]["code"].as_i64()), (403, Some(FORBIDDEN as i64)), "{lines:?}: {msg}");
        assert_eq!(msg["error"]["data"]["clientIp"], "203.0.113.9", "the address the proxy wrote decides: {msg}");
    }
    // A client inside, through the same proxy: its address last.
    let (status, msg) = initialize(&raw, &[("x-forwarded-for", "6.6.6.6, 10.1.2.3")]).await;
    assert_eq!(status, 200, "{msg}");

    // Every door of a session opened from inside, tried from outside with a forged first line.
    let session = {
        let r = with(raw.post_json(&initialize_request(1)), &[INSIDE]).send().await;
        let id = r.headers["mcp-session-id"].to_str().unwrap().to_owned();
        let done = with(raw.post_json(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" })).session(&id), &[INSIDE]).send().await;
        assert_eq!(done.status, 202);
        id
    };
    let outside: &[(&str, &str)] = &[("x-forwarded-for", "10.1.2.3"), ("x-forwarded-for", "203.0.113.9")];
    let call = request(2, "tools/call", json!({ "name": "echo", "arguments": { "text": "hi" } }));
    let doors = [
        ("call", with(raw.post_json(&call).session(&session), outside)),
        (
            "notification",
            with(raw.post_json(&json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": 9 } })).session(&session), outside),
        ),
        ("stream", with(raw.get(&session), outside)),
        ("resume", with(raw.get(&session).header("last-event-id", "0"), outside)),
        ("delete", with(raw.delete(&session), outside)),
        ("stateless", with(raw.stateless("tools/list", json!({})), outside)),
    ];
    for (door, req) in doors {
        let r = req.send().await;
        assert_eq!(r.status, 403, "{door}: {r:?}");
    }
    // The session is intact for its owner inside.
    let r = with(raw.post_json(&call).session(&session), &[INSIDE]).send().await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.result()["content"][0]["text"], "hi");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_is_read_whole_and_x_forwarded_for_is_ignored() {
    let (gw, _backend) = behind_proxy("forwarded").await;
    let raw = Raw::new(&gw.mcp_url("inside"));
    let forged: [&[(&str, &str)]; 3] = [
        &[("x-forwarded-for", "10.1.2.3"), ("forwarded", "for=203.0.113.9")],
        &[("forwarded", "for=10.1.2.3"), ("forwarded", "for=203.0.113.9;proto=http")],
        &[("forwarded", "for=10.1.2.3, for=\"203.0.113.9:4711\"")],
    ];
    for lines in forged {
        let (status, msg) = initialize(&raw, lines).await;
        assert_eq!(status, 403, "{lines:?}: {msg}");
    }
    let (status, msg) = initialize(&raw, &[("forwarded", "for=203.0.113.9, for=10.1.2.3")]).await;
    assert_eq!(status, 200, "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_trusted_proxies_the_peer_is_the_client_whatever_it_writes() {
    let backend = Backend::rmcp().start().await;
    let chain = json!([policy("ip-filter", json!({ "allow": ["10.0.0.0/8"] }))]);
    let gw = RunningGateway::from_config(json!({ "listen": "127.0.0.1:0", "servers": [server("inside", &backend.url(), chain)] }), &[]).await;
    let raw = Raw::new(&gw.mcp_url("inside"));
    let (status, msg) = initialize(&raw, &[INSIDE, ("forwarded", "for=10.1.2.3")]).await;
    assert_eq!(status, 403, "{msg}");
    assert_eq!(msg["error"]["data"]["clientIp"], "127.0.0.1");
}

#[tokio::test]
async fn a_policy_that_still_names_trusted_proxies_is_refused_with_where_it_went() {
    let config = "servers:\n  - name: a\n    backend: { http: http://127.0.0.1:9/mcp }\n    policies:\n      - policy: ip-filter\n        config: { allow: [10.0.0.0/8], trusted_proxies: [10.0.0.2] }\n";
    let (status, out) = tollgate_tests::gateway::run_tollgate(&["validate"], config).await;
    assert!(!status.success(), "{out}");
    assert!(out.contains("client_address.trusted_proxies"), "{out}");
}
