//! The running gateway: its servers and their backends, and the sessions of their clients.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::backend::Backend;
use crate::config::{Config, ServerConfig};
use crate::error::GatewayError;
use crate::session::Registry;
use crate::telemetry::Telemetry;

/// One MCP server as clients see it.
pub struct Server {
    pub name: String,
    pub config: ServerConfig,
    pub backend: Backend,
    /// How long a request may wait for its answer.
    pub timeout: Duration,
    /// The policy chain, swapped whole on reload.
    pub policies: arc_swap::ArcSwap<crate::policy::Chain>,
}

pub struct Gateway {
    pub config: Config,
    pub servers: HashMap<String, Arc<Server>>,
    /// The products, swapped whole when they change.
    pub catalog: arc_swap::ArcSwap<crate::product::Catalog>,
    /// Subscriptions, where `management.data_dir` keeps them.
    pub subscriptions: Option<Arc<crate::subscription::Registry>>,
    pub sessions: Arc<Registry>,
    pub draining: AtomicBool,
    /// Metrics and the access log, shared by every exchange.
    pub telemetry: Arc<Telemetry>,
}

impl Gateway {
    /// Builds the runtime from a validated config. Must run inside a tokio runtime (stdio pools start here).
    pub fn new(config: Config) -> Result<Arc<Gateway>, GatewayError> {
        let mut servers = HashMap::new();
        for s in &config.servers {
            let timeout = s.backend.request_timeout_ms.map(Duration::from_millis).unwrap_or(config.limits.request_timeout());
            let backend = Backend::new(s, &config.limits)?;
            servers.insert(s.name.clone(), Arc::new(Server { name: s.name.clone(), config: s.clone(), backend, timeout, policies: Default::default() }));
        }
        let telemetry = Telemetry::new(&config).map_err(|e| GatewayError::BadRequest(format!("cannot open the access log: {e}")))?;
        let subscriptions = match config.management.as_ref().and_then(|m| m.data_dir.as_ref()) {
            Some(dir) => {
                let store = crate::subscription::RedbStore::open(dir).map_err(|e| GatewayError::Storage(e.0))?;
                Some(Arc::new(crate::subscription::Registry::open(Arc::new(store)).map_err(|e| GatewayError::Storage(e.0))?))
            }
            None => None,
        };
        let catalog = arc_swap::ArcSwap::from_pointee(crate::product::Catalog::new(&config.products));
        let sessions = Arc::new(Registry::new(config.sessions.clone()));
        tokio::spawn(sessions.clone().expire_idle());
        Ok(Arc::new(Gateway { config, servers, catalog, subscriptions, sessions, draining: AtomicBool::new(false), telemetry: Arc::new(telemetry) }))
    }

    pub fn server(&self, name: &str) -> Result<Arc<Server>, GatewayError> {
        self.servers.get(name).cloned().ok_or_else(|| GatewayError::UnknownServer(name.to_owned()))
    }
}
