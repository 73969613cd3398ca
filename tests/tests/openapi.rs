//! REST APIs served as MCP servers: the real gateway binary, real OpenAPI documents (the
//! OpenAPI Initiative's Petstore examples, 3.0 and 3.1), a real HTTP API started here, and an MCP
//! client speaking Streamable HTTP.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tollgate_tests::client::Client;
use tollgate_tests::gateway::{Gateway, RunningGateway, run_tollgate};
use tollgate_tests::raw::{Raw, request};

/// A session with one server, spoken as plain JSON-RPC so whole tool results can be checked
/// (`structuredContent`, `isError`), with an `Authorization` of the client's own when asked.
struct Mcp {
    raw: Raw,
    session: String,
    next: AtomicI64,
    authorization: Option<&'static str>,
}

impl Mcp {
    async fn connect(gw: &RunningGateway, server: &str) -> Mcp {
        let raw = Raw::new(&gw.mcp_url(server));
        let session = raw.initialize().await;
        Mcp { raw, session, next: AtomicI64::new(2), authorization: None }
    }

    fn with_authorization(mut self, value: &'static str) -> Mcp {
        self.authorization = Some(value);
        self
    }

    async fn request(&self, method: &str, params: Value) -> Value {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut req = self.raw.post_json(&request(id, method, params)).session(&self.session);
        if let Some(a) = self.authorization {
            req = req.header("authorization", a);
        }
        req.send().await.message()
    }

    async fn tools(&self) -> Vec<Value> {
        let answer = self.request("tools/list", json!({})).await;
        answer["result"]["tools"].as_array().unwrap_or_else(|| panic!("tools/list failed: {answer}")).clone()
    }

    /// A tool result, which may carry `isError`.
    async fn call(&self, tool: &str, arguments: Value) -> Value {
        let answer = self.request("tools/call", json!({ "name": tool, "arguments": arguments })).await;
        answer.get("result").cloned().unwrap_or_else(|| panic!("tools/call {tool} failed: {answer}"))
    }
}

/// The text of a tool result's first content item.
fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_else(|| panic!("no text content: {result}"))
}

/// One request as the REST API received it: the request target exactly as sent, undecoded.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    target: String,
    headers: HeaderMap,
    body: Bytes,
}

/// A small Petstore that records every request; `/echo/…` answers with what it received.
struct Api {
    addr: String,
    log: Arc<Mutex<Vec<Received>>>,
}

