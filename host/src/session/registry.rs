//! All live sessions, keyed by the id the gateway issued, with idle expiry.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use rand::RngCore;

use super::{Mode, Session};
use crate::config::Sessions as SessionConfig;
use crate::mcp::error::GatewayError;
use crate::server::Version;

pub struct Registry {
    sessions: DashMap<String, Arc<Session>>,
    /// Live sessions per server name, for each server's own cap.
    per_server: DashMap<String, usize>,
    config: SessionConfig,
}

impl Registry {
    pub fn new(config: SessionConfig) -> Registry {
        Registry { sessions: DashMap::new(), per_server: DashMap::new(), config }
    }

    /// A new session with a fresh id: 128 random bits, so ids cannot be guessed.
    pub fn create(&self, server: Arc<Version>, mode: Mode) -> Result<Arc<Session>, GatewayError> {
        if self.sessions.len() >= self.config.max_sessions {
            return Err(GatewayError::Overloaded("the gateway holds its maximum number of sessions"));
        }
        let cap = server.config.max_sessions.or(self.config.max_per_server).unwrap_or(self.config.max_sessions);
        {
            let mut live = self.per_server.entry(server.name.clone()).or_insert(0);
            if *live >= cap {
                return Err(GatewayError::Overloaded("this server holds its maximum number of sessions"));
            }
            *live += 1;
        }
        let mut raw = [0u8; 16];
        rand::rng().fill_bytes(&mut raw);
        let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let session = Session::new(id.clone(), server, mode, self.config.replay_buffer);
        self.sessions.insert(id, session.clone());
        Ok(session)
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

    pub async fn remove(&self, id: &str) {
        if let Some((_, s)) = self.sessions.remove(id) {
            if let Some(mut live) = self.per_server.get_mut(&s.server.name) {
                *live = live.saturating_sub(1);
            }
            s.close().await;
        }
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
