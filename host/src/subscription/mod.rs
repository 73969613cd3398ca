//! Subscriptions: who may use a product, in which state, with which keys.
//!
//! Records live in a [`Store`] and, for the request path, in memory: an index from key
//! digest to subscription, so checking a key costs one hash and one map lookup. Every write
//! is committed to the store before memory changes and before the caller is answered.

pub mod keys;
pub mod postgres;
pub mod store;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rand::RngCore;
use serde::{Deserialize, Serialize};

use keys::KeyHash;
pub use store::{Changed, Kind, RedbStore, Store, StoreError, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(rename = "SubscriptionState")]
pub enum State {
    /// Waiting for an administrator's approval.
    Pending,
    Active,
    /// Stopped for now; can be made active again.
    Suspended,
    /// Ended for good.
    Cancelled,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::Pending => "pending",
            State::Active => "active",
            State::Suspended => "suspended",
            State::Cancelled => "cancelled",
        })
    }
}

/// One change of state: to what, when (Unix seconds), by whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "SubscriptionChange")]
pub struct Change {
    pub state: State,
    pub at: u64,
    pub by: String,
}

/// Which of the two keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(rename = "KeySlot")]
pub enum Slot {
    Primary,
    Secondary,
}

/// A subscription as stored. The keys are kept only as digests.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub product: String,
    /// Who subscribed (a person, team or application, as the subscriber named itself).
    pub subscriber: String,
    pub state: State,
    pub created_at: u64,
    pub history: Vec<Change>,
    primary: String,
    secondary: String,
    /// Bumped on every change: the ETag.
    pub version: u64,
}

/// A subscription as the management API shows it: everything but the key digests.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[schemars(rename = "Subscription")]
pub struct View {
    pub id: String,
    /// The product subscribed to.
    pub product: String,
    /// Who subscribed (a person, team or application, as the subscriber named itself).
    pub subscriber: String,
    pub state: State,
    /// When, in Unix seconds.
    pub created_at: u64,
    /// Every change of state, oldest first.
    pub history: Vec<Change>,
}

impl Subscription {
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }

    /// The record as the management API shows it: everything but the key digests.
    pub fn view(&self) -> View {
        View {
            id: self.id.clone(),
            product: self.product.clone(),
            subscriber: self.subscriber.clone(),
            state: self.state,
            created_at: self.created_at,
            history: self.history.clone(),
        }
    }

    fn hash(&self, slot: Slot) -> Option<KeyHash> {
        let hex = match slot {
            Slot::Primary => &self.primary,
            Slot::Secondary => &self.secondary,
        };
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex, &mut out).ok().map(|_| out)
    }

    fn set_key(&mut self, slot: Slot, key: &str) {
        let h = hex::encode(keys::hash(key));
        match slot {
            Slot::Primary => self.primary = h,
            Slot::Secondary => self.secondary = h,
        }
    }
}

/// The two keys of a new subscription, shown once.
pub struct NewKeys {
    pub primary: String,
    pub secondary: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    #[error("no subscription '{0}'")]
    NotFound(String),
    #[error("the subscription changed since it was read (its ETag is now {current})")]
    Stale { current: String },
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// All subscriptions: the store, and the in-memory copy the request path reads.
pub struct Registry {
    store: Arc<dyn Store>,
    subs: RwLock<HashMap<String, Subscription>>,
    by_key: RwLock<HashMap<KeyHash, String>>,
    /// Writes one at a time, so a check of the ETag and the write after it cannot interleave.
    writing: tokio::sync::Mutex<()>,
}

impl Registry {
    /// Loads every subscription the store holds.
    pub fn open(store: Arc<dyn Store>) -> Result<Registry, StoreError> {
        let mut subs = HashMap::new();
        for (id, bytes) in store.all(Kind::Subscriptions)? {
            let s: Subscription = serde_json::from_slice(&bytes).map_err(|e| StoreError::Failed(format!("subscription '{id}' is unreadable: {e}")))?;
            subs.insert(id, s);
        }
        let r = Registry { store, subs: RwLock::new(HashMap::new()), by_key: RwLock::new(HashMap::new()), writing: Default::default() };
        for s in subs.into_values() {
            r.remember(s);
        }
        Ok(r)
    }

    /// The store the subscriptions are kept in, for other records of the management API.
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// The subscription whose primary or secondary key this is.
    pub fn find(&self, key: &str) -> Option<Subscription> {
        let h = keys::hash(key);
        let id = self.by_key.read().expect("subscription lock").get(&h).cloned()?;
        let s = self.subs.read().expect("subscription lock").get(&id).cloned()?;
        // The map found the digest; confirm it in constant time against the record itself.
        let matches = [Slot::Primary, Slot::Secondary].into_iter().filter_map(|slot| s.hash(slot)).any(|stored| keys::same(&stored, &h));
        matches.then_some(s)
    }

    pub fn get(&self, id: &str) -> Option<Subscription> {
        self.subs.read().expect("subscription lock").get(id).cloned()
    }

    pub fn list(&self) -> Vec<Subscription> {
        let mut all: Vec<Subscription> = self.subs.read().expect("subscription lock").values().cloned().collect();
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        all
    }

