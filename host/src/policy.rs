//! The policy runtime. Every governance policy is a WebAssembly component (`wit/policy.wit`)
//! that sees each MCP message of the servers it is bound to, sandboxed from the gateway and
//! from other requests, in a fresh instance per step.
//!
//! `transport` -> `session` -> [`Chain::admit`] -> backend -> [`Trail::settle`] -> client.
//! The policy runtime knows nothing of servers and sessions: what it needs of an exchange
//! comes in a [`Route`] and a [`Caller`].

mod bindings;
mod capability;
mod chain;
pub mod compile;
mod engine;
mod exchange;
mod loader;
mod preinit;
mod relay;
mod reuse;
mod standard;
pub mod uploads;

use std::path::Path;

pub use bindings::Rejection;
pub use capability::outbound;
pub use capability::state::{self as state, MemoryStore, StateStore};
pub use chain::{Admission, Chain, ClientHeaders, HeaderEdits, Route, Trail};
pub use engine::{CONTRACT_VERSION, Fault};
pub use exchange::{Attributes, Caller};
pub use loader::{Loaded, Places, load_chain, load_file_chain, load_product};
pub use relay::{Delivery, Relay};

use crate::config::{Config, ConfigError, Locator};

/// Loads every server's chain for a config read from `file`: components are compiled, and
/// each policy checks its own config. Problems carry their place in the file.
pub async fn load(config: &Config, file: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read { path: file.to_owned(), source })?;
    let base = file.parent().unwrap_or(Path::new("."));
    // Before the first load creates the runtime and its store.
    capability::state::set_budget(config.limits.max_policy_state_mb << 20);
    loader::load(config, base, &Locator::new(&text)).await.map_err(|problems| ConfigError::Invalid { file: file.to_owned(), problems })
}

/// The compiling child's `main`: see [`compile`].
pub fn compile_child() -> std::process::ExitCode {
    compile::child_main(wasmtime::Engine::new(&engine::settings()))
}

/// Compiles `bytes` and checks they are a policy component, as loading a binding would (the
/// compiled component is kept, so binding it next costs nothing). Blocks: call it off the
/// async workers.
pub fn check_component(bytes: &[u8]) -> Result<(), String> {
    engine::Runtime::get()?.prepare(bytes).map(|_| ())
}
