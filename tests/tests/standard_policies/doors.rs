//! Every door of the gateway passes the same admission, tried with hostile requests through
//! the real binary: other spellings of a guarded server's path on every route, every session
//! operation by a caller without a token and by another caller, answers to server requests
//! never sent, refused legacy streams and `initialize`s that must claim no stdio process, a
//! second legacy `initialize`, an oversized batch, and the stateless revision's own errors.
//! Each case checks the status, the JSON-RPC code, and that the backend saw nothing.

use std::net::SocketAddr;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tollgate_tests::admin::Admin;
use tollgate_tests::gateway::management_addr;
use tollgate_tests::raw::{Raw, initialize_request};

use tollgate_tests::caller::text;
use tollgate_tests::gateway::RunningGateway;
use tollgate_tests::idp::{Idp, Key, now};
use tollgate_tests::recorder::Recorder;
use tollgate_tests::standard::UNAUTHORIZED;
use tollgate_tests::standard::server;

const ADMIN: &str = "doors-admin-token";
const KEY_HEADER: &str = "Ocp-Apim-Subscription-Key";
use tollgate_vocabulary::code::{BAD_REQUEST as NOT_FOUND_CODE, SUBSCRIPTION_KEY};

/// One HTTP/1.1 request written by hand, so the path reaches the gateway exactly as spelled
/// (an HTTP client library would normalize dot segments); the status and the body.
async fn by_hand(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect to the gateway");
    let mut req = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.expect("send");
    let mut out = Vec::new();
    // A stream the gateway opened stays open: what came in the first seconds is enough.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no status line in {text:?}"));
    (status, text)
}

fn token(key: &Key, idp: &Idp, sub: &str) -> String {
    key.sign(&json!({ "iss": idp.issuer, "sub": sub, "aud": "tools", "iat": now(), "exp": now() + 600 }))
}

struct World {
    gw: RunningGateway,
    backend: Recorder,
    idp: Idp,
    key: Key,
}

/// `docs`: sold only through product `paid` (a key required); `s`: behind `jwt`; `local`: a
/// stdio server behind `jwt`, with no warm process, so any process is one a session claimed.
async fn world() -> World {
    let backend = Recorder::start().await;
    let idp = Idp::start().await;
    let key = Key::rsa("k1");
    idp.publish(&[&key]);
    let jwt = idp.jwt_binding("tools");
    let data = tollgate_tests::gateway::write_temp("keep", "").parent().expect("a dir").join("data");
    let stdio =
        json!({ "name": "local", "backend": { "stdio": { "command": tollgate_tests::process::binary("echo_stdio"), "warm": 0 } }, "policies": [jwt.clone()] });
    let config = json!({
        "listen": "127.0.0.1:0",
        "management": { "listen": "127.0.0.1:0", "admin_token_env": "TOLLGATE_ADMIN_TOKEN", "data_dir": data },
        "limits": { "max_batch_entries": 4 },
        "servers": [server("docs", &backend.url, json!([])), server("s", &backend.url, json!([jwt])), stdio],
        "products": [{ "name": "paid", "servers": [{ "server": "docs", "tools": ["echo"] }] }],
    });
    let gw = RunningGateway::from_config(config, &[("TOLLGATE_ADMIN_TOKEN", ADMIN)]).await;
    World { gw, backend, idp, key }
}

impl World {
    fn admin(&self) -> Admin {
        let addr = management_addr(&self.gw.log()).expect("the management API listens");
        Admin::new(&format!("http://{addr}"), ADMIN)
    }
}

