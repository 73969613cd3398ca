//! `tollgate:policy/state`: host-owned key-value state with TTLs and atomic updates, behind
//! [`StateStore`] so a shared store (Redis) can replace the in-memory one.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use futures::future::BoxFuture;

use crate::policy::bindings::state;
use crate::policy::engine::Host;

/// A store failure a policy sees as an error (it decides whether to fail open or closed).
pub type StateError = String;

/// The state all bindings share, each under its own key prefix.
pub trait StateStore: Send + Sync + 'static {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StateError>>;
    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Option<Duration>) -> BoxFuture<'a, Result<(), StateError>>;
    /// Adds to a decimal counter; the TTL applies only when the key is created.
    fn incr<'a>(&'a self, key: &'a str, delta: i64, ttl: Option<Duration>) -> BoxFuture<'a, Result<i64, StateError>>;
    fn cas<'a>(&'a self, key: &'a str, expected: Option<Vec<u8>>, new: Vec<u8>, ttl: Option<Duration>) -> BoxFuture<'a, Result<bool, StateError>>;
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StateError>>;
}

struct Entry {
    value: Vec<u8>,
    expires: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|e| e > now)
    }
}

/// The default bound on the embedded store: `limits.max_policy_state_mb`.
pub const DEFAULT_BUDGET: usize = 256 << 20;

/// The bound the next store is made with; set at start, before the first policy loads.
static BUDGET: AtomicUsize = AtomicUsize::new(DEFAULT_BUDGET);

/// Sets the embedded store's bound, in bytes.
pub fn set_budget(bytes: usize) {
    BUDGET.store(bytes, Ordering::Relaxed);
}

/// What one entry costs: its key, its value, and the map's own share.
fn cost(key: &str, e: &Entry) -> usize {
    key.len() + e.value.len() + 64
}

/// The default store: one process, sharded map, expired entries swept as writes go by.
///
/// Bounded: keys come from client input (addresses, headers, arguments), so a flood of new
/// keys must not grow it without end. Past its budget it drops expired entries, then as many
/// others as take it under nine tenths of the budget, and counts them
/// (`tollgate_policy_state_evictions`). An evicted counter starts again from zero: under such
/// a flood, limits keyed by client input loosen rather than the gateway running out of memory.
pub struct MemoryStore {
    map: DashMap<String, Entry>,
    writes: AtomicU64,
    bytes: AtomicUsize,
    budget: usize,
    evicting: AtomicBool,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::with_budget(BUDGET.load(Ordering::Relaxed))
    }
}

impl MemoryStore {
    pub fn with_budget(budget: usize) -> MemoryStore {
        MemoryStore { map: DashMap::new(), writes: AtomicU64::new(0), bytes: AtomicUsize::new(0), budget, evicting: AtomicBool::new(false) }
    }

    /// The bytes the entries take, as [`cost`] counts them.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Accounts for one write: `before` and `after` are the entry's costs.
    fn wrote(&self, before: usize, after: usize) {
        self.bytes.fetch_add(after, Ordering::Relaxed);
        self.bytes.fetch_sub(before, Ordering::Relaxed);
        crate::telemetry::metrics::STATE_BYTES.set(self.bytes() as i64);
        let sweep = self.writes.fetch_add(1, Ordering::Relaxed) % 4096 == 4095;
        if sweep || self.bytes() > self.budget {
            self.shrink();
        }
    }

    fn forget(&self, key: &str, e: &Entry) {
        self.bytes.fetch_sub(cost(key, e), Ordering::Relaxed);
    }

    /// Drops expired entries and, when still over budget, others. One writer at a time does it.
    fn shrink(&self) {
        if self.evicting.swap(true, Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        self.map.retain(|k, e| {
            let keep = e.live(now);
            if !keep {
                self.forget(k, e);
            }
            keep
        });
        let target = self.budget / 10 * 9;
        if self.bytes() > target {
            let mut excess = self.bytes() - target;
            let mut victims = Vec::new();
            for e in self.map.iter() {
                if excess == 0 {
                    break;
                }
                excess = excess.saturating_sub(cost(e.key(), e.value()));
                victims.push(e.key().clone());
            }
            let mut evicted = 0;
            for k in victims {
                if let Some((k, e)) = self.map.remove(&k) {
                    self.forget(&k, &e);
                    evicted += 1;
                }
            }
            crate::telemetry::metrics::STATE_EVICTIONS.inc_by(evicted);
            crate::telemetry::metrics::STATE_BYTES.set(self.bytes() as i64);
            tracing::warn!(evicted, budget = self.budget, "policy state over its budget: entries evicted");
        }
        self.evicting.store(false, Ordering::Release);
    }
}

fn deadline(ttl: Option<Duration>) -> Option<Instant> {
    ttl.map(|t| Instant::now() + t)
}

impl StateStore for MemoryStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StateError>> {
        let now = Instant::now();
        let v = self.map.get(key).filter(|e| e.live(now)).map(|e| e.value.clone());
        Box::pin(async move { Ok(v) })
    }

    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Option<Duration>) -> BoxFuture<'a, Result<(), StateError>> {
        let e = Entry { value, expires: deadline(ttl) };
        let after = cost(key, &e);
        let before = self.map.insert(key.to_owned(), e).map_or(0, |old| cost(key, &old));
        self.wrote(before, after);
        Box::pin(async { Ok(()) })
    }

    fn incr<'a>(&'a self, key: &'a str, delta: i64, ttl: Option<Duration>) -> BoxFuture<'a, Result<i64, StateError>> {
        let now = Instant::now();
        let (r, before, after) = {
            let (mut e, before) = match self.map.entry(key.to_owned()) {
                dashmap::Entry::Occupied(o) => {
                    let before = cost(key, o.get());
                    (o.into_ref(), before)
                }
                dashmap::Entry::Vacant(v) => (v.insert(Entry { value: b"0".to_vec(), expires: deadline(ttl) }), 0),
            };
            if !e.live(now) {
                *e = Entry { value: b"0".to_vec(), expires: deadline(ttl) };
            }
            let r = match std::str::from_utf8(&e.value).ok().and_then(|s| s.parse::<i64>().ok()) {
                Some(n) => {
                    let n = n.saturating_add(delta);
                    e.value = n.to_string().into_bytes();
                    Ok(n)
                }
                None => Err(format!("the value of '{key}' is not an integer")),
            };
            (r, before, cost(key, &e))
        };
        self.wrote(before, after);
        Box::pin(async move { r })
    }

    fn cas<'a>(&'a self, key: &'a str, expected: Option<Vec<u8>>, new: Vec<u8>, ttl: Option<Duration>) -> BoxFuture<'a, Result<bool, StateError>> {
        let now = Instant::now();
        let (written, before, after) = match self.map.entry(key.to_owned()) {
            dashmap::Entry::Occupied(mut o) => {
                let current = Some(&o.get().value).filter(|_| o.get().live(now));
                if current == expected.as_ref() {
                    let e = Entry { value: new, expires: deadline(ttl) };
                    let after = cost(key, &e);
                    let old = o.insert(e);
                    (true, cost(key, &old), after)
                } else {
                    (false, 0, 0)
                }
            }
            dashmap::Entry::Vacant(v) => {
                if expected.is_none() {
                    let e = Entry { value: new, expires: deadline(ttl) };
                    let after = cost(key, &e);
                    v.insert(e);
                    (true, 0, after)
                } else {
                    (false, 0, 0)
                }
            }
        };
        self.wrote(before, after);
        Box::pin(async move { Ok(written) })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StateError>> {
        if let Some((k, e)) = self.map.remove(key) {
            self.forget(&k, &e);
        }
        Box::pin(async { Ok(()) })
    }
}

