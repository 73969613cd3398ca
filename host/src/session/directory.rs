//! The session directory. With `state.redis`, every Streamable HTTP session is written to
//! Redis, at `{prefix}session:{id}`, with what another replica needs to continue it: the
//! server and version, the owner, the protocol version and the client's `initialize`. A client
//! whose replica died goes on with the same `Mcp-Session-Id` on another one: the same owner
//! check, then a new backend session opened with the client's own `initialize`, as when a
//! backend loses a session ([`Session::recover`]).
//!
//! A directory rather than ids that carry their own state: an entry can be ended everywhere at
//! once (DELETE), idle expiry is one TTL, and ids stay short and opaque with no key to rotate.
//! A legacy HTTP+SSE session lives with its SSE connection, so it never moves and is never
//! written here. Without `state.redis` there is no directory and nothing here runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

use super::owner::Owner;
use super::{Mode, Registry, Session};
use crate::config::Config;
use crate::mcp::error::GatewayError;
use crate::mcp::jsonrpc::Message;
use crate::policy::StateStore;
use crate::policy::state::{RedisStore, StateError};
use crate::server::{Address, Server};

/// What an ended session's key holds in place of its record, so that no replica still holding
/// the session writes it back, and none continues it.
const ENDED: &[u8] = b"ended";

/// Why the directory could not say. Never the client's concern: a session the directory cannot
/// vouch for is, to the client, a session that does not exist.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// Redis could not be asked (or, rarely, refused the command).
    #[error("the session directory (redis) failed: {0}")]
    Store(#[from] StateError),
    #[error("the session directory holds a record this gateway cannot read: {0}")]
    Unreadable(String),
}

impl From<DirectoryError> for GatewayError {
    fn from(_: DirectoryError) -> GatewayError {
        GatewayError::SessionNotFound
    }
}

/// The sessions every replica can continue, in the Redis the policies' state lives in.
pub struct Directory {
    store: Arc<RedisStore>,
    /// A record's life without activity: `sessions.idle_timeout_s`.
    ttl: Duration,
    /// How often activity writes a record again: a quarter of its life, so a session in use
    /// never lapses, and the requests in between cost Redis nothing.
    every: Duration,
    /// How long an ended session's mark stays: past the next refresh, or the idle expiry, of
    /// any replica still holding the session.
    ended_ttl: Duration,
    replay: usize,
    /// Whether an outage was logged, so it is logged once.
    out: AtomicBool,
}

/// What another replica needs to continue a session.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    server: String,
    version: Option<String>,
    owner: Owner,
    protocol: Option<String>,
    /// The client's `initialize` as its chain passed it, replayed to open a backend session.
    initialize: Value,
}

impl Record {
    /// `None` until the session has an owner and an `initialize` sent upstream.
    fn of(s: &Session) -> Option<Record> {
        let owner = s.owner.lock().expect("session lock").clone()?;
        let initialize = Value::Object(s.initialize_message()?.body);
        let protocol = s.protocol_version.lock().expect("session lock").clone();
        Some(Record { server: s.server.name.clone(), version: s.server.version.clone(), owner, protocol, initialize })
    }
}

/// A session's place in the directory: when it was last written, if it was.
pub(super) struct Listing {
    directory: Arc<Directory>,
    written: Mutex<Option<Instant>>,
}

impl Listing {
    pub(super) fn new(directory: Arc<Directory>) -> Listing {
        Listing { directory, written: Mutex::new(None) }
    }

    /// Whether the record is due to be written again; if so, the caller writes it (and no
    /// request racing it does).
    fn due(&self) -> bool {
        let mut written = self.written.lock().expect("listing lock");
        match *written {
            Some(at) if at.elapsed() >= self.directory.every => {
                *written = Some(Instant::now());
                true
            }
            _ => false,
        }
    }

    fn was_written(&self) -> bool {
        self.written.lock().expect("listing lock").is_some()
    }
}

/// What writing a record found.
enum Written {
    Kept,
    /// The session was ended on another replica.
    Ended,
}