#[tokio::test]
async fn every_spelling_of_a_guarded_path_meets_the_guard_or_nothing() {
    let w = world().await;
    let init = initialize_request(1).to_string();
    let post = [("content-type", "application/json"), ("accept", "application/json, text/event-stream")];
    let sse = [("accept", "text/event-stream")];
    let spellings = ["/docs", "/%64ocs", "/d%6Fcs", "/%64%6f%63%73", "/Docs", "/./docs", "/docs/.", "//docs", "/x/../docs", "/docs%2f"];
    for base in spellings {
        for (method, suffix, headers, body) in
            [("POST", "/mcp", &post[..], init.as_str()), ("GET", "/sse", &sse[..], ""), ("POST", "/message?sessionId=x", &post[..], init.as_str())]
        {
            let path = format!("{base}{suffix}");
            let (status, text) = by_hand(w.gw.addr(), method, &path, headers, body).await;
            assert!(status == 401 || status == 404 || status == 400, "{method} {path}: {status} {text}");
            if status == 401 {
                assert!(text.contains(&SUBSCRIPTION_KEY.to_string()), "{method} {path}: the product's refusal: {text}");
            }
        }
        // Versioned and trailing-slash forms of the same name.
        for path in [format!("{base}/v1/mcp"), format!("{base}/mcp/")] {
            let (status, text) = by_hand(w.gw.addr(), "POST", &path, &post, &init).await;
            assert!(status == 401 || status == 404, "POST {path}: {status} {text}");
        }
    }
    assert!(w.backend.all().is_empty(), "no spelling reached the backend: {:?}", w.backend.all());

    // With a key the same spellings reach the same server, through the same guard.
    let admin = w.admin();
    let sub = admin.subscribe("paid", "ops@example.com").await;
    let (status, text) = by_hand(w.gw.addr(), "POST", "/%64ocs/mcp", &[post[0], post[1], (KEY_HEADER, &sub.primary)], &init).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(w.backend.seen("initialize").len(), 1);
}

#[tokio::test]
async fn a_session_answers_only_its_owner_on_every_door() {
    let w = world().await;
    let alice = token(&w.key, &w.idp, "alice");
    let bob = token(&w.key, &w.idp, "bob");
    let raw = Raw::new(&w.gw.mcp_url("s"));
    let mut owner = tollgate_tests::caller::Caller::new(&w.gw.mcp_url("s")).bearer(&alice).initialized().await;
    let sid = owner.session().expect("a session").to_owned();
    assert_eq!(text(&owner.call("echo", json!({ "text": "mine" })).await), "mine");
    let before = w.backend.all().len();

    let bob_auth = format!("Bearer {bob}");
    let call = json!({ "jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": { "name": "echo", "arguments": { "text": "not mine" } } });
    let note = json!({ "jsonrpc": "2.0", "method": "notifications/roots/list_changed" });
    let answer = json!({ "jsonrpc": "2.0", "id": 0, "result": {} });
    for (who, auth) in [("no token", None), ("bob", Some(bob_auth.as_str()))] {
        let want = if auth.is_none() { 401 } else { 404 };
        let with = |r: tollgate_tests::raw::RawRequest| match auth {
            Some(a) => r.header("authorization", a),
            None => r,
        };
        for (door, msg) in [("request", &call), ("notification", &note), ("response", &answer)] {
            let r = with(raw.post_json(msg).session(&sid)).send().await;
            assert_eq!(r.status, want, "{who}'s {door}: {r:?}");
            if auth.is_none() {
                assert_eq!(r.error_code(), UNAUTHORIZED, "{who}'s {door}: {r:?}");
                assert!(r.headers.contains_key("www-authenticate"), "{who}'s {door}: {r:?}");
            } else {
                assert_eq!(r.error_code(), NOT_FOUND_CODE, "{who}'s {door}: {r:?}");
            }
        }
        let get = with(raw.get(&sid)).open().await.status().as_u16();
        assert_eq!(get, want, "{who}'s GET stream");
        let resume = with(raw.get(&sid).header("last-event-id", "1-1")).open().await.status().as_u16();
        assert_eq!(resume, want, "{who}'s resumption");
        let delete = with(raw.delete(&sid)).send().await;
        assert_eq!(delete.status, want, "{who}'s DELETE: {delete:?}");
    }
    assert_eq!(w.backend.all().len(), before, "nothing of theirs reached the backend: {:?}", &w.backend.all()[before..]);

    // The owner's session is untouched, and an answer to a request never sent is refused.
    assert_eq!(text(&owner.call("echo", json!({ "text": "still mine" })).await), "still mine");
    let r = raw.post_json(&answer).session(&sid).header("authorization", &format!("Bearer {alice}")).send().await;
    assert_eq!((r.status, r.error_code()), (400, -32600), "{r:?}");
    let gone = raw.delete(&sid).header("authorization", &format!("Bearer {alice}")).send().await;
    assert_eq!(gone.status, 200, "the owner may end it: {gone:?}");
}

