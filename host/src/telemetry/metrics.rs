//! Prometheus metrics. Every label value comes from the config, the MCP method table, a fixed
//! outcome list, or a tool name the backend itself listed, so no client can grow the series.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::mcp::error::code;

/// Tool names kept per server as label values; beyond this, tools count as `_other`.
const MAX_TOOLS_PER_SERVER: usize = 500;
/// The label of a tool, method or policy outcome that is not one of the known ones.
pub const OTHER: &str = "_other";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub server: String,
    pub version: String,
    pub method: String,
    pub tool: String,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    pub server: String,
    pub policy: String,
    pub phase: &'static str,
    pub verdict: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyTimeLabels {
    pub server: String,
    pub policy: String,
    pub phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServerLabels {
    pub server: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub server: String,
    pub reason: &'static str,
}

type Hist<L> = Family<L, Histogram, fn() -> Histogram>;

/// Entries the embedded policy state dropped to stay within its budget. Process-wide, as the
/// state store is.
pub static STATE_EVICTIONS: std::sync::LazyLock<Counter> = std::sync::LazyLock::new(Counter::default);
/// Bytes the embedded policy state holds, as its budget counts them.
pub static STATE_BYTES: std::sync::LazyLock<Gauge> = std::sync::LazyLock::new(Gauge::default);
/// State operations that could not reach the shared store (`state.redis`).
pub static STATE_ERRORS: std::sync::LazyLock<Counter> = std::sync::LazyLock::new(Counter::default);
/// 1 while the shared store answers (and always without one), 0 during an outage.
pub static STATE_UP: std::sync::LazyLock<Gauge> = std::sync::LazyLock::new(|| {
    let g = Gauge::default();
    g.set(1);
    g
});

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub duration: Hist<RequestLabels>,
    pub policy_verdicts: Family<PolicyLabels, Counter>,
    pub policy_duration: Hist<PolicyTimeLabels>,
    pub backend_errors: Family<ReasonLabels, Counter>,
    pub denials: Family<ReasonLabels, Counter>,
    pub sessions: Family<ServerLabels, Gauge>,
    pub streams: Family<ServerLabels, Gauge>,
    pub access_log_dropped: Counter,
    known_tools: Mutex<HashMap<String, HashSet<String>>>,
}

fn request_buckets() -> Histogram {
    // 100 us .. ~105 s
    Histogram::new(exponential_buckets(0.0001, 2.0, 21))
}

fn policy_buckets() -> Histogram {
    // 2 us .. ~65 ms
    Histogram::new(exponential_buckets(0.000002, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let duration = Hist::<RequestLabels>::new_with_constructor(request_buckets);
        let policy_verdicts = Family::<PolicyLabels, Counter>::default();
        let policy_duration = Hist::<PolicyTimeLabels>::new_with_constructor(policy_buckets);
        let backend_errors = Family::<ReasonLabels, Counter>::default();
        let denials = Family::<ReasonLabels, Counter>::default();
        let sessions = Family::<ServerLabels, Gauge>::default();
        let streams = Family::<ServerLabels, Gauge>::default();
        let access_log_dropped = Counter::default();
        registry.register("tollgate_requests", "MCP requests and notifications from clients, by outcome", requests.clone());
        registry.register(
            "mcp_server_operation_duration_seconds",
            "Time from a client message's arrival to its answer leaving (mcp.server.operation.duration)",
            duration.clone(),
        );
        registry.register("tollgate_policy_verdicts", "Verdicts of each policy binding", policy_verdicts.clone());
        registry.register("tollgate_policy_duration_seconds", "Time one policy step took, instance included", policy_duration.clone());
        registry.register("tollgate_backend_errors", "Requests a backend failed: unreachable, timeout, bad answer", backend_errors.clone());
        registry.register("tollgate_denials", "Requests refused by the gateway or a policy, by reason", denials.clone());
        registry.register("tollgate_sessions_active", "Client sessions open", sessions.clone());
        registry.register("tollgate_streams_open", "Client SSE streams open", streams.clone());
        registry.register("tollgate_policy_state_bytes", "Bytes the embedded policy state holds (limits.max_policy_state_mb bounds it)", STATE_BYTES.clone());
        registry.register("tollgate_policy_state_errors", "Policy state operations that could not reach the shared store (state.redis)", STATE_ERRORS.clone());
        registry.register("tollgate_policy_state_up", "Whether the policies' state store answers (1) or is out (0)", STATE_UP.clone());
        registry.register("tollgate_policy_state_evictions", "Policy state entries evicted to keep the store within its budget", STATE_EVICTIONS.clone());
        registry.register("tollgate_access_log_dropped", "Access log lines dropped because the writer fell behind", access_log_dropped.clone());
        Metrics {
            registry,
            requests,
            duration,
            policy_verdicts,
            policy_duration,
            backend_errors,
            denials,
            sessions,
            streams,
            access_log_dropped,
            known_tools: Mutex::new(HashMap::new()),
        }
    }
}

impl Metrics {
    /// The text exposition format, for `/metrics`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }

    /// Remembers the tools a backend listed, so they can be label values.
    pub fn learn_tools<'a>(&self, server: &str, names: impl Iterator<Item = &'a str>) {
        let mut known = self.known_tools.lock().expect("metrics lock");
        let set = known.entry(server.to_owned()).or_default();
        for n in names {
            if set.len() >= MAX_TOOLS_PER_SERVER {
                break;
            }
            if !set.contains(n) {
                set.insert(n.to_owned());
            }
        }
    }

    /// The label for a tool: its name if the backend listed it, else [`OTHER`].
    pub fn tool_label(&self, server: &str, tool: Option<&str>) -> String {
        let Some(tool) = tool else { return String::new() };
        let known = self.known_tools.lock().expect("metrics lock");
        if known.get(server).is_some_and(|s| s.contains(tool)) { tool.to_owned() } else { OTHER.to_owned() }
    }
}

