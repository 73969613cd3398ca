//! Admission within a session: every client message and every session operation passes the
//! product's tool check and the chain's request phase, and is refused as if the session did
//! not exist unless it comes from the caller that opened the session.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::owner::{self, Operation, Owner};
use super::{Mode, OutStream, Session};
use crate::dispatch::Client;
use crate::dispatch::{self, Forward, Outcome};
use crate::mcp::error::GatewayError;
use crate::mcp::jsonrpc::{Id, Message};
use crate::policy::{ClientHeaders, HeaderEdits, Route};
use crate::telemetry::Exchange;

/// Server requests a session remembers as awaiting the client's answer; past this the oldest go.
const MAX_ASKED: usize = 1024;

/// What the request phase made of a client message.
#[expect(clippy::large_enum_variant, reason = "moved once, right away; boxing would cost an allocation per request")]
pub(super) enum Admitted<'m> {
    /// Send this (possibly changed) message upstream.
    Forward(Forward<'m>),
    /// A policy answered; the answer is already on this stream.
    Answered(Arc<OutStream>),
    /// A policy took a notification out of the exchange: it goes nowhere.
    Dropped,
}

impl Session {
    /// The request phase of one client request or notification ([`dispatch::request_phase`]),
    /// with the owner check on both sides of it.
    pub(super) async fn admit<'m>(&self, msg: &'m Message, client: &Client, x: Option<&Exchange>) -> Result<Admitted<'m>, GatewayError> {
        self.check_subscription(client)?;
        match dispatch::request_phase(client, &self.server, self.policy_route(client), msg, x).await? {
            Outcome::Forward(f) => {
                self.check_owner(Owner::new(f.subject.clone(), client))?;
                Ok(Admitted::Forward(f))
            }
            Outcome::Answered { answer, client: to_client, subject } => {
                self.check_owner(Owner::new(subject, client))?;
                Ok(Admitted::Answered(self.answered(answer, to_client)))
            }
            Outcome::Dropped => Ok(Admitted::Dropped),
        }
    }

    /// A policy's own answer, on a stream of its own (or the legacy connection).
    fn answered(&self, answer: Message, client: ClientHeaders) -> Arc<OutStream> {
        let stream = match &self.mode {
            Mode::Legacy(out) => out.clone(),
            Mode::Streamable => {
                let s = Arc::new(OutStream::new(self.next_stream.fetch_add(1, Ordering::Relaxed), self.replay));
                s.add_client_headers(client);
                s
            }
        };
        stream.push(answer.to_bytes(), matches!(self.mode, Mode::Streamable));
        stream
    }

    /// Admits an operation that carries no client message (the GET stream, a resumption,
    /// DELETE): the chain's request phase on [`Operation::message`], then the owner check.
    pub async fn admit_operation(&self, op: Operation, client: &Client) -> Result<(), GatewayError> {
        self.check_subscription(client)?;
        let owner = owner::admit_operation(client, &self.server, op, self.policy_route(client)).await?;
        self.check_owner(owner)
    }

    /// Binds the session to the caller that opened it (a legacy connection binds it before
    /// its `initialize`, with what the connection was admitted as).
    pub fn claim(&self, owner: Owner) -> Result<(), GatewayError> {
        self.check_owner(owner)
    }

    /// A session belongs to the caller who opened it: the first admitted message binds the
    /// subject the chain authenticated and the subscription, and anyone else is told the
    /// session does not exist, so that a session id alone never lets one caller act in
    /// another's session.
    fn check_owner(&self, owner: Owner) -> Result<(), GatewayError> {
        let mut bound = self.owner.lock().expect("session lock");
        match &*bound {
            None => {
                *bound = Some(owner);
                Ok(())
            }
            Some(b) if *b == owner => Ok(()),
            Some(_) => {
                drop(bound);
                tracing::warn!(server = %self.server.name, session = %self.id, "a caller other than the session's owner used its id; refused");
                Err(GatewayError::SessionNotFound)
            }
        }
    }

    /// The subscription half of the owner check, known before any policy runs: a caller of
    /// another subscription (or of none) spends nothing of the session's chain.
    fn check_subscription(&self, client: &Client) -> Result<(), GatewayError> {
        match &*self.owner.lock().expect("session lock") {
            Some(b) if b.subscription.as_deref() != client.subscription() => Err(GatewayError::SessionNotFound),
            _ => Ok(()),
        }
    }

    pub(super) fn policy_route(&self, client: &Client) -> Route {
        let protocol = self.protocol_version.lock().expect("session lock").clone();
        client.route(&self.server, Some(self.id.clone()), protocol)
    }

    /// Sends a client notification upstream, after the request phase.
    pub async fn notify(&self, msg: &Message, client: &Client, x: Option<&Exchange>) -> Result<(), GatewayError> {
        match self.admit(msg, client, x).await? {
            Admitted::Forward(f) => self.notify_upstream(&f.msg, &f.headers).await,
            Admitted::Answered(_) | Admitted::Dropped => Ok(()),
        }
    }

    /// A client's answer to a request the server sent on this session. Only the session's
    /// owner may answer, and only a request the server actually sent and still awaits.
    pub async fn answer(&self, msg: &Message, client: &Client) -> Result<(), GatewayError> {
        self.admit_operation(Operation::Answer, client).await?;
        let id = msg.id.clone().ok_or_else(|| GatewayError::InvalidRequest("a response without an id".into()))?;
        if !self.take_asked(&id) {
            return Err(GatewayError::InvalidRequest(format!("no request of the server's with id {id} awaits an answer in this session")));
        }
        self.send(msg, &HeaderEdits::default()).await
    }

    /// Notes a request the server sent the client, so the client's answer can be checked.
    pub(super) fn asked(&self, id: Id) {
        let mut asked = self.asked.lock().expect("session lock");
        if asked.len() >= MAX_ASKED {
            asked.pop_front();
        }
        asked.push_back(id);
    }

    fn take_asked(&self, id: &Id) -> bool {
        let mut asked = self.asked.lock().expect("session lock");
        match asked.iter().position(|a| a == id) {
            Some(i) => asked.remove(i).is_some(),
            None => false,
        }
    }
}
