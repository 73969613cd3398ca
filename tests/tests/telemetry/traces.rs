//! One tool call through a chain of policies is one trace: the gateway's server span takes the
//! client's context, each policy step and the backend call are its children, and the backend
//! gets the context of the gateway's client span.

use serde_json::json;
use tollgate_tests::eventually;
use tollgate_tests::gateway::write_temp;
use tollgate_tests::otlp::{Collector, KIND_CLIENT, KIND_INTERNAL, KIND_SERVER, Span};

use crate::access_log;
use tollgate_tests::gateway::RunningGateway;
use tollgate_tests::idp::{Idp, Key, now};
use tollgate_tests::recorder::Recorder;
use tollgate_tests::standard::policy;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";
const BACKEND_SECRET: &str = "backend-s3cret-never-to-be-seen";

fn chain(idp: &Idp) -> serde_json::Value {
    let jwt = idp.jwt_binding("tools");
    let ip = policy("ip-filter", json!({ "allow": ["127.0.0.0/8", "::1/128"] }));
    let mut creds = policy("credentials", json!({ "header": "x-backend-key", "secret": "backend_key" }));
    creds["secrets"] = json!({ "backend_key": { "env": "BACKEND_KEY" } });
    json!([jwt, ip, creds])
}

async fn traced_call(grpc: bool) {
    let (collector, endpoint) = if grpc { Collector::grpc().await } else { Collector::http().await };
    let backend = Recorder::start().await;
    let idp = Idp::start().await;
    let key = Key::rsa("k1");
    idp.publish(&[&key]);
    let token = key.sign(&json!({ "iss": idp.issuer, "sub": "alice", "aud": "tools", "iat": now(), "exp": now() + 600 }));
    let log_file = write_temp("access.log", "");
    let protocol = if grpc { "grpc" } else { "http" };
    let config = json!({
        "listen": "127.0.0.1:0",
        "telemetry": {
            "service_name": "tollgate-under-test",
            "traces": { "endpoint": endpoint, "protocol": protocol },
            "access_log": { "to": log_file },
        },
        "servers": [{ "name": "tools", "backend": { "http": backend.url }, "policies": chain(&idp) }],
    });
    let gw = RunningGateway::from_config(config, &[("BACKEND_KEY", BACKEND_SECRET)]).await;

    let mut c = gw.caller("tools").bearer(&token).initialized().await;
    let session = c.session().expect("a session").to_owned();
    c.request("tools/list", json!({})).await;
    let traceparent = format!("00-{TRACE_ID}-{CLIENT_SPAN}-01");
    let r = c.request("tools/call", json!({ "name": "echo", "arguments": { "text": "hi" }, "_meta": { "traceparent": traceparent } })).await;
    assert_eq!(r.status, 200, "{r:?}");

    // The backend got the credential, and the trace context naming the gateway's client span,
    // in the header and in `_meta`.
    let call = backend.seen("tools/call").pop().expect("the call reached the backend");
    assert_eq!(call.headers.get("x-backend-key").and_then(|v| v.to_str().ok()), Some(BACKEND_SECRET));
    let header = call.headers.get("traceparent").and_then(|v| v.to_str().ok()).expect("a traceparent header").to_owned();
    assert_eq!(call.params["_meta"]["traceparent"], header.as_str(), "{:?}", call.params);
    let parts: Vec<&str> = header.split('-').collect();
    assert_eq!(parts[1], TRACE_ID, "the backend call is part of the client's trace: {header}");

    eventually(20, "the spans of the tool call reach the collector", || {
        let spans = collector.spans();
        spans.iter().any(|s| s.kind == KIND_SERVER && s.name == "tools/call echo")
            && spans.iter().any(|s| s.kind == KIND_CLIENT && s.trace_id == TRACE_ID)
            && spans.iter().filter(|s| s.kind == KIND_INTERNAL && s.trace_id == TRACE_ID).count() >= 3
    })
    .await;
    let spans = collector.spans();
    let server = one(&spans, |s| s.kind == KIND_SERVER && s.name == "tools/call echo");
    assert_eq!(server.service, "tollgate-under-test");
    assert_eq!((server.trace_id.as_str(), server.parent_span_id.as_str()), (TRACE_ID, CLIENT_SPAN), "the client's span is the parent: {server:?}");
    for (k, v) in [
        ("mcp.method.name", "tools/call"),
        ("gen_ai.operation.name", "execute_tool"),
        ("gen_ai.tool.name", "echo"),
        ("mcp.session.id", session.as_str()),
        ("mcp.protocol.version", "2025-11-25"),
        ("jsonrpc.request.id", "3"),
        ("network.transport", "tcp"),
        ("client.address", "127.0.0.1"),
        ("tollgate.server.name", "tools"),
        ("tollgate.client.name", "standard-policies"),
        ("user.id", "alice"),
        ("tollgate.auth.method", "bearer"),
    ] {
        assert_eq!(server.attr(k), Some(v), "{k} on {server:?}");
    }
    assert_eq!(server.status_code, 0, "a successful call is not an error: {server:?}");

    // One child span per policy step, in chain order, each with its verdict.
    let mut steps: Vec<&Span> = spans.iter().filter(|s| s.kind == KIND_INTERNAL && s.parent_span_id == server.span_id).collect();
    steps.sort_by_key(|s| ["policy jwt", "policy ip-filter", "policy credentials"].iter().position(|n| *n == s.name));
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["policy jwt", "policy ip-filter", "policy credentials"], "{steps:?}");
    for s in &steps {
        assert_eq!(s.attr("tollgate.policy.verdict"), Some("continue"), "{s:?}");
        assert_eq!(s.attr("tollgate.policy.phase"), Some("request"), "{s:?}");
    }
    // The backend call: a client span under the server span, the one the backend was told of.
    let client = one(&spans, |s| s.kind == KIND_CLIENT && s.parent_span_id == server.span_id);
    assert_eq!(client.name, "tools/call echo");
    assert_eq!(parts[2], client.span_id, "the backend's parent is the gateway's client span");

    // The access log line of the call carries the same trace, the subject, and the policy steps.
    let lines = access_log(&log_file);
    let line = lines.iter().find(|l| l["method"] == "tools/call").expect("an access log line for the call");
    assert_eq!(line["trace_id"], TRACE_ID, "{line}");
    assert_eq!(line["span_id"], server.span_id.as_str(), "{line}");
    assert_eq!(line["subject"], "alice", "{line}");
    assert_eq!(line["tool"], "echo", "{line}");
    assert_eq!(line["outcome"], "ok", "{line}");
    assert_eq!(line["session"], session.as_str(), "{line}");
    assert_eq!(line["policies"].as_array().map(Vec::len), Some(3), "{line}");
    assert!(line.get("arguments").is_none() && line.get("result").is_none(), "payloads are off by default: {line}");

    // Neither the backend credential nor the client's token appears in spans, the log or the access log.
    let everything = format!("{spans:?}\n{}\n{}", gw.log(), std::fs::read_to_string(&log_file).unwrap_or_default());
    assert!(!everything.contains(BACKEND_SECRET), "the injected credential leaked");
    assert!(!everything.contains(&token), "the client's token leaked");
}

