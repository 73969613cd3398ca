//! Write a Tollgate policy in Rust.
//!
//! A policy is a WebAssembly component that the gateway runs on every MCP message of the
//! servers it is bound to. Implement [`Policy`], export it with [`export_policy!`], and build
//! with `cargo build --release --target wasm32-wasip2`:
//!
//! ```ignore
//! use serde::Deserialize;
//! use tollgate_policy_sdk::{Exchange, Hooks, Policy, Rejection, Verdict, export_policy};
//!
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Config { blocked: Vec<String> }
//!
//! struct Blocklist(Config);
//!
//! impl Policy for Blocklist {
//!     type Config = Config;
//!     fn new(config: Config) -> Result<Self, String> { Ok(Blocklist(config)) }
//!     fn hooks(&self) -> Hooks { Hooks::VISIBILITY }
//!     fn visible(&mut self, _ex: &Exchange, tool: &str) -> bool {
//!         !self.0.blocked.iter().any(|b| b == tool)
//!     }
//! }
//!
//! export_policy!(Blocklist);
//! ```
//!
//! Each request gets a fresh instance: `new` runs, then one hook. Anything that must outlive
//! the instance goes in [`state`] (shared, host-owned) or in attributes (this exchange only).

mod exchange;
mod export;
pub mod host;
mod verdict;

pub use exchange::Exchange;
#[doc(hidden)]
pub use export::Adapter;
pub use host::{crypto, http, log, now_ms, secret, state};
/// Attribute names the gateway and its policies set (`auth.sub`, `subscription`, ...).
pub use tollgate_vocabulary::attr;
pub use verdict::code;

/// The generated bindings of the `tollgate:policy` WIT package. Prefer the types re-exported
/// at the crate root; these are here for what they do not cover.
#[allow(unsafe_code, missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "gateway-policy",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "__export_gateway_policy",
        default_bindings_module: "tollgate_policy_sdk::bindings",
    });
}

pub use bindings::tollgate::policy::types::{Hooks, MessageVerdict, Mutation, Phase, Rejection, RequestId, RpcError, Verdict};

/// A policy. One value lives for one instance, which handles one hook of one exchange.
pub trait Policy: Sized + 'static {
    /// The binding's `config:` mapping, as the gateway config gives it.
    /// Use `#[serde(deny_unknown_fields)]` so a typo fails at load, not in production.
    type Config: serde::de::DeserializeOwned;

    /// Checks the config and builds the policy. An `Err` fails `tollgate validate`, a start,
    /// or a reload, with this message and the place of the binding in the config file.
    fn new(config: Self::Config) -> Result<Self, String>;

    /// The hooks this policy needs. The gateway skips the others, and with them an instance:
    /// narrow this to what you implement.
    fn hooks(&self) -> Hooks {
        Hooks::all()
    }

    /// Before the message goes to the backend, in chain order.
    fn on_request(&mut self, _ex: &Exchange) -> Verdict {
        Verdict::next()
    }

    /// On the answer coming back, in reverse chain order. `Verdict::respond` replaces the result.
    fn on_response(&mut self, _ex: &Exchange) -> Verdict {
        Verdict::next()
    }

    /// On every other message the backend sends (progress, logging, its requests for sampling
    /// or elicitation), as it streams past, in reverse chain order. `message` is the whole
    /// JSON-RPC message; `ex` is the client request it belongs to. Needs [`Hooks::MESSAGE`].
    fn on_message(&mut self, _ex: &Exchange, _message: &serde_json::Value) -> MessageVerdict {
        MessageVerdict::Pass
    }

    /// Whether this caller may see and call `tool`: the gateway uses it both to filter
    /// `tools/list` and to refuse `tools/call`.
    fn visible(&mut self, _ex: &Exchange, _tool: &str) -> bool {
        true
    }
}

/// Exports a [`Policy`] implementation as the component's `tollgate:policy/policy` interface.
#[macro_export]
macro_rules! export_policy {
    ($ty:ty) => {
        type __TollgatePolicy = $crate::Adapter<$ty>;
        $crate::bindings::__export_gateway_policy!(__TollgatePolicy with_types_in $crate::bindings);
    };
}