impl Directory {
    /// The directory, when `state.redis` is set (its store is the policies' one, chosen at start).
    pub fn open(config: &Config) -> Option<Arc<Directory>> {
        config.state.as_ref()?;
        let store = crate::policy::state::stores().redis.clone()?;
        let ttl = Duration::from_secs(config.sessions.idle_timeout_s);
        Some(Arc::new(Directory { store, ttl, every: ttl / 4, ended_ttl: ttl + ttl / 2, replay: config.sessions.replay_buffer, out: AtomicBool::new(false) }))
    }

    fn key(id: &str) -> String {
        format!("session:{id}")
    }

    /// Fails at once while the store is known to be out, so an outage costs no timeout per request.
    fn reachable(&self) -> Result<(), DirectoryError> {
        match self.store.outage() {
            Some(cause) => Err(DirectoryError::Store(StateError::Unavailable(cause))),
            None => Ok(()),
        }
    }

    /// Writes the session's record, unless it was ended meanwhile.
    async fn write(&self, s: &Session) -> Result<Written, DirectoryError> {
        self.reachable()?;
        let Some(record) = Record::of(s) else { return Ok(Written::Kept) };
        let bytes = serde_json::to_vec(&record).expect("a record serializes");
        match self.store.set_unless(&Directory::key(&s.id), ENDED, bytes, self.ttl).await? {
            true => Ok(Written::Kept),
            false => Ok(Written::Ended),
        }
    }

    /// The record of a session that is not ended, with its `initialize`.
    async fn lookup(&self, id: &str) -> Result<Option<(Record, Message)>, DirectoryError> {
        self.reachable()?;
        let bytes = match self.store.get(&Directory::key(id)).await? {
            Some(v) if v != ENDED => v,
            _ => return Ok(None),
        };
        let record: Record = serde_json::from_slice(&bytes).map_err(|e| DirectoryError::Unreadable(e.to_string()))?;
        let initialize = Message::from_value(record.initialize.clone()).map_err(|e| DirectoryError::Unreadable(e.to_string()))?;
        Ok(Some((record, initialize)))
    }

    async fn end(&self, id: &str) -> Result<(), DirectoryError> {
        self.reachable()?;
        Ok(self.store.set(&Directory::key(id), ENDED.to_vec(), Some(self.ended_ttl)).await?)
    }

    /// Notes what the directory answered: an outage is logged once, and its end once.
    fn seen<T>(&self, r: Result<T, DirectoryError>) -> Result<T, DirectoryError> {
        match &r {
            Ok(_) => {
                if self.out.swap(false, Ordering::Relaxed) {
                    tracing::info!("session directory (redis) answers again");
                }
            }
            Err(e @ DirectoryError::Store(_)) => {
                if !self.out.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "sessions are not written to the directory, and sessions of other replicas are not continued here, while it is out");
                }
            }
            Err(e) => tracing::warn!(error = %e, "a session record was ignored"),
        }
        r
    }
}

