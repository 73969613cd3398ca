//! What a virtual session answers from all its members at once: `initialize`, and the four
//! lists, fanned out in parallel and merged in the members' order.

use futures::future::join_all;
use serde_json::{Value, json};

use super::names::{self, List, Taken};
use super::{Shared, State};
use crate::backend::Pump;
use crate::mcp::error::{BackendError, GatewayError};
use crate::mcp::jsonrpc::{Id, Message};
use crate::policy::HeaderEdits;

/// Pages of one list followed at most when looking for an owner.
const MAX_PAGES: usize = 50;

impl Shared {
    /// Opens every member's session in parallel; members that fail are left out (with a
    /// warning), and the client gets the union of the others' capabilities.
    pub(super) async fn initialize(&self, id: &Id, params: Value, edits: &HeaderEdits) -> Result<Option<Pump>, BackendError> {
        self.state().init = Some(params.clone());
        let asked = (0..self.links.len()).map(|i| {
            let p = params.clone();
            async move { (i, self.ask(i, "initialize", p, edits).await) }
        });
        let mut results = Vec::new();
        let mut failures = Vec::new();
        for (i, r) in join_all(asked).await {
            let key = &self.member(i).key;
            let why = match r {
                Ok(m) => match m.body.get("result") {
                    Some(result) => {
                        self.links[i].live.store(true, std::sync::atomic::Ordering::Release);
                        self.state().capabilities.insert(i, result.get("capabilities").cloned().unwrap_or_default());
                        results.push(result.clone());
                        continue;
                    }
                    None => m.body.get("error").map(Value::to_string).unwrap_or_default(),
                },
                Err(e) => e.to_string(),
            };
            tracing::warn!(server = %self.server(), member = %key, error = %why, "a member did not initialize; the virtual server serves without it");
            failures.push(format!("{key}: {why}"));
        }
        if results.is_empty() {
            return Err(BackendError::Unreachable(format!("no member answered initialize ({})", failures.join("; "))));
        }
        let answer = Message::result(id.clone(), merged_initialize(self.server(), &results));
        self.inbox.deliver(answer, Some(id.clone())).await;
        Ok(None)
    }

    /// Whether member `i` said it has `list`.
    pub(super) fn offers(&self, i: usize, list: List) -> bool {
        self.state().capabilities.get(&i).is_some_and(|c| c.get(list.capability()).is_some_and(|v| !v.is_null()))
    }

    /// One page of a merged list: the first page of every live member that has the list, or
    /// the next page of each member the cursor names. A member that fails or times out is left
    /// out of this page with a warning.
    pub(super) async fn list(&self, list: List, cursor: Option<&str>, edits: &HeaderEdits) -> Result<Value, GatewayError> {
        let place: names::Place = match cursor {
            None => self.live().into_iter().filter(|i| self.offers(*i, list)).map(|i| (i, None)).collect(),
            Some(c) => names::decode(c, self.links.len()).ok_or_else(|| GatewayError::InvalidParams(format!("invalid cursor for {}", list.method())))?,
        };
        let pages = join_all(place.into_iter().map(|(i, c)| async move {
            let params = match &c {
                Some(c) => json!({ "cursor": c }),
                None => json!({}),
            };
            (i, self.ask(i, list.method(), params, edits).await)
        }))
        .await;
        let mut items = Vec::new();
        let mut next = Vec::new();
        let mut st = self.state();
        for (i, answer) in pages {
            let result = match answer {
                Ok(m) => match m.body.get("result") {
                    Some(r) => r.clone(),
                    None => {
                        let e = m.body.get("error").map(Value::to_string).unwrap_or_default();
                        tracing::warn!(server = %self.server(), member = %self.member(i).key, error = %e, "a member failed {}; its items are left out", list.method());
                        continue;
                    }
                },
                Err(e) => {
                    tracing::warn!(server = %self.server(), member = %self.member(i).key, error = %e, "a member did not answer {}; its items are left out", list.method());
                    continue;
                }
            };
            for item in result.get(list.field()).and_then(Value::as_array).cloned().unwrap_or_default() {
                if let Some(item) = self.take(&mut st, list, i, item) {
                    items.push(item);
                }
            }
            if let Some(c) = result.get("nextCursor").filter(|c| !c.is_null()) {
                next.push((i, Some(c.clone())));
            }
        }
        drop(st);
        let mut result = json!({ list.field(): items });
        if !next.is_empty() {
            result["nextCursor"] = Value::from(names::encode(&next));
        }
        Ok(result)
    }

