//! A virtual server (`compose`): one upstream session made of one session per member, each
//! opened through the gateway's own client listener over loopback (`/{member}/mcp`), so every
//! member message passes the member's admission, product check, chain and telemetry as any
//! client's would.
//!
//! Names the client sees are the members' under their prefix (`names.rs`); lists fan out to
//! every member and merge, with a cursor that keeps each member's place (`lists.rs`); calls,
//! reads and completions go to the member that owns the name or URI; what members send comes
//! back through [`route`], with ids remapped so two members' never collide.

mod lists;
mod names;
mod route;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;

use super::http::{HttpBackend, HttpUpstream};
use super::{Client, Inbox, Pump};
use crate::config::{ComposeMember, Loopback, Secret};
use crate::mcp::error::{BackendError, GatewayError};
use crate::mcp::headers::{VIA, VIA_KEY};
use crate::mcp::jsonrpc::{Id, Kind, Message};
use crate::policy::HeaderEdits;
use crate::telemetry::Exchange;
use names::{Learned, List};

/// A virtual server's members, shared by all its sessions.
pub struct ComposeBackend {
    server: Arc<str>,
    members: Vec<Member>,
    /// How long the gateway's own requests to a member (`initialize`, a list's page) may take.
    timeout: Duration,
}

struct Member {
    spec: ComposeMember,
    /// `docs` or `docs@v2`, for logs.
    key: String,
    backend: Arc<HttpBackend>,
}

impl ComposeBackend {
    /// `loopback` is where the client listener is reached from this host, and the key that
    /// vouches for the gateway's own requests.
    pub fn new(server: &str, members: &[ComposeMember], loopback: &Loopback, client: Client, timeout: Duration) -> Result<ComposeBackend, GatewayError> {
        let headers = std::collections::BTreeMap::from([(VIA.to_owned(), Secret::from(server)), (VIA_KEY.to_owned(), Secret::from(&*loopback.key))]);
        let members = members
            .iter()
            .map(|m| {
                let path = match &m.version {
                    Some(v) => format!("{}/{v}", m.server),
                    None => m.server.clone(),
                };
                let url = format!("http://{}/{path}/mcp", loopback.addr);
                let backend = HttpBackend::new(&m.key(), &url, &headers, false, client.clone(), timeout)?;
                Ok(Member { spec: m.clone(), key: m.key(), backend: Arc::new(backend) })
            })
            .collect::<Result<Vec<_>, GatewayError>>()?;
        // A member's own door answers -32005 past its own request timeout; this bound leaves a
        // slow member out in time for the rest to be served before the client's request expires.
        Ok(ComposeBackend { server: server.into(), members, timeout: timeout * 9 / 10 })
    }

    /// Opens one session per member; `initialize` opens them upstream.
    pub fn connect(self: &Arc<Self>, inbox: Inbox) -> ComposeUpstream {
        let shared = Arc::new_cyclic(|weak: &Weak<Shared>| Shared {
            links: self
                .members
                .iter()
                .enumerate()
                .map(|(i, m)| Link {
                    upstream: Mutex::new(Arc::new(m.backend.connect(Arc::new(route::MemberInbox { shared: weak.clone(), member: i })))),
                    live: AtomicBool::new(false),
                    reopening: tokio::sync::Mutex::new(()),
                })
                .collect(),
            backend: self.clone(),
            inbox,
            state: Mutex::new(State::default()),
            next: AtomicU64::new(1),
            weak: weak.clone(),
            listening: AtomicBool::new(false),
        });
        ComposeUpstream { shared }
    }
}

/// One virtual session.
pub struct ComposeUpstream {
    shared: Arc<Shared>,
}

struct Shared {
    backend: Arc<ComposeBackend>,
    /// The client session.
    inbox: Inbox,
    /// One member session each, in the members' order.
    links: Vec<Link>,
    state: Mutex<State>,
    next: AtomicU64,
    weak: Weak<Shared>,
    /// The client has a stream for what members send unasked.
    listening: AtomicBool,
}

