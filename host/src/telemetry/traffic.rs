//! Requests and errors per server (and per version of a versioned server) since start, for
//! the console's live rates: the console polls the totals and shows the difference per
//! second. Kept apart from the Prometheus families because those cannot be read back by label.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Totals per server name, and per version within it. Names come from the config, so the
/// maps stay as small as it is; a known name is found without allocating.
#[derive(Default)]
pub struct Traffic {
    servers: RwLock<HashMap<String, Arc<PerServer>>>,
}

#[derive(Default)]
struct PerServer {
    all: Totals,
    versions: RwLock<HashMap<String, Arc<Totals>>>,
}

#[derive(Default)]
struct Totals {
    requests: AtomicU64,
    errors: AtomicU64,
}

/// Totals, as read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Counts {
    /// Client requests and notifications answered (or refused, or failed).
    pub requests: u64,
    /// Those whose answer was not a success: refusals, errors, tool errors, cancellations.
    pub errors: u64,
}

/// One server's totals, with those of each of its versions that has served.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct ServerCounts {
    #[serde(flatten)]
    pub all: Counts,
    /// By version name, for a server with versions.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub versions: BTreeMap<String, Counts>,
}

impl Totals {
    fn add(&self, failed: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn read(&self) -> Counts {
        Counts { requests: self.requests.load(Ordering::Relaxed), errors: self.errors.load(Ordering::Relaxed) }
    }
}

/// The entry under `name`, made on first use.
fn entry<T: Default>(map: &RwLock<HashMap<String, Arc<T>>>, name: &str) -> Arc<T> {
    if let Some(t) = map.read().expect("traffic lock").get(name) {
        return t.clone();
    }
    map.write().expect("traffic lock").entry(name.to_owned()).or_default().clone()
}

impl Traffic {
    /// Counts one exchange of `server`, served by `version` (empty for a server without).
    pub fn count(&self, server: &str, version: &str, failed: bool) {
        let per = entry(&self.servers, server);
        per.all.add(failed);
        if !version.is_empty() {
            entry(&per.versions, version).add(failed);
        }
    }

    /// Every server's totals so far.
    pub fn read(&self) -> HashMap<String, ServerCounts> {
        let servers = self.servers.read().expect("traffic lock");
        servers
            .iter()
            .map(|(name, per)| {
                let versions = per.versions.read().expect("traffic lock").iter().map(|(v, t)| (v.clone(), t.read())).collect();
                (name.clone(), ServerCounts { all: per.all.read(), versions })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_server_and_version_apart() {
        let t = Traffic::default();
        t.count("a", "", false);
        t.count("a", "", true);
        t.count("b", "v1", false);
        t.count("b", "v2", true);
        let r = t.read();
        assert_eq!(r["a"], ServerCounts { all: Counts { requests: 2, errors: 1 }, versions: BTreeMap::new() });
        assert_eq!(r["b"].all, Counts { requests: 2, errors: 1 });
        assert_eq!(r["b"].versions["v1"], Counts { requests: 1, errors: 0 });
        assert_eq!(r["b"].versions["v2"], Counts { requests: 1, errors: 1 });
    }
}
