//! One client message as operators see it: its span, its metrics, its access log line.
//!
//! The transport starts an [`Exchange`] for each client request or notification and runs the
//! rest of the way inside [`Exchange::scope`]; layers further down reach it with [`current`]
//! instead of carrying it in their signatures. A request's answer arrives on another task,
//! so the session keeps the exchange with the request it waits for. The exchange reports
//! exactly once: when it is answered or fails, or, if neither happened, when the last handle
//! goes (a cancelled request).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use serde_json::{Map, Value, json};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::Telemetry;
use super::metrics::{PolicyLabels, PolicyTimeLabels, ReasonLabels, RequestLabels, is_backend_error, is_denial, method_label, outcome};
use super::trace::{self, TARGET};
use crate::config::{LogLevel, PayloadLog};
use crate::mcp::error::GatewayError;
use crate::mcp::jsonrpc::{Kind, Message};
use tollgate_vocabulary::attr;

#[derive(Clone)]
pub struct Exchange(Arc<Inner>);

struct Inner {
    tele: Arc<Telemetry>,
    started: Instant,
    at: SystemTime,
    span: tracing::Span,
    server: String,
    version: String,
    method: String,
    /// The tool or prompt named, if any.
    target: Option<String>,
    notification: bool,
    payload: Option<PayloadLog>,
    /// The playground's tap this exchange reports to, when its request named an open one.
    tap: Option<tokio::sync::mpsc::UnboundedSender<super::tap::Tapped>>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Fields for the access log, in the order they were learned.
    log: Map<String, Value>,
    policies: Vec<Value>,
    backend: Option<(Instant, tracing::Span)>,
    backend_ms: Option<f64>,
    done: bool,
}

/// What the transport knows of a client message when it arrives.
pub struct Arrival<'a> {
    pub server: &'a str,
    /// The server version serving it, when the server has versions.
    pub version: Option<&'a str>,
    pub payload: Option<&'a PayloadLog>,
    pub msg: &'a Message,
    pub headers: &'a hyper::HeaderMap,
    pub peer: Option<SocketAddr>,
    /// The client's address through the trusted proxies (the peer when there are none).
    pub client_ip: Option<std::net::IpAddr>,
    pub session: Option<&'a str>,
    pub protocol: Option<&'a str>,
    /// `clientInfo` of the session's `initialize` (name, version).
    pub client: Option<(String, String)>,
    /// `streamable-http`, `sse` or `stateless-http`.
    pub transport: &'static str,
}

impl Arrival<'_> {
    /// The virtual server this message comes from as one of its members' traffic: named by
    /// the gateway itself (admission keeps the header only when the gateway's key vouches for it).
    fn via(&self) -> Option<&str> {
        let v = self.headers.get(crate::mcp::headers::VIA)?.to_str().ok()?;
        let plain = !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        plain.then_some(v)
    }

    /// The access log's fields for this message.
    fn describe(&self, log: &mut Map<String, Value>, method: &str, id: Option<&str>, target: Option<&str>, conversation: Option<&str>) {
        log.insert("server".into(), self.server.into());
        if let Some(v) = self.version {
            log.insert("version".into(), v.into());
        }
        log.insert("method".into(), method.into());
        if let Some(id) = id {
            log.insert("id".into(), id.into());
        }
        if let Some(t) = target {
            log.insert(if method == "tools/call" { "tool" } else { "prompt" }.into(), t.into());
        }
        if method.starts_with("resources/")
            && let Some(uri) = self.msg.target()
        {
            log.insert("resource".into(), uri.into());
        }
        log.insert("transport".into(), self.transport.into());
        if let Some(v) = self.via() {
            log.insert("via".into(), v.into());
        }
        if let Some(s) = self.session {
            log.insert("session".into(), s.into());
        }
        if let Some(p) = self.protocol {
            log.insert("protocol".into(), p.into());
        }
        if let Some(ip) = self.client_ip {
            log.insert("client_addr".into(), ip.to_string().into());
        }
        if let Some((n, v)) = &self.client {
            log.insert("client_name".into(), n.as_str().into());
            log.insert("client_version".into(), v.as_str().into());
        }
        if let Some(c) = conversation {
            log.insert("conversation".into(), c.into());
        }
    }
}

fn span_name(method: &str, target: Option<&str>) -> String {
    match target {
        Some(t) => format!("{method} {t}"),
        None => method.to_owned(),
    }
}

