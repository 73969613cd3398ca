//! The MCP client the driver and the sessions mode share: one HTTP/1.1 keep-alive connection
//! with one MCP session on it, answers read as JSON or as an event stream, and every failure
//! sorted by kind, so a report can say what went wrong rather than only how often.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

pub const PROTOCOL_VERSION: &str = "2025-11-25";
pub const SESSION_HEADER: &str = "mcp-session-id";
pub const PROTOCOL_HEADER: &str = "mcp-protocol-version";
const ACCEPT_BOTH: &str = "application/json, text/event-stream";

/// Where requests go: an address, the MCP endpoint path on it, and headers for every request.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub path: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// What went wrong with a call, one count each in the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// An HTTP status other than 200 (202 for notifications).
    Http,
    /// Could not connect, or the connection broke mid-exchange.
    Connection,
    /// A JSON-RPC `error`, or a tool result with `isError`.
    JsonRpc,
    /// An answer that is not the one asked for: wrong id, wrong text, unreadable body.
    Wrong,
    /// No answer within `--request-timeout`.
    Timeout,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 5] = [ErrorKind::Http, ErrorKind::Connection, ErrorKind::JsonRpc, ErrorKind::Wrong, ErrorKind::Timeout];

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Http => "HTTP",
            ErrorKind::Connection => "connection",
            ErrorKind::JsonRpc => "JSON-RPC",
            ErrorKind::Wrong => "wrong answer",
            ErrorKind::Timeout => "timeout",
        }
    }
}

#[derive(Debug)]
pub struct CallError {
    pub kind: ErrorKind,
    pub message: String,
}

impl CallError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        CallError { kind, message: message.into() }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.message)
    }
}

impl std::error::Error for CallError {}

/// Errors counted by kind.
#[derive(Clone, Copy, Debug, Default)]
pub struct ErrorCounts([u64; 5]);

impl ErrorCounts {
    pub fn add(&mut self, kind: ErrorKind) {
        self.0[kind as usize] += 1;
    }

    pub fn merge(&mut self, other: &ErrorCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// `HTTP 2, timeout 1`: the kinds that occurred.
    pub fn describe(&self) -> String {
        ErrorKind::ALL.iter().filter(|k| self.0[**k as usize] > 0).map(|k| format!("{} {}", k.name(), self.0[*k as usize])).collect::<Vec<_>>().join(", ")
    }
}

/// A few distinct error messages, for the log and the report.
#[derive(Default, Debug, Clone)]
pub struct ErrorSamples(pub Vec<String>);

impl ErrorSamples {
    pub fn note(&mut self, message: String) {
        if self.0.len() < 5 && !self.0.contains(&message) {
            self.0.push(message);
        }
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub session_id: Option<HeaderValue>,
    pub body: Bytes,
}

/// One keep-alive connection plus one MCP session on it.
pub struct Session {
    target: Target,
    host: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
    session_id: Option<HeaderValue>,
    /// Sent on every request after `initialize`.
    protocol: Option<HeaderValue>,
    /// `authorization` for the next requests (a bearer token), if any.
    pub bearer: Option<HeaderValue>,
}

impl Session {
    pub fn new(target: Target) -> Self {
        let host = HeaderValue::from_str(&target.addr.to_string()).expect("valid host header");
        Self { target, host, sender: None, session_id: None, protocol: None, bearer: None }
    }

    pub fn session_id(&self) -> Option<&HeaderValue> {
        self.session_id.as_ref()
    }

    pub fn protocol(&self) -> Option<&HeaderValue> {
        self.protocol.as_ref()
    }

    /// Takes over a session opened elsewhere.
    pub fn adopt(&mut self, session_id: Option<HeaderValue>, protocol: Option<HeaderValue>) {
        self.session_id = session_id;
        self.protocol = protocol;
    }

