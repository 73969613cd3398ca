//! From config to chains: find each binding's component, compile it off the request path,
//! and run the policy's own `init` on a canary instance so a config it refuses fails the load
//! with its message and the binding's place in the file.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::bindings::Phase;
use super::capability::{Grants, secrets};
use super::chain::{Binding, Chain};
use super::engine::{Fault, Instance, Runtime};
use super::exchange::{Call, Caller, View};
use super::standard;
use crate::config::{Config, Locator, PolicyBinding, Problem};
use crate::jsonrpc::Message;

/// Every server's chain, and the component files they came from (for the reload watcher).
#[derive(Default)]
pub struct Loaded {
    /// By server, or by version (`docs@v2`) for a server with versions.
    pub chains: HashMap<String, Arc<Chain>>,
    /// Each product's own chain.
    pub products: HashMap<String, Arc<Chain>>,
    /// The product each chain was built from, so a reload never puts a file's chain on a
    /// product the management API has since changed.
    pub product_sources: HashMap<String, serde_json::Value>,
    pub files: Vec<PathBuf>,
}

/// Loads the chains of every server of a validated config; `base` resolves relative paths.
pub async fn load(config: &Config, base: &Path, locator: &Locator) -> Result<Loaded, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut loaded = Loaded::default();
    for product in &config.products {
        loaded.product_sources.insert(product.name.clone(), serde_json::to_value(product).expect("a product serializes"));
    }
    let no_chain = |s: &crate::config::ServerConfig| s.policies.is_empty() && s.versions.iter().all(|v| v.policies.is_empty());
    if config.servers.iter().all(no_chain) && config.products.iter().all(|p| p.policies.is_empty()) {
        return Ok(loaded);
    }
    let rt = match Runtime::get() {
        Ok(rt) => rt,
        Err(e) => return Err(vec![problem(locator, "servers", e)]),
    };
    for (i, served) in config.servers.iter().enumerate().flat_map(|(i, s)| s.served().into_iter().map(move |v| (i, v))) {
        let (server, key) = (&served.config, served.key());
        let mut chain = Chain::default();
        let mut names: HashSet<String> = HashSet::new();
        for (j, b) in server.policies.iter().enumerate() {
            let at = format!("servers[{i}]{}.policies[{j}]", served.at);
            // Each version keeps its own state (counters, quotas), as its chain is its own.
            let mut namespace = format!("{key}/{}", b.name());
            let mut k = 1;
            while !names.insert(namespace.clone()) {
                k += 1;
                namespace = format!("{key}/{}#{k}", b.name());
            }
            // A protected server's jwt binding learns the server's canonical URL.
            let b = &crate::authorization::complete(config, &server.name, b);
            match bind(rt, &server.name, b, base, namespace, &mut loaded.files).await {
                Ok(binding) => chain.bindings.push(binding),
                Err((field, message)) => problems.push(problem(locator, &format!("{at}{field}"), message)),
            }
        }
        loaded.chains.insert(key, Arc::new(chain));
    }
    for (i, product) in config.products.iter().enumerate() {
        let chain = product_chain(rt, product, &format!("products[{i}]"), base, locator, &mut loaded.files, &mut problems).await;
        loaded.products.insert(product.name.clone(), Arc::new(chain));
    }
    if problems.is_empty() { Ok(loaded) } else { Err(problems) }
}

/// A product's own chain; problems are named under `at`.
async fn product_chain(rt: &'static Runtime, product: &crate::config::ProductConfig, at: &str, base: &Path, locator: &Locator, files: &mut Vec<PathBuf>, problems: &mut Vec<Problem>) -> Chain {
    let mut chain = Chain::default();
    let owner = format!("product:{}", product.name);
    for (j, b) in product.policies.iter().enumerate() {
        // The product's state (counters, quotas) is its own, shared by all its servers.
        let namespace = format!("{owner}/{}#{j}", b.name());
        match bind(rt, &owner, b, base, namespace, files).await {
            Ok(binding) => chain.bindings.push(binding),
            Err((field, message)) => problems.push(problem(locator, &format!("{at}.policies[{j}]{field}"), message)),
        }
    }
    chain
}

/// One product's chain, for a product sent to the management API.
pub async fn load_product(product: &crate::config::ProductConfig, base: &Path) -> Result<Arc<Chain>, Vec<Problem>> {
    if product.policies.is_empty() {
        return Ok(Default::default());
    }
    let locator = Locator::new("");
    let rt = Runtime::get().map_err(|e| vec![problem(&locator, "product.policies", e)])?;
    let mut problems = Vec::new();
    let chain = product_chain(rt, product, "product", base, &locator, &mut Vec::new(), &mut problems).await;
    if problems.is_empty() { Ok(Arc::new(chain)) } else { Err(problems) }
}

fn problem(locator: &Locator, path: &str, message: String) -> Problem {
    Problem { path: path.to_owned(), line: locator.line_of(path), column: None, message }
}

/// One binding; on failure, the field at fault and why.
async fn bind(rt: &'static Runtime, server: &str, b: &PolicyBinding, base: &Path, namespace: String, files: &mut Vec<PathBuf>) -> Result<Binding, (String, String)> {
    let bytes: Arc<[u8]> = match b.path(base) {
        Some(path) => {
            let bytes = std::fs::read(&path).map_err(|e| (".policy".into(), format!("cannot read {}: {e}", path.display())))?;
            files.push(path);
            bytes.into()
        }
        None => match standard::lookup(&b.policy) {
            Some(bytes) => bytes.into(),
            None => {
                let known = standard::names();
                let hint = if known.is_empty() { String::new() } else { format!(" (standard policies: {})", known.join(", ")) };
                return Err((".policy".into(), format!("no standard policy is named '{}'{hint}; name a custom policy by its path, ending in .wasm", b.policy)));
            }
        },
    };
    let compiled = tokio::task::spawn_blocking(move || rt.prepare(&bytes)).await.map_err(|e| (".policy".into(), e.to_string()))?;
    let pre = compiled.map_err(|e| (".policy".into(), format!("'{}' {e}", b.policy)))?;
    let mut granted = HashMap::new();
    for (name, source) in &b.secrets {
        let value = secrets::read(source, base).map_err(|e| (format!(".secrets.{name}"), e))?;
        granted.insert(name.clone(), value);
    }
    let grants = Arc::new(Grants {
        policy: b.name().into(),
        server: server.into(),
        namespace,
        allow_hosts: b.allow_hosts.clone(),
        secrets: granted,
        state: rt.state.clone(),
        http: rt.http.clone(),
    });
    let config = serde_json::to_string(&b.config).expect("JSON values serialize");
    let canary = View {
        phase: Phase::Request,
        call: Arc::new(Call { msg: Message::notification("tollgate/canary", serde_json::json!({})), server: server.into(), version: None, session_id: None, protocol_version: None, caller: Arc::new(Caller::default()) }),
        attributes: Default::default(),
        outcome: None,
    };
    let hooks = match Instance::start(rt, &pre, &config, b.limits, grants.clone(), canary).await {
        Ok((_, hooks)) => hooks,
        Err(Fault::Refused(msg)) => return Err((".config".into(), format!("policy '{}' refused its config: {msg}", b.name()))),
        Err(fault) => return Err((".policy".into(), format!("policy '{}' failed to start: {fault}", b.name()))),
    };
    Ok(Binding { rt, pre, config, hooks, fail_open: b.fail_open, limits: b.limits, grants })
}
