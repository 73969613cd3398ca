//! Virtual servers (`compose`) through the real binary: the MCP reference server (stdio), an
//! `rmcp` Streamable HTTP server and the Petstore REST API (OpenAPI) served as one server, with
//! the official Rust SDK client and plain JSON-RPC callers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use tollgate_tests::backend::Backend;
use tollgate_tests::caller::{Caller, text};
use tollgate_tests::client::Client;
use tollgate_tests::gateway::{Gateway, run_tollgate, write_temp};
use tollgate_tests::idp::{Idp, Key, now};
use tollgate_tests::petstore::Petstore;
use tollgate_tests::standard::{UNAUTHORIZED, policy};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

fn petstore_spec() -> String {
    root().join("examples/openapi/petstore.yaml").display().to_string()
}

/// The MCP reference server, one process per session.
fn everything() -> Value {
    let script = root().join("tests/interop/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(script.exists(), "server-everything is installed (npm ci in tests/interop): {}", script.display());
    json!({ "stdio": { "command": "node", "args": [script, "stdio"], "warm": 1 } })
}

/// The shipped Petstore as a member's OpenAPI backend.
fn petstore_backend(p: &Petstore) -> Value {
    json!({ "openapi": {
        "spec": petstore_spec(), "base_url": format!("http://127.0.0.1:{}/v1", p.port), "operations": "all",
        "tools": { "showPetById": { "name": "get_pet" } } } })
}

fn access_log(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_virtual_server_serves_every_member_under_its_prefix() {
    let rmcp = Backend::rmcp().named("rmcp-one").start().await;
    let petstore = Petstore::start();
    let log_file = write_temp("compose-access.log", "");
    let gw = Gateway::new()
        .server_with("everything", everything())
        .server("rmcp", rmcp.url())
        .server_with("petstore", petstore_backend(&petstore))
        .server_entry(json!({ "name": "workspace", "compose": [
            { "server": "everything", "prefix": "everything_" },
            { "server": "rmcp", "prefix": "rmcp_", "rename": { "whoami": "who_answers" } },
            { "server": "petstore", "prefix": "pets_" },
        ] }))
        .top("telemetry", json!({ "access_log": { "to": log_file } }))
        .start()
        .await;
    let sdk = Client::connect(&gw.mcp_url("workspace")).await;
    let tools = sdk.list_tools().await;
    for name in ["everything_echo", "everything_get-sum", "rmcp_echo", "rmcp_ask", "who_answers", "pets_listPets", "pets_createPets", "pets_get_pet"] {
        assert!(tools.contains(&name.to_owned()), "{name} in {tools:?}");
    }
    assert!(!tools.iter().any(|t| t == "echo" || t == "rmcp_whoami"), "no member name shows as it is: {tools:?}");
    assert_eq!(sdk.call_tool("everything_echo", json!({ "message": "hi" })).await.unwrap(), "Echo: hi");
    assert_eq!(sdk.call_tool("rmcp_echo", json!({ "text": "hello" })).await.unwrap(), "hello");
    assert_eq!(sdk.call_tool("who_answers", json!({})).await.unwrap(), "rmcp-one");
    assert_eq!(sdk.call_tool("pets_createPets", json!({ "body": { "id": 3, "name": "Kit", "tag": "cat" } })).await.unwrap(), "HTTP 201 Created");
    assert_eq!(sdk.call_tool("pets_get_pet", json!({ "petId": "3" })).await.unwrap(), r#"{"id":3,"name":"Kit","tag":"cat"}"#);

    // Sampling from a member reaches the client, and its answer goes back to that member.
    assert_eq!(sdk.call_tool("rmcp_ask", json!({ "question": "which colour?" })).await.unwrap(), "answer to: which colour?");
    assert_eq!(sdk.sampling_questions(), ["which colour?"]);
    // A member's logging reaches the client too.
    assert_eq!(sdk.call_tool("rmcp_log", json!({ "text": "noted" })).await.unwrap(), "logged noted");
    tollgate_tests::eventually(5, "the client has the member's log message", || sdk.logs().iter().any(|l| l.contains("noted"))).await;
    sdk.close().await;

    // Prompts and resources of a member, through plain JSON-RPC.
    let mut c = Caller::new(&gw.mcp_url("workspace")).initialized().await;
    let init = c.request("ping", json!({})).await;
    assert_eq!(init.result(), json!({}));
    let prompts = c.request("prompts/list", json!({})).await.result();
    let names: Vec<&str> = prompts["prompts"].as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
    assert!(names.contains(&"everything_simple-prompt"), "{names:?}");
    let prompt = c.request("prompts/get", json!({ "name": "everything_simple-prompt" })).await;
    assert!(prompt.result()["messages"].as_array().is_some_and(|m| !m.is_empty()), "{prompt:?}");
    let resources = c.request("resources/list", json!({})).await.result();
    let uris: Vec<&str> = resources["resources"].as_array().unwrap().iter().filter_map(|r| r["uri"].as_str()).collect();
    let doc = "demo://resource/static/document/architecture.md";
    assert!(uris.contains(&doc), "member URIs stay as they are: {uris:?}");
    let read = c.request("resources/read", json!({ "uri": doc })).await;
    assert_eq!(read.result()["contents"][0]["uri"], doc, "{read:?}");
    // A URI no list shows, of a member's template: found on the member that answers it.
    let dynamic = c.request("resources/read", json!({ "uri": "demo://resource/dynamic/text/1" })).await;
    assert!(dynamic.result()["contents"].as_array().is_some_and(|c| !c.is_empty()), "{dynamic:?}");
    let templates = c.request("resources/templates/list", json!({})).await.result();
    assert!(templates["resourceTemplates"].as_array().unwrap().iter().all(|t| t["name"].as_str().unwrap().starts_with("everything_")), "{templates}");
    // Completions by prompt name, translated back to the member's.
    let completed = c
        .request(
            "completion/complete",
            json!({ "ref": { "type": "ref/prompt", "name": "everything_completable-prompt" }, "argument": { "name": "department", "value": "S" } }),
        )
        .await;
    assert_eq!(completed.result()["completion"]["values"], json!(["Sales", "Support"]), "{completed:?}");
    let subscribed = c.request("resources/subscribe", json!({ "uri": doc })).await;
    assert_eq!(subscribed.result(), json!({}), "{subscribed:?}");
    let unknown = c.call("nobody_has_this", json!({})).await;
    assert_eq!(unknown.code(), Some(-32602), "{unknown:?}");

    // The access log names the member on the virtual server's line, and the virtual server on the member's.
    tollgate_tests::eventually(10, "the access log has both lines", || {
        let lines = access_log(&log_file);
        let outer = lines.iter().any(|l| l["server"] == "workspace" && l["tool"] == "who_answers" && l["member"] == "rmcp");
        let inner = lines.iter().any(|l| l["server"] == "rmcp" && l["tool"] == "whoami" && l["via"] == "workspace");
        let read = lines.iter().any(|l| l["server"] == "workspace" && l["method"] == "resources/read" && l["member"] == "everything");
        outer && inner && read
    })
    .await;
    assert!(!access_log(&log_file).iter().any(|l| l["server"] == "workspace" && l.get("via").is_some()), "a client's own traffic has no via");
    // A client naming a virtual server itself, even from loopback, is not believed.
    let mut forger =
        Caller::new(&gw.mcp_url("rmcp")).header("tollgate-via", "forged").header("tollgate-via-key", "0123456789abcdef0123456789abcdef").initialized().await;
    assert_eq!(text(&forger.call("echo", json!({ "text": "x" })).await), "x");
    tollgate_tests::eventually(10, "the access log has the forger's call", || {
        access_log(&log_file).iter().any(|l| l["server"] == "rmcp" && l["tool"] == "echo" && l.get("via").is_none())
    })
    .await;
    assert!(!access_log(&log_file).iter().any(|l| l["via"] == "forged"), "a forged via is never recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_down_leaves_the_others_working() {
    let rmcp = Backend::rmcp().named("alive").start().await;
    let gw = Gateway::new()
        .server("rmcp", rmcp.url())
        .server("gone", format!("http://127.0.0.1:{}/mcp", tollgate_tests::standard::free_port("127.0.0.1")))
        .server_entry(json!({ "name": "workspace", "compose": [{ "server": "gone", "prefix": "gone_" }, { "server": "rmcp", "prefix": "rmcp_" }] }))
        .start()
        .await;
    let sdk = Client::connect(&gw.mcp_url("workspace")).await;
    let tools = sdk.list_tools().await;
    assert!(tools.contains(&"rmcp_whoami".to_owned()) && tools.iter().all(|t| t.starts_with("rmcp_")), "{tools:?}");
    assert_eq!(sdk.call_tool("rmcp_whoami", json!({})).await.unwrap(), "alive");
    sdk.close().await;
    tollgate_tests::eventually(5, "a warning names the member left out", || gw.log().contains("did not initialize")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collision_among_known_names_is_refused_at_load() {
    let spec = petstore_spec();
    let config = format!(
        "servers:
  - name: pets
    backend: {{ openapi: {{ spec: {spec}, base_url: http://127.0.0.1:9/v1 }} }}
  - name: more_pets
    backend: {{ openapi: {{ spec: {spec}, base_url: http://127.0.0.1:9/v1 }} }}
  - name: workspace
    compose:
      - {{ server: pets }}
      - {{ server: more_pets }}
      - {{ server: nowhere }}
"
    );
    let (status, out) = run_tollgate(&["validate"], &config).await;
    assert!(!status.success(), "{out}");
    assert!(out.contains("servers[2].compose[2].server: no server is named 'nowhere'"), "{out}");
    let fixed = config.replace("      - { server: nowhere }\n", "");
    let (status, out) = run_tollgate(&["validate"], &fixed).await;
    assert!(!status.success(), "{out}");
    assert!(out.contains("servers[2].compose[1]") && out.contains("tool 'listPets' of 'more_pets' collides"), "{out}");
    let prefixed = fixed.replace("{ server: more_pets }", "{ server: more_pets, prefix: more_ }");
    let (status, out) = run_tollgate(&["validate"], &prefixed).await;
    assert!(status.success(), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_s_tool_filter_and_the_virtual_server_s_jwt_both_apply() {
    let rmcp = Backend::rmcp().named("guarded").start().await;
    let idp = Idp::start().await;
    let key = Key::rsa("k1");
    idp.publish(&[&key]);
    let gw = Gateway::new()
        .server("rmcp", rmcp.url())
        .policies("rmcp", json!([policy("tool-filter", json!({ "deny": ["whoami"] }))]))
        .server_entry(json!({ "name": "workspace", "compose": [{ "server": "rmcp", "prefix": "rmcp_" }], "policies": [idp.jwt_binding("tools")] }))
        .start()
        .await;
    let mut anonymous = Caller::new(&gw.mcp_url("workspace"));
    let refused = anonymous.initialize().await;
    assert_eq!(refused.status, 401, "{refused:?}");
    assert_eq!(refused.code(), Some(UNAUTHORIZED));
    let token = key.sign(&json!({ "iss": idp.issuer, "sub": "alice", "aud": "tools", "iat": now(), "exp": now() + 600 }));
    let mut c = Caller::new(&gw.mcp_url("workspace")).bearer(&token).initialized().await;
    let tools = c.request("tools/list", json!({})).await.result();
    let names: Vec<&str> = tools["tools"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(names.contains(&"rmcp_echo") && !names.contains(&"rmcp_whoami"), "the member's filter hides whoami: {names:?}");
    assert_eq!(text(&c.call("rmcp_echo", json!({ "text": "through both" })).await), "through both");
    let denied = c.call("rmcp_whoami", json!({})).await;
    assert!(denied.code().is_some(), "{denied:?}");
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_session_expired_is_opened_again_alone() {
    let one = Backend::rmcp().named("one").start().await;
    let two = Backend::rmcp().named("two").start().await;
    let gw = Gateway::new()
        .server("one", one.url())
        .server("two", two.url())
        .server_entry(json!({ "name": "workspace", "compose": [{ "server": "one", "prefix": "one_" }, { "server": "two", "prefix": "two_" }] }))
        .idle_timeout_s(2)
        .start()
        .await;
    let sdk = Client::connect(&gw.mcp_url("workspace")).await;
    assert_eq!(sdk.call_tool("two_whoami", json!({})).await.unwrap(), "two");
    // The virtual session stays busy through member `one`; member `two`'s session idles out.
    for _ in 0..8 {
        assert_eq!(sdk.call_tool("one_whoami", json!({})).await.unwrap(), "one");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(sdk.call_tool("two_whoami", json!({})).await.unwrap(), "two");
    assert!(gw.log().contains("a member lost the session; opening a new one"), "{}", gw.log());
    let tools = sdk.list_tools().await;
    assert!(tools.contains(&"one_echo".to_owned()) && tools.contains(&"two_echo".to_owned()), "{tools:?}");
    sdk.close().await;
}

/// A member that pages its tools: `a` and `b`, then `c`.
fn paging(_: &axum::http::HeaderMap, msg: &Value) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(id) = msg.get("id").cloned() else { return axum::http::StatusCode::ACCEPTED.into_response() };
    let result = match msg["method"].as_str() {
        Some("initialize") => json!({ "protocolVersion": "2025-06-18", "capabilities": { "tools": {} }, "serverInfo": { "name": "pages", "version": "1" } }),
        Some("tools/list") => match msg["params"]["cursor"].as_str() {
            None => {
                json!({ "tools": [{ "name": "a", "inputSchema": { "type": "object" } }, { "name": "b", "inputSchema": { "type": "object" } }], "nextCursor": "two" })
            }
            Some("two") => json!({ "tools": [{ "name": "c", "inputSchema": { "type": "object" } }] }),
            Some(_) => return axum::Json(json!({ "jsonrpc": "2.0", "id": id, "error": { "code": -32602, "message": "bad cursor" } })).into_response(),
        },
        _ => return axum::Json(json!({ "jsonrpc": "2.0", "id": id, "error": { "code": -32601, "message": "no such method" } })).into_response(),
    };
    axum::Json(json!({ "jsonrpc": "2.0", "id": id, "result": result })).into_response()
}

fn names(page: &Value) -> Vec<String> {
    page["tools"].as_array().unwrap_or_else(|| panic!("a tools page: {page}")).iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_across_members_and_a_collision_hides_the_later_member_s_item() {
    use tollgate_tests::recorder::Recorder;
    let pages = Recorder::start_with(paging).await;
    let first = Recorder::start().await;
    let second = Recorder::start().await;
    let rmcp = Backend::rmcp().start().await;
    let gw = Gateway::new()
        .server("pages", &pages.url)
        .server("first", &first.url)
        .server("second", &second.url)
        .server("rmcp", rmcp.url())
        .server_entry(json!({ "name": "workspace", "compose": [
            { "server": "pages", "prefix": "p_" }, { "server": "first" }, { "server": "second" }, { "server": "rmcp", "prefix": "rmcp_" },
        ] }))
        .start()
        .await;
    let mut c = Caller::new(&gw.mcp_url("workspace")).initialized().await;
    let one = c.request("tools/list", json!({})).await.result();
    let listed = names(&one);
    for name in ["p_a", "p_b", "echo", "fragile", "broken", "rmcp_echo", "rmcp_progress"] {
        assert!(listed.contains(&name.to_owned()), "{name} in {listed:?}");
    }
    assert_eq!(listed.iter().filter(|n| *n == "echo").count(), 1, "the later member's echo is hidden: {listed:?}");
    assert!(!listed.contains(&"p_c".to_owned()));
    let cursor = one["nextCursor"].as_str().expect("more to come from `pages`").to_owned();
    let two = c.request("tools/list", json!({ "cursor": cursor })).await.result();
    assert_eq!(names(&two), ["p_c"], "the next page asks only the member with more");
    assert!(two.get("nextCursor").is_none(), "{two}");
    let bad = c.request("tools/list", json!({ "cursor": "not-ours" })).await;
    assert_eq!(bad.code(), Some(-32602), "{bad:?}");
    assert!(gw.log().contains("collides with the one of an earlier member"), "{}", gw.log());

    // The colliding name goes to the member that shows it.
    assert_eq!(text(&c.call("echo", json!({ "text": "to the first" })).await), "to the first");
    assert_eq!((first.calls_of("echo"), second.calls_of("echo")), (1, 0));

    // A member's progress reaches the client on the request's stream, with the client's token.
    let progressed =
        c.request("tools/call", json!({ "name": "rmcp_progress", "arguments": { "steps": 3, "label": "step" }, "_meta": { "progressToken": "tok-1" } })).await;
    assert_eq!(progressed.body.matches("notifications/progress").count(), 3, "{progressed:?}");
    assert_eq!(progressed.body.matches("\"progressToken\":\"tok-1\"").count(), 3, "{progressed:?}");
    assert_eq!(progressed.result()["content"][0]["text"], "step: 3 steps");
}

/// A member that answers `tools/list` after 3 s (blocking its thread, as a stuck server would).
fn slow_list(h: &axum::http::HeaderMap, msg: &Value) -> axum::response::Response {
    if msg["method"] == "tools/list" {
        std::thread::sleep(Duration::from_secs(3));
    }
    paging(h, msg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_too_slow_to_list_is_left_out_of_the_page() {
    // On a runtime of its own, so its stuck thread stalls no one else.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
        rt.block_on(async {
            let slow = tollgate_tests::recorder::Recorder::start_with(slow_list).await;
            tx.send(slow.url.clone()).expect("the test waits");
            std::future::pending::<()>().await;
        });
    });
    let slow_url = rx.recv().expect("the slow member starts");
    let rmcp = Backend::rmcp().start().await;
    let gw = Gateway::new()
        .server("slow", &slow_url)
        .server("rmcp", rmcp.url())
        .server_entry(json!({ "name": "workspace", "compose": [{ "server": "slow", "prefix": "slow_" }, { "server": "rmcp", "prefix": "rmcp_" }] }))
        .top("limits", json!({ "request_timeout_ms": 2000 }))
        .start()
        .await;
    let mut c = Caller::new(&gw.mcp_url("workspace")).initialized().await;
    let started = std::time::Instant::now();
    let page = c.request("tools/list", json!({})).await.result();
    let listed = names(&page);
    assert!(started.elapsed() < Duration::from_secs(2), "answered before the client's request timed out: {:?}", started.elapsed());
    assert!(listed.contains(&"rmcp_echo".to_owned()) && listed.iter().all(|n| n.starts_with("rmcp_")), "{listed:?}");
    tollgate_tests::eventually(5, "a warning names the member left out", || gw.log().contains("its items are left out")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_virtual_server_made_through_the_api_composes_servers_running_now() {
    use tollgate_tests::admin::Admin;
    const TOKEN: &str = "compose-admin-token";
    let (a, b) = (Backend::rmcp().named("a").start().await, Backend::rmcp().named("b").start().await);
    let data = write_temp("keep", "").parent().expect("a dir").join("compose-data");
    std::fs::create_dir_all(&data).expect("data dir");
    let gw = Gateway::new().server("alpha", a.url()).management_with(TOKEN, json!({ "data_dir": data })).start().await;
    let admin = Admin::new(&gw.management(), TOKEN);
    let beta = admin.put_if("/api/servers/beta", None, json!({ "name": "beta", "backend": { "http": b.url() } })).await;
    assert_eq!(beta.status, 201, "{beta:?}");
    let unknown = admin.put_if("/api/servers/both", None, json!({ "name": "both", "compose": [{ "server": "alpha" }, { "server": "gamma" }] })).await;
    assert_eq!(unknown.status, 422, "{unknown:?}");
    assert_eq!(unknown.body["detail"], "server.compose[1].server: no server is named 'gamma'");
    let body = json!({ "name": "both", "compose": [{ "server": "alpha", "prefix": "a_" }, { "server": "beta", "prefix": "b_" }] });
    let both = admin.put_if("/api/servers/both", None, body).await;
    assert_eq!(both.status, 201, "{both:?}");
    let nested = admin.put_if("/api/servers/beta", beta.etag.as_deref(), json!({ "name": "beta", "compose": [{ "server": "alpha" }] })).await;
    assert_eq!(nested.status, 422, "a member may not become virtual: {nested:?}");
    assert_eq!(nested.body["detail"], "server.compose: 'beta' is a member of the virtual server 'both': a member cannot be virtual");
    let sdk = Client::connect(&gw.mcp_url("both")).await;
    assert_eq!(sdk.call_tool("a_whoami", json!({})).await.unwrap(), "a");
    assert_eq!(sdk.call_tool("b_whoami", json!({})).await.unwrap(), "b");
    sdk.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_sells_a_virtual_server_by_its_virtual_names() {
    let rmcp = Backend::rmcp().named("sold").start().await;
    let gw = Gateway::new()
        .server("rmcp", rmcp.url())
        .server_entry(json!({ "name": "workspace", "compose": [{ "server": "rmcp", "prefix": "rmcp_" }] }))
        .top("products", json!([{ "name": "open", "subscription_required": false, "servers": [{ "server": "workspace", "tools": ["rmcp_echo"] }] }]))
        .start()
        .await;
    let mut c = Caller::new(&gw.mcp_url("workspace")).initialized().await;
    let tools = c.request("tools/list", json!({})).await.result();
    assert_eq!(names(&tools), ["rmcp_echo"], "the product's tools, by their virtual names");
    assert_eq!(text(&c.call("rmcp_echo", json!({ "text": "bought" })).await), "bought");
    let refused = c.call("rmcp_whoami", json!({})).await;
    assert!(refused.code().is_some(), "a tool outside the product is refused: {refused:?}");
}

/// Reads an SSE response until `needle` has come; all read so far.
async fn read_until(sse: &mut reqwest::Response, seen: &mut String, needle: &str) {
    while !seen.contains(needle) {
        let chunk = tollgate_tests::within(10, needle, sse.chunk()).await.expect("the stream reads").expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_sse_client_uses_a_virtual_server() {
    let rmcp = Backend::rmcp().named("legacy-one").start().await;
    let gw = Gateway::new()
        .server("rmcp", rmcp.url())
        .server_entry(json!({ "name": "workspace", "compose": [{ "server": "rmcp", "prefix": "rmcp_" }] }))
        .start()
        .await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut sse = http.get(gw.url("/workspace/sse")).header("accept", "text/event-stream").send().await.unwrap();
    assert_eq!(sse.status(), 200);
    let mut seen = String::new();
    read_until(&mut sse, &mut seen, "sessionId=").await;
    let endpoint = seen.lines().find_map(|l| l.strip_prefix("data: ")).expect("the endpoint event").trim().to_owned();
    let post = |body: Value| http.post(gw.url(&endpoint)).json(&body).send();
    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": { "name": "legacy", "version": "1" } } });
    assert_eq!(post(init).await.unwrap().status(), 202);
    read_until(&mut sse, &mut seen, "\"serverInfo\"").await;
    assert!(seen.contains("\"name\":\"workspace\""), "the virtual server names itself: {seen}");
    assert_eq!(post(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" })).await.unwrap().status(), 202);
    let call = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": { "name": "rmcp_whoami", "arguments": {} } });
    assert_eq!(post(call).await.unwrap().status(), 202);
    read_until(&mut sse, &mut seen, "legacy-one").await;
}
