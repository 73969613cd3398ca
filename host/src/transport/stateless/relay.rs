//! A stateless request's SSE answer, relayed message by message: dropping the client's body
//! drops the backend's stream. The answer passes the response phase of the chain on its way
//! (and the product's tool list), every other message the message phase, and the exchange
//! is told the answer as the client gets it.

use std::collections::VecDeque;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use hyper::StatusCode;

use crate::dispatch::WayBack;
use crate::mcp::error::{BackendError, GatewayError};
use crate::mcp::jsonrpc::{Kind, Message};
use crate::mcp::sse;
use crate::policy::{Delivery, Relay};
use crate::telemetry::Exchange;

/// The request whose answer is on the stream, and what its way back needs.
pub struct Pending {
    pub server: String,
    pub request: Message,
    /// The answer's way back; taken when the answer comes.
    pub back: Option<WayBack>,
    pub exchange: Exchange,
}

struct State {
    body: BoxStream<'static, Result<Bytes, BackendError>>,
    dec: sse::Decoder,
    out: VecDeque<Bytes>,
    done: bool,
    answered: bool,
    relay: Option<Relay>,
    pending: Pending,
}

pub fn stream(status: StatusCode, body: BoxStream<'static, Result<Bytes, BackendError>>, pending: Pending) -> Response {
    let relay = pending.back.as_ref().and_then(WayBack::relay);
    let state = State { body, dec: sse::Decoder::default(), out: VecDeque::new(), done: false, answered: false, relay, pending };
    let s = futures::stream::unfold(state, |mut r| async move {
        loop {
            if let Some(b) = r.out.pop_front() {
                return Some((Ok::<_, std::convert::Infallible>(b), r));
            }
            if r.done {
                return None;
            }
            let mut events = Vec::new();
            match r.body.next().await {
                Some(Ok(chunk)) => {
                    if r.dec.feed(&chunk, &mut events).is_err() {
                        r.done = true;
                    }
                }
                Some(Err(_)) | None => {
                    r.done = true;
                    if !r.answered {
                        // The backend's stream ended without an answer: say so, so the client can retry.
                        let e = GatewayError::backend(&r.pending.server, BackendError::Closed("the stream ended before the answer".into()));
                        r.pending.exchange.fail(&e);
                        let w = e.wire(true);
                        r.out.push_back(sse::encode(None, Some("message"), &Message::error(r.pending.request.id.clone(), w.code, &w.message, None).to_bytes()));
                    }
                }
            }
            for ev in events {
                if ev.data.trim().is_empty() {
                    continue;
                }
                let Ok(m) = Message::parse(ev.data.as_bytes()) else { continue };
                let Some(m) = r.pass(m).await else { continue };
                r.out.push_back(sse::encode(None, Some("message"), &m.to_bytes()));
            }
        }
    });
    Response::builder()
        .status(status)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .header("x-accel-buffering", "no")
        .body(Body::from_stream(s))
        .expect("static response parts")
}

impl State {
    /// One message of the backend's stream on its way to the client, or `None` if a policy
    /// dropped it (there is no session to answer a dropped request of the backend's on).
    async fn pass(&mut self, mut m: Message) -> Option<Message> {
        if m.kind == Kind::Response && m.id == self.pending.request.id {
            self.answered = true;
            if let Some(back) = self.pending.back.take() {
                m = back.settle(m, Some(&self.pending.exchange)).await.0;
            }
            return Some(m);
        }
        let Some(relay) = &self.relay else { return Some(m) };
        match relay.pass(m, Some(&self.pending.exchange)).await {
            Delivery::Deliver(passed) => Some(passed),
            Delivery::Drop(_) => None,
        }
    }
}
