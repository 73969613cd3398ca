//! An OpenAPI backend: a REST API served by the gateway itself as an MCP server, one tool per
//! chosen operation.
//!
//! The document is read and its tools built once, at config load ([`Catalog::load`]); sessions
//! share the catalog and one HTTP client. Each session's upstream answers `initialize`, `ping`,
//! `tools/list` and `tools/call` in process, and delivers answers through the session's inbox
//! like any other backend, so policies, sessions and transports treat it the same.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use super::{Client, Inbox, http_client, static_headers};
use crate::config::OpenApiConfig;
use crate::config::openapi::{Catalog, Tool, response};
use crate::mcp::error::{BackendError, GatewayError, code};
use crate::mcp::headers::SUPPORTED_VERSIONS;
use crate::mcp::jsonrpc::{Id, Kind, Message};

/// One configured OpenAPI server, shared by all its sessions.
pub struct OpenApiBackend {
    server: Arc<str>,
    catalog: Arc<Catalog>,
    client: reqwest::Client,
    base: String,
    timeout: Duration,
    max_body: usize,
}

impl OpenApiBackend {
    /// `deadline` is how long the gateway waits for any answer of this server; a call's own
    /// timeout defaults to a little less, so the model gets a tool error rather than a bare timeout.
    pub fn new(server: &str, cfg: &OpenApiConfig, http: &Client, deadline: Duration) -> Result<OpenApiBackend, GatewayError> {
        let limits = &http.limits;
        let catalog = match cfg.loaded.get() {
            Some(c) => c,
            None => Arc::new(
                Catalog::load(cfg, limits.connect_timeout(), &http.tls)
                    .map_err(|p| GatewayError::BadRequest(p.into_iter().map(|p| p.message).collect::<Vec<_>>().join("; ")))?,
            ),
        };
        let base = catalog.base_url.trim_end_matches('/').to_owned();
        let timeout = cfg.timeout_ms.map(Duration::from_millis).unwrap_or_else(|| deadline.saturating_sub((deadline / 10).min(Duration::from_secs(1))));
        let client = http_client(http, static_headers(&cfg.headers)?, false)?;
        Ok(OpenApiBackend { server: server.into(), catalog, client, base, timeout, max_body: limits.max_body_bytes })
    }

    pub fn connect(self: &Arc<Self>, inbox: Inbox) -> OpenApiUpstream {
        OpenApiUpstream { backend: self.clone(), inbox, calls: Arc::new(Mutex::new(HashMap::new())) }
    }

    /// Any HTTP answer from the API's base URL means it is up.
    pub async fn probe(&self) -> Result<(), BackendError> {
        self.client.get(&self.base).timeout(Duration::from_secs(2)).send().await.map(|_| ()).map_err(|e| super::describe(&e, Duration::from_secs(2)))
    }

    /// Makes the REST call for one tool and maps its answer; failures become results the model can read.
    async fn call(&self, tool: &Tool, args: &serde_json::Map<String, Value>) -> Value {
        let built = match tool.op.build(args) {
            Ok(b) => b,
            Err(e) => return response::error(format!("Invalid arguments: {e}")),
        };
        let url = format!("{}{}", self.base, built.target);
        let mut req = self.client.request(tool.op.method.clone(), &url).timeout(self.timeout).header(reqwest::header::ACCEPT, &tool.op.accept);
        for (k, v) in &built.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some((ct, body)) = built.body {
            req = req.header(reqwest::header::CONTENT_TYPE, ct).body(body);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return response::error(self.unreachable(&e)),
        };
        let status = resp.status();
        let content_type = resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(c) if body.len() + c.len() > self.max_body => {
                    return response::error(format!("The API's answer (HTTP {}) is larger than {} bytes", status.as_u16(), self.max_body));
                }
                Ok(c) => body.extend_from_slice(&c),
                Err(e) => return response::error(self.unreachable(&e)),
            }
        }
        response::result(&response::Answer { status, content_type: content_type.as_deref(), body: &body }, tool.structured)
    }

    fn unreachable(&self, e: &reqwest::Error) -> String {
        let why = match super::describe(e, self.timeout) {
            BackendError::Timeout(t) => format!("did not answer within {} ms", t.as_millis()),
            BackendError::Unreachable(m) => format!("is unreachable: {m}"),
            other => other.to_string(),
        };
        format!("The REST API of server '{}' at {} {why}", self.server, self.base)
    }
}