#[tokio::test]
async fn refused_legacy_and_initialize_claim_no_process() {
    let w = world().await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = w.gw.base();
    let sse = http.get(format!("{base}/local/sse")).header("accept", "text/event-stream").send().await.unwrap();
    assert_eq!(sse.status(), 401, "an unauthenticated legacy stream is refused");
    let r = Raw::new(&w.gw.mcp_url("local")).post_json(&initialize_request(1)).send().await;
    assert_eq!((r.status, r.error_code()), (401, UNAUTHORIZED), "{r:?}");
    assert!(w.gw.children().is_empty(), "no stdio process was claimed for a refused caller");

    // An admitted legacy session claims one process, and only once.
    let alice = format!("Bearer {}", token(&w.key, &w.idp, "alice"));
    let mut stream = http.get(format!("{base}/local/sse")).header("accept", "text/event-stream").header("authorization", &alice).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    let mut seen = String::new();
    let endpoint = loop {
        let chunk = tollgate_tests::within(10, "the endpoint event", stream.chunk()).await.unwrap().expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
        if let Some(line) = seen.lines().find(|l| l.starts_with("data: /local/message")) {
            break line.trim_start_matches("data: ").to_owned();
        }
    };
    let post = |msg: Value, auth: Option<&str>| {
        let mut r = http.post(format!("{base}{endpoint}")).header("content-type", "application/json").body(msg.to_string());
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.send()
    };
    // Answers to requests go on the stream, refusals included.
    assert_eq!(post(initialize_request(1), None).await.unwrap().status(), 202);
    assert_eq!(post(initialize_request(2), Some(&alice)).await.unwrap().status(), 202);
    assert_eq!(post(initialize_request(3), Some(&alice)).await.unwrap().status(), 202);
    let mut answers = Vec::new();
    while answers.len() < 3 {
        let chunk = tollgate_tests::within(10, "the answers", stream.chunk()).await.unwrap().expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
        answers = seen.lines().filter_map(|l| l.strip_prefix("data: ")).filter_map(|d| serde_json::from_str::<Value>(d).ok()).collect();
    }
    assert!(answers.iter().any(|a| a["id"] == 1 && a["error"]["code"] == UNAUTHORIZED), "the message endpoint runs the chain: {answers:?}");
    assert!(answers.iter().any(|a| a["id"] == 2 && a["result"]["serverInfo"].is_object()), "{answers:?}");
    assert!(answers.iter().any(|a| a["id"] == 3 && a["error"]["code"] == -32600), "a second initialize is refused: {answers:?}");
    assert_eq!(w.gw.children().len(), 1, "one process for the one session");
}

#[tokio::test]
async fn an_oversized_batch_is_refused_whole() {
    let w = world().await;
    let alice = format!("Bearer {}", token(&w.key, &w.idp, "alice"));
    let raw = Raw::new(&w.gw.mcp_url("s"));
    let mut init = initialize_request(1);
    init["params"]["protocolVersion"] = json!("2025-03-26");
    let r = raw.post_json(&init).header("authorization", &alice).send().await;
    let sid = r.headers.get("mcp-session-id").and_then(|v| v.to_str().ok()).expect("a session").to_owned();
    let calls: Vec<Value> = (10..15)
        .map(|i| json!({ "jsonrpc": "2.0", "id": i, "method": "tools/call", "params": { "name": "echo", "arguments": { "text": "batched" } } }))
        .collect();
    let r = raw
        .post_json(&Value::Array(calls))
        .header("mcp-session-id", &sid)
        .header("mcp-protocol-version", "2025-03-26")
        .header("authorization", &alice)
        .send()
        .await;
    assert_eq!((r.status, r.error_code()), (400, -32600), "{r:?}");
    assert!(r.error_message().contains("max_batch_entries"), "{r:?}");
    assert_eq!(w.backend.calls_of("echo"), 0, "no entry of it reached the backend");
    let within: Vec<Value> = (20..24)
        .map(|i| json!({ "jsonrpc": "2.0", "id": i, "method": "tools/call", "params": { "name": "echo", "arguments": { "text": "batched" } } }))
        .collect();
    let r = raw
        .post_json(&Value::Array(within))
        .header("mcp-session-id", &sid)
        .header("mcp-protocol-version", "2025-03-26")
        .header("authorization", &alice)
        .send()
        .await;
    assert_eq!(r.status, 200, "a batch within the bound is served: {r:?}");
    assert_eq!(w.backend.calls_of("echo"), 4);
}

