//! The message phase: what the backend sends besides answers (progress, logging, its own
//! requests for sampling or elicitation) passes the policies one message at a time, as it
//! streams, in reverse chain order like an answer. Nothing is buffered: each message is
//! decided and delivered before the next is read.

use std::sync::Arc;

use tracing::Instrument;

use super::Fault;
use super::bindings::{Hooks, Passage, Phase, Rejection};
use super::chain::{Chain, end, observe};
use super::exchange::{Attributes, Call, View};
use crate::mcp::error::code;
use crate::mcp::jsonrpc::{Kind, Message};

/// What the message phase needs of a request: the bindings that ran on it, and what they left.
/// Cheap to clone, so a request's stream and its session can both hold one.
#[derive(Clone)]
pub struct Relay {
    pub(super) chain: Arc<Chain>,
    pub(super) ran: usize,
    pub(super) call: Arc<Call>,
    pub(super) attributes: Arc<Attributes>,
}

/// Where a message from the backend goes after the message phase.
pub enum Delivery {
    /// On to the client, possibly changed.
    Deliver(Message),
    /// Nowhere. For a request of the backend's, the error to answer it with.
    Drop(Option<Message>),
}

impl Relay {
    /// A relay only when some binding that ran asked for the message phase.
    pub(super) fn needed(chain: &Arc<Chain>, ran: usize, call: &Arc<Call>, attributes: &Arc<Attributes>) -> Option<Relay> {
        let wanted = chain.bindings[..ran].iter().any(|b| b.hooks.contains(Hooks::MESSAGE));
        wanted.then(|| Relay { chain: chain.clone(), ran, call: call.clone(), attributes: attributes.clone() })
    }

    /// Runs the message phase on one message from the backend.
    pub async fn pass(&self, msg: Message, x: Option<&crate::telemetry::Exchange>) -> Delivery {
        let mut msg = msg;
        // What the policies read: serialized once, and again only when one replaced the message.
        let mut text = String::new();
        for b in self.chain.bindings[..self.ran].iter().rev() {
            if !b.hooks.contains(Hooks::MESSAGE) {
                continue;
            }
            let view = View { phase: Phase::Message, call: self.call.clone(), attributes: self.attributes.clone(), outcome: None };
            if text.is_empty() {
                text = String::from_utf8_lossy(&msg.to_bytes()).into_owned();
            }
            let step = observe(b, "message", x);
            let decided = async {
                let mut inst = b.start(view).await?;
                let passage = inst.on_message(&text).await;
                b.finish(inst, passage.is_ok());
                passage
            };
            let result = match &step {
                Some(s) => decided.instrument(s.span()).await,
                None => decided.await,
            };
            let result = result.and_then(|p| match p {
                Passage::Pass => Ok(Step::Pass),
                Passage::Replace(v) => replacement(&msg, v).map(Step::Replace).map_err(Fault::Invalid),
                Passage::Drop(r) => Ok(Step::Drop(r)),
            });
            end(
                step,
                match &result {
                    Ok(Step::Pass) => "pass",
                    Ok(Step::Replace(_)) => "replace",
                    Ok(Step::Drop(_)) => "drop",
                    Err(_) if b.fail_open => "failed_open",
                    Err(_) => "failed",
                },
            );
            match result {
                Ok(Step::Pass) => {}
                Ok(Step::Replace(m)) => {
                    msg = m;
                    text.clear();
                }
                Ok(Step::Drop(r)) => {
                    tracing::debug!(policy = %b.grants.policy, server = %b.grants.server, method = msg.method().unwrap_or_default(), "policy dropped a message from the backend");
                    let r = r.unwrap_or_else(|| refused(&b.grants.policy));
                    return Delivery::Drop(answer_to(&msg, r));
                }
                Err(fault) if b.fail_open => b.report(&fault, true),
                Err(fault) => {
                    b.report(&fault, false);
                    return Delivery::Drop(answer_to(&msg, b.failed(&fault)));
                }
            }
        }
        Delivery::Deliver(msg)
    }
}

/// One binding's decision, with a replacement already checked.
enum Step {
    Pass,
    Replace(Message),
    Drop(Option<Rejection>),
}

/// A replacement keeps what the client routes on: the kind, the method and the id.
fn replacement(original: &Message, v: serde_json::Value) -> Result<Message, String> {
    let new = Message::from_value(v).map_err(|e| format!("replaced a message with one that is not JSON-RPC: {e}"))?;
    if new.kind != original.kind || new.method() != original.method() || new.id != original.id {
        return Err("replaced a message with one of another kind, method or id".into());
    }
    Ok(new)
}

/// The backend's request is answered, so that it does not wait for a client that never saw it.
fn answer_to(msg: &Message, r: Rejection) -> Option<Message> {
    (msg.kind == Kind::Request).then(|| Message::error(msg.id.clone(), r.code, &r.message, r.data))
}

fn refused(policy: &str) -> Rejection {
    Rejection {
        code: code::FORBIDDEN,
        message: format!("Forbidden: policy '{policy}' of the gateway refused this request"),
        data: None,
        status: None,
        headers: Vec::new(),
    }
}
