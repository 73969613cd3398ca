//! What a binding is granted: a state namespace, outbound hosts, named secrets, a log name.
//! Each capability is one module implementing its WIT interface on the store's [`Host`].
//!
//! [`Host`]: super::engine::Host

pub mod crypto;
pub mod log;
pub mod outbound;
pub mod secrets;
pub mod state;

use std::collections::HashMap;
use std::sync::Arc;

/// One binding's grants, shared by all of its instances.
pub struct Grants {
    /// `policy` as the config names it, for logs.
    pub policy: Arc<str>,
    pub server: Arc<str>,
    /// Prefix of this binding's state keys; stable across reloads.
    pub namespace: String,
    pub allow_hosts: Vec<String>,
    pub secrets: HashMap<String, String>,
    pub state: Arc<dyn state::StateStore>,
    pub http: reqwest::Client,
}

impl std::fmt::Debug for Grants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secret values never reach a log, so only their names are shown.
        f.debug_struct("Grants")
            .field("policy", &self.policy)
            .field("server", &self.server)
            .field("allow_hosts", &self.allow_hosts)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}
