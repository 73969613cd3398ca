//! `/metrics`, `/healthz` and `/readyz`, for the management listener: operators' routes,
//! kept off the listener MCP clients use.

use axum::extract::State;
use axum::http::StatusCode;

use super::Shared;
use super::route::Metrics;
use crate::telemetry::metrics::ServerLabels;

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn metrics(State(state): State<Shared>) -> Metrics {
    let gw = &state.gateway;
    let m = &gw.telemetry.metrics;
    // Gauges are read from the sessions at scrape time rather than kept in step with them.
    let servers = gw.server_map();
    let mut per_server: std::collections::HashMap<&str, (i64, i64)> = servers.keys().map(|k| (k.as_str(), (0, 0))).collect();
    for s in gw.sessions.all() {
        if let Some(e) = per_server.get_mut(s.server.name.as_str()) {
            e.0 += 1;
            e.1 += s.open_streams() as i64;
        }
    }
    for (server, (sessions, streams)) in per_server {
        let l = ServerLabels { server: server.to_owned() };
        m.sessions.get_or_create(&l).set(sessions);
        m.streams.get_or_create(&l).set(streams);
    }
    Metrics(m.render())
}

pub async fn ready(State(state): State<Shared>) -> (StatusCode, String) {
    crate::listener::readiness(&state.gateway).await
}

/// Requests and errors per server (and per version) since start.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct TrafficTotals {
    /// By server name; a server that has seen no request yet is absent.
    servers: std::collections::BTreeMap<String, crate::telemetry::traffic::ServerCounts>,
}

/// What the console polls for its live request and error rates.
pub async fn traffic(State(state): State<Shared>) -> axum::Json<TrafficTotals> {
    axum::Json(TrafficTotals { servers: state.gateway.telemetry.traffic.read().into_iter().collect() })
}
