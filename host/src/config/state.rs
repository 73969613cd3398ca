//! `state:`: where the policies' state (counters, quotas, caches, fetched keys) lives. Unset,
//! in this process, and what lives long is kept under `management.data_dir` across restarts;
//! with `redis`, in a Redis every replica shares.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Secret;
use super::validate::Problems;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// `redis://[user:password@]host:port/db`, or `rediss://` for TLS; written in place or as
    /// `{env: NAME}` / `{file: PATH}`, since it may carry a password.
    pub redis: Secret,
    /// Put before every key, so deployments can share one Redis.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Bound on one state operation, in ms. Past it, or while Redis cannot be reached, a
    /// policy is told the store failed: a binding's `on_state_outage` says what then.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_prefix() -> String {
    "tollgate:".into()
}

fn default_timeout_ms() -> u64 {
    50
}

/// The URL is only read, never shown: it may carry a password.
pub(super) fn check(out: &mut Problems, state: &StateConfig) {
    match state.redis.reveal() {
        Err(e) => out.push("state.redis", &e.to_string()),
        Ok(url) => {
            let scheme = url.split_once("://").map(|(s, _)| s);
            if !matches!(scheme, Some("redis" | "rediss" | "unix" | "redis+unix")) {
                out.push("state.redis", "is not a Redis URL: use redis://host:port/db, or rediss:// for TLS");
            } else if redis::Client::open(url.as_str()).is_err() {
                out.push("state.redis", "is not a Redis URL this gateway can use (redis://host:port/db, or rediss:// for TLS)");
            }
        }
    }
    if state.timeout_ms == 0 || state.timeout_ms > 60_000 {
        out.push("state.timeout_ms", &format!("{} is out of range: use 1 to 60000", state.timeout_ms));
    }
}

impl StateConfig {
    /// As shown to anyone: a literal URL is masked whole, since it may carry a password.
    pub fn masked(&self) -> StateConfig {
        StateConfig { redis: self.redis.masked(), ..self.clone() }
    }
}
