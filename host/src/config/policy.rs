//! Policy bindings in the config: `servers[].policies`, an ordered chain per server.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::secret::SecretRef;
use super::validate::Problems;
use super::{Config, Locator, Problem};

/// Upper bound on `limits.memory_mb`: the pooling allocator reserves this much per slot.
pub const MAX_MEMORY_MB: u32 = 64;

/// One policy bound to a server. The chain runs in list order on requests, in reverse on answers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyBinding {
    /// A standard policy's name, a path to a `.wasm` component (relative to the config file),
    /// or `sha256:<hex>`, a component uploaded through the management API.
    pub policy: String,
    /// The policy's own settings; the policy checks them itself at load.
    #[serde(default = "empty_mapping")]
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub config: serde_json::Value,
    /// When the policy fails (trap, timeout, memory), let the message through instead of refusing it.
    #[serde(default)]
    pub fail_open: bool,
    #[serde(default)]
    pub limits: PolicyLimits,
    /// Hosts the policy may reach over HTTP: `idp.example.com`, or `*.example.com`.
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// Secrets granted to the policy, by the name it asks for.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretRef>,
    /// TLS toward `allow_hosts` behind a private PKI: a CA bundle, a client certificate (mTLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<super::ClientTls>,
    /// Whether an exchange's step gets an instance of its own, or one a finished step left.
    /// Unset: `reused` for the standard policies, `per_exchange` for any other component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<Instances>,
    /// What the policy's state calls get while the shared store (`state.redis`) cannot be
    /// reached. Without `state.redis` it has no effect.
    #[serde(default, skip_serializing_if = "OnStateOutage::is_default")]
    pub on_state_outage: OnStateOutage,
}

/// A binding's answer to a shared state store that cannot be reached (`docs/policies.md`, "State").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnStateOutage {
    /// The policy is told the store failed. The standard policies then refuse the request
    /// (503): no limit is exceeded because its counter could not be read.
    #[default]
    Error,
    /// This process's memory serves the binding until the store is back: limits hold per
    /// replica meanwhile, and what was counted locally is not carried over.
    Local,
}

impl OnStateOutage {
    fn is_default(&self) -> bool {
        *self == OnStateOutage::Error
    }
}

/// How a binding's steps get their instances (`docs/policies.md`, "Instances").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Instances {
    /// Each step starts from the binding's initialized snapshot: nothing a step leaves in the
    /// instance's memory reaches another exchange.
    PerExchange,
    /// An instance whose step finished cleanly (no fault, no resource left open) serves later
    /// steps, one at a time: no instance to create, but what a step leaves in memory stays.
    /// For policies that keep nothing of an exchange in their own memory.
    Reused,
}

fn empty_mapping() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

/// Resources one invocation of a policy may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyLimits {
    /// Linear memory one instance may grow to, in MiB (1 to 64).
    pub memory_mb: u32,
    /// Wall time for one step: the wait for an instance slot, instantiation, `init`, the hook,
    /// and waits in host calls (outbound HTTP).
    pub timeout_ms: u64,
}

impl Default for PolicyLimits {
    fn default() -> Self {
        PolicyLimits { memory_mb: 16, timeout_ms: 100 }
    }
}

/// How a binding names a component uploaded through the management API.
pub const DIGEST_PREFIX: &str = "sha256:";

impl PolicyBinding {
    /// A path names a custom component; a bare name names a standard policy.
    pub fn is_path(&self) -> bool {
        self.policy.ends_with(".wasm") || self.policy.contains('/')
    }

    /// The hex SHA-256 of an uploaded component, for `policy: sha256:<hex>`.
    pub fn digest(&self) -> Option<&str> {
        self.policy.strip_prefix(DIGEST_PREFIX)
    }

    /// The name logs and errors use: the standard name, the component's file stem, or
    /// `sha256:` and the first 12 digits of an uploaded component's digest.
    pub fn name(&self) -> &str {
        if let Some(hex) = self.digest() {
            return &self.policy[..DIGEST_PREFIX.len() + hex.len().min(12)];
        }
        if !self.is_path() {
            return &self.policy;
        }
        let file = self.policy.rsplit('/').next().unwrap_or(&self.policy);
        file.strip_suffix(".wasm").unwrap_or(file)
    }

