//! The load driver: C workers, each with its own HTTP/1.1 keep-alive
//! connection and its own MCP session, calling `echo` in a closed loop.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

pub const PROTOCOL_VERSION: &str = "2025-11-25";
const SESSION_HEADER: &str = "mcp-session-id";
const PROTOCOL_HEADER: &str = "mcp-protocol-version";
const ACCEPT_BOTH: &str = "application/json, text/event-stream";

/// Where the requests go: an address and the MCP endpoint path on it.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub path: String,
    /// Sent on every request (for example a bearer token for a chain with `jwt`).
    pub headers: Vec<(String, String)>,
}

/// One measured run at one concurrency.
pub struct RunSpec {
    pub concurrency: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub request_timeout: Duration,
    pub payload_bytes: usize,
}

/// What a run measured.
pub struct RunResult {
    /// Latency of the successful calls in the measured window, microseconds.
    pub hist: Histogram<u64>,
    pub ok: u64,
    pub errors: u64,
    pub duration: Duration,
    /// A few distinct error messages, for the log.
    pub error_samples: Vec<String>,
}

impl RunResult {
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.duration.as_secs_f64()
    }
}

fn new_hist() -> Histogram<u64> {
    // 1 us .. 60 s, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// One keep-alive connection plus one MCP session on it.
struct Session {
    target: Target,
    host: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
    session_id: Option<HeaderValue>,
    /// Sent on every request after `initialize`.
    protocol: Option<HeaderValue>,
}

struct Reply {
    status: StatusCode,
    content_type: String,
    session_id: Option<HeaderValue>,
    body: Bytes,
}

impl Session {
    fn new(target: Target) -> Self {
        let host = HeaderValue::from_str(&target.addr.to_string()).expect("valid host header");
        Self { target, host, sender: None, session_id: None, protocol: None }
    }

    async fn connect(&mut self) -> anyhow::Result<()> {
        let tcp = TcpStream::connect(self.target.addr).await.with_context(|| format!("connecting to {}", self.target.addr))?;
        tcp.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    /// Drops the connection; the next request opens a new one.
    fn reset(&mut self) {
        self.sender = None;
    }

    async fn send(&mut self, method: Method, body: Option<Bytes>) -> anyhow::Result<Reply> {
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
        for (name, value) in &self.target.headers {
            req = req.header(name.as_str(), value.as_str());
        }
        let req = req.body(Full::new(body.unwrap_or_default()))?;
        let resp = match sender.send_request(req).await {
            Ok(resp) => resp,
            Err(err) => {
                self.reset();
                return Err(err.into());
            }
        };
        let (parts, body) = resp.into_parts();
        let body = match body.collect().await {
            Ok(body) => body.to_bytes(),
            Err(err) => {
                self.reset();
                return Err(err.into());
            }
        };
        let content_type = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        Ok(Reply { status: parts.status, content_type, session_id: parts.headers.get(SESSION_HEADER).cloned(), body })
    }

    /// POSTs one JSON-RPC request and returns its JSON-RPC response.
    async fn rpc(&mut self, body: Bytes) -> anyhow::Result<(Value, Option<HeaderValue>)> {
        let reply = self.send(Method::POST, Some(body)).await?;
        if reply.status != StatusCode::OK {
            bail!("HTTP {}: {}", reply.status, String::from_utf8_lossy(&reply.body[..reply.body.len().min(200)]));
        }
        let value = parse_rpc_response(&reply.content_type, &reply.body)?;
        Ok((value, reply.session_id))
    }

    /// initialize + notifications/initialized.
    async fn open(&mut self) -> anyhow::Result<()> {
        self.session_id = None;
        self.protocol = None;
        let init = json!({
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "tollgate-loadgen", "version": env!("CARGO_PKG_VERSION")}
            }
        });
        let (value, session_id) = self.rpc(Bytes::from(serde_json::to_vec(&init)?)).await.context("initialize")?;
        if let Some(err) = value.get("error") {
            bail!("initialize failed: {err}");
        }
        let version = value.pointer("/result/protocolVersion").and_then(Value::as_str).unwrap_or(PROTOCOL_VERSION);
        self.protocol = Some(HeaderValue::from_str(version)?);
        self.session_id = session_id;
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let reply = self.send(Method::POST, Some(Bytes::from(serde_json::to_vec(&note)?))).await.context("notifications/initialized")?;
        if !reply.status.is_success() {
            bail!("notifications/initialized: HTTP {}", reply.status);
        }
        Ok(())
    }

    /// DELETE the session, if the server gave one. Errors are ignored.
    async fn close(&mut self) {
        if self.session_id.is_some() {
            let _ = tokio::time::timeout(Duration::from_secs(2), self.send(Method::DELETE, None)).await;
        }
    }

    /// One `tools/call echo`; checks the text came back.
    async fn echo(&mut self, id: u64, text: &str) -> anyhow::Result<()> {
        let call = json!({
            "jsonrpc": "2.0",
            "id": id,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": text}}
        });
        let (value, _) = self.rpc(Bytes::from(serde_json::to_vec(&call)?)).await?;
        if value.get("id").and_then(Value::as_u64) != Some(id) {
            bail!("response id mismatch: {}", value.get("id").unwrap_or(&Value::Null));
        }
        if let Some(err) = value.get("error") {
            bail!("JSON-RPC error: {err}");
        }
        let result = value.get("result").ok_or_else(|| anyhow!("no result in response"))?;
        if result.get("isError").and_then(Value::as_bool) == Some(true) {
            bail!("tool error: {result}");
        }
        let echoed = result.pointer("/content/0/text").and_then(Value::as_str);
        if echoed != Some(text) {
            bail!("echo mismatch: {result}");
        }
        Ok(())
    }
}

