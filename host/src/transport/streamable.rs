//! Streamable HTTP at `/{name}/mcp`: POST carries client messages, GET opens the stream for
//! messages the server sends unasked (or resumes one with `Last-Event-ID`), DELETE ends the session.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::response::Response;
use futures::StreamExt;
use hyper::{HeaderMap, StatusCode};
use serde_json::Value;
use tokio::time::Instant;

use super::admission::{self, Admitted};
use super::observe;
use super::respond::{self, Deadline};
use crate::dispatch::Client;
use crate::gateway::Gateway;
use crate::mcp::error::GatewayError;
use crate::mcp::headers::{self, LAST_EVENT_ID, SESSION_ID};
use crate::mcp::jsonrpc::{Kind, Message};
use crate::server::Address;
use crate::session::owner::Operation;
use crate::session::{Mode, Session, stream::parse_event_id};

/// How the access log and spans name this transport.
const TRANSPORT: &str = "streamable-http";

pub async fn post(
    State(gw): State<Arc<Gateway>>,
    Path(to): Path<Address>,
    RawQuery(query): RawQuery,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    h: HeaderMap,
    body: Body,
) -> Response {
    let peer = peer.map(|c| c.0.0);
    let Admitted { endpoint, client } = match admission::admit(&gw, &to, &h, query.as_deref(), peer) {
        Ok(a) => a,
        Err(e) => {
            observe::refused(&gw, &to, &h, peer, body, TRANSPORT, &e).await;
            return respond::error(&e, None);
        }
    };
    if let Err(e) = headers::accepts_post(&h).and_then(|_| headers::is_json(&h)) {
        return respond::error(&e, None);
    }
    let bytes = match axum::body::to_bytes(body, gw.config.limits.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => return respond::error(&GatewayError::PayloadTooLarge(gw.config.limits.max_body_bytes), None),
    };
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => return respond::error(&GatewayError::Parse(e.to_string()), None),
    };
    if let Value::Array(items) = value {
        return batch(&gw, &to, &h, client, items).await;
    }
    let id_hint = value.get("id").and_then(crate::mcp::jsonrpc::Id::from_value);
    let msg = match Message::from_value(value) {
        Ok(m) => m,
        Err(e) => return respond::error(&e, id_hint),
    };
    let keepalive = gw.config.limits.keepalive();

    let Some(sid) = headers::get(&h, SESSION_ID) else {
        // A new session, or a request with no session: the path or the routing picks the version.
        let subscription = client.subscription().map(str::to_owned);
        let pick = || endpoint.pick(to.version.as_deref(), subscription.as_deref(), None);
        if super::stateless::is_modern(&h, &msg) {
            return super::stateless::serve(&gw, &endpoint, to.version.as_deref(), client, bytes, msg).await;
        }
        if msg.method() == Some("initialize") && msg.kind == Kind::Request {
            let server = match pick() {
                Ok(s) => s,
                Err(e) => return respond::error(&e, msg.id.clone()),
            };
            let session = match gw.sessions.create(server.clone(), Mode::Streamable) {
                Ok(s) => s,
                Err(e) => return respond::error(&e, msg.id.clone()),
            };
            let id = msg.id.clone().expect("requests have ids");
            let x = observe::exchange(&gw, &server, &msg, &client, Some(&session), TRANSPORT);
            let stream = match x.scope(session.initialize(&msg, &client, Some(&x))).await {
                Ok(s) => s,
                Err(e) => {
                    x.fail(&e);
                    gw.sessions.remove(&session.id).await;
                    return respond::error(&e, Some(id));
                }
            };
            let deadline = Deadline { at: Instant::now() + server.timeout, session: session.clone(), id };
            return respond::answer(&stream, deadline, keepalive, Some(&session.id)).await;
        }
        return respond::error(&GatewayError::SessionRequired, msg.id.clone());
    };

    let session = match gw.session(&to, sid).await {
        Ok(s) => s,
        Err(e) => return respond::error(&e, msg.id.clone()),
    };
    // The session's own version serves it, whatever the routing says now.
    let server = session.server.clone();
    if let Err(e) = headers::check_version(&h) {
        return respond::error(&e, msg.id.clone());
    }
    match msg.kind {
        Kind::Request if msg.method() == Some("initialize") => {
            respond::error(&GatewayError::InvalidRequest("the session is already initialized".into()), msg.id.clone())
        }
        Kind::Request => {
            let id = msg.id.clone().expect("requests have ids");
            let x = observe::exchange(&gw, &server, &msg, &client, Some(&session), TRANSPORT);
            let stream = match x.scope(session.request(&msg, &client, Some(&x))).await {
                Ok(s) => s,
                Err(e) => {
                    x.fail(&e);
                    return respond::error(&e, Some(id));
                }
            };
            let deadline = Deadline { at: Instant::now() + server.timeout, session, id };
            respond::answer(&stream, deadline, keepalive, None).await
        }
        Kind::Notification => {
            let x = observe::exchange(&gw, &server, &msg, &client, Some(&session), TRANSPORT);
            match x.scope(session.notify(&msg, &client, Some(&x))).await {
                Ok(()) => {
                    x.accepted();
                    respond::accepted()
                }
                Err(e) => {
                    x.fail(&e);
                    respond::error(&e, None)
                }
            }
        }
        Kind::Response => match session.answer(&msg, &client).await {
            Ok(()) => respond::accepted(),
            Err(e) => respond::error(&e, None),
        },
    }
}

