//! The legacy HTTP+SSE transport (protocol 2024-11-05) at `/{name}/sse`: a GET stream that
//! announces `/{name}/message?sessionId=…`, where the client then POSTs every message.
//! The session lives exactly as long as the SSE connection.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, RawQuery, State};
use axum::response::Response;
use hyper::HeaderMap;

use super::admission::{self, Admitted};
use super::observe;
use super::respond;
use crate::gateway::Gateway;
use crate::mcp::error::GatewayError;
use crate::mcp::headers;
use crate::mcp::jsonrpc::{Kind, Message};
use crate::server::Address;
use crate::session::owner::{self, Operation};
use crate::session::{Mode, OutStream};

/// Opens a legacy session once the connection is admitted: the chain's request phase runs
/// on it (as [`Operation::Connect`]) before the session, let alone a backend, exists.
pub async fn connect(
    State(gw): State<Arc<Gateway>>,
    Path(to): Path<Address>,
    RawQuery(query): RawQuery,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    h: HeaderMap,
) -> Response {
    let Admitted { endpoint, client } = match admission::admit(&gw, &to, &h, query.as_deref(), peer.map(|c| c.0.0)) {
        Ok(a) => a,
        Err(e) => return respond::error(&e, None),
    };
    let subscription = client.subscription();
    let server = match headers::accepts_sse(&h).and_then(|_| endpoint.pick(to.version.as_deref(), subscription, None)) {
        Ok(s) => s,
        Err(e) => return respond::error(&e, None),
    };
    let route = client.route(&server, None, None);
    let owner = match owner::admit_operation(&client, &server, Operation::Connect, route).await {
        Ok(o) => o,
        Err(e) => return respond::error(&e, None),
    };
    let out = Arc::new(OutStream::new(0, gw.config.sessions.replay_buffer));
    let session = match gw.sessions.create(server, Mode::Legacy(out.clone())) {
        Ok(s) => s,
        Err(e) => return respond::error(&e, None),
    };
    if let Err(e) = session.claim(owner) {
        gw.sessions.remove(&session.id).await;
        return respond::error(&e, None);
    }
    let rx = out.attach(None);
    let endpoint = match &to.version {
        Some(v) => format!("/{}/{v}/message?sessionId={}", to.name, session.id),
        None => format!("/{}/message?sessionId={}", to.name, session.id),
    };
    // When the client goes away the body is dropped, and the session with it.
    let guard = Closer { gw: gw.clone(), id: session.id.clone() };
    let mut resp = respond::stream(rx, gw.config.limits.keepalive(), Some(endpoint));
    let body = std::mem::replace(resp.body_mut(), Body::empty());
    *resp.body_mut() = Body::from_stream(Guarded { inner: body.into_data_stream(), _guard: guard });
    resp
}

struct Closer {
    gw: Arc<Gateway>,
    id: String,
}

impl Drop for Closer {
    fn drop(&mut self) {
        let (gw, id) = (self.gw.clone(), std::mem::take(&mut self.id));
        tokio::spawn(async move { gw.sessions.remove(&id).await });
    }
}

struct Guarded<S> {
    inner: S,
    _guard: Closer,
}

impl<S: futures::Stream + Unpin> futures::Stream for Guarded<S> {
    type Item = S::Item;
    fn poll_next(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<S::Item>> {
        std::pin::Pin::new(&mut self.inner).poll_next(cx)
    }
}

pub async fn message(
    State(gw): State<Arc<Gateway>>,
    Path(to): Path<Address>,
    Query(q): Query<HashMap<String, String>>,
    RawQuery(query): RawQuery,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    h: HeaderMap,
    body: Body,
) -> Response {
    let peer = peer.map(|c| c.0.0);
    let client = match admission::admit(&gw, &to, &h, query.as_deref(), peer) {
        Ok(a) => a.client,
        Err(e) => {
            super::observe::refused(&gw, &to, &h, peer, body, "sse", &e).await;
            return respond::error(&e, None);
        }
    };
    if let Err(e) = headers::is_json(&h) {
        return respond::error(&e, None);
    }
    let Some(sid) = q.get("sessionId") else {
        return respond::error(&GatewayError::BadRequest("sessionId query parameter is required".into()), None);
    };
    let session = match gw.session_here(&to, sid) {
        Ok(s) => s,
        Err(e) => return respond::error(&e, None),
    };
    let bytes = match axum::body::to_bytes(body, gw.config.limits.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => return respond::error(&GatewayError::PayloadTooLarge(gw.config.limits.max_body_bytes), None),
    };
    let msg = match Message::parse(&bytes) {
        Ok(m) => m,
        Err(e) => return respond::error(&e, None),
    };
    let x = (msg.kind != Kind::Response).then(|| observe::exchange(&gw, &session.server, &msg, &client, Some(&session), "sse"));
    let result = match (&msg.kind, &x) {
        (Kind::Request, Some(x)) if msg.method() == Some("initialize") => x.scope(session.initialize(&msg, &client, Some(x))).await.map(|_| ()),
        (Kind::Request, Some(x)) => x.scope(session.request(&msg, &client, Some(x))).await.map(|_| ()),
        (Kind::Notification, Some(x)) => x.scope(session.notify(&msg, &client, Some(x))).await.inspect(|_| x.accepted()),
        _ => session.answer(&msg, &client).await,
    };
    if let Err(e) = result {
        if let Some(x) = &x {
            x.fail(&e);
        }
        // The answer to a request belongs on the SSE stream, errors included.
        if let (Some(id), Mode::Legacy(out)) = (msg.id.clone(), session.mode()) {
            let w = e.wire(true);
            out.push(Message::error(Some(id), w.code, &w.message, w.data).to_bytes(), false);
        } else {
            return respond::error(&e, None);
        }
    }
    respond::accepted()
}
