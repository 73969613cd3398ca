//! The running gateway: its servers and their backends, and the sessions of their clients.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arc_swap::ArcSwap;
use std::sync::atomic::AtomicBool;

use crate::config::Config;
use crate::mcp::error::GatewayError;
use crate::server::Address;
use crate::server::{Server, Version};
use crate::session::{Directory, Registry, Session};
use crate::telemetry::Telemetry;

/// The servers by name.
pub type Servers = HashMap<String, Arc<Server>>;

pub struct Gateway {
    pub config: Config,
    /// What `/{name}/…` reaches, by server name; swapped whole when the management API adds,
    /// replaces or removes a server, so a request sees one consistent map.
    pub servers: ArcSwap<Servers>,
    /// The products, swapped whole when they change.
    pub catalog: arc_swap::ArcSwap<crate::product::Catalog>,
    /// Subscriptions, where `management.data_dir` keeps them.
    pub subscriptions: Option<Arc<crate::subscription::Registry>>,
    pub sessions: Arc<Registry>,
    pub draining: AtomicBool,
    /// Metrics and the access log, shared by every exchange.
    pub telemetry: Arc<Telemetry>,
    /// What the management API set, which a reload of the file leaves as it is.
    pub overrides: std::sync::Mutex<Overrides>,
    /// Held by every change of what is served (a management API write, a reload of the
    /// file), so a check and the write after it cannot interleave with another change.
    pub changing: tokio::sync::Mutex<()>,
}

/// Names of what the management API created, replaced or deleted: the file no longer speaks
/// for them (policy chains carry their own mark, [`crate::policy::Chain::from_api`]).
#[derive(Debug, Default)]
pub struct Overrides {
    pub servers: HashSet<String>,
    pub products: HashSet<String>,
    /// Servers whose routing (default, preview, retired versions) the API set.
    pub routings: HashSet<String>,
}

impl Gateway {
    /// Builds the runtime from a validated config. Must run inside a tokio runtime (stdio pools
    /// start here; a shared database is connected to and migrated here).
    pub async fn new(config: Config) -> Result<Arc<Gateway>, GatewayError> {
        let mut servers = HashMap::new();
        for s in &config.servers {
            servers.insert(s.name.clone(), Arc::new(Server::new(s, &config.limits)?));
        }
        let telemetry = Telemetry::new(&config).map_err(|e| GatewayError::BadRequest(format!("cannot open the access log: {e}")))?;
        let storage = |e: crate::subscription::StoreError| GatewayError::Storage(e.to_string());
        let m = config.management.as_ref();
        let store: Option<Arc<dyn crate::subscription::Store>> = match (m.and_then(|m| m.database.as_ref()), m.and_then(|m| m.data_dir.as_ref())) {
            (Some(db), _) => {
                let url = db.reveal().map_err(|e| GatewayError::Storage(format!("management.database: {e}")))?;
                Some(Arc::new(crate::subscription::postgres::PgStore::open(&url).await.map_err(storage)?))
            }
            (None, Some(dir)) => Some(Arc::new(crate::subscription::RedbStore::open(dir).map_err(storage)?)),
            (None, None) => None,
        };
        let subscriptions = match store {
            Some(store) => Some(Arc::new(crate::subscription::Registry::open(store).map_err(storage)?)),
            None => None,
        };
        let catalog = arc_swap::ArcSwap::from_pointee(crate::product::Catalog::new(&config.products));
        let sessions = Arc::new(Registry::new(config.sessions.clone(), Directory::open(&config)));
        tokio::spawn(sessions.clone().expire_idle());
        Ok(Arc::new(Gateway {
            config,
            servers: ArcSwap::from_pointee(servers),
            catalog,
            subscriptions,
            sessions,
            draining: AtomicBool::new(false),
            telemetry: Arc::new(telemetry),
            overrides: Default::default(),
            changing: Default::default(),
        }))
    }

    pub fn server(&self, name: &str) -> Result<Arc<Server>, GatewayError> {
        self.servers.load().get(name).cloned().ok_or_else(|| GatewayError::UnknownServer(name.to_owned()))
    }

