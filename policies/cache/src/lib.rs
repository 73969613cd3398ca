//! `cache`: answers `tools/call` of chosen tools, `resources/read` and `prompts/get` from the
//! gateway's shared state when the same request (server, method, target, arguments — and the
//! caller, for private entries) was answered within the TTL. Errors, and tool results with
//! `isError`, are never cached. A result's own `ttlMs` shortens the TTL (0: not cached) and
//! `cacheScope: private` keeps it out of a cache shared between callers.

mod key;

use policy_common::client_ip::MovedToGateway;
use policy_common::{Duration, KeyPart, Keyer, Patterns};
use serde::Deserialize;
use serde_json::Value;
use tollgate_policy_sdk::{Exchange, Hooks, Mutation, Policy, Verdict, state};

pub use key::{args, canonical, entry};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Tools whose results are cached (names or globs).
    #[serde(default)]
    pub tools: Patterns,
    /// Cache `resources/read`.
    #[serde(default)]
    pub resources: bool,
    /// Cache `prompts/get`.
    #[serde(default)]
    pub prompts: bool,
    pub ttl: Duration,
    /// Make entries private to the caller named by these parts (e.g. `[subject]`). Default: shared.
    #[serde(default)]
    pub per_caller: Vec<KeyPart>,
    /// Larger results are not kept. Default 1 MiB.
    #[serde(default = "default_max")]
    pub max_entry_bytes: usize,
    /// Refused: set once for the gateway, as `client_address.trusted_proxies`.
    #[serde(default)]
    pub trusted_proxies: Option<MovedToGateway>,
}

fn default_max() -> usize {
    1 << 20
}

/// The attribute that carries an entry key from the request phase to the response phase.
const PENDING: &str = "cache.key";

pub struct Cache {
    tools: Patterns,
    resources: bool,
    prompts: bool,
    ttl_ms: u64,
    caller: Option<Keyer>,
    max: usize,
}

/// How long a result may be kept, or `None` if it may not: errors, `isError`, `ttlMs: 0`,
/// and private results in a shared cache.
pub fn keep_for(result: &Value, ttl_ms: u64, shared: bool) -> Option<u64> {
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    if shared && result.get("cacheScope").and_then(Value::as_str) == Some("private") {
        return None;
    }
    let ttl = match result.get("ttlMs").and_then(Value::as_u64) {
        Some(own) => ttl_ms.min(own),
        None => ttl_ms,
    };
    (ttl > 0).then_some(ttl)
}

impl Cache {
    fn cacheable(&self, method: &str, target: &str) -> bool {
        match method {
            "tools/call" => self.tools.matches(target),
            "resources/read" => self.resources,
            "prompts/get" => self.prompts,
            _ => false,
        }
    }
}

impl Policy for Cache {
    type Config = Config;

    fn new(c: Config) -> Result<Self, String> {
        if c.tools.is_empty() && !c.resources && !c.prompts {
            return Err("nothing to cache: name tools, or set resources or prompts".into());
        }
        let caller = if c.per_caller.is_empty() { None } else { Some(Keyer::new(c.per_caller)?) };
        Ok(Cache { tools: c.tools, resources: c.resources, prompts: c.prompts, ttl_ms: c.ttl.ms(), caller, max: c.max_entry_bytes })
    }

    fn hooks(&self) -> Hooks {
        Hooks::REQUEST | Hooks::RESPONSE
    }

    /// A hit answers without calling the backend; a miss leaves the key for the response.
    fn on_request(&mut self, ex: &Exchange) -> Verdict {
        let (method, Some(target)) = (ex.method(), ex.target()) else { return Verdict::next() };
        if ex.id().is_none() || !self.cacheable(&method, &target) {
            return Verdict::next();
        }
        let params: Value = ex.params().ok().flatten().unwrap_or(Value::Null);
        let caller = self.caller.as_ref().map(|k| k.key(ex));
        let key = entry(&ex.server(), &method, &target, &args(&params), caller.as_deref());
        if let Some(hit) = state::get(&key).ok().flatten().and_then(|b| serde_json::from_slice::<Value>(&b).ok()) {
            return Verdict::respond(&hit);
        }
        Mutation::new().attribute(PENDING, &key).into()
    }

    fn on_response(&mut self, ex: &Exchange) -> Verdict {
        let Some(key) = ex.attribute(PENDING) else { return Verdict::next() };
        let Some(Ok(text)) = ex.outcome() else { return Verdict::next() };
        if text.len() > self.max {
            return Verdict::next();
        }
        if let Ok(result) = serde_json::from_str::<Value>(&text)
            && let Some(ttl) = keep_for(&result, self.ttl_ms, self.caller.is_none())
        {
            let _ = state::set(&key, text.as_bytes(), Some(ttl));
        }
        Verdict::next()
    }
}

// Natively (unit tests) there is no component to export, and no host to import from.
#[cfg(target_arch = "wasm32")]
tollgate_policy_sdk::export_policy!(Cache);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_and_private_or_expiring_results_are_not_kept() {
        assert_eq!(keep_for(&json!({ "content": [] }), 60_000, true), Some(60_000));
        assert_eq!(keep_for(&json!({ "content": [], "isError": true }), 60_000, true), None);
        assert_eq!(keep_for(&json!({ "contents": [], "ttlMs": 5000 }), 60_000, true), Some(5000));
        assert_eq!(keep_for(&json!({ "contents": [], "ttlMs": 0 }), 60_000, true), None);
        assert_eq!(keep_for(&json!({ "contents": [], "ttlMs": 900_000 }), 60_000, true), Some(60_000));
        assert_eq!(keep_for(&json!({ "contents": [], "cacheScope": "private" }), 60_000, true), None);
        assert_eq!(keep_for(&json!({ "contents": [], "cacheScope": "private" }), 60_000, false), Some(60_000));
    }

    #[test]
    fn only_chosen_methods_and_tools_are_cacheable() {
        let c = Cache::new(serde_json::from_value(json!({ "tools": ["search", "get_*"], "prompts": true, "ttl": "5m" })).unwrap()).unwrap();
        assert!(c.cacheable("tools/call", "get_weather") && !c.cacheable("tools/call", "delete"));
        assert!(c.cacheable("prompts/get", "p") && !c.cacheable("resources/read", "file:///x"));
        assert!(!c.cacheable("tools/list", "search"));
        let e = Cache::new(serde_json::from_value(json!({ "ttl": "5m" })).unwrap()).err().unwrap();
        assert!(e.contains("nothing to cache"));
        assert!(serde_json::from_value::<Config>(json!({ "tools": ["x"] })).unwrap_err().to_string().contains("ttl"));
    }
}