struct Link {
    /// Replaced when the member lost the session.
    upstream: Mutex<Arc<HttpUpstream>>,
    /// It answered the client's `initialize`: a member left out then stays out of the session
    /// (one whose session ends later is opened again on its next request).
    live: AtomicBool,
    /// Held while a new session is opened, so concurrent requests open one.
    reopening: tokio::sync::Mutex<()>,
}

impl Link {
    fn upstream(&self) -> Arc<HttpUpstream> {
        self.upstream.lock().expect("compose lock").clone()
    }
}

#[derive(Default)]
struct State {
    /// Requests sent to members, by the id the member saw.
    calls: HashMap<Id, Call>,
    /// The id a member saw for a client request, by the client's id.
    by_client: HashMap<Id, Id>,
    /// Requests members sent the client, by the id the client saw: the member and its own id.
    asked: HashMap<Id, (usize, Id)>,
    /// The client's `initialize` params, replayed to a member that lost its session.
    init: Option<Value>,
    /// What each member said it has, from its `initialize` answer.
    capabilities: HashMap<usize, Value>,
    learned: Learned,
}

enum Call {
    /// A client request, by the client's id.
    Client { member: usize, id: Id },
    /// The gateway's own (a list's page, `initialize`), waited for here.
    Internal { member: usize, answer: oneshot::Sender<Message> },
}

impl Call {
    fn member(&self) -> usize {
        match self {
            Call::Client { member, .. } | Call::Internal { member, .. } => *member,
        }
    }
}

impl ComposeUpstream {
    /// `x`, the client's exchange, is told which member serves a request.
    pub async fn send(&self, msg: &Message, edits: &HeaderEdits, x: Option<&Exchange>) -> Result<Option<Pump>, BackendError> {
        let s = &self.shared;
        match msg.kind {
            Kind::Request if msg.method() == Some("initialize") => s.request(msg, edits, x).await,
            // The rest runs in the request's pump: driven by the task that waits for the answer,
            // or on its own for a legacy SSE client, whose POST is answered at once.
            Kind::Request => {
                let (shared, msg, edits, x) = (s.clone(), msg.clone(), edits.clone(), x.cloned());
                Ok(Some(Pump::new(async move {
                    let id = msg.id.clone().expect("a request has an id");
                    match shared.request(&msg, &edits, x.as_ref()).await {
                        Ok(Some(pump)) => pump.await,
                        Ok(None) => {}
                        Err(e) => shared.inbox.deliver(super::failure(shared.server(), &id, e), Some(id)).await,
                    }
                })))
            }
            Kind::Notification => s.notify(msg, edits).await.map(|()| None),
            Kind::Response => s.answer(msg, edits).await.map(|()| None),
        }
    }

    pub fn want_stream(&self) {
        self.shared.listening.store(true, Ordering::Release);
        for l in &self.shared.links {
            l.upstream().want_stream();
        }
    }

    pub async fn close(&self) {
        let all: Vec<Arc<HttpUpstream>> = self.shared.links.iter().map(Link::upstream).collect();
        futures::future::join_all(all.iter().map(|u| u.close())).await;
    }
}

impl Shared {
    fn server(&self) -> &str {
        &self.backend.server
    }

    fn member(&self, i: usize) -> &Member {
        &self.backend.members[i]
    }

    fn live(&self) -> Vec<usize> {
        (0..self.links.len()).filter(|i| self.links[*i].live.load(Ordering::Acquire)).collect()
    }

    fn fresh(&self) -> Id {
        Id::Str(format!("tollgate-{}", self.next.fetch_add(1, Ordering::Relaxed)))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("compose lock")
    }

    /// Answers the client's request `id` here, with an error as the gateway words it.
    async fn refuse(&self, id: &Id, e: GatewayError) -> Result<Option<Pump>, BackendError> {
        let w = e.wire(true);
        self.inbox.deliver(Message::error(Some(id.clone()), w.code, &w.message, w.data), Some(id.clone())).await;
        Ok(None)
    }