pub async fn get(
    State(gw): State<Arc<Gateway>>,
    Path(to): Path<Address>,
    RawQuery(query): RawQuery,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    h: HeaderMap,
) -> Response {
    let last = headers::get(&h, LAST_EVENT_ID);
    let op = if last.is_some() { Operation::Resume } else { Operation::Stream };
    let session = match session_operation(&gw, &to, query.as_deref(), peer, &h, op).await {
        Ok(s) => s,
        Err(e) => return respond::error(&e, None),
    };
    if let Err(e) = headers::accepts_sse(&h).and_then(|_| headers::check_version(&h)) {
        return respond::error(&e, None);
    }
    let rx = match last {
        Some(last) => {
            let Some((stream_id, seq)) = parse_event_id(last) else {
                return respond::error(&GatewayError::BadRequest(format!("Last-Event-ID '{last}' was not issued by this gateway")), None);
            };
            match session.stream(stream_id) {
                Some(s) => {
                    let rx = s.attach(Some(seq));
                    // The GET stream resumed, perhaps on a replica that continues the session.
                    if stream_id == 0 {
                        session.listen().await;
                    }
                    rx
                }
                None => return respond::error(&GatewayError::BadRequest(format!("the stream of event '{last}' has ended and cannot be resumed")), None),
            }
        }
        None => {
            let rx = session.standalone().attach(None);
            session.listen().await;
            rx
        }
    };
    respond::stream(rx, gw.config.limits.keepalive(), None)
}

pub async fn delete(
    State(gw): State<Arc<Gateway>>,
    Path(to): Path<Address>,
    RawQuery(query): RawQuery,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    h: HeaderMap,
) -> Response {
    match session_operation(&gw, &to, query.as_deref(), peer, &h, Operation::End).await {
        Ok(s) => {
            gw.sessions.end(&s.id).await;
            Response::builder().status(StatusCode::OK).body(Body::empty()).expect("static response parts")
        }
        Err(e) => respond::error(&e, None),
    }
}