impl Exchange {
    pub fn start(tele: &Arc<Telemetry>, a: Arrival<'_>) -> Exchange {
        let method = a.msg.method().unwrap_or_default().to_owned();
        let params = a.msg.params();
        let target = match method.as_str() {
            "tools/call" | "prompts/get" => a.msg.target().map(str::to_owned),
            _ => None,
        };
        let span = tracing::info_span!(target: TARGET, "mcp.server", otel.name = %span_name(&method, target.as_deref()), otel.kind = "server");
        let meta = params.and_then(|p| p.get("_meta"));
        let conversation = meta.and_then(|m| m.get("gen_ai.conversation.id")).and_then(Value::as_str).map(str::to_owned);
        let id = a.msg.id.as_ref().map(|i| i.to_string());
        let mut log = Map::new();
        if tele.access.is_some() {
            a.describe(&mut log, &method, id.as_deref(), target.as_deref(), conversation.as_deref());
        }
        let payload = a.payload.cloned();
        if let (Some(p), Some(args), true) = (&payload, params.and_then(|p| p.get("arguments")), tele.access.is_some())
            && p.arguments
        {
            log.insert("arguments".into(), super::payload::render(args, p));
        }
        if !span.is_disabled() {
            trace::adopt(&span, meta, a.headers);
            span.set_attribute("mcp.method.name", method.clone());
            span.set_attribute("network.transport", "tcp");
            span.set_attribute("network.protocol.name", "http");
            span.set_attribute("tollgate.server.name", a.server.to_owned());
            span.set_attribute("tollgate.transport", a.transport);
            if let Some(v) = a.via() {
                span.set_attribute("tollgate.via", v.to_owned());
            }
            if let Some(v) = a.version {
                span.set_attribute("tollgate.server.version", v.to_owned());
            }
            if let Some(id) = id {
                span.set_attribute("jsonrpc.request.id", id);
            }
            if let Some(s) = a.session {
                span.set_attribute("mcp.session.id", s.to_owned());
            }
            if let Some(p) = a.protocol {
                span.set_attribute("mcp.protocol.version", p.to_owned());
            }
            match (method.as_str(), &target) {
                ("tools/call", Some(t)) => {
                    span.set_attribute("gen_ai.operation.name", "execute_tool");
                    span.set_attribute("gen_ai.tool.name", t.clone());
                }
                ("prompts/get", Some(t)) => span.set_attribute("gen_ai.prompt.name", t.clone()),
                ("resources/read" | "resources/subscribe" | "resources/unsubscribe", _) => {
                    if let Some(uri) = a.msg.target() {
                        span.set_attribute("mcp.resource.uri", uri.to_owned());
                    }
                }
                _ => {}
            }
            if let Some(ip) = a.client_ip {
                span.set_attribute("client.address", ip.to_string());
            }
            if let Some(peer) = a.peer {
                span.set_attribute("network.peer.address", peer.ip().to_string());
                span.set_attribute("network.peer.port", peer.port() as i64);
            }
            if let Some((n, v)) = a.client {
                span.set_attribute("tollgate.client.name", n);
                span.set_attribute("tollgate.client.version", v);
            }
            if let Some(c) = conversation {
                span.set_attribute("gen_ai.conversation.id", c);
            }
        }
        Exchange(Arc::new(Inner {
            tele: tele.clone(),
            started: Instant::now(),
            at: SystemTime::now(),
            span,
            server: a.server.to_owned(),
            version: a.version.unwrap_or_default().to_owned(),
            method,
            target,
            notification: a.msg.kind == Kind::Notification,
            payload,
            tap: tele.taps.find(a.headers),
            state: Mutex::new(State { log, ..Default::default() }),
        }))
    }

    /// Runs `fut` inside this exchange's span, so what it logs is the exchange's. The exchange
    /// itself is handed down as an argument, never looked up.
    pub async fn scope<F: Future>(&self, fut: F) -> F::Output {
        fut.instrument(self.0.span.clone()).await
    }

    /// Records the member of a virtual server that serves this exchange, as its upstream chose it.
    pub fn note_member(&self, member: &str) {
        let i = &self.0;
        i.state.lock().expect("exchange lock").log.insert("member".into(), member.into());
        i.span.set_attribute("tollgate.member", member.to_owned());
    }

    /// Records what the policies learned of the caller: identity, product, subscription.
    pub fn note_attributes(&self, attributes: &std::collections::BTreeMap<String, String>) {
        let i = &self.0;
        let mut st = i.state.lock().expect("exchange lock");
        for (attr, field, span_key) in [
            (attr::SUBJECT, "subject", "user.id"),
            (attr::PRODUCT, "product", "tollgate.product"),
            (attr::SUBSCRIPTION, "subscription", "tollgate.subscription.id"),
        ] {
            if let Some(v) = attributes.get(attr) {
                st.log.insert(field.into(), v.as_str().into());
                i.span.set_attribute(span_key, v.clone());
            }
        }
        if attributes.contains_key(attr::SUBJECT) {
            st.log.insert("auth".into(), "bearer".into());
            i.span.set_attribute("tollgate.auth.method", "bearer");
        }
    }

