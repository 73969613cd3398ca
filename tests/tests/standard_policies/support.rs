//! The peers of these tests: the real `tollgate` binary started on a config the test writes
//! (standard policies bound by name), a plain JSON-RPC caller that sends the headers a test
//! chooses, and a backend that records every message it got with the headers it came with.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::process::Child;
use tollgate_tests::gateway::{Launched, launch, write_temp};
use tollgate_tests::raw::{Raw, RawResponse};

/// Gateway error codes (host/src/error.rs, `code`).
pub const UNAUTHORIZED: i64 = -32001;
pub const FORBIDDEN: i64 = -32003;
pub const RATE_LIMITED: i64 = -32009;
pub const QUOTA_EXCEEDED: i64 = -32010;

/// A standard policy bound by name, with time for outbound fetches on a busy machine.
pub fn policy(name: &str, config: Value) -> Value {
    json!({ "policy": name, "config": config, "limits": { "timeout_ms": 5000 } })
}

/// A server entry with a Streamable HTTP backend and a chain of policies.
pub fn server(name: &str, backend_url: &str, policies: Value) -> Value {
    json!({ "name": name, "backend": { "http": backend_url }, "policies": policies })
}

/// A free port on `ip`, for a config that must know its own address before it starts (the
/// canonical URL of a protected server is `http://{listen}/{name}/mcp`).
pub fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0)).expect("a free port").local_addr().expect("local addr").port()
}

/// A `tollgate serve` process. Killed when dropped.
pub struct Gw {
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
    _child: Child,
    config: PathBuf,
}

impl Gw {
    /// Starts the gateway on `config` (JSON, which is YAML), with `env` set for its process
    /// only, and waits until it answers on `/healthz`.
    pub async fn start(config: Value, env: &[(&str, &str)]) -> Gw {
        let text = serde_json::to_string_pretty(&config).expect("config serializes");
        let file = write_temp("tollgate.yaml", &text);
        // Loading the standard policies compiles them: generous on a busy machine.
        let Launched { child, addr, log } = launch(&file, env, "http", Duration::from_secs(60)).await;

        Gw { addr, log, _child: child, config: file }
    }

    /// `http://127.0.0.1:PORT` (or `http://[::1]:PORT`).
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn mcp_url(&self, server: &str) -> String {
        format!("{}/{server}/mcp", self.base())
    }

    /// A caller of one server's endpoint.
    pub fn caller(&self, server: &str) -> Caller {
        Caller::new(&self.mcp_url(server))
    }

    /// What the gateway has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// The processes the gateway started (stdio backends) that run now.
    #[allow(dead_code)]
    pub fn children(&self) -> Vec<u32> {
        self._child.id().map(tollgate_tests::process::children_of).unwrap_or_default()
    }
}

