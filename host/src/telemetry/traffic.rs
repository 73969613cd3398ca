//! Requests and errors per server since start, for the console's live rates: the console
//! polls the totals and shows the difference per second. Kept apart from the Prometheus
//! families because those cannot be read back by label.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Totals per server name. Names come from the config, so the map stays as small as it is.
#[derive(Default)]
pub struct Traffic {
    servers: RwLock<HashMap<String, Arc<Totals>>>,
}

#[derive(Default)]
struct Totals {
    requests: AtomicU64,
    errors: AtomicU64,
}

/// One server's totals, as read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Counts {
    /// Client requests and notifications answered (or refused, or failed).
    pub requests: u64,
    /// Those whose answer was not a success: refusals, errors, tool errors, cancellations.
    pub errors: u64,
}

impl Traffic {
    /// Counts one exchange of `server`.
    pub fn count(&self, server: &str, failed: bool) {
        let known = self.servers.read().expect("traffic lock").get(server).cloned();
        let totals = match known {
            Some(t) => t,
            None => self.servers.write().expect("traffic lock").entry(server.to_owned()).or_default().clone(),
        };
        totals.requests.fetch_add(1, Ordering::Relaxed);
        if failed {
            totals.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every server's totals so far.
    pub fn read(&self) -> HashMap<String, Counts> {
        let servers = self.servers.read().expect("traffic lock");
        servers.iter().map(|(k, t)| (k.clone(), Counts { requests: t.requests.load(Ordering::Relaxed), errors: t.errors.load(Ordering::Relaxed) })).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_server_apart() {
        let t = Traffic::default();
        t.count("a", false);
        t.count("a", true);
        t.count("b", false);
        let r = t.read();
        assert_eq!(r["a"], Counts { requests: 2, errors: 1 });
        assert_eq!(r["b"], Counts { requests: 1, errors: 0 });
    }
}
