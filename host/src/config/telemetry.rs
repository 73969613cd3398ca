//! What the gateway reports about the traffic it carries: traces, the access log, payloads.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::validate::Problems;

/// The `telemetry:` block. Metrics need no settings: they are always kept and served on the
/// management listener's `/metrics`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Telemetry {
    /// `service.name` of the spans, so one collector can tell gateways apart.
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// Spans exported over OTLP; no export without this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traces: Option<Traces>,
    /// One line per MCP request; no access log without this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log: Option<AccessLog>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry { service_name: default_service_name(), traces: None, access_log: None }
    }
}

fn default_service_name() -> String {
    "tollgate".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OtlpProtocol {
    /// OTLP/gRPC, usually port 4317.
    Grpc,
    /// OTLP/HTTP with protobuf bodies, usually port 4318; spans go to `{endpoint}/v1/traces`.
    Http,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Traces {
    /// The collector, e.g. `http://127.0.0.1:4317` (gRPC) or `http://127.0.0.1:4318` (HTTP).
    pub endpoint: String,
    /// How spans reach the collector.
    #[serde(default = "default_protocol")]
    pub protocol: OtlpProtocol,
    /// Headers for the collector (an API key, say), each value read from the named
    /// environment variable so the file holds no secret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers_from_env: BTreeMap<String, String>,
    /// Share of traces kept when the client did not decide (a sampled parent is always followed).
    #[serde(default = "default_ratio")]
    pub sample_ratio: f64,
}

fn default_protocol() -> OtlpProtocol {
    OtlpProtocol::Grpc
}
fn default_ratio() -> f64 {
    1.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    #[default]
    Json,
    /// `key=value` pairs, for reading in a terminal.
    Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Every exchange.
    #[default]
    Info,
    /// Only exchanges that ended in an error.
    Error,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessLog {
    /// `stdout`, `stderr`, or a file path (appended to).
    #[serde(default = "default_target")]
    pub to: String,
    /// How each line is written.
    #[serde(default)]
    pub format: LogFormat,
    /// Which exchanges are logged.
    #[serde(default)]
    pub level: LogLevel,
    /// Also log client notifications, which are frequent (progress, cancellations).
    #[serde(default)]
    pub notifications: bool,
}

fn default_target() -> String {
    "stdout".into()
}

/// Where the access log goes, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    Stdout,
    Stderr,
    File(PathBuf),
}

impl AccessLog {
    pub fn target(&self) -> LogTarget {
        match self.to.as_str() {
            "stdout" => LogTarget::Stdout,
            "stderr" => LogTarget::Stderr,
            path => LogTarget::File(PathBuf::from(path)),
        }
    }
}

/// A server's `payload_log:` block: tool arguments and results in its access log lines.
/// Off unless set, because payloads carry what users typed and what tools returned.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PayloadLog {
    /// Log the arguments of each tool call.
    #[serde(default = "yes")]
    pub arguments: bool,
    /// Log the result of each tool call.
    #[serde(default = "yes")]
    pub results: bool,
    /// Each payload is cut to this many bytes of JSON.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// Object keys whose values are replaced by `"[redacted]"` at any depth, compared without case.
    #[serde(default)]
    pub redact: Vec<String>,
}

fn yes() -> bool {
    true
}
fn default_max_bytes() -> usize {
    1024
}

pub(super) fn check(out: &mut Problems, t: &Telemetry) {
    if t.service_name.trim().is_empty() {
        out.push("telemetry.service_name", "must not be empty");
    }
    if let Some(tr) = &t.traces {
        match url::Url::parse(&tr.endpoint) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => out.push("telemetry.traces.endpoint", &format!("'{}' is not an http:// or https:// URL of an OTLP collector", tr.endpoint)),
        }
        if !(0.0..=1.0).contains(&tr.sample_ratio) {
            out.push("telemetry.traces.sample_ratio", "must be between 0 and 1");
        }
        for (name, var) in &tr.headers_from_env {
            if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                out.push(&format!("telemetry.traces.headers_from_env.{name}"), "is not a valid header name");
            } else if std::env::var(var).is_err() {
                out.push(&format!("telemetry.traces.headers_from_env.{name}"), &format!("the environment variable {var} is not set"));
            }
        }
    }
    if let Some(a) = &t.access_log
        && a.to.trim().is_empty()
    {
        out.push("telemetry.access_log.to", "must be stdout, stderr, or a file path");
    }
}

pub(super) fn check_payload(out: &mut Problems, at: &str, p: &PayloadLog) {
    if p.max_bytes == 0 {
        out.push(&format!("{at}.max_bytes"), "must be greater than zero");
    }
    if p.redact.iter().any(|k| k.is_empty()) {
        out.push(&format!("{at}.redact"), "names must not be empty");
    }
}