    async fn connect(&mut self) -> Result<(), CallError> {
        let conn_err = |e: &dyn fmt::Display| CallError::new(ErrorKind::Connection, format!("connecting to {}: {e}", self.target.addr));
        let tcp = TcpStream::connect(self.target.addr).await.map_err(|e| conn_err(&e))?;
        tcp.set_nodelay(true).map_err(|e| conn_err(&e))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.map_err(|e| conn_err(&e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    /// Drops the connection; the next request opens a new one.
    pub fn reset(&mut self) {
        self.sender = None;
    }

    pub async fn send(&mut self, method: Method, body: Option<Bytes>) -> Result<Reply, CallError> {
        let ready = match self.sender.as_mut() {
            Some(sender) => sender.ready().await.is_ok(),
            None => false,
        };
        if !ready {
            self.connect().await?;
        }
        let sender = self.sender.as_mut().expect("connected");
        let mut req = Request::builder().method(method).uri(self.target.path.as_str()).header(HOST, self.host.clone()).header(ACCEPT, ACCEPT_BOTH);
        if body.is_some() {
            req = req.header(CONTENT_TYPE, "application/json");
        }
        if let Some(id) = &self.session_id {
            req = req.header(SESSION_HEADER, id.clone());
        }
        if let Some(version) = &self.protocol {
            req = req.header(PROTOCOL_HEADER, version.clone());
        }
        if let Some(bearer) = &self.bearer {
            req = req.header(AUTHORIZATION, bearer.clone());
        }
        for (name, value) in &self.target.headers {
            req = req.header(name, value);
        }
        let req = req.body(Full::new(body.unwrap_or_default())).map_err(|e| CallError::new(ErrorKind::Wrong, format!("building the request: {e}")))?;
        let resp = match sender.send_request(req).await {
            Ok(resp) => resp,
            Err(err) => {
                self.reset();
                return Err(CallError::new(ErrorKind::Connection, format!("sending: {err}")));
            }
        };
        let (parts, body) = resp.into_parts();
        let body = match body.collect().await {
            Ok(body) => body.to_bytes(),
            Err(err) => {
                self.reset();
                return Err(CallError::new(ErrorKind::Connection, format!("reading the body: {err}")));
            }
        };
        let content_type = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        Ok(Reply { status: parts.status, content_type, session_id: parts.headers.get(SESSION_HEADER).cloned(), body })
    }

    /// POSTs one JSON-RPC request and returns its JSON-RPC response.
    async fn rpc(&mut self, body: &Value) -> Result<(Value, Option<HeaderValue>), CallError> {
        let reply = self.send(Method::POST, Some(Bytes::from(body.to_string()))).await?;
        if reply.status != StatusCode::OK {
            let text = String::from_utf8_lossy(&reply.body[..reply.body.len().min(200)]).into_owned();
            return Err(CallError::new(ErrorKind::Http, format!("HTTP {}: {text}", reply.status)));
        }
        let value = parse_rpc_response(&reply.content_type, &reply.body).map_err(|e| CallError::new(ErrorKind::Wrong, format!("{e:#}")))?;
        Ok((value, reply.session_id))
    }

    /// `initialize`, then `notifications/initialized`.
    pub async fn open(&mut self) -> Result<(), CallError> {
        self.session_id = None;
        self.protocol = None;
        let (value, session_id) = self.rpc(&initialize_request()).await.map_err(|e| CallError::new(e.kind, format!("initialize: {}", e.message)))?;
        if let Some(err) = value.get("error") {
            return Err(CallError::new(ErrorKind::JsonRpc, format!("initialize: {err}")));
        }
        let version = value.pointer("/result/protocolVersion").and_then(Value::as_str).unwrap_or(PROTOCOL_VERSION);
        self.protocol = Some(HeaderValue::from_str(version).map_err(|_| CallError::new(ErrorKind::Wrong, format!("protocol version {version:?}")))?);
        self.session_id = session_id;
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let reply = self.send(Method::POST, Some(Bytes::from(note.to_string()))).await?;
        if !reply.status.is_success() {
            return Err(CallError::new(ErrorKind::Http, format!("notifications/initialized: HTTP {}", reply.status)));
        }
        Ok(())
    }

    /// DELETE the session, if the server gave one. Errors are ignored.
    pub async fn close(&mut self) {
        if self.session_id.is_some() {
            let _ = tokio::time::timeout(Duration::from_secs(2), self.send(Method::DELETE, None)).await;
        }
    }

    /// One `tools/call echo`; checks the text came back.
    pub async fn echo(&mut self, id: u64, text: &str) -> Result<(), CallError> {
        let call = json!({
            "jsonrpc": "2.0",
            "id": id,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": text}}
        });
        let (value, _) = self.rpc(&call).await?;
        if let Some(err) = value.get("error") {
            return Err(CallError::new(ErrorKind::JsonRpc, err.to_string()));
        }
        if value.get("id").and_then(Value::as_u64) != Some(id) {
            return Err(CallError::new(ErrorKind::Wrong, format!("response id {} for request {id}", value.get("id").unwrap_or(&Value::Null))));
        }
        let Some(result) = value.get("result") else {
            return Err(CallError::new(ErrorKind::Wrong, "no result in the response"));
        };
        if result.get("isError").and_then(Value::as_bool) == Some(true) {
            return Err(CallError::new(ErrorKind::JsonRpc, format!("tool error: {result}")));
        }
        if result.pointer("/content/0/text").and_then(Value::as_str) != Some(text) {
            let got: String = result.to_string().chars().take(200).collect();
            return Err(CallError::new(ErrorKind::Wrong, format!("echo mismatch: {got}")));
        }
        Ok(())
    }
}

fn initialize_request() -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "tollgate-loadgen", "version": env!("CARGO_PKG_VERSION")}
        }
    })
}