/// MCP methods are a fixed table; anything else a client sends is one label.
pub fn method_label(method: &str) -> &str {
    const KNOWN: &[&str] = &[
        "initialize",
        "ping",
        "tools/list",
        "tools/call",
        "resources/list",
        "resources/read",
        "resources/templates/list",
        "resources/subscribe",
        "resources/unsubscribe",
        "prompts/list",
        "prompts/get",
        "completion/complete",
        "logging/setLevel",
        "tasks/get",
        "tasks/list",
        "tasks/cancel",
        "tasks/result",
        "server/discover",
        "notifications/initialized",
        "notifications/cancelled",
        "notifications/progress",
        "notifications/roots/list_changed",
    ];
    if KNOWN.contains(&method) { method } else { OTHER }
}

/// How an exchange ended, as a fixed set of label values. `code` is the JSON-RPC error code, if any.
pub fn outcome(code: Option<i64>, tool_error: bool) -> &'static str {
    // A code outside `i32` is none of the gateway's: a backend's own, counted as an error.
    let code = code.map(|c| i32::try_from(c).unwrap_or(i32::MIN));
    match code {
        None if tool_error => "tool_error",
        None => "ok",
        Some(code::UNAUTHORIZED | code::SUBSCRIPTION_KEY) => "unauthorized",
        Some(code::FORBIDDEN | code::SUBSCRIPTION_FORBIDDEN) => "forbidden",
        Some(code::RATE_LIMITED) => "rate_limited",
        Some(code::QUOTA_EXCEEDED) => "quota_exceeded",
        Some(code::POLICY_FAILED) => "policy_failed",
        Some(code::BACKEND_UNAVAILABLE) => "backend_unavailable",
        Some(code::BACKEND_TIMEOUT) => "timeout",
        Some(code::BACKEND_FAILED) => "backend_failed",
        Some(code::OVERLOADED) => "overloaded",
        Some(code::PARSE_ERROR | code::INVALID_REQUEST | code::INVALID_PARAMS | code::BAD_REQUEST | code::HEADER_MISMATCH | code::UNSUPPORTED_VERSION) => {
            "invalid"
        }
        Some(code::METHOD_NOT_FOUND) => "method_not_found",
        Some(_) => "error",
    }
}

/// Whether an outcome is a refusal (counted in `tollgate_denials`) or a backend failure.
pub fn is_denial(outcome: &str) -> bool {
    matches!(outcome, "unauthorized" | "forbidden" | "rate_limited" | "quota_exceeded" | "policy_failed" | "overloaded")
}

pub fn is_backend_error(outcome: &str) -> bool {
    matches!(outcome, "backend_unavailable" | "timeout" | "backend_failed")
}