    /// A new subscription, pending if the product needs approval, else active.
    pub async fn create(&self, product: &str, subscriber: &str, pending: bool, by: &str) -> Result<(Subscription, NewKeys), SubscriptionError> {
        let _w = self.writing.lock().await;
        let mut raw = [0u8; 12];
        rand::rng().fill_bytes(&mut raw);
        let state = if pending { State::Pending } else { State::Active };
        let at = now();
        let mut s = Subscription {
            id: format!("sub_{}", hex::encode(raw)),
            product: product.to_owned(),
            subscriber: subscriber.to_owned(),
            state,
            created_at: at,
            history: vec![Change { state, at, by: by.to_owned() }],
            primary: String::new(),
            secondary: String::new(),
            version: 1,
        };
        let new = NewKeys { primary: keys::generate(), secondary: keys::generate() };
        s.set_key(Slot::Primary, &new.primary);
        s.set_key(Slot::Secondary, &new.secondary);
        self.persist(&s).await?;
        self.remember(s.clone());
        Ok((s, new))
    }

    /// Moves a subscription to `to`, if its ETag is still `if_match` and the move is allowed.
    pub async fn transition(&self, id: &str, if_match: &str, to: State, by: &str) -> Result<Subscription, SubscriptionError> {
        self.change(id, if_match, |s| {
            let allowed = match to {
                State::Active => matches!(s.state, State::Pending | State::Suspended),
                State::Suspended => s.state == State::Active,
                State::Cancelled => s.state != State::Cancelled,
                State::Pending => false,
            };
            if !allowed {
                return Err(SubscriptionError::Conflict(format!("a {} subscription cannot become {to}", s.state)));
            }
            s.state = to;
            s.history.push(Change { state: to, at: now(), by: by.to_owned() });
            Ok(())
        })
        .await
    }

    /// Replaces one key; the other keeps working, so clients can move over without a gap.
    pub async fn regenerate(&self, id: &str, if_match: &str, slot: Slot) -> Result<(Subscription, String), SubscriptionError> {
        let key = keys::generate();
        let s = self
            .change(id, if_match, |s| {
                if s.state == State::Cancelled {
                    return Err(SubscriptionError::Conflict("a cancelled subscription has no keys to regenerate".into()));
                }
                s.set_key(slot, &key);
                Ok(())
            })
            .await?;
        Ok((s, key))
    }

    pub async fn delete(&self, id: &str, if_match: &str) -> Result<(), SubscriptionError> {
        let _w = self.writing.lock().await;
        let current = self.get(id).ok_or_else(|| SubscriptionError::NotFound(id.to_owned()))?;
        if current.etag() != if_match {
            return Err(SubscriptionError::Stale { current: current.etag() });
        }
        let (store, key) = (self.store.clone(), id.to_owned());
        tokio::task::spawn_blocking(move || store.delete(Kind::Subscriptions, &key)).await.map_err(|e| StoreError::Failed(e.to_string()))??;
        self.forget(&current);
        self.subs.write().expect("subscription lock").remove(id);
        Ok(())
    }

    async fn change(
        &self,
        id: &str,
        if_match: &str,
        f: impl FnOnce(&mut Subscription) -> Result<(), SubscriptionError>,
    ) -> Result<Subscription, SubscriptionError> {
        let _w = self.writing.lock().await;
        let current = self.get(id).ok_or_else(|| SubscriptionError::NotFound(id.to_owned()))?;
        if current.etag() != if_match {
            return Err(SubscriptionError::Stale { current: current.etag() });
        }
        let mut next = current.clone();
        f(&mut next)?;
        next.version += 1;
        self.persist(&next).await?;
        self.forget(&current);
        self.remember(next.clone());
        Ok(next)
    }

    /// Commits the record; returns once it is durable.
    async fn persist(&self, s: &Subscription) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(s).expect("a subscription serializes");
        let (store, id) = (self.store.clone(), s.id.clone());
        tokio::task::spawn_blocking(move || store.put(Kind::Subscriptions, &id, &bytes)).await.map_err(|e| StoreError::Failed(e.to_string()))?
    }

    /// Takes in a change another replica made: the record as it now is, or `None` if deleted.
    pub async fn refresh(&self, id: &str, record: Option<&[u8]>, seq: i64) -> Result<(), StoreError> {
        let next = record
            .map(|b| serde_json::from_slice::<Subscription>(b).map_err(|e| StoreError::Failed(format!("subscription '{id}' is unreadable: {e}"))))
            .transpose()?;
        let _w = self.writing.lock().await;
        if let Some(current) = self.get(id) {
            self.forget(&current);
            self.subs.write().expect("subscription lock").remove(id);
        }
        if let Some(s) = next {
            self.remember(s);
        }
        self.store.applied(Kind::Subscriptions, id, seq);
        Ok(())
    }

    fn remember(&self, s: Subscription) {
        let mut by_key = self.by_key.write().expect("subscription lock");
        for slot in [Slot::Primary, Slot::Secondary] {
            if let Some(h) = s.hash(slot) {
                by_key.insert(h, s.id.clone());
            }
        }
        self.subs.write().expect("subscription lock").insert(s.id.clone(), s);
    }

    fn forget(&self, s: &Subscription) {
        let mut by_key = self.by_key.write().expect("subscription lock");
        for slot in [Slot::Primary, Slot::Secondary] {
            if let Some(h) = s.hash(slot) {
                by_key.remove(&h);
            }
        }
    }
}