/// Admits a session operation that carries no message (the GET stream, a resumption,
/// DELETE): the route's admission, the session, then the chain and the owner check. Ending
/// a session works on a retired version too: there is nothing to serve.
async fn session_operation(
    gw: &Gateway,
    to: &Address,
    query: Option<&str>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    h: &HeaderMap,
    op: Operation,
) -> Result<Arc<Session>, GatewayError> {
    let Admitted { client, .. } = admission::admit(gw, to, h, query, peer.map(|c| c.0.0))?;
    let sid = headers::get(h, SESSION_ID).ok_or(GatewayError::SessionRequired)?;
    let session = match op {
        Operation::End => gw.find_session(to, sid).await?,
        _ => gw.session(to, sid).await?,
    };
    session.admit_operation(op, &client).await?;
    Ok(session)
}

/// A JSON-RPC batch, which only protocol 2025-03-26 allows: each message goes its own way
/// upstream, and the answers share one SSE stream that ends when the last one is in.
async fn batch(gw: &Arc<Gateway>, to: &Address, h: &HeaderMap, client: Client, items: Vec<Value>) -> Response {
    let refuse = |why: &str| respond::error(&GatewayError::InvalidRequest(why.to_owned()), None);
    let Some(sid) = headers::get(h, SESSION_ID) else {
        return refuse("JSON-RPC batches are not supported outside a protocol 2025-03-26 session (removed in 2025-06-18)");
    };
    let session = match gw.session(to, sid).await {
        Ok(s) => s,
        Err(e) => return respond::error(&e, None),
    };
    let server = session.server.clone();
    if session.protocol_version.lock().expect("session lock").as_deref() != Some("2025-03-26") {
        return refuse("JSON-RPC batches are only part of protocol 2025-03-26 (removed in 2025-06-18); send one message per POST");
    }
    if items.is_empty() {
        return refuse("an empty batch");
    }
    let max = gw.config.limits.max_batch_entries;
    if items.len() > max {
        return refuse(&format!("a batch of {} entries is more than this gateway takes (limits.max_batch_entries: {max})", items.len()));
    }
    let mut streams = Vec::new();
    let mut errors = Vec::new();
    for item in items {
        let id_hint = item.get("id").and_then(crate::mcp::jsonrpc::Id::from_value);
        let msg = match Message::from_value(item) {
            Ok(m) if m.method() == Some("initialize") => {
                errors.push(Message::error(m.id.clone(), crate::mcp::error::code::INVALID_REQUEST, "initialize must not be part of a batch", None));
                continue;
            }
            Ok(m) => m,
            Err(e) => {
                let w = e.wire(true);
                errors.push(Message::error(id_hint, w.code, &w.message, None));
                continue;
            }
        };
        let x = (msg.kind != Kind::Response).then(|| observe::exchange(gw, &server, &msg, &client, Some(&session), TRANSPORT));
        let outcome = match (&msg.kind, &x) {
            (Kind::Request, Some(x)) => x.scope(session.request(&msg, &client, Some(x))).await.map(|s| streams.push(s.attach(None))),
            (Kind::Notification, Some(x)) => x.scope(session.notify(&msg, &client, Some(x))).await.inspect(|_| x.accepted()),
            _ => session.answer(&msg, &client).await,
        };
        if let Err(e) = outcome {
            if let Some(x) = &x {
                x.fail(&e);
            }
            let w = e.wire(true);
            errors.push(Message::error(msg.id.clone(), w.code, &w.message, w.data));
        }
    }
    if streams.is_empty() && errors.is_empty() {
        return respond::accepted();
    }
    let deadline = tokio::time::sleep(session.server.timeout);
    let early = futures::stream::iter(errors.into_iter().map(|m| crate::mcp::sse::encode(None, Some("message"), &m.to_bytes())));
    let answers = futures::stream::select_all(streams.into_iter().map(|rx| {
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|ev| (crate::mcp::sse::encode(Some(&ev.id), Some("message"), &ev.data), rx)) })
            .boxed()
    }));
    let body = early.chain(answers).take_until(deadline).map(Ok::<_, std::convert::Infallible>);
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(body))
        .expect("static response parts")
}
