//! `POST /api/playground/call`: the console's playground calls a tool through the gateway's
//! own client listener, as an MCP client would (`initialize`, `tools/call`, then the session
//! ends), so the call meets the same admission, product check and chain as any other. Each
//! request names a tap ([`crate::telemetry::tap`]), so the answer can say what every policy
//! step decided.
//!
//! The requests come from this host: a policy that filters by address sees a loopback
//! address (or the listener's own).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use serde_json::{Map, Value, json};

use super::Shared;
use super::api_error::ApiError;
use crate::mcp::headers::SUPPORTED_VERSIONS;
use crate::telemetry::tap::{HEADER as TAP, Tap, Tapped};

/// How long to wait for a tapped exchange's report once its answer arrived. An exchange
/// reports before its answer is written, so the report is already waiting then; the bound
/// only matters for a request refused before it became an exchange (a missing subscription
/// key), which reports nothing.
const REPORT_WAIT: Duration = Duration::from_millis(250);

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Call {
    /// The server, as in `/{server}/mcp`.
    server: String,
    /// A version of it, as in `/{server}/{version}/mcp`; the routing picks one when absent.
    #[serde(default)]
    version: Option<String>,
    /// The tool to call.
    tool: String,
    /// Its arguments.
    #[serde(default)]
    arguments: Map<String, Value>,
    /// Sent in the subscription key header the gateway reads.
    #[serde(default)]
    subscription_key: Option<String>,
    /// Sent as `Authorization: Bearer`.
    #[serde(default)]
    bearer_token: Option<String>,
}

/// What became of the call.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Outcome {
    /// The HTTP status of the last request made: `tools/call`'s, or `initialize`'s when it
    /// was refused.
    status: u16,
    /// The last request's round trip, in milliseconds.
    duration_ms: f64,
    /// The JSON-RPC answer the client got (a result, or an error with its code).
    response: Value,
    /// Each exchange (initialize, tools/call) as the gateway recorded it, with its policy steps.
    steps: Vec<Step>,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Step {
    #[serde(flatten)]
    tapped: Tapped,
}

/// The tools a caller with this key and token is shown, listed through the client listener.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Listing {
    /// The server, as in `/{server}/mcp`.
    server: String,
    /// A version of it, as in `/{server}/{version}/mcp`; the routing picks one when absent.
    #[serde(default)]
    version: Option<String>,
    /// Sent in the subscription key header the gateway reads.
    #[serde(default)]
    subscription_key: Option<String>,
    /// Sent as `Authorization: Bearer`.
    #[serde(default)]
    bearer_token: Option<String>,
}

/// What the playground asks in the session it opens.
enum Ask {
    Call {
        tool: String,
        arguments: Map<String, Value>,
    },
    /// `tools/list`, every page.
    List,
}

pub async fn call(State(m): State<Shared>, body: Result<Json<Call>, axum::extract::rejection::JsonRejection>) -> Result<Json<Outcome>, ApiError> {
    let Json(c) = body.map_err(|e| ApiError::Invalid(e.body_text()))?;
    let who = Who { server: c.server, version: c.version, key: c.subscription_key, token: c.bearer_token };
    run(&m, &who, Ask::Call { tool: c.tool, arguments: c.arguments }).await.map(Json)
}

pub async fn tools(State(m): State<Shared>, body: Result<Json<Listing>, axum::extract::rejection::JsonRejection>) -> Result<Json<Outcome>, ApiError> {
    let Json(l) = body.map_err(|e| ApiError::Invalid(e.body_text()))?;
    let who = Who { server: l.server, version: l.version, key: l.subscription_key, token: l.bearer_token };
    run(&m, &who, Ask::List).await.map(Json)
}

/// The caller the playground speaks as.
struct Who {
    server: String,
    version: Option<String>,
    key: Option<String>,
    token: Option<String>,
}

/// Opens a session on the client listener as `who`, asks, and ends the session.
async fn run(m: &Shared, who: &Who, ask: Ask) -> Result<Outcome, ApiError> {
    let gw = &m.gateway;
    super::named_server(m, &who.server)?;
    let tls = gw.config.tls.is_some();
    let base = format!("{}://{}", if tls { "https" } else { "http" }, reachable(m.client));
    let path = match &who.version {
        Some(v) => format!("/{}/{v}/mcp", who.server),
        None => format!("/{}/mcp", who.server),
    };
    // The gateway's own listener: with TLS, its certificate names the public host, not
    // the loopback address this connects to.
    let http = reqwest::Client::builder()
        .no_proxy()
        .danger_accept_invalid_certs(tls)
        .timeout(gw.config.limits.request_timeout() + Duration::from_secs(5))
        .build()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut tap = gw.telemetry.taps.open();
    let client = Client { http, url: format!("{base}{path}"), key_header: gw.config.subscription_key.header.clone(), who };
    let mut steps = Vec::new();

    let init = json!({
        "protocolVersion": SUPPORTED_VERSIONS[0],
        "capabilities": {},
        "clientInfo": { "name": "tollgate-playground", "version": env!("CARGO_PKG_VERSION") },
    });
    let first = client.post(&tap, None, &json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init })).await?;
    steps.extend(reported(&mut tap).await.map(|tapped| Step { tapped }));
    let Some(session) = first.session.filter(|_| first.response.get("result").is_some()) else {
        return Ok(Outcome { status: first.status, duration_ms: first.ms, response: first.response, steps });
    };
    client.post(&tap, Some(&session), &json!({ "jsonrpc": "2.0", "method": "notifications/initialized" })).await?;
    // The notification's own report is not one the playground shows.
    let _ = reported(&mut tap).await;
    let answer = match ask {
        Ask::Call { tool, arguments } => {
            let params = json!({ "name": tool, "arguments": arguments });
            client.ask(&mut tap, &session, 2, "tools/call", params, &mut steps).await
        }
        Ask::List => list(&client, &mut tap, &session, &mut steps).await,
    };
    client.end(&session).await;
    let answer = answer?;
    Ok(Outcome { status: answer.status, duration_ms: answer.ms, response: answer.response, steps })
}

