//! A server as it runs: its versions (one, unnamed, for a server without versions), each with
//! its backend and chain ([`Version`]), and which version a request reaches.
//!
//! `/{name}/mcp` reaches the default version, or the preview for its share of new sessions and
//! for its chosen subscriptions; `/{name}/{version}/mcp` reaches one version directly. A session
//! stays on the version it started with: it holds that [`Version`], and the routing, swapped
//! whole when the management API changes it, only decides where new sessions go.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::Deserialize;

use crate::backend::Backend;
use crate::config::{Limits, Routing, ServerConfig};
use crate::mcp::error::GatewayError;

/// The server, and maybe the version, a request's path names.
#[derive(Debug, Clone, Deserialize)]
pub struct Address {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
}

/// What serves a session: a plain server, or one version of a versioned one.
pub struct Version {
    pub name: String,
    /// Which version of the server this is, when it has versions.
    pub version: Option<String>,
    /// In the shape of a plain server, for a version too.
    pub config: ServerConfig,
    pub backend: Backend,
    /// How long a request may wait for its answer.
    pub timeout: Duration,
    /// The policy chain, swapped whole on reload.
    pub policies: arc_swap::ArcSwap<crate::policy::Chain>,
}

impl Version {
    /// Builds a plain server, or one version (`served` says which), from a validated config.
    pub fn new(served: crate::config::Served, limits: &crate::config::Limits) -> Result<Version, GatewayError> {
        let s = served.config;
        let timeout = s.backend.request_timeout_ms.map(Duration::from_millis).unwrap_or(limits.request_timeout());
        let backend = Backend::new(&s, limits)?;
        Ok(Version { name: s.name.clone(), version: served.version, config: s, backend, timeout, policies: Default::default() })
    }

    /// The chain this server (or version) runs now.
    pub fn chain(&self) -> Arc<crate::policy::Chain> {
        self.policies.load_full()
    }

    /// `docs`, or `docs@v2` for a version: what policy chains are kept under.
    pub fn key(&self) -> String {
        crate::config::version_key(&self.name, self.version.as_deref())
    }
}

/// What `/{name}/…` reaches: a server's versions (one, unnamed, for a server without versions)
/// and the routing between them.
pub struct Server {
    pub name: String,
    /// The server as the file (or the management API) declared it.
    pub config: ServerConfig,
    /// Whether the management API created or last replaced it: the file then no longer
    /// speaks for it, and a reload of the file leaves it alone.
    pub from_api: bool,
    /// In the file's order.
    servers: Vec<Arc<Version>>,
    /// `None` for a server without versions.
    routing: Option<ArcSwap<Live>>,
}

/// The routing in force, and how many new sessions it has placed (which spreads the preview's
/// share evenly, so that a share of 10 is exactly one new session in ten).
struct Live {
    routing: Routing,
    placed: AtomicU64,
}

impl Live {
    fn new(routing: Routing) -> Arc<Live> {
        Arc::new(Live { routing, placed: AtomicU64::new(0) })
    }

    /// Whether a request through the server's path goes to the preview: always for its chosen
    /// subscriptions; else for its share of new sessions, spread evenly, or, for a `caller`
    /// with no session to stay on (a hash of who it is), for its share of callers, sticky.
    fn to_preview(&self, subscription: Option<&str>, caller: Option<u64>) -> bool {
        let Some(p) = &self.routing.preview else { return false };
        if subscription.is_some_and(|s| p.subscriptions.iter().any(|c| c == s)) {
            return true;
        }
        let share = u64::from(p.share.min(100));
        if let Some(c) = caller {
            return c % 100 < share;
        }
        let n = self.placed.fetch_add(1, Ordering::Relaxed);
        (n + 1) * share / 100 > n * share / 100
    }
}

impl Server {
    /// Builds every version of a validated server.
    pub fn new(config: &ServerConfig, limits: &Limits) -> Result<Server, GatewayError> {
        Server::rebuild(config, limits, None)
    }

