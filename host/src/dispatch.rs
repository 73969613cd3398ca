//! The exchange around the backend, one piece of code for a session's message and for a
//! stateless request alike: the product's tool check and the chain's request phase before the
//! backend; the response phase, the product's tool list and the report to telemetry on the
//! answer. Sessions and the stateless transport only carry messages to and from the backend.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use crate::mcp::error::GatewayError;
use crate::mcp::jsonrpc::{Kind, Message};
use crate::policy::{Admission, Caller, Chain, ClientHeaders, HeaderEdits, Relay, Route, Trail};
use crate::product::Access;
use crate::server::Version;
use crate::telemetry::Exchange;

/// A caller as admitted to a server: what policies see of it, and the product (with the
/// subscription) it comes under when the server is sold in one.
#[derive(Clone, Debug)]
pub struct Client {
    pub caller: Arc<Caller>,
    pub access: Option<Access>,
    /// The canonical URL of the server the request addressed (tokens name it as audience).
    pub resource: Arc<str>,
}

impl Client {
    pub fn subscription(&self) -> Option<&str> {
        self.access.as_ref().and_then(|a| a.subscription.as_deref())
    }

    /// The attributes set before any policy runs: the product and the subscription.
    pub fn attributes(&self) -> crate::policy::Attributes {
        self.access.as_ref().map(Access::attributes).unwrap_or_default()
    }

    /// The chain a message to `server` runs: its product's then the server's, or the server's alone.
    pub fn chain(&self, server: &Version) -> Arc<Chain> {
        match &self.access {
            Some(a) => a.product.chain_for(server),
            None => server.chain(),
        }
    }

    /// Where an exchange of this client's goes, as the chain sees it: the server version, the
    /// canonical URL, the product's attributes, and the session and protocol if there are any.
    pub fn route(&self, server: &Version, session_id: Option<String>, protocol_version: Option<String>) -> Route {
        Route {
            server: server.name.as_str().into(),
            version: server.version.as_deref().map(Into::into),
            session_id,
            protocol_version,
            resource: self.resource.clone(),
            attributes: self.attributes(),
        }
    }

    /// The tools of `server` the product offers; `None` for all.
    pub fn tools(&self, server: &str) -> Option<Arc<HashSet<String>>> {
        self.access.as_ref().and_then(|a| a.product.tools(server))
    }
}

/// What the request phase made of a client message (`'m`: the message, borrowed while no
/// policy changed it).
pub enum Outcome<'m> {
    /// Send this (possibly changed) message to the backend.
    Forward(Forward<'m>),
    /// A policy answered: this is the answer, after the response phase and the product's list.
    Answered { answer: Message, client: ClientHeaders, subject: Option<String> },
    /// A policy took a notification out of the exchange: it goes nowhere.
    Dropped,
}

/// A message on its way to the backend, and what its answer's way back needs.
pub struct Forward<'m> {
    /// The client's message itself while no policy ran on it, else as the chain left it.
    pub msg: Cow<'m, Message>,
    /// Headers policies set on (or took off) this request to an HTTP backend.
    pub headers: HeaderEdits,
    /// Headers policies add to the client's response.
    pub client: ClientHeaders,
    /// Who the chain says the caller is (issuer and subject).
    pub subject: Option<String>,
    pub back: WayBack,
}

/// What the answer to a forwarded request passes on its way to the client.
pub struct WayBack {
    trail: Option<Trail>,
    /// For `tools/list` through a product that offers only some tools: those.
    tools: Option<Arc<HashSet<String>>>,
}

impl WayBack {
    /// The message phase for what the backend sends on the request's behalf, if any policy asked.
    pub fn relay(&self) -> Option<Relay> {
        self.trail.as_ref().and_then(Trail::relay)
    }

    /// The answer as the client gets it: the response phase (traced under `x`), then the
    /// product's tool list; reported to `x`. Returns the headers response-phase policies add.
    pub async fn settle(self, answer: Message, x: Option<&Exchange>) -> (Message, ClientHeaders) {
        if let Some(x) = x {
            x.backend_done();
        }
        let (answer, client) = match (self.trail, answer.kind) {
            (Some(t), Kind::Response) => t.settle(answer, x).await,
            _ => (answer, ClientHeaders::new()),
        };
        let answer = crate::product::only_tools(answer, self.tools.as_deref());
        if let Some(x) = x {
            x.answer(&answer);
        }
        (answer, client)
    }
}

/// The request phase of one client request or notification to `server`: the product's tool
/// check, then the chain, its steps timed and traced under `x`. A refusal is the error to
/// answer with.
pub async fn request_phase<'m>(client: &Client, server: &Version, route: Route, msg: &'m Message, x: Option<&Exchange>) -> Result<Outcome<'m>, GatewayError> {
    let tools = client.tools(&server.name);
    crate::product::check_tool(tools.as_deref(), msg)?;
    let tools = tools.filter(|_| msg.method() == Some("tools/list"));
    let chain = client.chain(server);
    if chain.is_empty() {
        let back = WayBack { trail: None, tools };
        return Ok(Outcome::Forward(Forward { msg: Cow::Borrowed(msg), headers: HeaderEdits::default(), client: Vec::new(), subject: None, back }));
    }
    match chain.admit(msg.clone(), route, client.caller.clone(), x).await {
        Admission::Forward { msg, headers, client, subject, trail } => {
            Ok(Outcome::Forward(Forward { msg: Cow::Owned(msg), headers, client, subject, back: WayBack { trail, tools } }))
        }
        Admission::Answer { msg, mut client, subject, trail } => {
            let answer = Trail::settle_into(trail, msg, &mut client, x).await;
            let answer = crate::product::only_tools(answer, tools.as_deref());
            if let Some(x) = x {
                x.answer(&answer);
            }
            Ok(Outcome::Answered { answer, client, subject })
        }
        Admission::Deny(r) => Err(GatewayError::Denied(Box::new(r))),
        Admission::Drop if msg.kind == Kind::Notification => Ok(Outcome::Dropped),
        Admission::Drop => Err(GatewayError::InvalidRequest("a policy dropped a request".into())),
    }
}