/// Pages of `tools/list` followed at most.
const MAX_PAGES: i64 = 50;

/// Every page of `tools/list`, as one answer holding all the tools; an error answer as it came.
async fn list(client: &Client<'_>, tap: &mut Tap, session: &str, steps: &mut Vec<Step>) -> Result<Answer, ApiError> {
    let mut tools = Vec::new();
    let mut cursor: Option<Value> = None;
    let mut ms = 0.0;
    for page in 0..MAX_PAGES {
        let params = cursor.as_ref().map_or_else(|| json!({}), |c| json!({ "cursor": c }));
        let mut a = client.ask(tap, session, 2 + page, "tools/list", params, steps).await?;
        ms += a.ms;
        let Some(result) = a.response.get("result") else { return Ok(a) };
        tools.extend(result.get("tools").and_then(Value::as_array).cloned().unwrap_or_default());
        cursor = result.get("nextCursor").filter(|c| !c.is_null()).cloned();
        if cursor.is_none() {
            a.response = json!({ "jsonrpc": "2.0", "id": a.response["id"], "result": { "tools": tools } });
            a.ms = (ms * 1e3).round() / 1e3;
            return Ok(a);
        }
    }
    Err(ApiError::Unavailable(format!("the tool list did not end within {MAX_PAGES} pages")))
}

/// Where to reach a listener bound to `addr` from this host.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::from(([127, 0, 0, 1], addr.port())),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port())),
        _ => addr,
    }
}

/// The next tapped exchange, if it reports within [`REPORT_WAIT`].
async fn reported(tap: &mut Tap) -> Option<Tapped> {
    tap.next(REPORT_WAIT).await
}

struct Client<'a> {
    http: reqwest::Client,
    url: String,
    key_header: String,
    who: &'a Who,
}

/// One request's answer as the client saw it.
struct Answer {
    status: u16,
    ms: f64,
    session: Option<String>,
    /// The JSON-RPC response (an empty object for an accepted notification).
    response: Value,
}

impl Client<'_> {
    async fn post(&self, tap: &Tap, session: Option<&str>, body: &Value) -> Result<Answer, ApiError> {
        let mut req = self.http.post(&self.url).header("accept", "application/json, text/event-stream").header(TAP, tap.id.as_str()).json(body);
        if let Some(s) = session {
            req = req.header(crate::mcp::headers::SESSION_ID, s).header(crate::mcp::headers::PROTOCOL_VERSION, SUPPORTED_VERSIONS[0]);
        }
        if let Some(k) = self.who.key.as_deref().filter(|k| !k.is_empty()) {
            req = req.header(self.key_header.as_str(), k);
        }
        if let Some(t) = self.who.token.as_deref().filter(|t| !t.is_empty()) {
            req = req.bearer_auth(t);
        }
        let started = Instant::now();
        let resp = req.send().await.map_err(|e| ApiError::Unavailable(format!("the gateway's client listener did not answer: {e}")))?;
        let status = resp.status().as_u16();
        let session = resp.headers().get(crate::mcp::headers::SESSION_ID).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let sse = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with("text/event-stream"));
        let id = body.get("id").cloned();
        let response = if sse { from_stream(resp, id.as_ref()).await? } else { from_body(resp).await };
        Ok(Answer { status, ms: (started.elapsed().as_secs_f64() * 1e6).round() / 1e3, session, response })
    }

    /// One request in the session; its exchange's report joins `steps` (not for a 5xx, which
    /// may have come from before the exchange).
    async fn ask(&self, tap: &mut Tap, session: &str, id: i64, method: &str, params: Value, steps: &mut Vec<Step>) -> Result<Answer, ApiError> {
        let a = self.post(tap, Some(session), &json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })).await?;
        if a.status < 500 {
            steps.extend(reported(tap).await.map(|tapped| Step { tapped }));
        }
        Ok(a)
    }

    /// Ends the session, as a client that is done would.
    async fn end(&self, session: &str) {
        let _ = self
            .http
            .delete(&self.url)
            .header(crate::mcp::headers::SESSION_ID, session)
            .header(crate::mcp::headers::PROTOCOL_VERSION, SUPPORTED_VERSIONS[0])
            .send()
            .await;
    }
}

/// A JSON answer (or none, for a notification).
async fn from_body(resp: reqwest::Response) -> Value {
    let bytes = resp.bytes().await.unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({}))
}

/// The answer with id `id` from an SSE stream, read until it arrives.
async fn from_stream(mut resp: reqwest::Response, id: Option<&Value>) -> Result<Value, ApiError> {
    let mut decoder = crate::mcp::sse::Decoder::default();
    let mut events = Vec::new();
    loop {
        let chunk = resp.chunk().await.map_err(|e| ApiError::Unavailable(format!("the answer's stream broke: {e}")))?;
        let Some(chunk) = chunk else {
            return Err(ApiError::Unavailable("the answer's stream ended without the answer".into()));
        };
        decoder.feed(&chunk, &mut events).map_err(|e| ApiError::Unavailable(e.to_string()))?;
        for e in events.drain(..) {
            if let Ok(msg) = serde_json::from_str::<Value>(&e.data)
                && msg.get("id") == id
                && (msg.get("result").is_some() || msg.get("error").is_some())
            {
                return Ok(msg);
            }
        }
    }
}
