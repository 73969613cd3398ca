//! The policy runtime end to end: the real gateway binary, a real backend, a JSON-RPC client,
//! and the test policies of `tests/guests`.

mod cases;
mod messages;
mod preinit;
mod push;
mod scaffold;
mod standard;
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{guest, upstream, validate};
use tollgate_tests::gateway::RunningGateway;
use tollgate_tests::recorder::Recorder;

/// Gateway error codes (host/src/error.rs `code`).
use tollgate_vocabulary::code::{FORBIDDEN, POLICY_FAILED, UNAUTHORIZED};

fn server(name: &str, up: &Recorder, policies: &str) -> String {
    format!("  - name: {name}\n    backend:\n      http: {}\n    policies:\n{policies}", up.url)
}

fn gatekeeper(config: &str) -> String {
    format!("      - policy: {}\n        config: {config}\n", guest("gatekeeper"))
}

#[tokio::test]
async fn a_denial_reaches_the_client_with_its_code_status_and_headers() {
    a_denial_reaches_the_client(&gatekeeper("{ api_key: k1 }")).await;
}

/// The same test, for the same policy written in Python (tests/guests-py/gatekeeper).
#[tokio::test]
async fn a_denial_by_a_python_policy_is_the_same_as_by_its_rust_twin() {
    let binding = format!(
        "      - policy: {}\n        config: {{ api_key: k1 }}\n        limits: {{ memory_mb: 64, timeout_ms: 5000 }}\n",
        support::python_guest("gatekeeper")
    );
    a_denial_reaches_the_client(&binding).await;
}

async fn a_denial_reaches_the_client(binding: &str) {
    let up = upstream().await;
    let gw = RunningGateway::from_yaml(&format!("servers:\n{}", server("s", &up, binding)), &[]).await;

    let denied = gw.caller("s").initialize().await;
    assert_eq!(denied.status, 401, "{denied:?}");
    assert_eq!(denied.code(), Some(UNAUTHORIZED));
    assert_eq!(denied.headers["www-authenticate"], "ApiKey realm=\"tollgate\"");
    assert!(up.seen("initialize").is_empty(), "a denied request never reaches the backend");

    let mut c = gw.caller("s").header("x-api-key", "k1");
    assert_eq!(c.initialize().await.status, 200);
    let ok = c.call("echo", json!({})).await;
    assert_eq!(ok.result()["content"][0]["text"], "ok", "{ok:?}");
}

#[tokio::test]
async fn changed_params_and_an_injected_header_reach_the_backend_and_the_clients_authorization_does_not() {
    let up = upstream().await;
    let policies = format!(
        "      - policy: {}\n        config: {{ bearer_secret: backend_token, add_arguments: {{ tenant: acme }} }}\n        secrets:\n          backend_token: {{ env: TEST_BACKEND_TOKEN }}\n",
        guest("gatekeeper")
    );
    let yaml = format!("servers:\n{}", server("s", &up, &policies));
    let gw = RunningGateway::from_yaml(&yaml, &[("TEST_BACKEND_TOKEN", "s3cret")]).await;
    let mut c = gw.caller("s").header("authorization", "Bearer client-token");
    c.initialize().await;
    let a = c.call("echo", json!({ "text": "hi" })).await;
    assert_eq!(a.result()["structuredContent"]["arguments"], json!({ "text": "hi", "tenant": "acme" }), "{a:?}");
    assert_eq!(a.result()["structuredContent"]["authorization"], "Bearer s3cret");
    for seen in up.seen("initialize").iter().chain(up.seen("tools/call").iter()) {
        let auth = seen.headers.get("authorization").map(|v| v.to_str().unwrap().to_owned());
        assert_ne!(auth.as_deref(), Some("Bearer client-token"), "the client's credential never goes upstream");
    }
}

