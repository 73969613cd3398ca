//! What members send the virtual session: answers go back under the client's id (or to the
//! gateway's own waiting request); requests members send the client get an id of the
//! gateway's, so two members' ids never collide, and the client's answer finds its member.

use std::sync::Weak;

use futures::future::BoxFuture;

use super::names::List;
use super::{Call, Shared, set_id};
use crate::backend::{Deliver, failure};
use crate::mcp::error::BackendError;
use crate::mcp::jsonrpc::{Id, Kind, Message};

/// One member's session as its backend client sees it.
pub(super) struct MemberInbox {
    pub shared: Weak<Shared>,
    pub member: usize,
}

impl Deliver for MemberInbox {
    fn deliver(&self, msg: Message, related: Option<Id>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(s) = self.shared.upgrade() {
                s.member_says(self.member, msg, related).await;
            }
        })
    }

    fn closed(&self, cause: BackendError) {
        if let Some(s) = self.shared.upgrade() {
            let member = self.member;
            tokio::spawn(async move { s.member_lost(member, cause).await });
        }
    }
}

impl Shared {
    async fn member_says(&self, member: usize, mut msg: Message, related: Option<Id>) {
        // The client request a member's message belongs to, by the client's id.
        let related = related.and_then(|r| match self.state().calls.get(&r) {
            Some(Call::Client { id, .. }) => Some(id.clone()),
            _ => None,
        });
        match msg.kind {
            Kind::Response => {
                let Some(id) = msg.id.clone() else { return };
                let call = {
                    let mut st = self.state();
                    let call = st.calls.remove(&id);
                    if let Some(Call::Client { id: client, .. }) = &call {
                        st.by_client.remove(client);
                    }
                    call
                };
                match call {
                    Some(Call::Internal { answer, .. }) => {
                        let _ = answer.send(msg);
                    }
                    Some(Call::Client { id: client, .. }) => {
                        set_id(&mut msg, &client);
                        self.inbox.deliver(msg, Some(client)).await;
                    }
                    None => tracing::debug!(server = %self.server(), member = %self.member(member).key, %id, "an answer no one waits for"),
                }
            }
            Kind::Request => {
                let Some(own) = msg.id.clone() else { return };
                let outward = self.fresh();
                self.state().asked.insert(outward.clone(), (member, own));
                set_id(&mut msg, &outward);
                self.inbox.deliver(msg, related).await;
            }
            Kind::Notification => {
                let changed = match msg.method() {
                    Some("notifications/tools/list_changed") => vec![List::Tools],
                    Some("notifications/prompts/list_changed") => vec![List::Prompts],
                    Some("notifications/resources/list_changed") => vec![List::Resources, List::Templates],
                    _ => Vec::new(),
                };
                for list in changed {
                    self.state().learned.forget(list, member);
                }
                if msg.method() == Some("notifications/cancelled") {
                    // The member gave up on a request it sent the client: name it as the client knows it.
                    let own = msg.params().and_then(|p| p.get("requestId")).and_then(Id::from_value);
                    let outward = own.and_then(|own| {
                        let mut st = self.state();
                        let found = st.asked.iter().find(|(_, (m, o))| *m == member && *o == own).map(|(k, _)| k.clone())?;
                        st.asked.remove(&found);
                        Some(found)
                    });
                    let Some(outward) = outward else { return };
                    if let Some(p) = msg.body.get_mut("params") {
                        p["requestId"] = outward.to_value();
                    }
                }
                self.inbox.deliver(msg, related).await;
            }
        }
    }

    /// A member's session ended: its requests in flight fail, the others go on. The next
    /// request to the member opens a new session on it ([`Shared::reopen`]).
    async fn member_lost(&self, member: usize, cause: BackendError) {
        let key = self.member(member).key.clone();
        tracing::warn!(server = %self.server(), member = %key, %cause, "a member's session ended; its requests in flight fail");
        let waiting: Vec<Id> = {
            let mut st = self.state();
            let mine: Vec<Id> = st.calls.iter().filter(|(_, c)| c.member() == member).map(|(k, _)| k.clone()).collect();
            let mut clients = Vec::new();
            for k in mine {
                if let Some(Call::Client { id, .. }) = st.calls.remove(&k) {
                    st.by_client.remove(&id);
                    clients.push(id);
                }
            }
            st.asked.retain(|_, (m, _)| *m != member);
            clients
        };
        for id in waiting {
            self.inbox.deliver(failure(&key, &id, cause.clone()), Some(id)).await;
        }
    }
}
