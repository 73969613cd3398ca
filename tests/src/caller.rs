//! A JSON-RPC caller over plain HTTP that sends the headers a test chooses (a bearer token, a
//! subscription key) with every request, and keeps the session the gateway issues.

use serde_json::{Value, json};

use crate::raw::{Raw, RawResponse};

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

    /// The same caller, its headers and its session, at another endpoint: the same server
    /// through another replica.
    pub fn at(&self, url: &str) -> Caller {
        Caller { raw: Raw::new(url), ..self.clone() }
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
