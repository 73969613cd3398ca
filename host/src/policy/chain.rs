//! A server's chain of bindings: the request phase in order before a message goes upstream,
//! the response phase in reverse on the answer coming back, one JSON-RPC message at a time.

use std::sync::Arc;

use serde_json::Value;
use tracing::Instrument;

use super::bindings::{Hooks, Phase, PolicyPre, Rejection, Verdict};
use super::capability::Grants;
use super::engine::{Fault, Host, Instance, Runtime};
use super::exchange::{Attributes, Call, Caller, View};
use super::relay::Relay;
use super::reuse::Kept;
use crate::config::PolicyLimits;
use crate::mcp::error::code;
use crate::mcp::jsonrpc::{Id, Kind, Message};
use crate::telemetry::Exchange;
use crate::telemetry::exchange::PolicyStep;
use tollgate_vocabulary::attr;

/// One policy bound to one server, ready to instantiate.
#[derive(Clone)]
pub struct Binding {
    pub(super) rt: &'static Runtime,
    pub(super) pre: PolicyPre<Host>,
    pub(super) config: String,
    /// Instances start from the state `init(config)` left at load (`preinit`): not run again.
    pub(super) initialized: bool,
    /// What the policy's `init` asked for at load.
    pub(super) hooks: Hooks,
    pub(super) fail_open: bool,
    pub(super) limits: PolicyLimits,
    pub(super) grants: Arc<Grants>,
    /// Idle instances, when the binding's instances are reused (`instances: reused`).
    pub(super) kept: Option<Arc<Kept>>,
}

/// The ordered bindings of one server. Swapped whole on reload; a request keeps the chain
/// it started with until its answer has passed back through it.
#[derive(Default)]
pub struct Chain {
    pub(super) bindings: Vec<Binding>,
    /// The bindings as they were declared (secrets as references), for the management API
    /// and `tollgate export`: swapped with the chain, so the two always agree.
    pub declared: Vec<crate::config::PolicyBinding>,
    /// Set through the management API: a reload of the file leaves it in place.
    pub from_api: bool,
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

/// Headers policies add to the client's HTTP response (quota and rate-limit figures).
pub type ClientHeaders = Vec<(String, String)>;

/// The outcome of the request phase.
pub enum Admission {
    /// Send this (possibly changed) message upstream; `client` goes on the client's response.
    Forward { msg: Message, headers: HeaderEdits, client: ClientHeaders, subject: Option<String>, trail: Option<Trail> },
    /// A policy answered: give the client this response, without calling the backend.
    Answer { msg: Message, client: ClientHeaders, subject: Option<String>, trail: Option<Trail> },
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
    /// The server version the exchange goes to, when the server has versions.
    pub version: Option<Arc<str>>,
    pub session_id: Option<String>,
    pub protocol_version: Option<String>,
    /// The server's canonical URL, which policies read as `resource-url`.
    pub resource: Arc<str>,
    /// Attributes the gateway sets before the first policy runs (the subscription and product).
    pub attributes: Attributes,
}

impl Chain {
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    pub fn len(&self) -> usize {
        self.bindings.len()
    }

    /// This chain's bindings, then `next`'s: a product's chain before a server's.
    pub fn then(&self, next: &Chain) -> Chain {
        Chain { bindings: self.bindings.iter().chain(next.bindings.iter()).cloned().collect(), ..Chain::default() }
    }

