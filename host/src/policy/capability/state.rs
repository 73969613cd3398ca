//! `tollgate:policy/state`: host-owned key-value state with TTLs and atomic updates, behind
//! [`StateStore`]: this process's memory ([`MemoryStore`], kept on disk in part by
//! [`durable`]), or a Redis every replica shares ([`RedisStore`]).

pub mod durable;
mod memory;
mod outage;
mod redis;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;

use crate::config::{Config, OnStateOutage};
use crate::policy::bindings::state;
use crate::policy::engine::Host;

pub use self::redis::RedisStore;
pub use memory::{DEFAULT_BUDGET, LASTING, MemoryStore, set_budget};

/// Why a state operation failed. A policy sees the message and decides what follows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The store could not be asked (unreachable, too slow): a binding may fall back.
    #[error("the state store is unavailable: {0}")]
    Unavailable(String),
    /// The store answered no (a counter that is not a number): falling back would not help.
    #[error("{0}")]
    Refused(String),
}

/// The state all bindings share, each under its own key prefix.
pub trait StateStore: Send + Sync + 'static {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StateError>>;
    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Option<Duration>) -> BoxFuture<'a, Result<(), StateError>>;
    /// Adds to a decimal counter; the TTL applies only when the key is created.
    fn incr<'a>(&'a self, key: &'a str, delta: i64, ttl: Option<Duration>) -> BoxFuture<'a, Result<i64, StateError>>;
    fn cas<'a>(&'a self, key: &'a str, expected: Option<Vec<u8>>, new: Vec<u8>, ttl: Option<Duration>) -> BoxFuture<'a, Result<bool, StateError>>;
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StateError>>;
}

/// The process's stores: chosen once, at start, by [`open`].
pub struct Stores {
    /// What bindings use.
    pub shared: Arc<dyn StateStore>,
    /// This process's memory: the shared store itself without Redis, and the fallback of
    /// `on_state_outage: local` with it.
    pub local: Arc<MemoryStore>,
    pub redis: Option<Arc<RedisStore>>,
}

static STORES: OnceLock<Stores> = OnceLock::new();

/// The stores [`open`] chose; memory only if it never ran (`tollgate validate`, tests).
pub fn stores() -> &'static Stores {
    STORES.get_or_init(|| {
        let local = Arc::new(MemoryStore::default());
        Stores { shared: local.clone(), local, redis: None }
    })
}

/// Chooses the stores for `tollgate serve`, before the first policy loads: Redis if
/// `state.redis` is set (connected lazily: a gateway starts while Redis is down, and says so
/// in `/readyz`), else memory, kept under `management.data_dir` when there is one. Must run
/// in the runtime that outlives the gateway's work (it spawns the store's tasks).
pub fn open(config: &Config) -> Result<(), String> {
    let budget = config.limits.max_policy_state_mb << 20;
    set_budget(budget);
    let chosen = match (&config.state, config.management.as_ref().and_then(|m| m.data_dir.as_deref())) {
        (Some(s), _) => {
            let redis = Arc::new(RedisStore::open(s)?);
            redis.watch();
            Stores { shared: redis.clone(), local: Arc::new(MemoryStore::with_budget(budget)), redis: Some(redis) }
        }
        (None, Some(dir)) => {
            let local = durable::open(dir, budget)?;
            Stores { shared: local.clone(), local, redis: None }
        }
        (None, None) => {
            let local = Arc::new(MemoryStore::with_budget(budget));
            Stores { shared: local.clone(), local, redis: None }
        }
    };
    STORES.set(chosen).map_err(|_| "the policy state store was chosen twice".to_owned())
}

/// The store a binding gets, given what it does while the shared one is out.
pub fn for_binding(on_outage: OnStateOutage) -> Arc<dyn StateStore> {
    let s = stores();
    match (&s.redis, on_outage) {
        (Some(redis), OnStateOutage::Local) => Arc::new(outage::Fallback::new(redis.clone(), s.local.clone())),
        _ => s.shared.clone(),
    }
}

/// Why the shared store is out, if it is: for `/readyz`.
pub fn outage() -> Option<String> {
    stores().redis.as_ref().and_then(|r| r.outage())
}

fn ttl(ms: Option<u64>) -> Option<Duration> {
    ms.map(Duration::from_millis)
}

impl Host {
    fn key(&self, key: &str) -> String {
        format!("{}\u{0}{key}", self.grants.namespace)
    }
    fn store(&self) -> Arc<dyn StateStore> {
        self.grants.state.clone()
    }
}

type R<T> = wasmtime::Result<Result<T, String>>;

fn said<T>(r: Result<T, StateError>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

impl state::Host for Host {
    async fn get(&mut self, key: String) -> R<Option<Vec<u8>>> {
        self.reach.changing("state");
        let (k, s) = (self.key(&key), self.store());
        Ok(said(s.get(&k).await))
    }
    async fn set(&mut self, key: String, value: Vec<u8>, ttl_ms: Option<u64>) -> R<()> {
        self.reach.changing("state");
        let (k, s) = (self.key(&key), self.store());
        Ok(said(s.set(&k, value, ttl(ttl_ms)).await))
    }
    async fn incr(&mut self, key: String, delta: i64, ttl_ms: Option<u64>) -> R<i64> {
        self.reach.changing("state");
        let (k, s) = (self.key(&key), self.store());
        Ok(said(s.incr(&k, delta, ttl(ttl_ms)).await))
    }
    async fn cas(&mut self, key: String, expected: Option<Vec<u8>>, new: Vec<u8>, ttl_ms: Option<u64>) -> R<bool> {
        self.reach.changing("state");
        let (k, s) = (self.key(&key), self.store());
        Ok(said(s.cas(&k, expected, new, ttl(ttl_ms)).await))
    }
    async fn delete(&mut self, key: String) -> R<()> {
        self.reach.changing("state");
        let (k, s) = (self.key(&key), self.store());
        Ok(said(s.delete(&k).await))
    }
}