/// Opens a session and makes one call, returning each raw exchange as
/// text (status, the headers that matter, body), for `--show-exchange`.
pub async fn show_exchange(target: &Target) -> anyhow::Result<String> {
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
    let mut out = String::new();
    let init = json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                   "clientInfo": {"name": "tollgate-loadgen", "version": env!("CARGO_PKG_VERSION")}}
    });
    let reply = s.send(Method::POST, Some(Bytes::from(serde_json::to_vec(&init)?))).await?;
    out += &describe("initialize", &reply);
    s.session_id = reply.session_id.clone();
    s.protocol = Some(HeaderValue::from_static(PROTOCOL_VERSION));
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let reply = s.send(Method::POST, Some(Bytes::from(serde_json::to_vec(&note)?))).await?;
    out += &describe("notifications/initialized", &reply);
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "echo", "arguments": {"text": "hello"}}});
    let reply = s.send(Method::POST, Some(Bytes::from(serde_json::to_vec(&call)?))).await?;
    out += &describe("tools/call echo", &reply);
    s.close().await;
    Ok(out)
}

/// Pulls the JSON-RPC response out of a body that is either
/// `application/json` or `text/event-stream` (the `data:` line that carries
/// a message with `result` or `error`).
pub fn parse_rpc_response(content_type: &str, body: &[u8]) -> anyhow::Result<Value> {
    if content_type.starts_with("application/json") {
        return serde_json::from_slice(body).context("parsing JSON body");
    }
    if content_type.starts_with("text/event-stream") {
        let text = std::str::from_utf8(body).context("SSE body is not UTF-8")?;
        // Events are separated by blank lines; one event's data may span
        // several `data:` lines, joined with newlines.
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

struct WorkerOutcome {
    hist: Histogram<u64>,
    ok: u64,
    errors: u64,
    error_samples: Vec<String>,
}

fn note_error(samples: &mut Vec<String>, err: &anyhow::Error) {
    let msg = format!("{err:#}");
    if samples.len() < 5 && !samples.contains(&msg) {
        samples.push(msg);
    }
}

/// Opens `concurrency` sessions, warms up, then measures for `duration`.
pub async fn run(target: &Target, spec: &RunSpec) -> anyhow::Result<RunResult> {
    // Open every session before the clock starts.
    let mut sessions = Vec::with_capacity(spec.concurrency);
    let mut opening = tokio::task::JoinSet::new();
    for _ in 0..spec.concurrency {
        let target = target.clone();
        let timeout = spec.request_timeout;
        opening.spawn(async move {
            let mut s = Session::new(target);
            tokio::time::timeout(timeout * 2, s.open()).await.map_err(|_| anyhow!("session open timed out"))??;
            anyhow::Ok(s)
        });
    }
    while let Some(joined) = opening.join_next().await {
        sessions.push(joined?.context("opening an MCP session")?);
    }

    let start = Instant::now();
    let measure_from = start + spec.warmup;
    let end = measure_from + spec.duration;
    let padding = "x".repeat(spec.payload_bytes);

    let mut workers = tokio::task::JoinSet::new();
    for (w, mut session) in sessions.into_iter().enumerate() {
        let padding = padding.clone();
        let timeout = spec.request_timeout;
        workers.spawn(async move {
            let mut out = WorkerOutcome { hist: new_hist(), ok: 0, errors: 0, error_samples: Vec::new() };
            let mut id: u64 = 0;
            let mut text = String::with_capacity(padding.len() + 32);
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                id += 1;
                text.clear();
                use std::fmt::Write;
                let _ = write!(text, "w{w}-{id}-{padding}");
                let result = match tokio::time::timeout(timeout, session.echo(id, &text)).await {
                    Ok(r) => r,
                    Err(_) => {
                        session.reset();
                        Err(anyhow!("request timed out after {timeout:?}"))
                    }
                };
                let t1 = Instant::now();
                if t0 < measure_from || t1 > end {
                    // Warm-up, or straddling the end of the window.
                    if result.is_err() && t0 >= measure_from {
                        out.errors += 1;
                    }
                    continue;
                }
                match result {
                    Ok(()) => {
                        let us = (t1 - t0).as_micros().max(1) as u64;
                        out.hist.saturating_record(us);
                        out.ok += 1;
                    }
                    Err(err) => {
                        out.errors += 1;
                        note_error(&mut out.error_samples, &err);
                        // A lost session (e.g. 404 after a restart) is
                        // reopened; a broken connection reconnects on its own.
                        if format!("{err}").starts_with("HTTP 404") {
                            let _ = session.open().await;
                        }
                    }
                }
            }
            session.close().await;
            out
        });
    }

    let mut result = RunResult { hist: new_hist(), ok: 0, errors: 0, duration: spec.duration, error_samples: Vec::new() };
    while let Some(joined) = workers.join_next().await {
        let out = joined?;
        result.hist.add(&out.hist)?;
        result.ok += out.ok;
        result.errors += out.errors;
        for s in out.error_samples {
            if result.error_samples.len() < 5 && !result.error_samples.contains(&s) {
                result.error_samples.push(s);
            }
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::parse_rpc_response;

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
}