#[tokio::test]
async fn a_policy_answers_without_calling_the_backend_and_the_answer_passes_the_response_phase() {
    let up = upstream().await;
    // The marker runs first, so the answer of the cache after it passes back through it.
    let chain = format!(
        "{}{}",
        gatekeeper("{ mark_answers: true, client_header: 'x-gate: one' }"),
        gatekeeper("{ cached: { cached-tool: { content: [{ type: text, text: from-cache }] } } }")
    );
    let gw = RunningGateway::from_yaml(&format!("servers:\n{}", server("s", &up, &chain)), &[]).await;
    let mut c = gw.caller("s");
    c.initialize().await;
    let cached = c.call("cached-tool", json!({})).await;
    assert_eq!(cached.result()["content"][0]["text"], "from-cache", "{cached:?}");
    assert_eq!(cached.result()["marked"], true);
    assert!(up.seen("tools/call").is_empty(), "the backend was not called");
    let live = c.call("echo", json!({})).await;
    assert_eq!((live.result()["content"][0]["text"].as_str(), live.result()["marked"].as_bool()), (Some("ok"), Some(true)));
    assert_eq!(up.seen("tools/call").len(), 1);
    // Headers for the client from both phases reach both answers: the policy's own and the backend's.
    for a in [&cached, &live] {
        assert_eq!(a.headers.get("x-gate").and_then(|v| v.to_str().ok()), Some("one"), "request phase: {a:?}");
        assert_eq!(a.headers.get("x-marked").and_then(|v| v.to_str().ok()), Some("true"), "response phase: {a:?}");
    }
}

#[tokio::test]
async fn a_policy_may_not_set_the_headers_that_frame_the_answer() {
    let up = upstream().await;
    let gw = RunningGateway::from_yaml(&format!("servers:\n{}", server("s", &up, &gatekeeper("{ client_header: 'content-type: text/plain' }"))), &[]).await;
    let mut c = gw.caller("s");
    let a = c.initialize().await;
    assert_eq!(a.code(), Some(POLICY_FAILED), "an invalid verdict fails closed: {a:?}");
    assert!(a.headers.get("content-type").is_some_and(|v| v.to_str().unwrap().starts_with("application/json")), "{a:?}");
    assert!(up.seen("initialize").is_empty(), "nothing reached the backend");
}

