//! Who a session belongs to, and how a door that carries no client message of its own (the
//! GET stream, its resumption, DELETE, a legacy SSE connection, a client's answer to a
//! server request) still passes the chain: as the notification [`OPERATION_METHOD`].

use serde_json::json;

use crate::dispatch::Client;
use crate::mcp::error::GatewayError;
use crate::mcp::jsonrpc::Message;
use crate::policy::{Admission, Route};
use crate::server::Version;

/// The method of the notification the request phase sees for a session operation that has
/// no client message. A notification, so per-request counters (rate limits, quotas, caches)
/// leave it alone while identity and address checks run on it as on any message.
pub const OPERATION_METHOD: &str = "tollgate/session";

/// A session operation that carries no client message of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `GET /{name}/sse`: opening a legacy HTTP+SSE session.
    Connect,
    /// `GET /{name}/mcp`: the session's stream of server-initiated messages.
    Stream,
    /// `GET /{name}/mcp` with `Last-Event-ID`.
    Resume,
    /// `DELETE /{name}/mcp`.
    End,
    /// A client's JSON-RPC response to a request the server sent.
    Answer,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Operation::Connect => "connect",
            Operation::Stream => "stream",
            Operation::Resume => "resume",
            Operation::End => "end",
            Operation::Answer => "answer",
        }
    }

    /// The message the request phase sees: `{"method":"tollgate/session","params":{"operation":…}}`.
    pub fn message(self) -> Message {
        Message::notification(OPERATION_METHOD, json!({ "operation": self.name() }))
    }
}

/// The caller a session is bound to: the identity the chain established (issuer and subject)
/// and the subscription it came under. Either may be absent; absent must then stay absent.
/// Kept in the session directory as it is, so another replica checks the very same owner.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Owner {
    pub subject: Option<String>,
    pub subscription: Option<String>,
}

impl Owner {
    pub fn new(subject: Option<String>, client: &Client) -> Owner {
        Owner { subject, subscription: client.subscription().map(str::to_owned) }
    }
}

/// Runs the request phase of the client's chain to `server` on `op` and says who the caller
/// is. A refusal is the policy's own (401 for a missing token, say); a policy that answers or
/// drops the operation establishes no one.
pub async fn admit_operation(client: &Client, server: &Version, op: Operation, route: Route) -> Result<Owner, GatewayError> {
    let chain = client.chain(server);
    if chain.is_empty() {
        return Ok(Owner::new(None, client));
    }
    match chain.admit(op.message(), route, client.caller.clone(), None).await {
        Admission::Forward { subject, .. } => Ok(Owner::new(subject, client)),
        Admission::Deny(r) => Err(GatewayError::Denied(Box::new(r))),
        Admission::Answer { .. } | Admission::Drop => Ok(Owner::new(None, client)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::jsonrpc::Kind;

    #[test]
    fn an_operation_is_a_notification_that_names_itself() {
        for op in [Operation::Connect, Operation::Stream, Operation::Resume, Operation::End, Operation::Answer] {
            let m = op.message();
            assert_eq!(m.kind, Kind::Notification, "no id, so per-request counters skip it");
            assert_eq!(m.method(), Some(OPERATION_METHOD));
            assert_eq!(m.params().and_then(|p| p["operation"].as_str()), Some(op.name()));
        }
    }

    #[test]
    fn owners_differ_by_subject_or_subscription() {
        let a = Owner { subject: Some("iss alice".into()), subscription: None };
        assert_ne!(a, Owner { subject: Some("iss bob".into()), subscription: None });
        assert_ne!(a, Owner { subject: Some("iss alice".into()), subscription: Some("sub_1".into()) });
        assert_ne!(a, Owner::default(), "a caller without a token is not the session's owner");
    }
}
