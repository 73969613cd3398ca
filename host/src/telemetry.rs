//! What the gateway tells operators: OpenTelemetry spans for every MCP message (with a child
//! span per policy step and per backend call), Prometheus metrics, and the access log.
//!
//! Names follow the OpenTelemetry MCP semantic conventions (`mcp.method.name`,
//! `gen_ai.tool.name`, ...); what they do not cover is under `tollgate.*`.

pub mod access_log;
pub mod exchange;
pub mod log_lines;
pub mod metrics;
pub mod payload;
pub mod subscriber;
pub mod tap;
pub mod trace;
pub mod traffic;

pub use exchange::{Arrival, Exchange};
pub use metrics::Metrics;

use crate::config::Config;

/// The gateway's telemetry sinks, shared by every exchange.
pub struct Telemetry {
    pub metrics: Metrics,
    pub access: Option<access_log::AccessLog>,
    /// Totals per server, for the console's live rates.
    pub traffic: traffic::Traffic,
    /// Exchanges the console's playground sent and waits to see.
    pub taps: tap::Taps,
}

impl Telemetry {
    pub fn new(config: &Config) -> std::io::Result<Telemetry> {
        let access = match &config.telemetry.access_log {
            Some(a) => Some(access_log::AccessLog::open(a)?),
            None => None,
        };
        Ok(Telemetry { metrics: Metrics::default(), access, traffic: Default::default(), taps: Default::default() })
    }

    /// Metrics only, for embedding and tests.
    pub fn quiet() -> Telemetry {
        Telemetry { metrics: Metrics::default(), access: None, traffic: Default::default(), taps: Default::default() }
    }
}
