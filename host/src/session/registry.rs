//! All live sessions, keyed by the id the gateway issued, with idle expiry.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use rand::RngCore;

use super::{Directory, Mode, Session};
use crate::config::Sessions as SessionConfig;
use crate::mcp::error::GatewayError;
use crate::server::Version;

pub struct Registry {
    sessions: DashMap<String, Arc<Session>>,
    /// Live sessions per server name, for each server's own cap.
    per_server: DashMap<String, usize>,
    config: SessionConfig,
    /// Where sessions are written for other replicas to continue (with `state.redis`).
    directory: Option<Arc<Directory>>,
}

impl Registry {
    pub fn new(config: SessionConfig, directory: Option<Arc<Directory>>) -> Registry {
        Registry { sessions: DashMap::new(), per_server: DashMap::new(), config, directory }
    }

    /// A new session with a fresh id: 128 random bits, so ids cannot be guessed.
    pub fn create(&self, server: Arc<Version>, mode: Mode) -> Result<Arc<Session>, GatewayError> {
        self.reserve(&server)?;
        let mut raw = [0u8; 16];
        rand::rng().fill_bytes(&mut raw);
        let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let session = Session::new(id.clone(), server, mode, self.config.replay_buffer, self.directory.clone());
        self.sessions.insert(id, session.clone());
        Ok(session)
    }

    /// Counts one more session of `server`, within the gateway's cap and the server's.
    fn reserve(&self, server: &Version) -> Result<(), GatewayError> {
        if self.sessions.len() >= self.config.max_sessions {
            return Err(GatewayError::Overloaded("the gateway holds its maximum number of sessions"));
        }
        let cap = server.config.max_sessions.or(self.config.max_per_server).unwrap_or(self.config.max_sessions);
        let mut live = self.per_server.entry(server.name.clone()).or_insert(0);
        if *live >= cap {
            return Err(GatewayError::Overloaded("this server holds its maximum number of sessions"));
        }
        *live += 1;
        Ok(())
    }

    fn release(&self, server: &str) {
        if let Some(mut live) = self.per_server.get_mut(server) {
            *live = live.saturating_sub(1);
        }
    }

    /// Takes in a session continued from the directory, unless a request racing this one took
    /// in the same id first: then that one, so an id has one session here.
    pub(super) fn adopt(&self, session: Arc<Session>) -> Result<Arc<Session>, GatewayError> {
        self.reserve(&session.server)?;
        let existing = match self.sessions.entry(session.id.clone()) {
            Entry::Occupied(e) => e.get().clone(),
            Entry::Vacant(v) => {
                v.insert(session.clone());
                return Ok(session);
            }
        };
        self.release(&session.server.name);
        Ok(existing)
    }

    /// Whether this process holds a session with this id, on any server, open or closing.
    pub(super) fn holds(&self, id: &str) -> bool {
        self.sessions.contains_key(id)
    }

    pub(super) fn directory(&self) -> Option<&Arc<Directory>> {
        self.directory.as_ref()
    }

    /// The session with this id, if it belongs to `server` and is still open.
    pub fn get(&self, id: &str, server: &str) -> Result<Arc<Session>, GatewayError> {
        match self.sessions.get(id) {
            Some(s) if s.server.name == server && !s.is_closed() => {
                s.touch();
                Ok(s.clone())
            }
            _ => Err(GatewayError::SessionNotFound),
        }
    }

    /// Lets this process's copy of the session go, and closes it; the session, if any.
    pub async fn remove(&self, id: &str) -> Option<Arc<Session>> {
        let (_, s) = self.sessions.remove(id)?;
        self.release(&s.server.name);
        s.close().await;
        Some(s)
    }

    /// Every live session, for metrics.
    pub fn all(&self) -> Vec<Arc<Session>> {
        self.sessions.iter().map(|e| e.value().clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Closes sessions idle for longer than the configured timeout, forever.
    pub async fn expire_idle(self: Arc<Self>) {
        let timeout = Duration::from_secs(self.config.idle_timeout_s);
        let tick = (timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
        loop {
            tokio::time::sleep(tick).await;
            let idle: Vec<String> = self.sessions.iter().filter(|s| s.idle_for() >= timeout).map(|s| s.key().clone()).collect();
            for id in idle {
                tracing::info!(session = %id, "session expired");
                self.remove(&id).await;
            }
        }
    }

    /// Closes every session (shutdown).
    pub async fn close_all(&self) {
        let ids: Vec<String> = self.sessions.iter().map(|s| s.key().clone()).collect();
        for id in ids {
            self.remove(&id).await;
        }
    }
}
