//! A minimal MCP client over Streamable HTTP: raw JSON-RPC with reqwest, reading plain JSON
//! and SSE answers alike.

use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::{Value, json};

pub struct Client {
    http: reqwest::Client,
    url: String,
    session: String,
    next: AtomicI64,
    authorization: Option<String>,
}

impl Client {
    /// Initializes a session at `url` (`http://…/{server}/mcp`).
    pub async fn connect(url: &str) -> Client {
        Client::connect_with(url, None).await
    }

    /// As [`Client::connect`], sending `Authorization: {auth}` on every request, as a client with its own token does.
    pub async fn connect_with(url: &str, authorization: Option<&str>) -> Client {
        let mut c = Client { http: reqwest::Client::new(), url: url.to_owned(), session: String::new(), next: AtomicI64::new(1), authorization: authorization.map(str::to_owned) };
        let init = json!({ "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "tollgate-tests", "version": "0" } });
        let resp = c.post(&json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": init })).await;
        c.session = resp.headers().get("mcp-session-id").expect("a session id").to_str().expect("ASCII").to_owned();
        let answer = read(resp).await;
        assert!(answer.get("result").is_some(), "initialize failed: {answer}");
        let note = c.post(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" })).await;
        assert_eq!(note.status(), 202);
        c
    }

    async fn post(&self, body: &Value) -> reqwest::Response {
        let mut req = self.http.post(&self.url).header("accept", "application/json, text/event-stream").json(body);
        if !self.session.is_empty() {
            req = req.header("mcp-session-id", &self.session).header("mcp-protocol-version", "2025-06-18");
        }
        if let Some(a) = &self.authorization {
            req = req.header("authorization", a);
        }
        req.send().await.expect("the gateway answers")
    }

    /// Sends a request; the whole JSON-RPC answer.
    pub async fn request(&self, method: &str, params: Value) -> Value {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        read(self.post(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })).await).await
    }

    /// `tools/list`: the tools.
    pub async fn tools(&self) -> Vec<Value> {
        let answer = self.request("tools/list", json!({})).await;
        answer["result"]["tools"].as_array().unwrap_or_else(|| panic!("tools/list failed: {answer}")).clone()
    }

    /// `tools/call`: the tool result (which may carry `isError`).
    pub async fn call(&self, tool: &str, arguments: Value) -> Value {
        let answer = self.request("tools/call", json!({ "name": tool, "arguments": arguments })).await;
        answer.get("result").cloned().unwrap_or_else(|| panic!("tools/call {tool} failed: {answer}"))
    }
}

/// The JSON-RPC answer in a response: its body, or the last `data:` of its SSE stream.
async fn read(resp: reqwest::Response) -> Value {
    let sse = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|ct| ct.starts_with("text/event-stream"));
    let text = resp.text().await.expect("a body");
    if !sse {
        return serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .rfind(|m| m.get("result").is_some() || m.get("error").is_some())
        .unwrap_or_else(|| panic!("no answer in the stream: {text}"))
}

/// The text of a tool result's first content item.
pub fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_else(|| panic!("no text content: {result}"))
}
