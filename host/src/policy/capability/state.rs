//! `tollgate:policy/state`: host-owned key-value state with TTLs and atomic updates, behind
//! [`StateStore`] so a shared store (Redis) can replace the in-memory one.

use std::sync::atomic::{AtomicU64, Ordering};
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

/// The default store: one process, sharded map, expired entries swept as writes go by.
#[derive(Default)]
pub struct MemoryStore {
    map: DashMap<String, Entry>,
    writes: AtomicU64,
}

impl MemoryStore {
    fn wrote(&self) {
        if self.writes.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            let now = Instant::now();
            self.map.retain(|_, e| e.live(now));
        }
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
        self.map.insert(key.to_owned(), Entry { value, expires: deadline(ttl) });
        self.wrote();
        Box::pin(async { Ok(()) })
    }

    fn incr<'a>(&'a self, key: &'a str, delta: i64, ttl: Option<Duration>) -> BoxFuture<'a, Result<i64, StateError>> {
        let now = Instant::now();
        let r = {
            let mut e = self.map.entry(key.to_owned()).or_insert_with(|| Entry { value: b"0".to_vec(), expires: deadline(ttl) });
            if !e.live(now) {
                *e = Entry { value: b"0".to_vec(), expires: deadline(ttl) };
            }
            match std::str::from_utf8(&e.value).ok().and_then(|s| s.parse::<i64>().ok()) {
                Some(n) => {
                    let n = n.saturating_add(delta);
                    e.value = n.to_string().into_bytes();
                    Ok(n)
                }
                None => Err(format!("the value of '{key}' is not an integer")),
            }
        };
        self.wrote();
        Box::pin(async move { r })
    }

    fn cas<'a>(&'a self, key: &'a str, expected: Option<Vec<u8>>, new: Vec<u8>, ttl: Option<Duration>) -> BoxFuture<'a, Result<bool, StateError>> {
        let now = Instant::now();
        let written = match self.map.entry(key.to_owned()) {
            dashmap::Entry::Occupied(mut o) => {
                let current = Some(&o.get().value).filter(|_| o.get().live(now));
                if current == expected.as_ref() {
                    o.insert(Entry { value: new, expires: deadline(ttl) });
                    true
                } else {
                    false
                }
            }
            dashmap::Entry::Vacant(v) => {
                if expected.is_none() {
                    v.insert(Entry { value: new, expires: deadline(ttl) });
                    true
                } else {
                    false
                }
            }
        };
        self.wrote();
        Box::pin(async move { Ok(written) })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StateError>> {
        self.map.remove(key);
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
        let (k, s) = (self.key(&key), self.store());
        Ok(s.get(&k).await)
    }
    async fn set(&mut self, key: String, value: Vec<u8>, ttl_ms: Option<u64>) -> R<()> {
        let (k, s) = (self.key(&key), self.store());
        Ok(s.set(&k, value, ttl(ttl_ms)).await)
    }
    async fn incr(&mut self, key: String, delta: i64, ttl_ms: Option<u64>) -> R<i64> {
        let (k, s) = (self.key(&key), self.store());
        Ok(s.incr(&k, delta, ttl(ttl_ms)).await)
    }
    async fn cas(&mut self, key: String, expected: Option<Vec<u8>>, new: Vec<u8>, ttl_ms: Option<u64>) -> R<bool> {
        let (k, s) = (self.key(&key), self.store());
        Ok(s.cas(&k, expected, new, ttl(ttl_ms)).await)
    }
    async fn delete(&mut self, key: String) -> R<()> {
        let (k, s) = (self.key(&key), self.store());
        Ok(s.delete(&k).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
