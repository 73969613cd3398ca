//! `/metrics`, `/healthz` and `/readyz`, for the management listener: operators' routes,
//! kept off the listener MCP clients use.

use std::sync::Arc;

use axum::Router;
use axum::response::Response;
use axum::routing::get;

use crate::gateway::Gateway;
use crate::telemetry::metrics::ServerLabels;

/// The routes, for any router state: they carry the gateway themselves.
pub fn routes<S: Clone + Send + Sync + 'static>(gw: Arc<Gateway>) -> Router<S> {
    let (m, r) = (gw.clone(), gw);
    Router::new().route("/metrics", get(move || metrics(m.clone()))).route("/healthz", get(|| async { "ok" })).route("/readyz", get(move || ready(r.clone())))
}

async fn metrics(gw: Arc<Gateway>) -> Response {
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
    Response::builder()
        .header("content-type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(m.render().into())
        .expect("static response parts")
}

async fn ready(gw: Arc<Gateway>) -> Response {
    let (status, body) = crate::listener::readiness(&gw).await;
    Response::builder().status(status).body(body.into()).expect("static response parts")
}