    async fn request(&self, msg: &Message, edits: &HeaderEdits, x: Option<&Exchange>) -> Result<Option<Pump>, BackendError> {
        let id = msg.id.clone().expect("a request has an id");
        let method = msg.method().unwrap_or_default();
        let params = msg.params().cloned().unwrap_or_else(|| Value::Object(Default::default()));
        if method == "initialize" {
            return self.initialize(&id, params, edits).await;
        }
        if let Some(list) = List::of(method) {
            let answer = match self.list(list, params.get("cursor").and_then(Value::as_str), edits).await {
                Ok(result) => Message::result(id.clone(), result),
                Err(e) => return self.refuse(&id, e).await,
            };
            self.inbox.deliver(answer, Some(id)).await;
            return Ok(None);
        }
        match method {
            "ping" => {
                self.inbox.deliver(Message::result(id.clone(), serde_json::json!({})), Some(id)).await;
                Ok(None)
            }
            "logging/setLevel" => {
                let asked = self.live().into_iter().map(|i| self.ask(i, method, params.clone(), edits));
                futures::future::join_all(asked).await;
                self.inbox.deliver(Message::result(id.clone(), serde_json::json!({})), Some(id)).await;
                Ok(None)
            }
            "tools/call" | "prompts/get" => {
                let list = if method == "tools/call" { List::Tools } else { List::Prompts };
                let name = params.get("name").and_then(Value::as_str).unwrap_or_default();
                match self.owner(list, name, edits).await {
                    Some((member, own)) => self.forward(member, msg, |p| p["name"] = Value::from(own), edits, x).await,
                    None => self.refuse(&id, GatewayError::InvalidParams(format!("unknown {}: {name}", list.noun()))).await,
                }
            }
            "completion/complete" => self.complete(msg, &params, edits, x).await,
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => self.by_uri(msg, &params, edits, x).await,
            _ => self.refuse(&id, GatewayError::MethodNotFound(format!("{method} is not served by the virtual server {}", self.server()))).await,
        }
    }

    /// `completion/complete`: by prompt name, or by a resource template's URI.
    async fn complete(&self, msg: &Message, params: &Value, edits: &HeaderEdits, x: Option<&Exchange>) -> Result<Option<Pump>, BackendError> {
        let id = msg.id.clone().expect("a request has an id");
        let reference = params.get("ref").cloned().unwrap_or_default();
        match reference.get("type").and_then(Value::as_str) {
            Some("ref/prompt") => {
                let name = reference.get("name").and_then(Value::as_str).unwrap_or_default();
                match self.owner(List::Prompts, name, edits).await {
                    Some((member, own)) => self.forward(member, msg, |p| p["ref"]["name"] = Value::from(own), edits, x).await,
                    None => self.refuse(&id, GatewayError::InvalidParams(format!("unknown prompt: {name}"))).await,
                }
            }
            Some("ref/resource") => {
                let uri = reference.get("uri").and_then(Value::as_str).unwrap_or_default();
                match self.uri_owner(uri, edits).await {
                    Some(member) => self.forward(member, msg, |_| {}, edits, x).await,
                    None => self.refuse(&id, GatewayError::InvalidParams(format!("unknown resource template: {uri}"))).await,
                }
            }
            _ => self.refuse(&id, GatewayError::InvalidParams("completion/complete needs `ref` of type ref/prompt or ref/resource".into())).await,
        }
    }