    /// The session `sid` of the server `to` names, reached through the server's own path or its
    /// version's, and only while its version serves. With a session directory, a session
    /// another replica began is continued here ([`Registry::revive`]).
    pub async fn session(&self, to: &Address, sid: &str) -> Result<Arc<Session>, GatewayError> {
        let session = self.find_session(to, sid).await?;
        self.server(&to.name)?.check_serving(&session.server)?;
        Ok(session)
    }

    /// As [`session`], whether its version serves or not: for ending it.
    pub async fn find_session(&self, to: &Address, sid: &str) -> Result<Arc<Session>, GatewayError> {
        let session = match self.held(to, sid) {
            Ok(s) => s,
            Err(e) => match self.server(&to.name) {
                Ok(endpoint) => self.sessions.revive(sid, to, &endpoint).await?,
                Err(_) => return Err(e),
            },
        };
        self.sessions.keep(&session).await?;
        Ok(session)
    }

    /// As [`session`], among this process's sessions only: a legacy session lives with its SSE
    /// connection, so it is never anywhere else.
    pub fn session_here(&self, to: &Address, sid: &str) -> Result<Arc<Session>, GatewayError> {
        let session = self.held(to, sid)?;
        self.server(&to.name)?.check_serving(&session.server)?;
        Ok(session)
    }

    fn held(&self, to: &Address, sid: &str) -> Result<Arc<Session>, GatewayError> {
        let session = self.sessions.get(sid, &to.name)?;
        if to.version.is_some() && session.server.version != to.version {
            return Err(GatewayError::SessionNotFound);
        }
        Ok(session)
    }

    /// Every endpoint now, by name.
    pub fn server_map(&self) -> Arc<Servers> {
        self.servers.load_full()
    }

    /// Every server and version now, retired ones included.
    pub fn all_versions(&self) -> Vec<Arc<Version>> {
        self.servers.load().values().flat_map(|e| e.all().iter().cloned()).collect()
    }

    /// Puts loaded chains in place, atomically per server. Requests in flight keep the chain they
    /// began with. A chain set through the management API stays: the file's does not undo it.
    /// Nor does the file speak for a server the API created or replaced, or one it no longer has.
    pub fn install(&self, loaded: &crate::policy::Loaded) {
        let from_file = |e: &&Arc<Server>| !e.from_api && loaded.servers.contains(&e.name);
        for server in self.server_map().values().filter(from_file).flat_map(|e| e.all().iter()) {
            let chain = loaded.chains.get(&server.key()).cloned().unwrap_or_default();
            let before = server.policies.rcu(|current| if current.from_api { current.clone() } else { chain.clone() });
            if before.from_api && before.declared != chain.declared {
                tracing::warn!(server = %server.key(), "the file's chain differs from the one set through the management API, which stays in force (apply the file with `tollgate apply`)");
            }
        }
        for (name, product) in &self.catalog.load().products {
            let same = loaded.product_sources.get(name).is_some_and(|src| *src == serde_json::to_value(&product.config).expect("a product serializes"));
            if same {
                product.chain.store(loaded.products.get(name).cloned().unwrap_or_default());
            }
        }
    }

    /// Notes that the API set `what`, so a reload of the file leaves it alone.
    pub fn overridden(&self, what: impl FnOnce(&mut Overrides) -> bool) {
        what(&mut self.overrides.lock().expect("overrides lock"));
    }

    /// Puts `endpoint` in place of the server `name` (or removes it), for requests that start
    /// from now on. Live sessions of a version the new endpoint no longer has (all of them,
    /// when the server goes) end: their next request is told the session is gone, and the
    /// client starts a new one where the server is now. A version that stays keeps its
    /// sessions, on the backend they began with. The caller serializes changes.
    pub async fn set_server(&self, name: &str, endpoint: Option<Arc<Server>>) {
        let mut next = Servers::clone(&self.servers.load());
        let old = match &endpoint {
            Some(e) => next.insert(name.to_owned(), e.clone()),
            None => next.remove(name),
        };
        self.servers.store(Arc::new(next));
        let Some(old) = old else { return };
        let kept = |s: &Arc<Version>| endpoint.as_ref().is_some_and(|e| e.all().iter().any(|n| n.version == s.version));
        let gone: Vec<&Arc<Version>> = old.all().iter().filter(|s| !kept(s)).collect();
        for s in self.sessions.all() {
            if gone.iter().any(|g| Arc::ptr_eq(g, &s.server)) {
                self.sessions.end(&s.id).await;
            }
        }
    }
}