    /// Starts the timing (and span) of one policy step of this exchange.
    pub fn policy_step(&self, policy: &str, phase: &'static str) -> PolicyStep {
        let span = tracing::info_span!(target: TARGET, parent: &self.0.span, "policy", otel.name = %format!("policy {policy}"), otel.kind = "internal");
        if !span.is_disabled() {
            span.set_attribute("tollgate.policy.name", policy.to_owned());
            span.set_attribute("tollgate.policy.phase", phase);
        }
        PolicyStep { ex: self.clone(), span, policy: policy.to_owned(), phase, started: Instant::now() }
    }

    /// The message is about to go to the backend: opens the backend span, and returns the
    /// W3C context headers that name it (none when the trace is not recorded).
    pub fn to_backend(&self) -> Vec<(String, String)> {
        let i = &self.0;
        let span =
            tracing::info_span!(target: TARGET, parent: &i.span, "mcp.client", otel.name = %span_name(&i.method, i.target.as_deref()), otel.kind = "client");
        let mut context = Vec::new();
        if !span.is_disabled() {
            span.set_attribute("mcp.method.name", i.method.clone());
            if let Some(t) = &i.target {
                span.set_attribute(if i.method == "tools/call" { "gen_ai.tool.name" } else { "gen_ai.prompt.name" }, t.clone());
            }
            span.set_attribute("tollgate.server.name", i.server.clone());
            context = trace::context_headers(&span);
        }
        let mut st = i.state.lock().expect("exchange lock");
        st.backend = Some((Instant::now(), span));
        context
    }

    /// The backend answered (or failed): closes the backend span.
    pub fn backend_done(&self) {
        let mut st = self.0.state.lock().expect("exchange lock");
        if let Some((at, span)) = st.backend.take() {
            st.backend_ms = Some(at.elapsed().as_secs_f64() * 1e3);
            drop(span);
        }
    }

    /// The span under which the response phase runs.
    pub fn span(&self) -> &tracing::Span {
        &self.0.span
    }

    /// The client gets this answer (or error response).
    pub fn answer(&self, msg: &Message) {
        let i = &self.0;
        let error = msg.body.get("error");
        let code = error.and_then(|e| e.get("code")).and_then(Value::as_i64);
        let message = error.and_then(|e| e.get("message")).and_then(Value::as_str);
        let result = msg.body.get("result");
        let tool_error = result.and_then(|r| r.get("isError")).and_then(Value::as_bool).unwrap_or(false);
        if i.method == "tools/list"
            && let Some(tools) = result.and_then(|r| r.get("tools")).and_then(Value::as_array)
        {
            i.tele.metrics.learn_tools(&i.server, tools.iter().filter_map(|t| t.get("name").and_then(Value::as_str)));
        }
        if let Some(r) = result {
            let initialize = i.method == "initialize";
            let mut st = i.state.lock().expect("exchange lock");
            if initialize && let Some(info) = r.get("serverInfo") {
                for (k, f) in [("name", "backend_name"), ("version", "backend_version")] {
                    if let Some(v) = info.get(k).and_then(Value::as_str) {
                        st.log.insert(f.into(), v.into());
                        i.span.set_attribute(if k == "name" { "tollgate.backend.name" } else { "tollgate.backend.version" }, v.to_owned());
                    }
                }
            }
            if let Some(p) = i.payload.as_ref().filter(|p| p.results) {
                st.log.insert("result".into(), super::payload::render(r, p));
            }
        }
        self.finish(200, code, message, tool_error);
    }

    /// The client gets this error instead of an answer.
    pub fn fail(&self, e: &GatewayError) {
        let w = e.wire(true);
        self.finish(w.status.as_u16(), Some(i64::from(w.code)), Some(&w.message), false);
    }

    /// The HTTP status is all the gateway saw of the answer (a stateless request's relayed stream).
    pub fn relayed(&self, status: u16) {
        let code = (status >= 400).then_some(i64::from(crate::mcp::error::code::BACKEND_FAILED));
        self.finish(status, code, None, false);
    }

    /// A notification was passed on (202).
    pub fn accepted(&self) {
        self.finish(202, None, None, false);
    }

    fn finish(&self, status: u16, code: Option<i64>, message: Option<&str>, tool_error: bool) {
        let outcome = outcome(code, tool_error);
        self.0.report(status, code, message, outcome);
    }
}