    /// The component file, with a relative path taken from the config file's directory.
    pub fn path(&self, base: &Path) -> Option<PathBuf> {
        self.is_path().then(|| base.join(&self.policy))
    }
}

/// 64 lowercase hex digits: a SHA-256, as the component store names files.
pub fn is_digest(hex: &str) -> bool {
    hex.len() == 64 && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

pub(super) fn check(out: &mut Problems, at: &str, bindings: &[PolicyBinding]) {
    check_cache_per_caller(out, at, bindings);
    for (j, b) in bindings.iter().enumerate() {
        let at = format!("{at}[{j}]");
        if b.policy.trim().is_empty() {
            out.push(&format!("{at}.policy"), "name a standard policy or a path to a .wasm component");
        }
        if b.digest().is_some_and(|hex| !is_digest(hex)) {
            out.push(
                &format!("{at}.policy"),
                &format!("'{}' is not a component reference: write sha256: and the 64 hex digits POST /api/components returned", b.policy),
            );
        }
        if !b.config.is_object() {
            out.push(&format!("{at}.config"), "must be a mapping");
        }
        if b.limits.memory_mb == 0 || b.limits.memory_mb > MAX_MEMORY_MB {
            out.push(&format!("{at}.limits.memory_mb"), &format!("must be between 1 and {MAX_MEMORY_MB}"));
        }
        if b.limits.timeout_ms == 0 || b.limits.timeout_ms > 60_000 {
            out.push(&format!("{at}.limits.timeout_ms"), "must be between 1 and 60000");
        }
        for (k, h) in b.allow_hosts.iter().enumerate() {
            let name = h.strip_prefix("*.").unwrap_or(h);
            if name.is_empty() || name.contains(['/', ':', '*', ' ']) {
                out.push(&format!("{at}.allow_hosts[{k}]"), &format!("'{h}' is not a host name such as idp.example.com or *.example.com"));
            }
        }
        for (name, s) in &b.secrets {
            if s.env.is_some() == s.file.is_some() {
                out.push(&format!("{at}.secrets.{name}"), "give exactly one of `env` or `file`");
            }
        }
    }
}

/// A backend credential chosen per caller (`credentials` with `per_user`) makes every answer
/// that caller's: a `cache` in the same chain must key its entries per caller too, or one
/// caller's answers reach another.
fn check_cache_per_caller(out: &mut Problems, at: &str, bindings: &[PolicyBinding]) {
    let Some(i) = bindings.iter().position(|b| b.name() == "credentials" && b.config.get("per_user").is_some()) else { return };
    for (j, b) in bindings.iter().enumerate() {
        let keyed = b.config.get("per_caller").and_then(|v| v.as_array()).is_some_and(|a| !a.is_empty());
        if b.name() == "cache" && !keyed {
            out.push(
                &format!("{at}[{j}].config.per_caller"),
                &format!(
                    "the backend credential is chosen per caller ({at}[{i}] credentials.per_user): key the cache per caller too, e.g. per_caller: [subject]"
                ),
            );
        }
    }
}

/// A protected server's `jwt` binding needs the canonical URL its tokens must name.
pub(super) fn check_protects(out: &mut Problems, config: &Config, at: &str, bindings: &[PolicyBinding]) {
    for (j, b) in bindings.iter().enumerate() {
        let protects = b.name() == "jwt" && b.config.get("authorization").is_some();
        if protects && config.public_url.is_none() && config.listen.port() == 0 {
            out.push(
                &format!("{at}[{j}].config.authorization"),
                "the canonical URL that tokens must name is not known with `listen` on port 0: set `public_url`, or a fixed port",
            );
        }
    }
}

/// A chain sent to the management API: the checks `tollgate validate` makes of a server's
/// `policies`, named under `policies`.
pub fn check_chain(config: &Config, bindings: &[PolicyBinding]) -> Vec<Problem> {
    let locator = Locator::new("");
    let mut out = Problems::new(&locator);
    check(&mut out, "policies", bindings);
    check_protects(&mut out, config, "policies", bindings);
    out.into_list()
}