    /// An item of member `i` as the client sees it, learned on the way; `None` when another
    /// member already shows its name or URI.
    fn take(&self, st: &mut State, list: List, i: usize, mut item: Value) -> Option<Value> {
        let taken = if list == List::Resources {
            let uri = item.get("uri").and_then(Value::as_str)?.to_owned();
            (st.learned.uri(&uri, i), uri)
        } else {
            let own = item.get("name").and_then(Value::as_str)?.to_owned();
            let outward = self.member(i).spec.outward(&own);
            let taken = st.learned.name(list, &outward, i, &own);
            if matches!(taken, Taken::Yes) {
                item["name"] = Value::from(outward.clone());
                if let Some(t) = item.get("uriTemplate").and_then(Value::as_str) {
                    st.learned.template(t, i);
                }
            }
            (taken, outward)
        };
        match taken {
            (Taken::Yes, _) => Some(item),
            (Taken::Collides(first), name) => {
                tracing::warn!(
                    server = %self.server(),
                    member = %self.member(i).key,
                    first = %self.member(first).key,
                    "{} '{name}' collides with the one of an earlier member; it is hidden",
                    list.noun()
                );
                None
            }
        }
    }

    /// Follows `list` through every page, learning what each member shows (unless it was
    /// followed a moment ago).
    async fn walk(&self, list: List, edits: &HeaderEdits) {
        if !self.state().learned.may_walk(list) {
            return;
        }
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let Ok(page) = self.list(list, cursor.as_deref(), edits).await else { return };
            cursor = page.get("nextCursor").and_then(Value::as_str).map(str::to_owned);
            if cursor.is_none() {
                return;
            }
        }
    }

    /// The member that owns an outward tool or prompt name, and its own name for it: as
    /// learned, else after listing again.
    pub(super) async fn owner(&self, list: List, name: &str, edits: &HeaderEdits) -> Option<(usize, String)> {
        let known = self.state().learned.owner(list, name);
        if known.is_some() {
            return known;
        }
        self.walk(list, edits).await;
        self.state().learned.owner(list, name)
    }

    /// The member a resource URI (or a template's) belongs to: as learned, else after listing
    /// resources and templates again.
    pub(super) async fn uri_owner(&self, uri: &str, edits: &HeaderEdits) -> Option<usize> {
        let known = self.state().learned.owner_of_uri(uri);
        if known.is_some() {
            return known;
        }
        self.walk(List::Resources, edits).await;
        self.walk(List::Templates, edits).await;
        self.state().learned.owner_of_uri(uri)
    }
}

/// The capabilities a virtual server has when a member has them.
const ROUTED: [&str; 5] = ["tools", "prompts", "resources", "completions", "logging"];

/// The virtual server's `initialize` answer: the oldest protocol version the members chose
/// (each speaks it with the gateway), the union of their capabilities, and its own name.
fn merged_initialize(server: &str, results: &[Value]) -> Value {
    let version = results.iter().filter_map(|r| r.get("protocolVersion").and_then(Value::as_str)).min().unwrap_or(crate::mcp::headers::SUPPORTED_VERSIONS[0]);
    let mut capabilities = json!({});
    for r in results {
        if let Some(c) = r.get("capabilities") {
            union(&mut capabilities, c);
        }
    }
    // Only what a virtual session routes: a member's other features (tasks, experimental ones)
    // have no way through it.
    if let Value::Object(c) = &mut capabilities {
        c.retain(|k, _| ROUTED.contains(&k.as_str()));
    }
    let instructions: Vec<&str> = results.iter().filter_map(|r| r.get("instructions").and_then(Value::as_str)).collect();
    let mut answer = json!({
        "protocolVersion": version,
        "capabilities": capabilities,
        "serverInfo": { "name": server, "version": env!("CARGO_PKG_VERSION") },
    });
    if !instructions.is_empty() {
        answer["instructions"] = Value::from(instructions.join("\n\n"));
    }
    answer
}

/// Capabilities merged: an object's keys from both, a flag true if either says so.
fn union(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(k) {
                    Some(existing) => union(existing, v),
                    None => {
                        a.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Bool(a), Value::Bool(b)) => *a |= *b,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initialize_answers_with_the_union_of_capabilities_and_the_virtual_name() {
        let a = json!({ "protocolVersion": "2025-06-18", "capabilities": { "tools": { "listChanged": false } }, "serverInfo": { "name": "a" } });
        let b = json!({ "protocolVersion": "2025-03-26", "capabilities": { "tools": { "listChanged": true }, "prompts": {}, "logging": {}, "tasks": { "list": {} } }, "serverInfo": { "name": "b" } });
        let m = merged_initialize("workspace", &[a, b]);
        assert_eq!(m["protocolVersion"], "2025-03-26");
        assert_eq!(m["capabilities"], json!({ "tools": { "listChanged": true }, "prompts": {}, "logging": {} }));
        assert_eq!(m["serverInfo"]["name"], "workspace");
    }
}