/// An id this gateway could have issued (`Registry::create`): anything else is never looked up.
fn issued_form(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Session {
    /// Writes the session to the directory once its `initialize` is answered, before the client
    /// has the answer: from then on another replica can continue it.
    pub(super) async fn publish(&self) {
        let Some(listing) = &self.listing else { return };
        *listing.written.lock().expect("listing lock") = Some(Instant::now());
        let _ = listing.directory.seen(listing.directory.write(self).await);
    }

    /// Makes this (new) session the one a record describes. It has no upstream session yet:
    /// the first message or GET stream opens one, replaying the client's `initialize`, as
    /// after a backend lost ours.
    fn continue_from(&self, record: Record, initialize: Message) {
        *self.owner.lock().expect("session lock") = Some(record.owner);
        self.keep_initialize(&initialize);
        *self.protocol_version.lock().expect("session lock") = record.protocol;
        self.started.store(true, Ordering::Release);
        self.lost.store(true, Ordering::Release);
        // Streams numbered apart from the other replica's, so that a `Last-Event-ID` from
        // there never names a stream here.
        self.next_stream.store(1 + (rand::random::<u64>() >> 16), Ordering::Relaxed);
        if let Some(listing) = &self.listing {
            *listing.written.lock().expect("listing lock") = Some(Instant::now());
        }
    }
}

impl Registry {
    /// The session `id`, begun on another replica, continued here if the directory has it for
    /// the server (and version) `to` names. Then it is registered under the same id, with its
    /// owner bound, and the request goes on through the same guard and owner check as for any
    /// session here: another caller is refused exactly as for someone else's session.
    /// Anything else (no directory, not there, ended, Redis out) is an unknown session.
    pub async fn revive(&self, id: &str, to: &Address, endpoint: &Server) -> Result<Arc<Session>, GatewayError> {
        let Some(dir) = self.directory() else { return Err(GatewayError::SessionNotFound) };
        if !issued_form(id) || self.holds(id) {
            return Err(GatewayError::SessionNotFound);
        }
        let (record, initialize) = dir.seen(dir.lookup(id).await)?.ok_or(GatewayError::SessionNotFound)?;
        if record.server != to.name || (to.version.is_some() && to.version != record.version) {
            return Err(GatewayError::SessionNotFound);
        }
        // The version must still be one this server has; whether it serves is the caller's check.
        let server = endpoint.all().iter().find(|v| v.version == record.version).cloned().ok_or(GatewayError::SessionNotFound)?;
        let session = Session::new(id.to_owned(), server, Mode::Streamable, dir.replay, Some(dir.clone()));
        session.continue_from(record, initialize);
        let adopted = self.adopt(session.clone())?;
        if Arc::ptr_eq(&adopted, &session) {
            tracing::info!(server = %session.server.name, session = %id, "continuing a session begun on another replica");
        }
        Ok(adopted)
    }

    /// Writes the session's record again when due (at most once per quarter of its life). A
    /// session ended on another replica meanwhile ends here too.
    pub async fn keep(&self, s: &Arc<Session>) -> Result<(), GatewayError> {
        let Some(listing) = s.listing.as_ref().filter(|l| l.due()) else { return Ok(()) };
        match listing.directory.seen(listing.directory.write(s).await) {
            Ok(Written::Ended) => {
                tracing::info!(server = %s.server.name, session = %s.id, "session ended on another replica");
                self.remove(&s.id).await;
                Err(GatewayError::SessionNotFound)
            }
            // Redis out: the session goes on here; the next refresh writes it again.
            Ok(Written::Kept) | Err(_) => Ok(()),
        }
    }

    /// Ends the session here and, if it was written there, in the directory: no replica
    /// continues it after this. (Closing sessions for an idle timeout or a shutdown only lets
    /// this process's copy go: the record's own TTL ends it, and a replica that stops leaves
    /// its sessions to the others.)
    pub async fn end(&self, id: &str) {
        let Some(s) = self.remove(id).await else { return };
        if let Some(listing) = s.listing.as_ref().filter(|l| l.was_written()) {
            let _ = listing.directory.seen(listing.directory.end(id).await);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ids_of_the_issued_form_are_looked_up() {
        assert!(issued_form("0123456789abcdef0123456789abcdef"));
        for id in ["", "0123456789ABCDEF0123456789ABCDEF", "0123456789abcdef0123456789abcde", "../../session:x", "0123456789abcdef0123456789abcdeg"] {
            assert!(!issued_form(id), "{id}");
        }
    }

    #[test]
    fn a_record_round_trips_with_its_owner() {
        let record = Record {
            server: "docs".into(),
            version: Some("v2".into()),
            owner: Owner { subject: Some("iss alice".into()), subscription: Some("sub_1".into()) },
            protocol: Some("2025-11-25".into()),
            initialize: serde_json::json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {} }),
        };
        let bytes = serde_json::to_vec(&record).unwrap();
        assert_ne!(bytes, ENDED, "a record is never taken for an ended session");
        let back: Record = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back.owner, record.owner);
        assert_eq!((back.server, back.version, back.protocol), (record.server, record.version, record.protocol));
        assert_eq!(back.initialize, record.initialize);
    }
}
