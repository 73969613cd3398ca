//! A Streamable HTTP MCP backend that records every message it got with the headers it came
//! with, so a test can tell exactly what reached the backend (and what never did).

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

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

/// How a backend answers one message (after it is recorded): the headers it came with, and it.
pub type Script = fn(&HeaderMap, &Value) -> Response;

impl Recorder {
    /// The backend with the tools above.
    pub async fn start() -> Recorder {
        Recorder::start_with(answer).await
    }

    /// A recording backend that answers as `script` says: a suite's own tools.
    pub async fn start_with(script: Script) -> Recorder {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = seen.clone();
        let app = axum::Router::new().route(
            "/mcp",
            axum::routing::post(move |h: HeaderMap, Json(msg): Json<Value>| {
                let log = log.clone();
                async move {
                    let method = msg["method"].as_str().unwrap_or_default().to_owned();
                    log.lock().expect("seen lock").push(Seen { method, params: msg["params"].clone(), headers: h.clone() });
                    script(&h, &msg)
                }
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

fn answer(h: &HeaderMap, msg: &Value) -> Response {
    let method = msg["method"].as_str().unwrap_or_default().to_owned();
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
