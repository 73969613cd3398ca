//! The policy runtime. Every governance policy is a WebAssembly component (`wit/policy.wit`)
//! that sees each MCP message of the servers it is bound to, sandboxed from the gateway and
//! from other requests, in a fresh instance per step.
//!
//! `transport` -> `session` -> [`Chain::admit`] -> backend -> [`Trail::settle`] -> client.

mod bindings;
mod capability;
mod chain;
mod engine;
mod exchange;
mod loader;
mod relay;
mod standard;
pub mod uploads;

use std::path::Path;
use std::sync::Arc;

pub use bindings::Rejection;
pub use capability::state::{MemoryStore, StateStore};
pub use chain::{Admission, Chain, ClientHeaders, HeaderEdits, Route, Trail};
pub use engine::Fault;
pub use relay::{Delivery, Relay};
pub use exchange::{Attributes, Caller};
pub use loader::{Loaded, Places, load_chain, load_file_chain, load_product};

use crate::config::{Config, ConfigError, Locator};
use crate::gateway::Gateway;

/// Loads every server's chain for a config read from `file`: components are compiled, and
/// each policy checks its own config. Problems carry their place in the file.
pub async fn load(config: &Config, file: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read { path: file.to_owned(), source })?;
    let base = file.parent().unwrap_or(Path::new("."));
    loader::load(config, base, &Locator::new(&text)).await.map_err(|problems| ConfigError::Invalid { file: file.to_owned(), problems })
}

/// Puts loaded chains in place, atomically per server. Requests in flight keep the chain they
/// began with. A chain set through the management API stays: the file's does not undo it.
/// Nor does the file speak for a server the API created or replaced, or one it no longer has.
pub fn install(gw: &Gateway, loaded: &Loaded) {
    let from_file = |e: &&Arc<crate::gateway::Endpoint>| !e.from_api && loaded.servers.contains(&e.name);
    for server in gw.endpoints().values().filter(from_file).flat_map(|e| e.all().iter()) {
        let chain = loaded.chains.get(&server.key()).cloned().unwrap_or_default();
        let before = server.policies.rcu(|current| if current.from_api { current.clone() } else { chain.clone() });
        if before.from_api && before.declared != chain.declared {
            tracing::warn!(server = %server.key(), "the file's chain differs from the one set through the management API, which stays in force (apply the file with `tollgate apply`)");
        }
    }
    for (name, product) in &gw.catalog.load().products {
        let same = loaded.product_sources.get(name).is_some_and(|src| *src == serde_json::to_value(&product.config).expect("a product serializes"));
        if same {
            product.chain.store(loaded.products.get(name).cloned().unwrap_or_default());
        }
    }
}

/// Compiles `bytes` and checks they are a policy component, as loading a binding would (the
/// compiled component is kept, so binding it next costs nothing). Blocks: call it off the
/// async workers.
pub fn check_component(bytes: &[u8]) -> Result<(), String> {
    engine::Runtime::get()?.prepare(bytes).map(|_| ())
}

/// The chain a server runs now.
pub fn current(server: &crate::gateway::Server) -> Arc<Chain> {
    server.policies.load_full()
}