    /// Runs the request phase on a client message; `x` is the exchange operators see, handed
    /// in so each step is timed and traced under it.
    pub async fn admit(self: &Arc<Self>, msg: Message, route: Route, caller: Arc<Caller>, x: Option<&Exchange>) -> Admission {
        if self.is_empty() || msg.kind == Kind::Response {
            return Admission::Forward { msg, headers: HeaderEdits::default(), client: Vec::new(), subject: None, trail: None };
        }
        let is_call = msg.method() == Some("tools/call");
        let mut call = Arc::new(Call {
            msg,
            server: route.server,
            version: route.version,
            session_id: route.session_id,
            protocol_version: route.protocol_version,
            resource: route.resource,
            caller,
        });
        let mut attributes = Arc::new(route.attributes);
        let mut headers = HeaderEdits::default();
        let mut client = ClientHeaders::new();
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
            let step = observe(b, "request", x);
            let result = match &step {
                Some(s) => b.request(view, tool.as_deref()).instrument(s.span()).await,
                None => b.request(view, tool.as_deref()).await,
            };
            end(step, verdict_label(&result, b.fail_open));
            let verdict = match result {
                Ok(Some(v)) => v,
                Ok(None) => {
                    note(&attributes, x);
                    return Admission::Deny(hidden(tool.as_deref().unwrap_or_default()));
                }
                Err(fault) if b.fail_open => {
                    b.report(&fault, true);
                    continue;
                }
                Err(fault) => {
                    b.report(&fault, false);
                    note(&attributes, x);
                    return Admission::Deny(b.failed(&fault));
                }
            };
            match verdict {
                Verdict::Continue(c) => {
                    if let Some(p) = c.params {
                        let mut msg = call.msg.clone();
                        msg.body.insert("params".into(), p);
                        call = Arc::new(Call {
                            msg,
                            server: call.server.clone(),
                            version: call.version.clone(),
                            session_id: call.session_id.clone(),
                            protocol_version: call.protocol_version.clone(),
                            resource: call.resource.clone(),
                            caller: call.caller.clone(),
                        });
                    }
                    headers.set.extend(c.set_headers);
                    headers.remove.extend(c.remove_headers);
                    client.extend(c.client_headers);
                    if !c.attributes.is_empty() {
                        Arc::make_mut(&mut attributes).extend(c.attributes);
                    }
                }
                Verdict::Deny(r) => {
                    tracing::debug!(policy = %b.grants.policy, server = %b.grants.server, code = r.code, "policy denied");
                    note(&attributes, x);
                    return Admission::Deny(r);
                }
                Verdict::Respond(result) => {
                    let Some(id) = call.msg.id.clone() else {
                        return Admission::Drop;
                    };
                    note(&attributes, x);
                    let subject = subject_of(&attributes);
                    let trail = self.trail(i, call, attributes, seen);
                    return Admission::Answer { msg: Message::result(id, result), client, subject, trail };
                }
            }
        }
        note(&attributes, x);
        let subject = subject_of(&attributes);
        let n = self.bindings.len();
        let msg = Arc::unwrap_or_clone(call.clone()).msg;
        Admission::Forward { msg, headers, client, subject, trail: self.trail(n, call, attributes, seen) }
    }

    /// A trail only when some binding that ran has something to do on the way back.
    fn trail(self: &Arc<Self>, ran: usize, call: Arc<Call>, attributes: Arc<Attributes>, seen: Vec<Option<Arc<Attributes>>>) -> Option<Trail> {
        let needed = self.bindings[..ran].iter().any(|b| b.hooks.intersects(Hooks::RESPONSE | Hooks::VISIBILITY | Hooks::MESSAGE));
        needed.then(|| Trail { chain: self.clone(), ran, call, attributes, seen })
    }
}

impl Trail {
    /// What the message phase of this request needs, if any binding that ran asked for it.
    pub fn relay(&self) -> Option<Relay> {
        Relay::needed(&self.chain, self.ran, &self.call, &self.attributes)
    }

    /// The response phase of a request that may have none: the answer, with the headers
    /// response-phase policies add appended to `client`.
    pub async fn settle_into(trail: Option<Trail>, answer: Message, client: &mut ClientHeaders, x: Option<&Exchange>) -> Message {
        let Some(t) = trail else { return answer };
        let (answer, more) = t.settle(answer, x).await;
        client.extend(more);
        answer
    }

    /// Runs the response phase, in reverse order, on the answer to the request. Returns the
    /// answer and the headers response-phase policies add to the client's response.
    pub async fn settle(self, answer: Message, x: Option<&Exchange>) -> (Message, ClientHeaders) {
        let mut out = Arc::new(answer);
        let mut client = ClientHeaders::new();
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
            let step = observe(b, "response", x);
            let result = match &step {
                Some(s) => b.respond(view, filter.then_some(seen)).instrument(s.span()).await,
                None => b.respond(view, filter.then_some(seen)).await,
            };
            end(
                step,
                match &result {
                    Ok((Some(v), _)) => verdict_name(v),
                    Ok((None, _)) => "filtered",
                    Err(_) if b.fail_open => "failed_open",
                    Err(_) => "failed",
                },
            );
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
                            client.extend(c.client_headers);
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
        (Arc::unwrap_or_clone(out), client)
    }
}