impl Api {
    async fn start() -> Api {
        let log: Arc<Mutex<Vec<Received>>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let sink = log.clone();
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let sink = sink.clone();
            async move {
                let r = Received { method: method.to_string(), target: uri.to_string(), headers, body };
                sink.lock().unwrap().push(r.clone());
                answer(r).await
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Api { addr, log }
    }

    fn url(&self, prefix: &str) -> String {
        format!("http://{}{prefix}", self.addr)
    }

    fn last(&self) -> Received {
        self.log.lock().unwrap().last().cloned().expect("the API was called")
    }

    fn count(&self) -> usize {
        self.log.lock().unwrap().len()
    }
}

async fn answer(r: Received) -> Response {
    let path = r.target.split('?').next().unwrap_or_default().to_owned();
    let json_ok = |v: Value| (StatusCode::OK, [("content-type", "application/json")], v.to_string()).into_response();
    match (r.method.as_str(), path.as_str()) {
        (_, p) if p.starts_with("/echo/") => {
            let headers: serde_json::Map<String, Value> = r.headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").into())).collect();
            let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            json_ok(json!({ "method": r.method, "target": r.target, "headers": headers, "body": body }))
        }
        ("GET", "/v1/pets" | "/api/pets") => json_ok(json!([{ "id": 1, "name": "Rex" }, { "id": 2, "name": "Tom", "tag": "cat" }])),
        ("POST", "/v1/pets") => StatusCode::CREATED.into_response(),
        ("GET", "/v1/pets/missing") => {
            (StatusCode::NOT_FOUND, [("content-type", "application/json")], r#"{"code":404,"message":"no pet with that id"}"#).into_response()
        }
        ("GET", "/v1/pets/boom") => (StatusCode::INTERNAL_SERVER_ERROR, format!("database on fire {}", "x".repeat(10_000))).into_response(),
        ("GET", "/v1/pets/slow") => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            json_ok(json!({ "id": 3, "name": "Slow" }))
        }
        ("GET", p) if p.starts_with("/v1/pets/") => json_ok(json!({ "id": 7, "name": "Rex", "tag": &p["/v1/pets/".len()..] })),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn spec(file: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = if file == "echo.yaml" { root.join("tests/data/openapi").join(file) } else { root.join("examples/openapi").join(file) };
    path.canonicalize().expect("the spec exists").display().to_string()
}

/// A port nothing listens on: bound, then released.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The gateway with one server per case, all backed by `api`.
async fn start_gateway(api: &Api) -> RunningGateway {
    Gateway::new()
        .server_with(
            "petstore",
            json!({ "openapi": {
            "spec": spec("petstore.yaml"), "base_url": api.url("/v1"),
            "operations": ["listPets", "showPetById", "create*"], "timeout_ms": 500 } }),
        )
        .server_with("expanded", json!({ "openapi": { "spec": spec("petstore-expanded.yaml"), "base_url": api.url("/api"), "operations": ["findPets"] } }))
        .server_with("hooks", json!({ "openapi": { "spec": spec("webhook-example.yaml"), "base_url": api.url("/v1") } }))
        .server_with("echo", json!({ "openapi": { "spec": spec("echo.yaml"), "base_url": api.url("/echo"), "headers": { "X-Api-Key": "key-of-the-api" } } }))
        .server_with("down", json!({ "openapi": { "spec": spec("petstore.yaml"), "base_url": format!("http://127.0.0.1:{}/v1", closed_port()) } }))
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn petstore_operations_are_listed_as_tools_with_their_schemas() {
    let api = Api::start().await;
    let gw = start_gateway(&api).await;
    let client = Mcp::connect(&gw, "petstore").await;
    let tools = client.tools().await;
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["listPets", "createPets", "showPetById"]);
    let show = &tools[2];
    assert_eq!(show["description"], "Info for a specific pet");
    assert_eq!(show["inputSchema"]["required"], json!(["petId"]));
    assert_eq!(show["outputSchema"]["properties"]["id"]["format"], "int64");
    let pet = client.call("showPetById", json!({ "petId": "42" })).await;
    assert_eq!(pet["structuredContent"], json!({ "id": 7, "name": "Rex", "tag": "42" }));
    assert_eq!(serde_json::from_str::<Value>(text(&pet)).unwrap(), pet["structuredContent"]);
    assert_eq!(pet.get("isError"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_path_query_header_and_cookie_go_where_the_spec_says_in_one_call() {
    let api = Api::start().await;
    let gw = start_gateway(&api).await;
    let client = Mcp::connect(&gw, "echo").await.with_authorization("Bearer the-clients-own-token");
    let args = json!({
        "thingId": "box 1",
        "tags": ["red", "blue"],
        "filter": { "color": "red" },
        "X-Request-Id": "7f1c0e3a-3b1d-4c39-9a57-3a2f0c1d2e3f",
        "session": "abc",
        "body": { "name": "box", "size": 3, "parts": [{ "name": "lid" }] },
    });
    let result = client.call("replaceThing", args).await;
    assert_eq!(result.get("isError"), None, "{result}");
    let got = api.last();
    assert_eq!(got.method, "PUT");
    assert_eq!(got.target, "/echo/things/box%201?tags=red&tags=blue&filter%5Bcolor%5D=red");
    assert_eq!(got.headers["x-request-id"], "7f1c0e3a-3b1d-4c39-9a57-3a2f0c1d2e3f");
    assert_eq!(got.headers["cookie"], "session=abc");
    assert_eq!(got.headers["content-type"], "application/json");
    assert_eq!(got.headers["x-api-key"], "key-of-the-api", "configured headers reach the API");
    assert!(got.headers.get("authorization").is_none(), "the client's own token must never reach the API");
    assert_eq!(serde_json::from_slice::<Value>(&got.body).unwrap(), json!({ "name": "box", "size": 3, "parts": [{ "name": "lid" }] }));
    assert_eq!(result["structuredContent"]["target"], got.target);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_body_is_sent_and_an_empty_answer_is_reported() {
    let api = Api::start().await;
    let gw = start_gateway(&api).await;
    let client = Mcp::connect(&gw, "petstore").await;
    let result = client.call("createPets", json!({ "body": { "id": 9, "name": "Kit" } })).await;
    assert_eq!(text(&result), "HTTP 201 Created");
    let got = api.last();
    assert_eq!((got.method.as_str(), got.target.as_str()), ("POST", "/v1/pets"));
    assert_eq!(serde_json::from_slice::<Value>(&got.body).unwrap(), json!({ "id": 9, "name": "Kit" }));
    let missing = client.call("createPets", json!({})).await;
    assert_eq!(missing["isError"], true);
    assert!(text(&missing).contains("missing required argument 'body'"), "{missing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_parameters_cannot_climb_out_of_their_segment() {
    let api = Api::start().await;
    let gw = start_gateway(&api).await;
    let client = Mcp::connect(&gw, "petstore").await;
    for (value, target) in [("../../admin", "/v1/pets/..%2F..%2Fadmin"), ("%2F..%2Fadmin", "/v1/pets/%252F..%252Fadmin"), ("a/b?c#d", "/v1/pets/a%2Fb%3Fc%23d")]
    {
        let result = client.call("showPetById", json!({ "petId": value })).await;
        assert_eq!(api.last().target, target, "{value}");
        assert_eq!(result["structuredContent"]["tag"], &target["/v1/pets/".len()..]);
    }
    let before = api.count();
    for dots in ["..", "."] {
        let result = client.call("showPetById", json!({ "petId": dots })).await;
        assert_eq!(result["isError"], true);
        assert!(text(&result).contains("cannot be empty, '.' or '..'"), "{result}");
    }
    assert_eq!(api.count(), before, "a dot segment never reaches the API");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrays_in_the_query_are_repeated_as_form_style_says() {
    let api = Api::start().await;
    let gw = start_gateway(&api).await;
    let client = Mcp::connect(&gw, "expanded").await;
    let result = client.call("findPets", json!({ "tags": ["dog", "small & loud"], "limit": 2 })).await;
    assert_eq!(api.last().target, "/api/pets?tags=dog&tags=small%20%26%20loud&limit=2");
    assert!(result.get("structuredContent").is_none(), "an array answer is text only");
    assert_eq!(serde_json::from_str::<Value>(text(&result)).unwrap()[1]["name"], "Tom");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openapi_31_document_is_served() {
    let api = Api::start().await;
    let gw = start_gateway(&api).await;
    let client = Mcp::connect(&gw, "hooks").await;
    let tools = client.tools().await;
    assert_eq!(tools.len(), 1);
    assert_eq!(
        tools[0]["inputSchema"]["properties"]["limit"],
        json!({ "type": "integer", "format": "int32", "description": "How many items to return at one time (max 100)" })
    );
    client.call("listPets", json!({ "limit": 5 })).await;
    assert_eq!(api.last().target, "/v1/pets?limit=5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_of_the_api_become_tool_errors_with_status_and_a_bounded_excerpt() {
    let api = Api::start().await;
    let gw = start_gateway(&api).await;
    let client = Mcp::connect(&gw, "petstore").await;
    let not_found = client.call("showPetById", json!({ "petId": "missing" })).await;
    assert_eq!(not_found["isError"], true);
    assert_eq!(text(&not_found), r#"The API answered HTTP 404 Not Found: {"code":404,"message":"no pet with that id"}"#);
    let failed = client.call("showPetById", json!({ "petId": "boom" })).await;
    assert_eq!(failed["isError"], true);
    assert!(text(&failed).starts_with("The API answered HTTP 500 Internal Server Error: database on fire xxx"), "{failed}");
    assert!(text(&failed).len() < 2_100, "the excerpt is bounded: {} bytes", text(&failed).len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_that_is_down_or_too_slow_gives_a_clear_tool_error() {
    let api = Api::start().await;
    let gw = start_gateway(&api).await;
    let down = Mcp::connect(&gw, "down").await;
    let result = down.call("listPets", json!({})).await;
    assert_eq!(result["isError"], true);
    assert!(text(&result).starts_with("The REST API of server 'down' at http://127.0.0.1:"), "{result}");
    assert!(text(&result).contains("unreachable"), "{result}");
    let slow = Mcp::connect(&gw, "petstore").await;
    let started = Instant::now();
    let result = slow.call("showPetById", json!({ "petId": "slow" })).await;
    assert_eq!(result["isError"], true);
    assert!(text(&result).ends_with("did not answer within 500 ms"), "{result}");
    assert!(started.elapsed() < Duration::from_millis(2_500), "the timeout applies: {:?}", started.elapsed());
    let after = slow.call("showPetById", json!({ "petId": "1" })).await;
    assert_eq!(after["structuredContent"]["id"], 7, "the session still works after a timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tools_and_methods_are_protocol_errors() {
    let api = Api::start().await;
    let gw = start_gateway(&api).await;
    let client = Mcp::connect(&gw, "petstore").await;
    let unknown = client.request("tools/call", json!({ "name": "deletePet", "arguments": {} })).await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    let method = client.request("resources/list", json!({})).await;
    assert_eq!(method["error"]["code"], -32601, "{method}");
    assert_eq!(client.request("ping", json!({})).await["result"], json!({}));
    assert_eq!(api.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_reports_an_unreadable_spec_an_unknown_operation_and_a_duplicate_name() {
    let config = format!(
        "servers:\n  - name: pets\n    backend:\n      openapi:\n        spec: {}\n        base_url: http://127.0.0.1:9/v1\n        operations: [listPets, showPetById, lstPets]\n        tools:\n          showPetById: {{ name: listPets }}\n  - name: gone\n    backend:\n      openapi:\n        spec: /nonexistent/openapi.yaml\n",
        spec("petstore.yaml")
    );
    let (status, out) = run_tollgate(&["validate"], &config).await;
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(out.contains("line 7: servers[0].backend.openapi.operations[2]: unknown operation 'lstPets' (did you mean 'listPets'?)"), "{out}");
    assert!(out.contains("line 9: servers[0].backend.openapi.tools.showPetById: two tools are named 'listPets'"), "{out}");
    assert!(out.contains("line 13: servers[1].backend.openapi.spec: cannot read /nonexistent/openapi.yaml"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_example_serves_the_petstore() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap();
    let backend = tollgate_tests::petstore::Petstore::start();
    let port = backend.port;
    let config = std::fs::read_to_string(root.join("examples/petstore.yaml"))
        .unwrap()
        .replace("127.0.0.1:8080", "127.0.0.1:0")
        .replace("127.0.0.1:9000", &format!("127.0.0.1:{port}"))
        .replace("spec: openapi/petstore.yaml", &format!("spec: {}", spec("petstore.yaml")));
    let (status, out) = run_tollgate(&["validate"], &config).await;
    assert!(status.success(), "{out}");
    let parsed: Value = serde_norway::from_str(&config).expect("the example is YAML");
    let gw = Gateway::new().server_with("petstore", parsed["servers"][0]["backend"].clone()).start().await;
    // The official Rust SDK as the client.
    let sdk = Client::connect(&gw.mcp_url("petstore")).await;
    assert_eq!(sdk.list_tools().await, ["listPets", "createPets", "get_pet"]);
    assert_eq!(sdk.call_tool("createPets", json!({ "body": { "id": 3, "name": "Kit", "tag": "cat" } })).await.unwrap(), "HTTP 201 Created");
    assert_eq!(sdk.call_tool("get_pet", json!({ "petId": "3" })).await.unwrap(), r#"{"id":3,"name":"Kit","tag":"cat"}"#);
    sdk.close().await;
    let client = Mcp::connect(&gw, "petstore").await;
    let pet = client.call("get_pet", json!({ "petId": "3" })).await;
    assert_eq!(pet["structuredContent"], json!({ "id": 3, "name": "Kit", "tag": "cat" }));
    let list = client.call("listPets", json!({ "limit": 2 })).await;
    assert_eq!(serde_json::from_str::<Value>(text(&list)).unwrap().as_array().unwrap().len(), 2);
    let missing = client.call("get_pet", json!({ "petId": "99" })).await;
    assert_eq!(missing["isError"], true);
    assert!(text(&missing).contains("HTTP 404"), "{missing}");
}