#[tokio::test]
async fn one_decision_hides_a_tool_from_the_list_and_refuses_its_call() {
    let up = upstream().await;
    let hidden = gatekeeper("{ hidden: [secret-tool] }");
    let admin = format!("{}{}", gatekeeper("{ role: admin }"), hidden);
    let yaml = format!("servers:\n{}{}", server("user", &up, &hidden), server("admin", &up, &admin));
    let gw = RunningGateway::from_yaml(&yaml, &[]).await;

    let mut user = gw.caller("user");
    user.initialize().await;
    let list = user.request("tools/list", json!({})).await;
    let names: Vec<String> = list.result()["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names, ["echo", "cached-tool", "boom", "chatty"]);
    let refused = user.call("secret-tool", json!({})).await;
    assert_eq!(refused.code(), Some(FORBIDDEN), "{refused:?}");
    assert!(up.seen("tools/call").is_empty());

    // The same policy, after one that grants a role: the tool is both listed and callable.
    let mut admin = gw.caller("admin");
    admin.initialize().await;
    let list = admin.request("tools/list", json!({})).await;
    assert_eq!(list.result()["tools"].as_array().unwrap().len(), 5, "{list:?}");
    assert_eq!(admin.call("secret-tool", json!({})).await.result()["content"][0]["text"], "ok");
}

#[tokio::test]
async fn policies_that_loop_hoard_memory_or_panic_fail_closed_while_other_requests_flow() {
    let up = upstream().await;
    let bad = |mode: &str, extra: &str| {
        format!(
            "      - policy: {}\n        config: {{ mode: {mode}, on_tool: boom }}\n        limits: {{ timeout_ms: 50, memory_mb: 8 }}\n{extra}",
            guest("misbehave")
        )
    };
    let yaml = format!(
        "servers:\n{}{}{}{}",
        server("loop", &up, &bad("loop", "")),
        server("alloc", &up, &bad("alloc", "")),
        server("panic", &up, &bad("panic", "")),
        server("open", &up, &bad("panic", "        fail_open: true\n")),
    );
    let gw = RunningGateway::from_yaml(&yaml, &[]).await;
    let mut tasks = Vec::new();
    for name in ["loop", "alloc", "panic"] {
        let mut c = gw.caller(name);
        tasks.push(tokio::spawn(async move {
            c.initialize().await;
            let mut outcomes = Vec::new();
            for _ in 0..5 {
                let started = Instant::now();
                let boom = c.call("boom", json!({})).await;
                assert!(started.elapsed() < Duration::from_secs(2), "{name}: contained quickly");
                let echo = c.call("echo", json!({})).await;
                outcomes.push((
                    boom.code(),
                    boom.message()["error"]["message"].as_str().unwrap_or_default().to_owned(),
                    echo.result()["content"][0]["text"].clone(),
                ));
            }
            (name, outcomes)
        }));
    }
    for t in tasks {
        let (name, outcomes) = t.await.unwrap();
        for (code, message, echo) in outcomes {
            assert_eq!(code, Some(POLICY_FAILED), "{name}: {message}");
            assert!(message.contains("policy 'misbehave' failed"), "{name}: {message}");
            assert_eq!(echo, "ok", "{name}: the same policy lets other calls through");
        }
    }
    assert_eq!(up.seen("tools/call").iter().filter(|s| s.params["name"] == "boom").count(), 0, "nothing failed open by mistake");
    let mut open = gw.caller("open");
    open.initialize().await;
    assert_eq!(open.call("boom", json!({})).await.result()["content"][0]["text"], "ok", "fail_open lets it through");
}

#[tokio::test]
async fn a_reload_under_load_fails_no_request_and_a_bad_reload_keeps_the_old_chain() {
    let up = upstream().await;
    let v1 = format!("servers:\n{}", server("s", &up, &format!("      - policy: {}\n", guest("noop"))));
    let v2 = format!("servers:\n{}", server("s", &up, &gatekeeper("{ add_arguments: { version: 2 } }")));
    let broken = format!("servers:\n{}", server("s", &up, &gatekeeper("{ api_key: '' }")));
    let gw = RunningGateway::from_yaml(&v1, &[]).await;

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let mut c = gw.caller("s");
        let (stop, done, failed) = (stop.clone(), done.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            c.initialize().await;
            while !stop.load(Ordering::Relaxed) {
                let a = c.call("echo", json!({})).await;
                if a.status != 200 || a.result()["content"][0]["text"] != "ok" {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    gw.rewrite(&v2);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !up.seen("tools/call").iter().any(|s| s.params["arguments"]["version"] == 2) {
        assert!(Instant::now() < deadline, "the new chain never took over");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    gw.rewrite(&broken);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    assert!(done.load(Ordering::Relaxed) > 50, "load ran: {}", done.load(Ordering::Relaxed));
    assert_eq!(failed.load(Ordering::Relaxed), 0, "no request failed across the reloads");
    let mut c = gw.caller("s");
    c.initialize().await;
    let a = c.call("echo", json!({})).await;
    assert_eq!(a.result()["structuredContent"]["arguments"]["version"], 2, "the bad config left the good chain in place: {a:?}");
}

#[tokio::test]
async fn a_config_the_policy_refuses_fails_validate_with_its_message_and_place() {
    let yaml = format!(
        "servers:\n  - name: s\n    backend:\n      http: http://127.0.0.1:9/mcp\n    policies:\n      - policy: {}\n        config:\n          api_key: ''\n",
        guest("gatekeeper")
    );
    let (code, out) = validate(&yaml).await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("line 7: servers[0].policies[0].config: policy 'gatekeeper' refused its config: api_key must not be empty"), "{out}");
    let (code, out) = validate(&yaml.replace("api_key: ''", "api_key: k")).await;
    assert_eq!(code, 0, "{out}");
}
