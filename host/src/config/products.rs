//! Products in the config: MCP servers bundled (optionally a subset of their tools) with a
//! policy chain of their own, which consumers subscribe to.

use std::collections::HashSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::validate::Problems;
use super::{Config, PolicyBinding};

/// A product. Its chain runs before the server's, so a tier's quota and rate limit apply
/// whichever of its servers is called.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductConfig {
    /// The product's name, as subscriptions name it: 1-64 of a-z, 0-9, '-' and '_'.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The servers it bundles, each named as in `servers`.
    pub servers: Vec<ProductServer>,
    /// Callers must present a subscription key. Without it the product is open: requests
    /// with no key are served under it.
    #[serde(default = "yes")]
    pub subscription_required: bool,
    /// New subscriptions wait (pending) until an administrator approves them.
    #[serde(default)]
    pub approval_required: bool,
    /// The product's own chain, run before the server's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<PolicyBinding>,
}

fn yes() -> bool {
    true
}

/// A server in a product, with all its tools or only the ones listed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductServer {
    /// A server's `name`.
    pub server: String,
    /// Only these tools are listed and callable through the product; absent, all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<String>>,
}

/// Where clients present their subscription key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SubscriptionKeyConfig {
    /// The request header; the default is the one Azure API Management uses, so clients
    /// configured for it work unchanged.
    pub header: String,
    /// The query parameter, for clients that cannot set headers (a browser's EventSource).
    pub query: String,
}

impl Default for SubscriptionKeyConfig {
    fn default() -> Self {
        SubscriptionKeyConfig { header: "Ocp-Apim-Subscription-Key".into(), query: "subscription-key".into() }
    }
}

pub(super) fn check(out: &mut Problems, config: &Config) {
    let servers: HashSet<&str> = config.servers.iter().map(|s| s.name.as_str()).collect();
    let mut seen = HashSet::new();
    let stores = config.management.as_ref().is_some_and(|m| m.data_dir.is_some());
    for (i, p) in config.products.iter().enumerate() {
        let at = format!("products[{i}]");
        check_product(out, &at, p, &servers);
        if !seen.insert(p.name.as_str()) {
            out.push(&format!("{at}.name"), &format!("product name '{}' is already used", p.name));
        }
        if p.subscription_required && !stores {
            out.push(&at, "a product that requires subscriptions needs `management.data_dir`, where subscriptions are kept");
        }
    }
    let k = &config.subscription_key;
    if hyper::header::HeaderName::from_bytes(k.header.as_bytes()).is_err() {
        out.push("subscription_key.header", &format!("'{}' is not a valid header name", k.header));
    }
    if k.query.is_empty() || !k.query.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        out.push("subscription_key.query", &format!("'{}' is not a plain query parameter name", k.query));
    }
}

/// One product's own checks, also run on a product sent to the management API.
pub(super) fn check_product(out: &mut Problems, at: &str, p: &ProductConfig, servers: &HashSet<&str>) {
    super::validate::check_name(out, &format!("{at}.name"), &p.name, "product");
    if p.servers.is_empty() {
        out.push(&format!("{at}.servers"), "a product needs at least one server");
    }
    let mut listed = HashSet::new();
    for (j, s) in p.servers.iter().enumerate() {
        let here = format!("{at}.servers[{j}]");
        if !servers.contains(s.server.as_str()) {
            out.push(&format!("{here}.server"), &format!("no server is named '{}'", s.server));
        }
        if !listed.insert(s.server.as_str()) {
            out.push(&format!("{here}.server"), &format!("server '{}' is listed twice", s.server));
        }
        if let Some(tools) = &s.tools {
            if tools.is_empty() {
                out.push(&format!("{here}.tools"), "list at least one tool, or leave `tools` out for all of them");
            }
            for (k, t) in tools.iter().enumerate() {
                if t.trim().is_empty() {
                    out.push(&format!("{here}.tools[{k}]"), "a tool name must not be empty");
                }
            }
        }
    }
    if !p.subscription_required && p.approval_required {
        out.push(&format!("{at}.approval_required"), "approval needs subscriptions: set `subscription_required: true`");
    }
    super::policy::check(out, &format!("{at}.policies"), &p.policies);
}

/// The checks of one product sent to the management API, in the words `tollgate validate` uses.
/// `servers` are the names served now, which the API may have changed since the file.
pub fn check_one<'a>(servers: impl IntoIterator<Item = &'a str>, p: &ProductConfig) -> Vec<super::Problem> {
    let locator = super::Locator::new("");
    let mut out = Problems::new(&locator);
    let servers: HashSet<&str> = servers.into_iter().collect();
    check_product(&mut out, "product", p, &servers);
    out.into_list()
}