fn ttl(ms: Option<u64>) -> Option<Duration> {
    ms.map(Duration::from_millis)
}

impl Host {
    fn key(&self, key: &str) -> String {
        format!("{}\u{0}{key}", self.grants.namespace)
    }
    fn store(&self) -> std::sync::Arc<dyn StateStore> {
        self.grants.state.clone()
    }
}

type R<T> = wasmtime::Result<Result<T, String>>;

impl state::Host for Host {
    async fn get(&mut self, key: String) -> R<Option<Vec<u8>>> {
        self.reach.changing("state");
        let (k, s) = (self.key(&key), self.store());
        Ok(s.get(&k).await)
    }
    async fn set(&mut self, key: String, value: Vec<u8>, ttl_ms: Option<u64>) -> R<()> {
        self.reach.changing("state");
        let (k, s) = (self.key(&key), self.store());
        Ok(s.set(&k, value, ttl(ttl_ms)).await)
    }
    async fn incr(&mut self, key: String, delta: i64, ttl_ms: Option<u64>) -> R<i64> {
        self.reach.changing("state");
        let (k, s) = (self.key(&key), self.store());
        Ok(s.incr(&k, delta, ttl(ttl_ms)).await)
    }
    async fn cas(&mut self, key: String, expected: Option<Vec<u8>>, new: Vec<u8>, ttl_ms: Option<u64>) -> R<bool> {
        self.reach.changing("state");
        let (k, s) = (self.key(&key), self.store());
        Ok(s.cas(&k, expected, new, ttl(ttl_ms)).await)
    }
    async fn delete(&mut self, key: String) -> R<()> {
        self.reach.changing("state");
        let (k, s) = (self.key(&key), self.store());
        Ok(s.delete(&k).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_flood_of_new_keys_stays_within_the_budget() {
        let s = MemoryStore::with_budget(64 << 10);
        let before = crate::telemetry::metrics::STATE_EVICTIONS.get();
        for i in 0..20_000 {
            s.incr(&format!("rl:client-{i}"), 1, Some(Duration::from_secs(60))).await.unwrap();
            assert!(s.bytes() <= 64 << 10, "over budget at {i}: {}", s.bytes());
        }
        assert!(s.map.len() < 20_000 / 10, "{} entries kept", s.map.len());
        assert!(crate::telemetry::metrics::STATE_EVICTIONS.get() > before, "evictions are counted");
        // What is kept is accounted exactly.
        let counted: usize = s.map.iter().map(|e| cost(e.key(), e.value())).sum();
        assert_eq!(counted, s.bytes());
        s.delete("rl:client-19999").await.unwrap();
        let counted: usize = s.map.iter().map(|e| cost(e.key(), e.value())).sum();
        assert_eq!(counted, s.bytes());
    }

    #[tokio::test]
    async fn counters_expire_and_cas_only_writes_what_it_expected() {
        let s = MemoryStore::default();
        assert_eq!(s.incr("c", 2, Some(Duration::from_millis(30))).await, Ok(2));
        assert_eq!(s.incr("c", 3, Some(Duration::from_secs(60))).await, Ok(5));
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(s.incr("c", 1, None).await, Ok(1), "an expired counter starts again");
        assert_eq!(s.cas("k", None, b"a".to_vec(), None).await, Ok(true));
        assert_eq!(s.cas("k", None, b"b".to_vec(), None).await, Ok(false));
        assert_eq!(s.cas("k", Some(b"a".to_vec()), b"b".to_vec(), None).await, Ok(true));
        assert_eq!(s.get("k").await, Ok(Some(b"b".to_vec())));
        assert!(s.incr("k", 1, None).await.is_err());
    }
}
