//! The embedded store: one process, a sharded map, bounded, expired entries swept as writes
//! go by. With a journal, the keys of lasting entries are noted as they change, for
//! [`super::durable`] to keep on disk.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dashmap::{DashMap, DashSet};
use futures::future::BoxFuture;

use super::{StateError, StateStore};

struct Entry {
    value: Vec<u8>,
    expires: Option<Instant>,
    /// Written lasting to a journaled store: it may be on disk, so its changes are noted.
    kept: bool,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|e| e > now)
    }
}

/// Entries written with at least this long to live are kept across restarts (quota periods,
/// fetched keys, cached tokens); shorter ones (rate-limit windows, locks) are memory only.
pub const LASTING: Duration = Duration::from_secs(300);

/// The default bound on the embedded store: `limits.max_policy_state_mb`.
pub const DEFAULT_BUDGET: usize = 256 << 20;

/// The bound the next default store is made with; set at start, before the first policy loads.
static BUDGET: AtomicUsize = AtomicUsize::new(DEFAULT_BUDGET);

/// Sets the embedded store's bound, in bytes.
pub fn set_budget(bytes: usize) {
    BUDGET.store(bytes, Ordering::Relaxed);
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::with_budget(BUDGET.load(Ordering::Relaxed))
    }
}

/// What one entry costs: its key, its value, and the map's own share.
fn cost(key: &str, e: &Entry) -> usize {
    key.len() + e.value.len() + 64
}

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
    /// Keys of lasting entries changed since the journal was last taken; `None`: memory only.
    journal: Option<DashSet<String>>,
}

impl MemoryStore {
    pub fn with_budget(budget: usize) -> MemoryStore {
        MemoryStore { map: DashMap::new(), writes: AtomicU64::new(0), bytes: AtomicUsize::new(0), budget, evicting: AtomicBool::new(false), journal: None }
    }

    /// As [`MemoryStore::with_budget`], noting the keys of lasting entries as they change.
    pub(super) fn journaled(budget: usize) -> MemoryStore {
        MemoryStore { journal: Some(DashSet::new()), ..MemoryStore::with_budget(budget) }
    }

    /// The bytes the entries take, as [`cost`] counts them.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Forgets every entry: `tollgate policy test` starts each case from the state it gives.
    pub fn clear(&self) {
        self.map.clear();
        self.bytes.store(0, Ordering::Relaxed);
    }

    /// The keys noted since the last call, and the journal emptied.
    pub(super) fn take_journal(&self) -> Vec<String> {
        let Some(j) = &self.journal else { return Vec::new() };
        let keys: Vec<String> = j.iter().map(|k| k.clone()).collect();
        for k in &keys {
            j.remove(k);
        }
        keys
    }

    /// Notes `key` again, after a write of it failed.
    pub(super) fn renote(&self, key: String) {
        if let Some(j) = &self.journal {
            j.insert(key);
        }
    }

    /// An entry's value and time left, if it is live.
    pub(super) fn read(&self, key: &str) -> Option<(Vec<u8>, Option<Duration>)> {
        let now = Instant::now();
        self.map.get(key).filter(|e| e.live(now)).map(|e| (e.value.clone(), e.expires.map(|x| x.saturating_duration_since(now))))
    }

    /// Puts back an entry kept on disk, without noting it.
    pub(super) fn restore(&self, key: String, value: Vec<u8>, left: Option<Duration>) {
        let e = Entry { value, expires: left.map(|l| Instant::now() + l), kept: true };
        let after = cost(&key, &e);
        let before = self.map.insert(key.clone(), e).map_or(0, |old| cost(&key, &old));
        self.bytes.fetch_add(after, Ordering::Relaxed);
        self.bytes.fetch_sub(before, Ordering::Relaxed);
    }

    fn note(&self, key: &str, kept: bool) {
        if kept && let Some(j) = &self.journal {
            j.insert(key.to_owned());
        }
    }

    /// A new entry, kept on disk if the store is journaled and it lives long enough.
    fn entry(&self, value: Vec<u8>, ttl: Option<Duration>) -> Entry {
        Entry { value, expires: ttl.map(|t| Instant::now() + t), kept: self.journal.is_some() && ttl.is_none_or(|t| t >= LASTING) }
    }

    /// Accounts for one write: `before` and `after` are the entry's costs; `kept`, whether
    /// the entry was or is now on disk.
    fn wrote(&self, key: &str, before: usize, after: usize, kept: bool) {
        self.note(key, kept);
        self.bytes.fetch_add(after, Ordering::Relaxed);
        self.bytes.fetch_sub(before, Ordering::Relaxed);
        crate::telemetry::metrics::STATE_BYTES.set(self.bytes() as i64);
        let sweep = self.writes.fetch_add(1, Ordering::Relaxed) % 4096 == 4095;
        if sweep || self.bytes() > self.budget {
            self.shrink();
        }
    }

