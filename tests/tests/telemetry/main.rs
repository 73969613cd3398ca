//! Observability end to end: the real `tollgate` binary sends its spans to an OTLP collector
//! the test runs (over HTTP and over gRPC), writes its access log to a file, and serves
//! Prometheus metrics on its management listener, while a chain of standard policies (one of
//! them injecting a backend credential) runs on every call.
//!
//! Run `cargo build -p tollgate` first: the tests start the binary next to them.

mod log_lines;
mod metrics;
mod payload;
mod refused;
mod stateless;
mod traces;

use serde_json::Value;

/// The access log's lines, parsed.
pub fn access_log(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("an access log line is not JSON ({e}): {l}")))
        .collect()
}
