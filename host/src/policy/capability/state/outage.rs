//! `on_state_outage: local`: while Redis is out, a binding's state lives in this process's
//! memory. What was counted there is not carried back; when Redis answers again the binding
//! continues from Redis's own values.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use super::{MemoryStore, RedisStore, StateError, StateStore};

pub struct Fallback {
    shared: Arc<RedisStore>,
    local: Arc<MemoryStore>,
}

impl Fallback {
    pub fn new(shared: Arc<RedisStore>, local: Arc<MemoryStore>) -> Fallback {
        Fallback { shared, local }
    }

    /// Asks Redis unless it is known to be out (so an outage does not cost a timeout per
    /// call), and memory when Redis cannot be asked.
    async fn either<'a, T>(
        &'a self,
        shared: impl FnOnce(&'a RedisStore) -> BoxFuture<'a, Result<T, StateError>>,
        local: impl FnOnce(&'a MemoryStore) -> BoxFuture<'a, Result<T, StateError>>,
    ) -> Result<T, StateError> {
        if self.shared.is_up() {
            match shared(&self.shared).await {
                Err(StateError::Unavailable(_)) => {}
                r => return r,
            }
        }
        local(&self.local).await
    }
}

impl StateStore for Fallback {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StateError>> {
        Box::pin(self.either(|s| s.get(key), |l| l.get(key)))
    }

    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Option<Duration>) -> BoxFuture<'a, Result<(), StateError>> {
        let again = value.clone();
        Box::pin(self.either(move |s| s.set(key, value, ttl), move |l| l.set(key, again, ttl)))
    }

    fn incr<'a>(&'a self, key: &'a str, delta: i64, ttl: Option<Duration>) -> BoxFuture<'a, Result<i64, StateError>> {
        Box::pin(self.either(move |s| s.incr(key, delta, ttl), move |l| l.incr(key, delta, ttl)))
    }

    fn cas<'a>(&'a self, key: &'a str, expected: Option<Vec<u8>>, new: Vec<u8>, ttl: Option<Duration>) -> BoxFuture<'a, Result<bool, StateError>> {
        let (e2, n2) = (expected.clone(), new.clone());
        Box::pin(self.either(move |s| s.cas(key, expected, new, ttl), move |l| l.cas(key, e2, n2, ttl)))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(self.either(|s| s.delete(key), |l| l.delete(key)))
    }
}