    fn forget(&self, key: &str, e: &Entry) {
        self.note(key, e.kept);
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

impl StateStore for MemoryStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StateError>> {
        let now = Instant::now();
        let v = self.map.get(key).filter(|e| e.live(now)).map(|e| e.value.clone());
        Box::pin(async move { Ok(v) })
    }

    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Option<Duration>) -> BoxFuture<'a, Result<(), StateError>> {
        let e = self.entry(value, ttl);
        let (after, mut kept) = (cost(key, &e), e.kept);
        // A kept entry replaced by a short one must leave the disk too.
        let before = self.map.insert(key.to_owned(), e).map_or(0, |old| {
            kept |= old.kept;
            cost(key, &old)
        });
        self.wrote(key, before, after, kept);
        Box::pin(async { Ok(()) })
    }

    fn incr<'a>(&'a self, key: &'a str, delta: i64, ttl: Option<Duration>) -> BoxFuture<'a, Result<i64, StateError>> {
        let now = Instant::now();
        let (r, before, after, kept) = {
            let (mut e, before) = match self.map.entry(key.to_owned()) {
                dashmap::Entry::Occupied(o) => {
                    let before = cost(key, o.get());
                    (o.into_ref(), before)
                }
                dashmap::Entry::Vacant(v) => (v.insert(self.entry(b"0".to_vec(), ttl)), 0),
            };
            let mut kept = e.kept;
            if !e.live(now) {
                *e = self.entry(b"0".to_vec(), ttl);
                kept |= e.kept;
            }
            let r = match std::str::from_utf8(&e.value).ok().and_then(|s| s.parse::<i64>().ok()) {
                Some(n) => {
                    let n = n.saturating_add(delta);
                    e.value = n.to_string().into_bytes();
                    Ok(n)
                }
                None => Err(StateError::Refused(format!("the value of '{key}' is not an integer"))),
            };
            (r, before, cost(key, &e), kept)
        };
        self.wrote(key, before, after, kept);
        Box::pin(async move { r })
    }

    fn cas<'a>(&'a self, key: &'a str, expected: Option<Vec<u8>>, new: Vec<u8>, ttl: Option<Duration>) -> BoxFuture<'a, Result<bool, StateError>> {
        let now = Instant::now();
        let (written, before, after, kept) = match self.map.entry(key.to_owned()) {
            dashmap::Entry::Occupied(mut o) => {
                let current = Some(&o.get().value).filter(|_| o.get().live(now));
                if current == expected.as_ref() {
                    let e = self.entry(new, ttl);
                    let (after, kept) = (cost(key, &e), e.kept);
                    let old = o.insert(e);
                    (true, cost(key, &old), after, kept || old.kept)
                } else {
                    (false, 0, 0, false)
                }
            }
            dashmap::Entry::Vacant(v) => {
                if expected.is_none() {
                    let e = self.entry(new, ttl);
                    let (after, kept) = (cost(key, &e), e.kept);
                    v.insert(e);
                    (true, 0, after, kept)
                } else {
                    (false, 0, 0, false)
                }
            }
        };
        self.wrote(key, before, after, kept);
        Box::pin(async move { Ok(written) })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StateError>> {
        if let Some((k, e)) = self.map.remove(key) {
            self.forget(&k, &e);
        }
        Box::pin(async { Ok(()) })
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
    async fn a_journal_notes_only_what_may_be_on_disk() {
        let s = MemoryStore::journaled(1 << 20);
        s.incr("window", 1, Some(Duration::from_secs(60))).await.unwrap();
        s.set("lock", b"1".to_vec(), Some(Duration::from_secs(2))).await.unwrap();
        assert!(s.take_journal().is_empty(), "short-lived entries stay in memory");
        s.incr("month", 1, Some(Duration::from_secs(30 * 86_400))).await.unwrap();
        s.set("keys", b"jwks".to_vec(), None).await.unwrap();
        let mut noted = s.take_journal();
        noted.sort();
        assert_eq!(noted, ["keys", "month"]);
        assert!(s.take_journal().is_empty(), "taking the journal empties it");
        // A kept entry replaced by a short one, or deleted, must leave the disk: it is noted.
        s.set("keys", b"short".to_vec(), Some(Duration::from_secs(1))).await.unwrap();
        s.delete("month").await.unwrap();
        let mut noted = s.take_journal();
        noted.sort();
        assert_eq!(noted, ["keys", "month"]);
        assert_eq!(s.read("month"), None);
        assert!(MemoryStore::with_budget(1 << 20).journal.is_none(), "no journal unless asked");
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
