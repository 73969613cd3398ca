//! A server's chain of bindings: the request phase in order before a message goes upstream,
//! the response phase in reverse on the answer coming back, one JSON-RPC message at a time.

use std::sync::Arc;

use serde_json::Value;

use super::bindings::{Hooks, Phase, PolicyPre, Rejection, Verdict};
use super::capability::Grants;
use super::engine::{Fault, Host, Instance, Runtime};
use super::exchange::{Attributes, Call, Caller, View};
use crate::config::PolicyLimits;
use crate::error::code;
use crate::jsonrpc::{Id, Kind, Message};

/// One policy bound to one server, ready to instantiate.
pub struct Binding {
    pub(super) rt: &'static Runtime,
    pub(super) pre: PolicyPre<Host>,
    pub(super) config: String,
    /// What the policy's `init` asked for at load.
    pub(super) hooks: Hooks,
    pub(super) fail_open: bool,
    pub(super) limits: PolicyLimits,
    pub(super) grants: Arc<Grants>,
}

/// The ordered bindings of one server. Swapped whole on reload; a request keeps the chain
/// it started with until its answer has passed back through it.
#[derive(Default)]
pub struct Chain {
    pub(super) bindings: Vec<Binding>,
}

/// Headers a policy wants on (or off) this one request to an HTTP backend.
#[derive(Debug, Default, Clone)]
pub struct HeaderEdits {
    pub set: Vec<(String, String)>,
    pub remove: Vec<String>,
}

impl HeaderEdits {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }
}

/// The outcome of the request phase.
pub enum Admission {
    /// Send this (possibly changed) message upstream.
    Forward { msg: Message, headers: HeaderEdits, trail: Option<Trail> },
    /// A policy answered: give the client this response, without calling the backend.
    Answer { msg: Message, trail: Option<Trail> },
    /// A policy refused, or failed closed.
    Deny(Rejection),
    /// A policy answered a notification, which has no answer: it goes nowhere.
    Drop,
}

/// What the response phase needs of a request: the chain it ran on, how far, and what it left.
pub struct Trail {
    chain: Arc<Chain>,
    ran: usize,
    call: Arc<Call>,
    attributes: Arc<Attributes>,
    /// For bindings that decide visibility: the attributes they saw in the request phase, so
    /// `tools/list` is filtered on exactly what a `tools/call` would have been judged on.
    seen: Vec<Option<Arc<Attributes>>>,
}

/// Where an exchange is going, as the session knows it.
pub struct Route {
    pub server: Arc<str>,
    pub session_id: Option<String>,
    pub protocol_version: Option<String>,
}

impl Chain {
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    pub fn len(&self) -> usize {
        self.bindings.len()
    }

