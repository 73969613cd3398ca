//! The peers of an end-to-end test: an MCP backend that reports what it received, the real
//! `tollgate` binary with a config in a temp dir, and a JSON-RPC client over Streamable HTTP.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A compiled test policy.
pub fn guest(name: &str) -> String {
    format!("{}/{name}.wasm", env!("TOLLGATE_GUESTS"))
}

/// A test policy written in Python, built with componentize-py (`tests/guests-py/<name>/app.py`).
pub fn python_guest(name: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("guests-py").join(name);
    let out = root.join("guests-py/target").join(format!("{name}.wasm"));
    let stale = |o: &Path| match (std::fs::metadata(o).and_then(|m| m.modified()), std::fs::metadata(src.join("app.py")).and_then(|m| m.modified())) {
        (Ok(built), Ok(edited)) => built < edited,
        _ => true,
    };
    static BUILD: Mutex<()> = Mutex::new(());
    let _one = BUILD.lock().unwrap();
    if stale(&out) {
        let venv = root.join("interop/.venv/bin/componentize-py");
        let tool = std::env::var("COMPONENTIZE_PY").map(PathBuf::from).unwrap_or(if venv.exists() { venv } else { PathBuf::from("componentize-py") });
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        let status = Command::new(&tool)
            .current_dir(&src)
            .args(["-d", root.join("../wit").to_str().unwrap(), "-w", "gateway-policy", "componentize", "app", "-o", out.to_str().unwrap()])
            .stdout(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("{} not found ({e}): scripts/setup.sh installs it", tool.display()));
        assert!(status.success(), "componentize-py failed");
    }
    out.display().to_string()
}

// === upstream ===

/// What the backend received: one entry per JSON-RPC message.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub params: Value,
    pub headers: HeaderMap,
}

pub struct Upstream {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    /// A Streamable HTTP MCP server with five tools; `tools/call` answers with the arguments
    /// and the `authorization` header it received, except `chatty`, which streams a log line
    /// before its answer.
    pub async fn start() -> Upstream {
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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Upstream { url: format!("http://{addr}/mcp"), seen }
    }

    pub fn seen(&self, method: &str) -> Vec<Seen> {
        self.seen.lock().unwrap().iter().filter(|s| s.method == method).cloned().collect()
    }
}

fn answer(log: &Mutex<Vec<Seen>>, h: HeaderMap, msg: Value) -> Response {
    let method = msg["method"].as_str().unwrap_or_default().to_owned();
    log.lock().unwrap().push(Seen { method: method.clone(), params: msg["params"].clone(), headers: h.clone() });
    let Some(id) = msg.get("id").cloned() else { return StatusCode::ACCEPTED.into_response() };
    let result = match method.as_str() {
        "initialize" => json!({ "protocolVersion": "2025-06-18", "capabilities": { "tools": {} }, "serverInfo": { "name": "upstream", "version": "1" } }),
        "tools/list" => {
            let tools: Vec<Value> =
                ["echo", "secret-tool", "cached-tool", "boom", "chatty"].iter().map(|n| json!({ "name": n, "inputSchema": { "type": "object" } })).collect();
            json!({ "tools": tools })
        }
        "tools/call" if msg["params"]["name"] == "chatty" => {
            // Answers as SSE: a logging notification first, then the result.
            let note = json!({ "jsonrpc": "2.0", "method": "notifications/message", "params": { "level": "info", "data": "the key is swordfish" } });
            let done = json!({ "jsonrpc": "2.0", "id": id, "result": { "content": [{ "type": "text", "text": "said it" }] } });
            let body = format!("event: message\ndata: {note}\n\nevent: message\ndata: {done}\n\n");
            return ([("content-type", "text/event-stream")], body).into_response();
        }
        "tools/call" => {
            let auth = h.get("authorization").and_then(|v| v.to_str().ok());
            json!({ "content": [{ "type": "text", "text": "ok" }], "structuredContent": { "arguments": msg["params"]["arguments"], "authorization": auth } })
        }
        _ => return Json(json!({ "jsonrpc": "2.0", "id": id, "error": { "code": -32601, "message": "no such method" } })).into_response(),
    };
    let mut r = Json(json!({ "jsonrpc": "2.0", "id": id, "result": result })).into_response();
    if method == "initialize" {
        r.headers_mut().insert("mcp-session-id", "upstream-1".parse().unwrap());
    }
    r
}

