//! Plain HTTP against the gateway, for what an SDK client would never send: malformed bodies,
//! wrong headers, stale session ids.

use std::time::Duration;

use serde_json::{Value, json};

pub const ACCEPT_BOTH: &str = "application/json, text/event-stream";
/// The stateless protocol revision.
pub const STATELESS_VERSION: &str = "2026-07-28";

/// One `/{name}/mcp` endpoint, spoken to by hand.
#[derive(Clone)]
pub struct Raw {
    http: reqwest::Client,
    url: String,
}

/// A request being built: by default a POST with the headers a correct client sends, each of
/// which a test may replace.
pub struct RawRequest {
    req: reqwest::RequestBuilder,
    headers: reqwest::header::HeaderMap,
}

/// An answer, read whole.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Raw {
    pub fn new(url: &str) -> Raw {
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(20)).build().expect("http client");
        Raw { http, url: url.to_owned() }
    }

    /// A POST of `body` with `Content-Type: application/json` and an Accept of both types.
    pub fn post(&self, body: impl Into<String>) -> RawRequest {
        RawRequest { req: self.http.post(&self.url).body(body.into()), headers: Default::default() }
            .header("content-type", "application/json")
            .header("accept", ACCEPT_BOTH)
    }

    /// A POST of a JSON value.
    pub fn post_json(&self, msg: &Value) -> RawRequest {
        self.post(msg.to_string())
    }

    /// A stateless request of protocol 2026-07-28: the version in `params._meta` and the
    /// routing headers (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`) as its clients send them.
    pub fn stateless(&self, method: &str, params: Value) -> RawRequest {
        let mut params = params;
        params["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!(STATELESS_VERSION);
        let msg = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        let req = self.post_json(&msg).header("mcp-protocol-version", STATELESS_VERSION).header("mcp-method", method);
        match msg["params"]["name"].as_str() {
            Some(name) => req.header("mcp-name", name),
            None => req,
        }
    }

    /// A GET for the session's stream of server-initiated messages.
    pub fn get(&self, session: &str) -> RawRequest {
        RawRequest { req: self.http.get(&self.url), headers: Default::default() }.header("accept", "text/event-stream").header("mcp-session-id", session)
    }

    pub fn delete(&self, session: &str) -> RawRequest {
        RawRequest { req: self.http.delete(&self.url), headers: Default::default() }.header("mcp-session-id", session)
    }

    /// Initializes a session the way a client of revision 2025-11-25 does; returns its id.
    pub async fn initialize(&self) -> String {
        let r = self.post_json(&initialize_request(1)).send().await;
        assert_eq!(r.status, 200, "initialize: {r:?}");
        assert!(r.message().get("result").is_some(), "initialize answered {r:?}");
        let session = r.headers.get("mcp-session-id").and_then(|v| v.to_str().ok()).expect("the gateway issues a session id").to_owned();
        let done = self.post_json(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" })).session(&session).send().await;
        assert_eq!(done.status, 202, "notifications/initialized: {done:?}");
        session
    }
}

impl RawRequest {
    /// Sets a header, replacing any value it had.
    pub fn header(mut self, name: &str, value: &str) -> RawRequest {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("a header name");
        self.headers.insert(name, value.parse().expect("a header value"));
        self
    }

    /// Adds a header line, keeping the lines it had: a header sent on several lines.
    pub fn append(mut self, name: &str, value: &str) -> RawRequest {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("a header name");
        self.headers.append(name, value.parse().expect("a header value"));
        self
    }

    /// Sets `Mcp-Session-Id` and the protocol version a 2025-11-25 client sends with it.
    pub fn session(self, id: &str) -> RawRequest {
        self.header("mcp-session-id", id).header("mcp-protocol-version", "2025-11-25")
    }

    /// Sends, and reads the whole answer.
    pub async fn send(self) -> RawResponse {
        let resp = crate::within(20, "HTTP request", self.req.headers(self.headers).send()).await.expect("the gateway answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = crate::within(20, "HTTP body", resp.text()).await.expect("the answer's body");
        RawResponse { status, headers, body }
    }

    /// Sends, and returns the answer still streaming (for a GET stream).
    pub async fn open(self) -> reqwest::Response {
        crate::within(20, "HTTP request", self.req.headers(self.headers).send()).await.expect("the gateway answers")
    }
}

impl RawResponse {
    /// The JSON-RPC message in the body, whether sent as JSON or as the last SSE event.
    pub fn message(&self) -> Value {
        if let Ok(v) = serde_json::from_str(&self.body) {
            return v;
        }
        let last = self.body.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim).rfind(|d| !d.is_empty());
        last.and_then(|d| serde_json::from_str(d).ok()).unwrap_or_else(|| panic!("no JSON-RPC message in {self:?}"))
    }

    /// The JSON-RPC error code in the body.
    pub fn error_code(&self) -> i32 {
        let code = self.message()["error"]["code"].as_i64().unwrap_or_else(|| panic!("no JSON-RPC error in {self:?}"));
        i32::try_from(code).unwrap_or_else(|_| panic!("a JSON-RPC code out of range in {self:?}"))
    }

    /// The JSON-RPC error code in the body, if it is an error.
    pub fn code(&self) -> Option<i32> {
        self.message()["error"]["code"].as_i64().and_then(|c| i32::try_from(c).ok())
    }

    /// The JSON-RPC result in the body (`null` if there is none).
    pub fn result(&self) -> Value {
        self.message()["result"].clone()
    }

    pub fn error_message(&self) -> String {
        self.message()["error"]["message"].as_str().unwrap_or_default().to_owned()
    }
}

pub fn initialize_request(id: i64) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": { "name": "raw-http", "version": "1" }
        }
    })
}

pub fn request(id: i64, method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })
}