    /// Runs the request phase on a client message.
    pub async fn admit(self: &Arc<Self>, msg: Message, route: Route, caller: Arc<Caller>) -> Admission {
        if self.is_empty() || msg.kind == Kind::Response {
            return Admission::Forward { msg, headers: HeaderEdits::default(), trail: None };
        }
        let is_call = msg.method() == Some("tools/call");
        let mut call = Arc::new(Call { msg, server: route.server, session_id: route.session_id, protocol_version: route.protocol_version, caller });
        let mut attributes = Arc::new(Attributes::new());
        let mut headers = HeaderEdits::default();
        let mut seen = Vec::with_capacity(self.bindings.len());
        for (i, b) in self.bindings.iter().enumerate() {
            let decides = b.hooks.contains(Hooks::VISIBILITY);
            seen.push(decides.then(|| attributes.clone()));
            // Read the target afresh: an earlier policy may have changed the params.
            let tool = call.msg.target().filter(|_| is_call && decides).map(str::to_owned);
            if !b.hooks.contains(Hooks::REQUEST) && tool.is_none() {
                continue;
            }
            let view = View { phase: Phase::Request, call: call.clone(), attributes: attributes.clone(), outcome: None };
            let verdict = match b.request(view, tool.as_deref()).await {
                Ok(Some(v)) => v,
                Ok(None) => return Admission::Deny(hidden(tool.as_deref().unwrap_or_default())),
                Err(fault) if b.fail_open => {
                    b.report(&fault, true);
                    continue;
                }
                Err(fault) => {
                    b.report(&fault, false);
                    return Admission::Deny(b.failed(&fault));
                }
            };
            match verdict {
                Verdict::Continue(c) => {
                    if let Some(p) = c.params {
                        let mut msg = call.msg.clone();
                        msg.body.insert("params".into(), p);
                        call = Arc::new(Call { msg, server: call.server.clone(), session_id: call.session_id.clone(), protocol_version: call.protocol_version.clone(), caller: call.caller.clone() });
                    }
                    headers.set.extend(c.set_headers);
                    headers.remove.extend(c.remove_headers);
                    if !c.attributes.is_empty() {
                        Arc::make_mut(&mut attributes).extend(c.attributes);
                    }
                }
                Verdict::Deny(r) => {
                    tracing::debug!(policy = %b.grants.policy, server = %b.grants.server, code = r.code, "policy denied");
                    return Admission::Deny(r);
                }
                Verdict::Respond(result) => {
                    let Some(id) = call.msg.id.clone() else {
                        return Admission::Drop;
                    };
                    let trail = self.trail(i, call, attributes, seen);
                    return Admission::Answer { msg: Message::result(id, result), trail };
                }
            }
        }
        let n = self.bindings.len();
        let msg = Arc::unwrap_or_clone(call.clone()).msg;
        Admission::Forward { msg, headers, trail: self.trail(n, call, attributes, seen) }
    }

    /// A trail only when some binding that ran has something to do on the way back.
    fn trail(self: &Arc<Self>, ran: usize, call: Arc<Call>, attributes: Arc<Attributes>, seen: Vec<Option<Arc<Attributes>>>) -> Option<Trail> {
        let needed = self.bindings[..ran].iter().any(|b| b.hooks.intersects(Hooks::RESPONSE | Hooks::VISIBILITY));
        needed.then(|| Trail { chain: self.clone(), ran, call, attributes, seen })
    }
}

impl Trail {
    /// Runs the response phase, in reverse order, on the answer to the request.
    pub async fn settle(self, answer: Message) -> Message {
        let mut out = Arc::new(answer);
        let mut attributes = self.attributes.clone();
        let is_list = self.call.msg.method() == Some("tools/list");
        for i in (0..self.ran).rev() {
            let b = &self.chain.bindings[i];
            let filter = is_list && b.hooks.contains(Hooks::VISIBILITY) && out.body.get("result").is_some();
            if !b.hooks.contains(Hooks::RESPONSE) && !filter {
                continue;
            }
            let view = View { phase: Phase::Response, call: self.call.clone(), attributes: attributes.clone(), outcome: Some(out.clone()) };
            let seen = self.seen[i].clone().unwrap_or_else(|| attributes.clone());
            let result = b.respond(view, filter.then_some(seen)).await;
            let id = out.id.clone();
            match result {
                Ok((verdict, kept)) => {
                    if let Some(kept) = kept {
                        keep_tools(Arc::make_mut(&mut out), &kept);
                    }
                    match verdict {
                        Some(Verdict::Continue(c)) => {
                            if let Some(result) = c.params {
                                Arc::make_mut(&mut out).body.insert("result".into(), result);
                            }
                            if !c.attributes.is_empty() {
                                Arc::make_mut(&mut attributes).extend(c.attributes);
                            }
                        }
                        Some(Verdict::Deny(r)) => out = Arc::new(Message::error(id, r.code, &r.message, r.data)),
                        Some(Verdict::Respond(result)) => out = Arc::new(answer_with(id, result)),
                        None => {}
                    }
                }
                Err(fault) if b.fail_open => b.report(&fault, true),
                Err(fault) => {
                    b.report(&fault, false);
                    let r = b.failed(&fault);
                    out = Arc::new(Message::error(id, r.code, &r.message, None));
                }
            }
        }
        Arc::unwrap_or_clone(out)
    }
}