impl Drop for Gw {
    fn drop(&mut self) {
        if let Some(dir) = self.config.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A JSON-RPC client over plain HTTP that sends its own headers (a bearer token, say) with
/// every request, and keeps the session the gateway issues.
#[derive(Clone)]
pub struct Caller {
    raw: Raw,
    headers: Vec<(String, String)>,
    session: Option<String>,
    next: i64,
}

impl Caller {
    pub fn new(url: &str) -> Caller {
        Caller { raw: Raw::new(url), headers: Vec::new(), session: None, next: 0 }
    }

    /// Sends this header with every request.
    pub fn header(mut self, name: &str, value: &str) -> Caller {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn bearer(self, token: &str) -> Caller {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// `initialize`, and `notifications/initialized` when it succeeds; the `initialize` answer.
    pub async fn initialize(&mut self) -> RawResponse {
        let r = self
            .request(
                "initialize",
                json!({ "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "standard-policies", "version": "1" } }),
            )
            .await;
        if r.status == 200
            && let Some(id) = r.headers.get("mcp-session-id").and_then(|v| v.to_str().ok())
        {
            self.session = Some(id.to_owned());
            let done = self.send(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" })).await;
            assert_eq!(done.status, 202, "notifications/initialized: {done:?}");
        }
        r
    }

    /// `initialize`, which must succeed.
    pub async fn initialized(mut self) -> Caller {
        let r = self.initialize().await;
        assert_eq!(r.status, 200, "initialize: {r:?}");
        assert!(self.session.is_some(), "the gateway issues a session: {r:?}");
        self
    }

    /// The session the gateway issued, once initialized.
    #[allow(dead_code)]
    pub fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }

    pub async fn request(&mut self, method: &str, params: Value) -> RawResponse {
        self.next += 1;
        self.send(json!({ "jsonrpc": "2.0", "id": self.next, "method": method, "params": params })).await
    }

    pub async fn call(&mut self, tool: &str, arguments: Value) -> RawResponse {
        self.request("tools/call", json!({ "name": tool, "arguments": arguments })).await
    }

    async fn send(&self, msg: Value) -> RawResponse {
        let mut req = self.raw.post_json(&msg);
        if let Some(id) = &self.session {
            req = req.session(id);
        }
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        req.send().await
    }
}

/// The text of a successful `tools/call` answer.
pub fn text(r: &RawResponse) -> String {
    let m = r.message();
    assert!(r.status == 200 && m.get("result").is_some(), "expected a result, got {r:?}");
    m["result"]["content"].as_array().into_iter().flatten().filter_map(|c| c["text"].as_str()).collect()
}

/// The value of a response header.
pub fn header<'a>(r: &'a RawResponse, name: &str) -> &'a str {
    r.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no {name} header in {r:?}"))
}

/// One JSON-RPC message as the recording backend received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub params: Value,
    pub headers: HeaderMap,
}

/// A Streamable HTTP MCP backend that records each message with its headers (a stateless
/// `tools/list` it answers as an SSE stream). Its tools:
/// `echo` (answers its `text` and the `authorization` header it received), `fragile` (a tool
/// result with `isError: true`), `broken` (a JSON-RPC error).
pub struct Recorder {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Recorder {
    pub async fn start() -> Recorder {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = seen.clone();
        let app = axum::Router::new().route(
            "/mcp",
            axum::routing::post(move |h: HeaderMap, Json(msg): Json<Value>| {
                let log = log.clone();
                async move { answer(&log, h, msg) }
            })
            .get(|| async { StatusCode::METHOD_NOT_ALLOWED })
            .delete(|| async { StatusCode::OK }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the backend");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Recorder { url: format!("http://{addr}/mcp"), seen }
    }

    /// The messages of this method that reached the backend, in order.
    pub fn seen(&self, method: &str) -> Vec<Seen> {
        self.seen.lock().expect("seen lock").iter().filter(|s| s.method == method).cloned().collect()
    }

    /// The `tools/call`s of this tool that reached the backend.
    pub fn calls_of(&self, tool: &str) -> usize {
        self.seen("tools/call").iter().filter(|s| s.params["name"] == tool).count()
    }

    /// Every message that reached the backend.
    pub fn all(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen lock").clone()
    }
}

fn answer(log: &Mutex<Vec<Seen>>, h: HeaderMap, msg: Value) -> Response {
    let method = msg["method"].as_str().unwrap_or_default().to_owned();
    log.lock().expect("seen lock").push(Seen { method: method.clone(), params: msg["params"].clone(), headers: h.clone() });
    let Some(id) = msg.get("id").cloned() else { return StatusCode::ACCEPTED.into_response() };
    let result = match method.as_str() {
        "initialize" => {
            let asked = msg["params"]["protocolVersion"].as_str().filter(|v| ["2025-03-26", "2025-06-18"].contains(v)).unwrap_or("2025-11-25");
            json!({ "protocolVersion": asked, "capabilities": { "tools": {} }, "serverInfo": { "name": "recorder", "version": "1" } })
        }
        "tools/list" => {
            let tools: Vec<Value> = ["echo", "fragile", "broken"].iter().map(|n| json!({ "name": n, "inputSchema": { "type": "object" } })).collect();
            json!({ "tools": tools })
        }
        "tools/call" => match msg["params"]["name"].as_str() {
            Some("echo") => {
                let auth = h.get("authorization").and_then(|v| v.to_str().ok());
                let text = msg["params"]["arguments"]["text"].clone();
                json!({ "content": [{ "type": "text", "text": text }], "structuredContent": { "text": text, "authorization": auth } })
            }
            Some("fragile") => json!({ "content": [{ "type": "text", "text": "it broke" }], "isError": true }),
            Some("broken") => return rpc_error(id, -32603, "the backend failed"),
            _ => return rpc_error(id, -32602, "no such tool"),
        },
        _ => return rpc_error(id, -32601, "no such method"),
    };
    let answer = json!({ "jsonrpc": "2.0", "id": id, "result": result });
    if method == "tools/list" && h.contains_key("mcp-method") {
        // A stateless list is answered as a stream, as SDK servers do when they may send progress first.
        let body = format!("event: message\ndata: {answer}\n\n");
        return ([("content-type", "text/event-stream")], body).into_response();
    }
    let mut r = Json(answer).into_response();
    if method == "initialize" {
        r.headers_mut().insert("mcp-session-id", "recorder-1".parse().expect("a header value"));
    }
    r
}

fn rpc_error(id: Value, code: i64, message: &str) -> Response {
    Json(json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })).into_response()
}

/// Waits, if needed, so that the next `margin_s` seconds lie in one window of `window_s`
/// seconds aligned to the epoch, as the rate limit's and the quota's windows are.
pub async fn clear_of_window_edge(window_s: u64, margin_s: u64) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after the epoch");
    let into = now.as_secs() % window_s;
    if into + margin_s >= window_s {
        tokio::time::sleep(Duration::from_secs(window_s - into + 1)).await;
    }
}