    /// `resources/read`, `subscribe`, `unsubscribe`: to the member whose lists show the URI,
    /// else to each member in order until one does not answer "not found".
    async fn by_uri(&self, msg: &Message, params: &Value, edits: &HeaderEdits, x: Option<&Exchange>) -> Result<Option<Pump>, BackendError> {
        let id = msg.id.clone().expect("a request has an id");
        let uri = params.get("uri").and_then(Value::as_str).unwrap_or_default().to_owned();
        if let Some(member) = self.uri_owner(&uri, edits).await {
            return self.forward(member, msg, |_| {}, edits, x).await;
        }
        let method = msg.method().unwrap_or_default();
        let mut last = None;
        for member in self.live().into_iter().filter(|i| self.offers(*i, List::Resources)) {
            match self.ask(member, method, params.clone(), edits).await {
                Ok(answer) if !is_not_found(&answer) => {
                    if answer.body.contains_key("result") {
                        let _ = self.state().learned.uri(&uri, member);
                    }
                    if let Some(x) = x {
                        x.note_member(&self.member(member).key);
                    }
                    let mut answer = answer;
                    set_id(&mut answer, &id);
                    self.inbox.deliver(answer, Some(id)).await;
                    return Ok(None);
                }
                Ok(answer) => last = Some(answer),
                Err(e) => tracing::warn!(server = %self.server(), member = %self.member(member).key, error = %e, "a member did not answer {method}"),
            }
        }
        match last {
            Some(mut answer) => {
                set_id(&mut answer, &id);
                self.inbox.deliver(answer, Some(id)).await;
                Ok(None)
            }
            None => self.refuse(&id, GatewayError::InvalidParams(format!("unknown resource: {uri}"))).await,
        }
    }

    /// Sends a client request on to `member` under an id of the gateway's, its params as
    /// `edit` leaves them; its answer comes back with the client's id ([`route`]).
    async fn forward(
        &self,
        member: usize,
        msg: &Message,
        edit: impl FnOnce(&mut Value),
        edits: &HeaderEdits,
        x: Option<&Exchange>,
    ) -> Result<Option<Pump>, BackendError> {
        let client_id = msg.id.clone().expect("a request has an id");
        if !self.links[member].live.load(Ordering::Acquire) {
            return Err(BackendError::Unreachable(format!("member {} is not connected", self.member(member).key)));
        }
        if let Some(x) = x {
            x.note_member(&self.member(member).key);
        }
        let mid = self.fresh();
        let mut out = msg.clone();
        set_id(&mut out, &mid);
        if let Some(p) = out.body.get_mut("params") {
            edit(p);
        }
        {
            let mut st = self.state();
            st.calls.insert(mid.clone(), Call::Client { member, id: client_id.clone() });
            st.by_client.insert(client_id.clone(), mid.clone());
        }
        tracing::debug!(server = %self.server(), member = %self.member(member).key, id = %client_id, "to member");
        match self.send_to(member, &out, edits).await {
            Ok(pump) => Ok(pump),
            Err(e) => {
                let mut st = self.state();
                st.calls.remove(&mid);
                st.by_client.remove(&client_id);
                Err(e)
            }
        }
    }

    /// A request of the gateway's own to `member`, and its answer (error answers included).
    async fn ask(&self, member: usize, method: &str, params: Value, edits: &HeaderEdits) -> Result<Message, BackendError> {
        let upstream = self.links[member].upstream();
        match self.ask_on(member, &upstream, method, params.clone(), edits).await {
            Err(BackendError::SessionLost) if method != "initialize" => {
                self.reopen(member, &upstream, edits).await?;
                self.ask_on(member, &self.links[member].upstream(), method, params, edits).await
            }
            other => other,
        }
    }

    /// As [`Shared::ask`], on this session of the member, whatever becomes of it.
    async fn ask_on(&self, member: usize, upstream: &HttpUpstream, method: &str, params: Value, edits: &HeaderEdits) -> Result<Message, BackendError> {
        let id = self.fresh();
        let (tx, rx) = oneshot::channel();
        self.state().calls.insert(id.clone(), Call::Internal { member, answer: tx });
        let timeout = self.backend.timeout;
        let asked = async {
            let pump = upstream.send(&Message::request(id.clone(), method, params), edits).await?;
            if let Some(p) = pump {
                p.await;
            }
            rx.await.map_err(|_| BackendError::Closed("the member's session ended before it answered".into()))
        };
        let answer = tokio::time::timeout(timeout, asked).await.unwrap_or(Err(BackendError::Timeout(timeout)));
        if answer.is_err() {
            self.state().calls.remove(&id);
        }
        answer
    }