    /// Builds a server that replaces `old`: a version whose config is unchanged but for its
    /// policies is kept as it runs (its backend, its processes, its live sessions), so a
    /// change to one version disturbs no other. Chains are the caller's to load and store.
    pub fn rebuild(config: &ServerConfig, limits: &Limits, old: Option<&Server>) -> Result<Server, GatewayError> {
        let servers = config
            .served()
            .into_iter()
            .map(|s| match old.and_then(|o| o.servers.iter().find(|k| k.version == s.version && without_chains(&k.config) == without_chains(&s.config))) {
                Some(kept) => Ok(kept.clone()),
                None => Version::new(s, limits).map(Arc::new),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let routing = Routing::of(config).map(|r| ArcSwap::new(Live::new(r)));
        Ok(Server { name: config.name.clone(), config: config.clone(), from_api: false, servers, routing })
    }

    /// Whether `s` is this server as declared, chains aside (those are swapped on their own).
    pub fn declares(&self, s: &ServerConfig) -> bool {
        without_chains(&self.config) == without_chains(s)
    }

    /// The server as it runs now: the declared one, with the routing and the chains in force
    /// (the management API may have changed both).
    pub fn running_config(&self) -> ServerConfig {
        let mut c = self.current_config();
        for server in &self.servers {
            let declared = server.policies.load().declared.clone();
            match &server.version {
                None => c.policies = declared,
                Some(v) => {
                    if let Some(vc) = c.versions.iter_mut().find(|vc| &vc.name == v) {
                        vc.policies = declared;
                    }
                }
            }
        }
        c
    }

    /// Every version, retired ones included, in the file's order.
    pub fn all(&self) -> &[Arc<Version>] {
        &self.servers
    }

    pub fn has_versions(&self) -> bool {
        self.routing.is_some()
    }

    pub fn version(&self, name: &str) -> Option<&Arc<Version>> {
        self.servers.iter().find(|s| s.version.as_deref() == Some(name))
    }

    /// The routing in force; `None` for a server without versions.
    pub fn routing(&self) -> Option<Routing> {
        self.routing.as_ref().map(|r| r.load().routing.clone())
    }

    /// Puts a routing in force at once. New sessions follow it; live ones stay where they are.
    /// The caller has checked it ([`crate::config::check_routing`]).
    pub fn set_routing(&self, routing: Routing) {
        if let Some(r) = &self.routing {
            r.store(Live::new(routing));
        }
    }

    /// The server as declared, with the routing in force.
    pub fn current_config(&self) -> ServerConfig {
        let mut c = self.config.clone();
        if let Some(r) = self.routing() {
            r.write_into(&mut c);
        }
        c
    }

    /// Versions that serve now (all of a server without versions).
    pub fn serving(&self) -> Vec<Arc<Version>> {
        let retired = self.routing().map(|r| r.retired).unwrap_or_default();
        self.servers.iter().filter(|s| s.version.as_ref().is_none_or(|v| !retired.contains(v))).cloned().collect()
    }

    /// The version a new session (or a request with no session, `caller` naming who it is)
    /// reaches: the one the path names, or by the routing in force.
    pub fn pick(&self, asked: Option<&str>, subscription: Option<&str>, caller: Option<u64>) -> Result<Arc<Version>, GatewayError> {
        let Some(routing) = &self.routing else {
            return match asked {
                None => Ok(self.servers[0].clone()),
                Some(v) => Err(GatewayError::UnknownVersion { server: self.name.clone(), version: v.to_owned(), known: "it has no versions".into() }),
            };
        };
        let live = routing.load();
        let name = match (asked, &live.routing.preview) {
            (Some(v), _) => v,
            (None, Some(p)) if live.to_preview(subscription, caller) => p.version.as_str(),
            (None, _) => live.routing.default_version.as_str(),
        };
        let server = self.version(name).ok_or_else(|| {
            let names: Vec<&str> = self.servers.iter().filter_map(|s| s.version.as_deref()).collect();
            GatewayError::UnknownVersion { server: self.name.clone(), version: name.to_owned(), known: format!("its versions: {}", names.join(", ")) }
        })?;
        self.check_serving(server)?;
        Ok(server.clone())
    }

    /// A retired version serves no one, its live sessions included: they are told which
    /// version to use instead.
    pub fn check_serving(&self, server: &Version) -> Result<(), GatewayError> {
        let (Some(routing), Some(version)) = (&self.routing, &server.version) else { return Ok(()) };
        let live = routing.load();
        if !live.routing.retired.contains(version) {
            return Ok(());
        }
        Err(GatewayError::VersionRetired { server: self.name.clone(), version: version.clone(), instead: live.routing.default_version.clone() })
    }
}

/// A server's config with its chains left out, to tell what else differs.
fn without_chains(c: &ServerConfig) -> Option<serde_json::Value> {
    let mut c = c.clone();
    c.policies.clear();
    for v in &mut c.versions {
        v.policies.clear();
    }
    serde_json::to_value(c).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PreviewConfig;

    fn live(share: u32, subscriptions: &[&str]) -> Arc<Live> {
        Live::new(Routing {
            default_version: "v1".into(),
            preview: Some(PreviewConfig { version: "v2".into(), share, subscriptions: subscriptions.iter().map(|s| (*s).to_owned()).collect() }),
            retired: Default::default(),
        })
    }

    fn previewed(l: &Live, n: usize) -> usize {
        (0..n).filter(|_| l.to_preview(None, None)).count()
    }

    #[test]
    fn the_share_is_exact_over_every_hundred_sessions() {
        for share in [0, 1, 10, 33, 50, 99, 100] {
            assert_eq!(previewed(&live(share, &[]), 100), share as usize, "share {share}");
            assert_eq!(previewed(&live(share, &[]), 300), 3 * share as usize, "share {share}");
        }
        let half = live(50, &[]);
        let picks: Vec<bool> = (0..4).map(|_| half.to_preview(None, None)).collect();
        assert_eq!(picks, [false, true, false, true], "spread out, not in a block");
    }

    #[test]
    fn a_caller_without_a_session_stays_on_one_side_of_the_share() {
        let l = live(30, &["sub_a"]);
        let sides: Vec<bool> = (0..100u64).map(|c| l.to_preview(None, Some(c))).collect();
        assert_eq!(sides.iter().filter(|p| **p).count(), 30, "the share of callers");
        assert!((0..100u64).all(|c| l.to_preview(None, Some(c)) == sides[c as usize]), "sticky");
        assert!(l.to_preview(Some("sub_a"), Some(99)), "a chosen subscription still reaches the preview");
        let picks: Vec<bool> = (0..10).map(|_| l.to_preview(None, None)).collect();
        assert_eq!(picks.iter().filter(|p| **p).count(), 3, "callers with a hash leave the sessions' count alone");
    }

    #[test]
    fn chosen_subscriptions_always_reach_the_preview() {
        let l = live(0, &["sub_a"]);
        assert!(l.to_preview(Some("sub_a"), None));
        assert!(!l.to_preview(Some("sub_b"), None));
        assert!(!l.to_preview(None, None));
    }
}