#[tokio::test]
async fn the_stateless_revision_own_errors() {
    let w = world().await;
    let stateless = |url: String, method: &'static str, version: &'static str, body: Value| async move {
        Raw::new(&url).post_json(&body).header("mcp-protocol-version", version).header("mcp-method", method).send().await
    };
    let meta = json!({ "io.modelcontextprotocol/protocolVersion": "2026-07-28" });
    // No _meta, or no version in it: -32602.
    let r = stateless(w.gw.mcp_url("s"), "tools/list", "2026-07-28", json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {} })).await;
    assert_eq!((r.status, r.error_code()), (400, -32602), "{r:?}");
    let r =
        stateless(w.gw.mcp_url("s"), "tools/list", "2026-07-28", json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": { "_meta": {} } })).await;
    assert_eq!((r.status, r.error_code()), (400, -32602), "{r:?}");
    // A method the revision removed: 404 and -32601.
    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": { "_meta": meta, "protocolVersion": "2026-07-28", "capabilities": {}, "clientInfo": { "name": "x", "version": "1" } } });
    let r = stateless(w.gw.mcp_url("s"), "initialize", "2026-07-28", init).await;
    assert_eq!((r.status, r.error_code()), (404, -32601), "{r:?}");
    // An unknown version: -32022, listing what each server serves through the gateway.
    let future =
        json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": { "_meta": { "io.modelcontextprotocol/protocolVersion": "2099-01-01" } } });
    let sessions = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
    let r = stateless(w.gw.mcp_url("s"), "tools/list", "2099-01-01", future.clone()).await;
    assert_eq!((r.status, r.error_code()), (400, -32022), "{r:?}");
    let http: Vec<String> = std::iter::once("2026-07-28").chain(sessions).map(str::to_owned).collect();
    assert_eq!(r.message()["error"]["data"]["supported"], json!(http), "{r:?}");
    let r = stateless(w.gw.mcp_url("local"), "tools/list", "2099-01-01", future).await;
    assert_eq!(r.message()["error"]["data"]["supported"], json!(sessions), "a stdio server has sessions only: {r:?}");
    assert!(w.backend.all().is_empty(), "no refused request reached the backend: {:?}", w.backend.all());
    assert!(w.gw.children().is_empty(), "nor a process");
}

#[tokio::test]
async fn one_server_at_its_session_cap_leaves_the_others_theirs() {
    let a = Recorder::start().await;
    let b = Recorder::start().await;
    let mut capped = server("capped", &a.url, json!([]));
    capped["max_sessions"] = json!(2);
    let config = json!({ "listen": "127.0.0.1:0", "sessions": { "max_sessions": 10 }, "servers": [capped, server("other", &b.url, json!([]))] });
    let gw = RunningGateway::from_config(config, &[]).await;
    let raw = Raw::new(&gw.mcp_url("capped"));
    let mut sessions = Vec::new();
    for n in 1..=2 {
        let r = raw.post_json(&initialize_request(n)).send().await;
        assert_eq!(r.status, 200, "{r:?}");
        sessions.push(r.headers["mcp-session-id"].to_str().unwrap().to_owned());
    }
    let full = raw.post_json(&initialize_request(3)).send().await;
    assert_eq!((full.status, full.error_code()), (503, -32008), "{full:?}");
    assert_eq!(a.seen("initialize").len(), 2, "the refused initialize never reached the backend");
    let other = Raw::new(&gw.mcp_url("other")).post_json(&initialize_request(1)).send().await;
    assert_eq!(other.status, 200, "another server still takes sessions: {other:?}");
    // Ending one frees its place.
    assert_eq!(raw.delete(&sessions[0]).send().await.status, 200);
    let again = raw.post_json(&initialize_request(4)).send().await;
    assert_eq!(again.status, 200, "{again:?}");
}