impl Inner {
    fn report(&self, status: u16, code: Option<i64>, message: Option<&str>, outcome: &'static str) {
        let mut st = self.state.lock().expect("exchange lock");
        if st.done {
            return;
        }
        st.done = true;
        if let Some((at, span)) = st.backend.take() {
            st.backend_ms = Some(at.elapsed().as_secs_f64() * 1e3);
            drop(span);
        }
        let elapsed = self.started.elapsed();
        let m = &self.tele.metrics;
        let tool = m.tool_label(&self.server, self.target.as_deref().filter(|_| self.method == "tools/call"));
        let labels = RequestLabels { server: self.server.clone(), version: self.version.clone(), method: method_label(&self.method).to_owned(), tool, outcome };
        m.requests.get_or_create(&labels).inc();
        self.tele.traffic.count(&self.server, &self.version, outcome != "ok");
        if let Some(tap) = &self.tap {
            let tapped = super::tap::Tapped { method: self.method.clone(), status, outcome: outcome.to_owned(), code, policies: st.policies.clone() };
            // The playground may have stopped waiting.
            let _ = tap.send(tapped);
        }
        m.duration.get_or_create(&labels).observe(elapsed.as_secs_f64());
        if is_denial(outcome) {
            m.denials.get_or_create(&ReasonLabels { server: self.server.clone(), reason: outcome }).inc();
        } else if is_backend_error(outcome) {
            m.backend_errors.get_or_create(&ReasonLabels { server: self.server.clone(), reason: outcome }).inc();
        }
        if !self.span.is_disabled() {
            if let Some(c) = code {
                self.span.set_attribute("error.type", c.to_string());
                self.span.set_attribute("rpc.response.status_code", c.to_string());
                self.span.set_status(opentelemetry::trace::Status::error(message.unwrap_or(outcome).to_owned()));
            } else if outcome == "tool_error" {
                self.span.set_attribute("error.type", "tool_error");
                self.span.set_status(opentelemetry::trace::Status::error("tool_error"));
            } else if outcome == "cancelled" {
                self.span.set_attribute("error.type", "cancelled");
            }
        }
        let Some(log) = &self.tele.access else { return };
        let failed = code.is_some() || outcome == "tool_error" || outcome == "cancelled";
        if (self.notification && !log.notifications) || (log.level == LogLevel::Error && !failed) {
            return;
        }
        let mut entry = Map::new();
        entry.insert("time".into(), humantime::format_rfc3339_millis(self.at).to_string().into());
        entry.extend(std::mem::take(&mut st.log));
        entry.insert("outcome".into(), outcome.into());
        entry.insert("status".into(), status.into());
        if let Some(c) = code {
            entry.insert("code".into(), c.into());
        }
        if let Some(msg) = message {
            entry.insert("error".into(), msg.into());
        }
        entry.insert("duration_ms".into(), json!(round3(elapsed.as_secs_f64() * 1e3)));
        if let Some(b) = st.backend_ms {
            entry.insert("backend_ms".into(), json!(round3(b)));
        }
        if !st.policies.is_empty() {
            entry.insert("policies".into(), Value::Array(std::mem::take(&mut st.policies)));
        }
        if !self.span.is_disabled() {
            use opentelemetry::trace::TraceContextExt;
            let cx = self.span.context();
            let sc = cx.span().span_context().clone();
            if sc.is_valid() {
                entry.insert("trace_id".into(), sc.trace_id().to_string().into());
                entry.insert("span_id".into(), sc.span_id().to_string().into());
            }
        }
        if !log.write(&entry) {
            m.access_log_dropped.inc();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Neither answered nor failed: the client gave up, or the gateway stopped waiting.
        self.report(499, None, None, "cancelled");
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// One policy step in progress; [`PolicyStep::end`] records its verdict and time.
pub struct PolicyStep {
    ex: Exchange,
    span: tracing::Span,
    policy: String,
    phase: &'static str,
    started: Instant,
}

impl PolicyStep {
    pub fn span(&self) -> tracing::Span {
        self.span.clone()
    }

    /// `verdict` is one of continue, deny, respond, hidden, failed, failed_open.
    pub fn end(self, verdict: &'static str) {
        let took = self.started.elapsed();
        let i = &self.ex.0;
        let m = &i.tele.metrics;
        m.policy_verdicts.get_or_create(&PolicyLabels { server: i.server.clone(), policy: self.policy.clone(), phase: self.phase, verdict }).inc();
        m.policy_duration
            .get_or_create(&PolicyTimeLabels { server: i.server.clone(), policy: self.policy.clone(), phase: self.phase })
            .observe(took.as_secs_f64());
        self.span.set_attribute("tollgate.policy.verdict", verdict);
        if verdict.starts_with("failed") {
            self.span.set_status(opentelemetry::trace::Status::error(format!("policy {} failed", self.policy)));
        }
        let mut st = i.state.lock().expect("exchange lock");
        st.policies.push(json!({ "name": self.policy, "phase": self.phase, "verdict": verdict, "us": took.as_micros() as u64 }));
    }
}