/// Opens a session and makes one call, returning each raw exchange as text (status, the
/// headers that matter, body), for `--show-exchange`.
pub async fn show_exchange(target: &Target, bearer: Option<HeaderValue>) -> anyhow::Result<String> {
    fn describe(what: &str, reply: &Reply) -> String {
        format!(
            "--> {what}\n<-- {} content-type: {:?} mcp-session-id: {:?}\n{}\n",
            reply.status,
            reply.content_type,
            reply.session_id,
            String::from_utf8_lossy(&reply.body).trim_end()
        )
    }
    let mut s = Session::new(target.clone());
    s.bearer = bearer;
    let mut out = String::new();
    let reply = s.send(Method::POST, Some(Bytes::from(initialize_request().to_string()))).await?;
    out += &describe("initialize", &reply);
    s.session_id = reply.session_id.clone();
    s.protocol = Some(HeaderValue::from_static(PROTOCOL_VERSION));
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let reply = s.send(Method::POST, Some(Bytes::from(note.to_string()))).await?;
    out += &describe("notifications/initialized", &reply);
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "hello"}}});
    let reply = s.send(Method::POST, Some(Bytes::from(call.to_string()))).await?;
    out += &describe("tools/call echo", &reply);
    s.close().await;
    Ok(out)
}

/// Pulls the JSON-RPC response out of a body that is either `application/json` or
/// `text/event-stream` (the `data:` of the event that carries `result` or `error`).
pub fn parse_rpc_response(content_type: &str, body: &[u8]) -> anyhow::Result<Value> {
    use anyhow::{Context, bail};
    if content_type.starts_with("application/json") {
        return serde_json::from_slice(body).context("parsing JSON body");
    }
    if content_type.starts_with("text/event-stream") {
        let text = std::str::from_utf8(body).context("SSE body is not UTF-8")?;
        // Events are separated by blank lines; one event's data may span several `data:`
        // lines, joined with newlines.
        let mut data = String::new();
        let flush = |data: &mut String| -> Option<Value> {
            if data.trim().is_empty() {
                data.clear();
                return None;
            }
            let parsed = serde_json::from_str::<Value>(data).ok();
            data.clear();
            parsed.filter(|v| v.get("result").is_some() || v.get("error").is_some())
        };
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                if let Some(v) = flush(&mut data) {
                    return Ok(v);
                }
            } else if let Some(rest) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
            }
        }
        if let Some(v) = flush(&mut data) {
            return Ok(v);
        }
        bail!("no JSON-RPC response in the event stream");
    }
    bail!("unexpected content-type {content_type:?}")
}

/// Parses `NAME: VALUE` (from `--gateway-header`).
pub fn parse_header(h: &str) -> anyhow::Result<(HeaderName, HeaderValue)> {
    let (name, value) = h.split_once(':').ok_or_else(|| anyhow::anyhow!("--gateway-header wants NAME: VALUE, got {h:?}"))?;
    Ok((HeaderName::from_bytes(name.trim().as_bytes())?, HeaderValue::from_str(value.trim())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_body() {
        let v = parse_rpc_response("application/json", br#"{"jsonrpc":"2.0","id":1,"result":{}}"#).unwrap();
        assert_eq!(v["id"], 1);
    }

    #[test]
    fn sse_body_skips_priming_and_notifications() {
        let body = "id: 0\nretry: 3000\ndata: \n\n\
                    data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n\
                    event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\r\ndata: \"result\":{}}\r\n\r\n";
        let v = parse_rpc_response("text/event-stream", body.as_bytes()).unwrap();
        assert_eq!(v["id"], 7);
    }

    #[test]
    fn sse_body_without_trailing_blank_line() {
        let body = "data: {\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-1}}";
        let v = parse_rpc_response("text/event-stream", body.as_bytes()).unwrap();
        assert_eq!(v["id"], 3);
    }

    #[test]
    fn counts_errors_by_kind() {
        let mut c = ErrorCounts::default();
        c.add(ErrorKind::Http);
        c.add(ErrorKind::Http);
        c.add(ErrorKind::Timeout);
        assert_eq!(c.total(), 3);
        assert_eq!(c.describe(), "HTTP 2, timeout 1");
    }
}