/// Who the chain says the caller is (`auth.iss` and `auth.sub`, set by an authenticating
/// policy): a session stays with the subject that opened it, and the same subject name from
/// another issuer is someone else.
fn subject_of(attributes: &Attributes) -> Option<String> {
    let sub = attributes.get(attr::SUBJECT)?;
    Some(match attributes.get(attr::ISSUER) {
        Some(iss) => format!("{iss} {sub}"),
        None => sub.clone(),
    })
}

/// Times one policy step, when the message is being observed.
pub(super) fn observe(b: &Binding, phase: &'static str, x: Option<&Exchange>) -> Option<PolicyStep> {
    x.map(|x| x.policy_step(&b.grants.policy, phase))
}

pub(super) fn end(step: Option<PolicyStep>, verdict: &'static str) {
    if let Some(s) = step {
        s.end(verdict);
    }
}

/// What operators are told the caller is (subject, product, subscription), once the chain has said.
fn note(attributes: &Attributes, x: Option<&Exchange>) {
    if let Some(x) = x {
        x.note_attributes(attributes);
    }
}

fn verdict_label(result: &Result<Option<Verdict>, Fault>, fail_open: bool) -> &'static str {
    match result {
        Ok(Some(v)) => verdict_name(v),
        Ok(None) => "hidden",
        Err(_) if fail_open => "failed_open",
        Err(_) => "failed",
    }
}

fn verdict_name(v: &Verdict) -> &'static str {
    match v {
        Verdict::Continue(_) => "continue",
        Verdict::Deny(_) => "deny",
        Verdict::Respond(_) => "respond",
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
        let decided = async {
            if let Some(tool) = tool
                && !inst.visible(tool).await?
            {
                return Ok(None);
            }
            if !self.hooks.contains(Hooks::REQUEST) {
                return Ok(Some(Verdict::Continue(Default::default())));
            }
            inst.on_request().await.map(Some)
        }
        .await;
        self.finish(inst, decided.is_ok());
        decided
    }

    /// One response step: which listed tools stay (judged on `seen`), then `on-response`.
    async fn respond(&self, view: View, seen: Option<Arc<Attributes>>) -> Result<(Option<Verdict>, Option<Vec<bool>>), Fault> {
        let mut inst = self.start(view).await?;
        let decided = self.respond_on(&mut inst, seen).await;
        self.finish(inst, decided.is_ok());
        decided
    }

    async fn respond_on(&self, inst: &mut Instance, seen: Option<Arc<Attributes>>) -> Result<(Option<Verdict>, Option<Vec<bool>>), Fault> {
        let answer = inst.view_mut().outcome.clone();
        let after = inst.view_mut().attributes.clone();
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

    /// An instance for one step: one a finished step left, when the binding reuses them, else
    /// a new one (from the binding's snapshot).
    pub(super) async fn start(&self, view: View) -> Result<Instance, Fault> {
        if let Some(mut inst) = self.kept.as_ref().and_then(|k| k.take()) {
            inst.renew(view);
            return Ok(inst);
        }
        let config = (!self.initialized).then_some(&self.config);
        Instance::start(self.rt, &self.pre, config, self.limits, self.grants.clone(), view).await.map(|(i, _)| i)
    }

    /// After a step: a reused binding keeps an instance whose step ended cleanly; any fault
    /// (a trap, a deadline, the memory limit) and the instance is dropped, never used again.
    pub(super) fn finish(&self, mut inst: Instance, clean: bool) {
        if let Some(kept) = &self.kept
            && clean
            && inst.retire(View::blank())
        {
            kept.keep(inst);
        }
    }

    pub(super) fn report(&self, fault: &Fault, passed: bool) {
        let action = if passed { "let the message through (fail_open)" } else { "refused the message" };
        tracing::warn!(policy = %self.grants.policy, server = %self.grants.server, %fault, "policy failed; {action}");
    }

    /// What the client sees when this binding fails closed.
    pub(super) fn failed(&self, fault: &Fault) -> Rejection {
        let why = match fault {
            Fault::Timeout(_) => "it exceeded its time limit",
            Fault::Memory(_) => "it exceeded its memory limit",
            Fault::Invalid(_) => "it returned an invalid verdict",
            _ => "it crashed",
        };
        Rejection {
            code: code::POLICY_FAILED,
            message: format!("policy '{}' failed ({why}); the request was refused", self.grants.policy),
            data: None,
            status: None,
            headers: Vec::new(),
        }
    }
}