/// Drops from a `tools/list` answer the tools whose `keep` entry is false.
fn keep_tools(answer: &mut Message, keep: &[bool]) {
    if let Some(tools) = answer.body.get_mut("result").and_then(|r| r.get_mut("tools")).and_then(Value::as_array_mut) {
        let mut k = keep.iter();
        tools.retain(|_| k.next().copied().unwrap_or(false));
    }
}

fn answer_with(id: Option<Id>, result: Value) -> Message {
    match id {
        Some(id) => Message::result(id, result),
        None => Message::error(None, code::POLICY_FAILED, "a policy answered a message that has no id", None),
    }
}

/// The refusal of a tool the caller may not see: the same decision that hid it from `tools/list`.
fn hidden(tool: &str) -> Rejection {
    Rejection { code: code::FORBIDDEN, message: format!("Forbidden: tool '{tool}' is not available"), data: None, status: None, headers: Vec::new() }
}

impl Binding {
    /// One request step: the visibility check for a `tools/call` (None if hidden), then `on-request`.
    async fn request(&self, view: View, tool: Option<&str>) -> Result<Option<Verdict>, Fault> {
        let mut inst = self.start(view).await?;
        if let Some(tool) = tool {
            if !inst.visible(tool).await? {
                return Ok(None);
            }
        }
        if !self.hooks.contains(Hooks::REQUEST) {
            return Ok(Some(Verdict::Continue(Default::default())));
        }
        inst.on_request().await.map(Some)
    }

    /// One response step: which listed tools stay (judged on `seen`), then `on-response`.
    async fn respond(&self, view: View, seen: Option<Arc<Attributes>>) -> Result<(Option<Verdict>, Option<Vec<bool>>), Fault> {
        let answer = view.outcome.clone();
        let after = view.attributes.clone();
        let mut inst = self.start(view).await?;
        let mut kept = None;
        if let (Some(seen), Some(answer)) = (seen, answer) {
            inst.view_mut().attributes = seen;
            let tools = answer.body.get("result").and_then(|r| r.get("tools")).and_then(Value::as_array).cloned().unwrap_or_default();
            let mut keep = Vec::with_capacity(tools.len());
            for t in &tools {
                let name = t.get("name").and_then(Value::as_str).unwrap_or_default();
                keep.push(inst.visible(name).await?);
            }
            // `on-response` sees the list as the caller will, so a rewrite (a rename) cannot bring hidden tools back.
            let mut filtered = (*answer).clone();
            keep_tools(&mut filtered, &keep);
            inst.view_mut().outcome = Some(Arc::new(filtered));
            kept = Some(keep);
            inst.view_mut().attributes = after;
        }
        let verdict = if self.hooks.contains(Hooks::RESPONSE) { Some(inst.on_response().await?) } else { None };
        Ok((verdict, kept))
    }

    async fn start(&self, view: View) -> Result<Instance, Fault> {
        Instance::start(self.rt, &self.pre, &self.config, self.limits, self.grants.clone(), view).await.map(|(i, _)| i)
    }

    fn report(&self, fault: &Fault, passed: bool) {
        let action = if passed { "let the message through (fail_open)" } else { "refused the message" };
        tracing::warn!(policy = %self.grants.policy, server = %self.grants.server, %fault, "policy failed; {action}");
    }

    /// What the client sees when this binding fails closed.
    fn failed(&self, fault: &Fault) -> Rejection {
        let why = match fault {
            Fault::Timeout(_) => "it exceeded its time limit",
            Fault::Memory(_) => "it exceeded its memory limit",
            Fault::Invalid(_) => "it returned an invalid verdict",
            _ => "it crashed",
        };
        Rejection { code: code::POLICY_FAILED, message: format!("policy '{}' failed ({why}); the request was refused", self.grants.policy), data: None, status: None, headers: Vec::new() }
    }
}