/// One client session's view of the API: calls in flight, so they can be cancelled.
pub struct OpenApiUpstream {
    backend: Arc<OpenApiBackend>,
    inbox: Inbox,
    calls: Arc<Mutex<HashMap<Id, tokio::task::AbortHandle>>>,
}

impl OpenApiUpstream {
    /// Answers the message in process; a tool call runs on its own task so others are not held up.
    pub async fn send(&self, msg: &Message) -> Result<(), BackendError> {
        match msg.kind {
            Kind::Response => Ok(()), // the API never asks the client anything
            Kind::Notification => {
                if msg.method() == Some("notifications/cancelled") {
                    let id = msg.params().and_then(|p| p.get("requestId")).and_then(Id::from_value);
                    if let Some(task) = id.and_then(|id| self.calls.lock().expect("calls lock").remove(&id)) {
                        task.abort();
                    }
                }
                Ok(())
            }
            Kind::Request => {
                let id = msg.id.clone().expect("a request has an id");
                let answer = match msg.method().unwrap_or_default() {
                    "initialize" => Message::result(id.clone(), self.initialize(msg)),
                    "ping" => Message::result(id.clone(), json!({})),
                    "tools/list" => Message::result(id.clone(), self.backend.catalog.listing().clone()),
                    "tools/call" => return self.start_call(id, msg),
                    other => Message::error(Some(id.clone()), code::METHOD_NOT_FOUND, &format!("Method not found: {other}"), None),
                };
                self.inbox.deliver(answer, Some(id)).await;
                Ok(())
            }
        }
    }

    fn initialize(&self, msg: &Message) -> Value {
        let asked = msg.params().and_then(|p| p.get("protocolVersion")).and_then(Value::as_str);
        let version = asked.filter(|v| SUPPORTED_VERSIONS.contains(v)).unwrap_or(SUPPORTED_VERSIONS[0]);
        let c = &self.backend.catalog;
        let mut result = json!({
            "protocolVersion": version,
            "capabilities": { "tools": { "listChanged": false } },
            "serverInfo": { "name": &*self.backend.server, "title": c.title, "version": c.version },
        });
        if let Some(i) = &c.instructions {
            result["instructions"] = i.chars().take(4_000).collect::<String>().into();
        }
        result
    }

    fn start_call(&self, id: Id, msg: &Message) -> Result<(), BackendError> {
        let params = msg.params().cloned().unwrap_or(Value::Null);
        let name = params.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
        let backend = self.backend.clone();
        let inbox = self.inbox.clone();
        let calls = self.calls.clone();
        let task_id = id.clone();
        // Held while spawning, so a call that ends at once cannot remove itself before it is recorded.
        let mut running = self.calls.lock().expect("calls lock");
        let task = tokio::spawn(async move {
            let answer = match (backend.catalog.tool(&name), params.get("arguments")) {
                (None, _) => Message::error(Some(task_id.clone()), code::INVALID_PARAMS, &format!("Unknown tool: '{name}'"), None),
                (Some(_), Some(a)) if !a.is_object() && !a.is_null() => {
                    Message::error(Some(task_id.clone()), code::INVALID_PARAMS, "Invalid params: `arguments` must be an object", None)
                }
                (Some(tool), args) => {
                    let empty = serde_json::Map::new();
                    let args = args.and_then(Value::as_object).unwrap_or(&empty);
                    Message::result(task_id.clone(), backend.call(tool, args).await)
                }
            };
            calls.lock().expect("calls lock").remove(&task_id);
            inbox.deliver(answer, Some(task_id)).await;
        });
        running.insert(id, task.abort_handle());
        Ok(())
    }

    /// Ends the session: calls still running are abandoned.
    pub fn close(&self) {
        for (_, task) in self.calls.lock().expect("calls lock").drain() {
            task.abort();
        }
    }
}