    async fn notify(&self, msg: &Message, edits: &HeaderEdits) -> Result<(), BackendError> {
        if msg.method() == Some("notifications/cancelled") {
            let client_id = msg.params().and_then(|p| p.get("requestId")).and_then(Id::from_value);
            let found = client_id.and_then(|c| {
                let mut st = self.state();
                let mid = st.by_client.remove(&c)?;
                let member = st.calls.get(&mid)?.member();
                Some((member, mid))
            });
            let Some((member, mid)) = found else { return Ok(()) };
            let mut note = msg.clone();
            if let Some(p) = note.body.get_mut("params") {
                p["requestId"] = mid.to_value();
            }
            return self.links[member].upstream().send(&note, edits).await.map(drop);
        }
        // `initialized`, `roots/list_changed` and the rest concern every member.
        let sent = self.live().into_iter().map(|i| async move { (i, self.links[i].upstream().send(msg, edits).await) });
        for (i, r) in futures::future::join_all(sent).await {
            if let Err(e) = r {
                tracing::warn!(server = %self.server(), member = %self.member(i).key, error = %e, "a notification did not reach a member");
            }
        }
        Ok(())
    }

    /// The client's answer to a request a member sent: back to that member, under its own id.
    async fn answer(&self, msg: &Message, edits: &HeaderEdits) -> Result<(), BackendError> {
        let Some(id) = &msg.id else { return Ok(()) };
        let Some((member, own)) = self.state().asked.remove(id) else {
            tracing::debug!(server = %self.server(), %id, "an answer to no member's request");
            return Ok(());
        };
        let mut out = msg.clone();
        set_id(&mut out, &own);
        self.links[member].upstream().send(&out, edits).await.map(drop)
    }

    /// Sends to a member; if the member lost the session (404), opens a new one and sends again.
    async fn send_to(&self, member: usize, msg: &Message, edits: &HeaderEdits) -> Result<Option<Pump>, BackendError> {
        let upstream = self.links[member].upstream();
        match upstream.send(msg, edits).await {
            Err(BackendError::SessionLost) if msg.method() != Some("initialize") => {
                self.reopen(member, &upstream, edits).await?;
                self.links[member].upstream().send(msg, edits).await
            }
            other => other,
        }
    }

    /// A new session on a member that lost `lost`, opened with the client's `initialize`.
    async fn reopen(&self, member: usize, lost: &Arc<HttpUpstream>, edits: &HeaderEdits) -> Result<(), BackendError> {
        let link = &self.links[member];
        let _one = link.reopening.lock().await;
        if !Arc::ptr_eq(&link.upstream(), lost) {
            return Ok(()); // another request opened it meanwhile
        }
        let params = self.state().init.clone().ok_or(BackendError::SessionLost)?;
        tracing::info!(server = %self.server(), member = %self.member(member).key, "a member lost the session; opening a new one");
        lost.close().await;
        let fresh = Arc::new(self.member(member).backend.connect(Arc::new(route::MemberInbox { shared: self.weak.clone(), member })));
        *link.upstream.lock().expect("compose lock") = fresh.clone();
        let answer = self.ask_on(member, &fresh, "initialize", params, edits).await?;
        if answer.body.get("result").is_none() {
            link.live.store(false, Ordering::Release);
            return Err(BackendError::Protocol(format!("member {} refused the replayed initialize", self.member(member).key)));
        }
        fresh.send(&Message::notification("notifications/initialized", serde_json::json!({})), edits).await?;
        if self.listening.load(Ordering::Acquire) {
            fresh.want_stream();
        }
        link.live.store(true, Ordering::Release);
        Ok(())
    }
}

fn set_id(msg: &mut Message, id: &Id) {
    msg.id = Some(id.clone());
    msg.body.insert("id".into(), id.to_value());
}

/// A member's "not found" for a URI: MCP's -32002, or an error that says so.
fn is_not_found(answer: &Message) -> bool {
    let Some(e) = answer.body.get("error") else { return false };
    let text = e.get("message").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
    matches!(e.get("code").and_then(Value::as_i64), Some(-32002 | -32601)) || text.contains("not found") || text.contains("unknown resource")
}
