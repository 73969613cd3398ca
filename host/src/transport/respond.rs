//! Turning gateway results into HTTP responses: errors (the one mapping to the wire), single
//! JSON answers, and SSE streams that never buffer and never sit silent long enough to be cut.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use hyper::StatusCode;
use tokio::time::Instant;

use crate::mcp::error::GatewayError;
use crate::mcp::jsonrpc::{Id, Message};
use crate::mcp::sse;
use crate::session::stream::{OutStream, Receiver};
use crate::session::{Event, Session};

/// The HTTP response for an error, with the JSON-RPC error as its body.
pub fn error(err: &GatewayError, id: Option<Id>) -> Response {
    let w = err.wire(id.is_some());
    if w.status.is_server_error() {
        tracing::warn!(error = %err, "request failed");
    } else {
        tracing::debug!(error = %err, "request refused");
    }
    let msg = Message::error(id, w.code, &w.message, w.data);
    let mut resp = json(w.status, msg.to_bytes());
    for (k, v) in &w.headers {
        if let (Ok(k), Ok(v)) = (hyper::header::HeaderName::from_bytes(k.as_bytes()), hyper::header::HeaderValue::from_str(v)) {
            resp.headers_mut().append(k, v);
        }
    }
    resp
}

pub fn json(status: StatusCode, body: Bytes) -> Response {
    Response::builder().status(status).header("content-type", "application/json").body(Body::from(body)).expect("static response parts")
}

pub fn accepted() -> Response {
    Response::builder().status(StatusCode::ACCEPTED).body(Body::empty()).expect("static response parts")
}

fn sse_response(body: Body) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .header("x-accel-buffering", "no")
        .body(body)
        .expect("static response parts")
}

/// What ends a request's stream early: its deadline, and the session to tell about it.
pub struct Deadline {
    pub at: Instant,
    pub session: Arc<Session>,
    pub id: Id,
}

/// Answers one request from its stream: plain JSON when the answer is the first thing to
/// arrive (the fast path), otherwise an SSE stream that carries everything before it too.
/// Either carries the headers the policies added for the client by then.
pub async fn answer(stream: &Arc<OutStream>, deadline: Deadline, keepalive: Duration, session_header: Option<&str>) -> Response {
    let (mut rx, pump) = stream.attach_driving();
    let first = match pump {
        // Read the backend's answer stream on this task until the first event is in; what is
        // left of it (often only its end) goes on as a task when the pump is dropped.
        Some(mut pump) => {
            let wait = async {
                tokio::select! {
                    biased;
                    ev = rx.recv() => ev,
                    () = &mut pump => rx.recv().await,
                }
            };
            tokio::time::timeout_at(deadline.at, wait).await
        }
        None => tokio::time::timeout_at(deadline.at, rx.recv()).await,
    };
    let mut resp = match first {
        Ok(Some(ev)) if ev.last => with_headers(json(StatusCode::OK, ev.data), &stream.client_headers()),
        Ok(Some(ev)) => with_headers(sse_response(stream_body(Some(ev), rx, Some(deadline), keepalive, None)), &stream.client_headers()),
        Ok(None) => error(
            &GatewayError::backend(&deadline.session.server.name, crate::mcp::error::BackendError::Closed("the session closed before the answer".into())),
            Some(deadline.id),
        ),
        Err(_) => {
            let server = deadline.session.server.name.clone();
            deadline.session.cancel(&deadline.id, "the gateway's request timeout passed").await;
            error(&GatewayError::backend(&server, crate::mcp::error::BackendError::Timeout(deadline.session.server.timeout)), Some(deadline.id))
        }
    };
    if let Some(sid) = session_header {
        resp.headers_mut().insert(crate::mcp::headers::SESSION_ID, sid.parse().expect("session ids are visible ASCII"));
    }
    resp
}

/// Adds policies' headers to a response; the names and values were checked when the verdict came in.
pub fn with_headers(mut resp: Response, headers: &[(String, String)]) -> Response {
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (hyper::header::HeaderName::from_bytes(k.as_bytes()), hyper::header::HeaderValue::from_str(v)) {
            resp.headers_mut().append(k, v);
        }
    }
    resp
}

/// A long-lived SSE stream (the GET stream, a resumed stream, or a legacy connection).
pub fn stream(rx: Receiver, keepalive: Duration, legacy_endpoint: Option<String>) -> Response {
    sse_response(stream_body(None, rx, None, keepalive, legacy_endpoint))
}

struct Pump {
    first: Option<Event>,
    rx: Receiver,
    deadline: Option<Deadline>,
    keepalive: Duration,
    endpoint: Option<String>,
    legacy: bool,
    done: bool,
}

fn stream_body(first: Option<Event>, rx: Receiver, deadline: Option<Deadline>, keepalive: Duration, endpoint: Option<String>) -> Body {
    let legacy = endpoint.is_some();
    let pump = Pump { first, rx, deadline, keepalive, endpoint, legacy, done: false };
    let s = futures::stream::unfold(pump, |mut p| async move {
        if p.done {
            return None;
        }
        if let Some(e) = p.endpoint.take() {
            return Some((Ok::<Bytes, Infallible>(sse::encode(None, Some("endpoint"), e.as_bytes())), p));
        }
        let ev = match p.first.take() {
            Some(ev) => Some(ev),
            None => {
                let wait = match &p.deadline {
                    Some(d) => (d.at - Instant::now()).min(p.keepalive),
                    None => p.keepalive,
                };
                match tokio::time::timeout(wait, p.rx.recv()).await {
                    Ok(ev) => ev,
                    Err(_) => {
                        if let Some(d) = p.deadline.take_if(|d| Instant::now() >= d.at) {
                            // The request ran out of time: tell the client, and the backend to stop.
                            let server = d.session.server.name.clone();
                            // Boxed: held inline, its state would size every open stream.
                            Box::pin(d.session.cancel(&d.id, "the gateway's request timeout passed")).await;
                            let err = GatewayError::backend(&server, crate::mcp::error::BackendError::Timeout(d.session.server.timeout)).wire(true);
                            let msg = Message::error(Some(d.id), err.code, &err.message, None);
                            p.done = true;
                            return Some((Ok(sse::encode(None, Some("message"), &msg.to_bytes())), p));
                        }
                        return Some((Ok(Bytes::from_static(sse::KEEPALIVE)), p));
                    }
                }
            }
        };
        let ev = ev?;
        let id = if p.legacy { None } else { Some(ev.id.as_str()) };
        let bytes = sse::encode(id, Some("message"), &ev.data);
        if ev.last {
            p.done = true;
        }
        Some((Ok(bytes), p))
    });
    Body::from_stream(s)
}