fn one(spans: &[Span], pick: impl Fn(&Span) -> bool) -> &Span {
    let found: Vec<&Span> = spans.iter().filter(|s| pick(s)).collect();
    assert_eq!(found.len(), 1, "exactly one such span among {spans:#?}");
    found[0]
}

#[tokio::test]
async fn a_tool_call_through_a_chain_is_one_trace_over_otlp_http() {
    traced_call(false).await;
}

#[tokio::test]
async fn a_tool_call_through_a_chain_is_one_trace_over_otlp_grpc() {
    traced_call(true).await;
}

#[tokio::test]
async fn a_stdio_backend_gets_the_trace_context_in_meta() {
    let (collector, endpoint) = Collector::http().await;
    let echo = tollgate_tests::process::binary("echo_stdio");
    let config = json!({
        "listen": "127.0.0.1:0",
        "telemetry": { "traces": { "endpoint": endpoint, "protocol": "http" } },
        "servers": [{ "name": "local", "backend": { "stdio": { "command": echo } } }],
    });
    let gw = RunningGateway::from_config(config, &[]).await;
    let mut c = gw.caller("local").initialized().await;
    let traceparent = format!("00-{TRACE_ID}-{CLIENT_SPAN}-01");
    let r = c.request("tools/call", json!({ "name": "meta", "arguments": {}, "_meta": { "traceparent": traceparent, "progressToken": 7 } })).await;
    let text = r.message()["result"]["content"][0]["text"].as_str().map(str::to_owned).unwrap_or_else(|| panic!("{r:?}"));
    let meta: serde_json::Value = serde_json::from_str(&text).expect("the tool answers JSON");
    let sent = meta["traceparent"].as_str().unwrap_or_else(|| panic!("no traceparent in {meta}"));
    assert!(sent.starts_with(&format!("00-{TRACE_ID}-")) && !sent.contains(CLIENT_SPAN), "the gateway's own span is the parent: {sent}");
    assert_eq!(meta["progressToken"], 7, "the client's other _meta keys pass unchanged: {meta}");
    eventually(20, "the client span reaches the collector", || collector.spans().iter().any(|s| s.kind == KIND_CLIENT && sent.contains(&s.span_id))).await;
}