// === gateway ===

/// The `tollgate` binary the suite runs: the one built before the tests (no nested build).
pub fn binary() -> PathBuf {
    tollgate_tests::process::binary("tollgate")
}

/// A running gateway. Killed on drop.
pub struct Gateway {
    child: Child,
    pub addr: SocketAddr,
    pub config: PathBuf,
    _dir: TempDir,
}

impl Gateway {
    /// Starts `tollgate serve` on `servers:` YAML (the listen address is added).
    pub async fn start(servers_yaml: &str) -> Gateway {
        let dir = TempDir::new();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let config = dir.0.join("tollgate.yaml");
        std::fs::write(&config, format!("listen: {addr}\n{servers_yaml}")).unwrap();
        let child = Command::new(binary())
            .args(["serve", "-c"])
            .arg(&config)
            .env("TOLLGATE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let gw = Gateway { child, addr, config, _dir: dir };
        // Loading compiles every policy: an interpreter-sized one takes a while on a busy machine.
        for _ in 0..2400 {
            if reqwest::get(format!("http://{addr}/healthz")).await.is_ok() {
                return gw;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the gateway did not start");
    }

    /// Replaces the config (keeping the listen address), as an operator would.
    pub fn rewrite(&self, servers_yaml: &str) {
        let tmp = self.config.with_extension("tmp");
        std::fs::write(&tmp, format!("listen: {}\n{servers_yaml}", self.addr)).unwrap();
        std::fs::rename(&tmp, &self.config).unwrap();
    }

    pub fn client(&self, server: &str) -> Client {
        Client { http: reqwest::Client::new(), url: format!("http://{}/{server}/mcp", self.addr), session: None, next: 0, headers: Vec::new() }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tollgate validate` on a config; its exit code and what it printed.
pub fn validate(yaml: &str) -> (i32, String) {
    let dir = TempDir::new();
    let config = dir.0.join("tollgate.yaml");
    std::fs::write(&config, yaml).unwrap();
    let out = Command::new(binary()).args(["validate", "-c"]).arg(&config).output().unwrap();
    (out.status.code().unwrap_or(-1), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tollgate-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// === client ===

/// An answer as the client got it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn error_code(&self) -> Option<i32> {
        self.body["error"]["code"].as_i64().and_then(|c| i32::try_from(c).ok())
    }
    pub fn result(&self) -> &Value {
        &self.body["result"]
    }
}

/// A Streamable HTTP client speaking raw JSON-RPC.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    url: String,
    session: Option<String>,
    next: i64,
    headers: Vec<(String, String)>,
}

impl Client {
    /// Sends this header with every request.
    pub fn header(mut self, name: &str, value: &str) -> Client {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// `initialize` then `notifications/initialized`; the `initialize` answer.
    pub async fn initialize(&mut self) -> Answer {
        let a =
            self.request("initialize", json!({ "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "test", "version": "1" } })).await;
        if let Some(s) = a.headers.get("mcp-session-id") {
            self.session = Some(s.to_str().unwrap().to_owned());
            self.post(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" })).await;
        }
        a
    }

    pub async fn request(&mut self, method: &str, params: Value) -> Answer {
        self.next += 1;
        self.post(json!({ "jsonrpc": "2.0", "id": self.next, "method": method, "params": params })).await
    }

    pub async fn call_tool(&mut self, name: &str, arguments: Value) -> Answer {
        self.request("tools/call", json!({ "name": name, "arguments": arguments })).await
    }

    async fn post(&self, body: Value) -> Answer {
        let mut req = self.http.post(&self.url).header("accept", "application/json, text/event-stream").json(&body);
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.expect("the gateway answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = if text.trim().is_empty() {
            Value::Null
        } else if let Ok(v) = serde_json::from_str(&text) {
            v
        } else {
            // An SSE answer: the last `data:` line carries the response.
            text.lines().filter_map(|l| l.strip_prefix("data:")).filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok()).next_back().unwrap_or(Value::Null)
        };
        Answer { status, headers, body }
    }
}
