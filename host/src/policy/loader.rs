//! From config to chains: find each binding's component, compile it off the request path,
//! and run the policy's own `init` on a canary instance so a config it refuses fails the load
//! with its message and the binding's place in the file.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::bindings::Phase;
use super::capability::Grants;
use super::chain::{Binding, Chain};
use super::engine::{Fault, Runtime};
use super::exchange::{Call, Caller, View};
use super::preinit::{self, Failure};
use super::standard;
use super::uploads;
use crate::config::{Config, Instances, Locator, PolicyBinding, Problem};
use crate::mcp::jsonrpc::Message;

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
    /// The servers the file declares: a chain is installed on these only.
    pub servers: std::collections::HashSet<String>,
    pub files: Vec<PathBuf>,
}

/// Where a binding's files are found: relative paths and secret files from `base` (the config
/// file's directory), uploaded components (`sha256:<hex>`) in `components`.
#[derive(Debug, Clone)]
pub struct Places {
    pub base: PathBuf,
    pub components: Option<PathBuf>,
}

impl Places {
    pub fn of(config: &Config, base: &Path) -> Places {
        let components = config.management.as_ref().and_then(|m| m.data_dir.as_deref()).map(uploads::dir);
        Places { base: base.to_owned(), components }
    }
}

/// Loads the chains of every server of a validated config; `base` resolves relative paths.
pub async fn load(config: &Config, base: &Path, locator: &Locator) -> Result<Loaded, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut loaded = Loaded { servers: config.servers.iter().map(|s| s.name.clone()).collect(), ..Loaded::default() };
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
    let places = Places::of(config, base);
    for (i, served) in config.servers.iter().enumerate().flat_map(|(i, s)| s.served().into_iter().map(move |v| (i, v))) {
        let key = served.key();
        let at = format!("servers[{i}]{}.policies", served.at);
        let chain = server_chain(rt, &served.config.name, &key, &served.config.policies, &at, &places, locator, &mut loaded.files, &mut problems).await;
        loaded.chains.insert(key, Arc::new(chain));
    }
    for (i, product) in config.products.iter().enumerate() {
        let chain = product_chain(rt, product, &format!("products[{i}]"), &places, locator, &mut loaded.files, &mut problems).await;
        loaded.products.insert(product.name.clone(), Arc::new(chain));
    }
    if problems.is_empty() { Ok(loaded) } else { Err(problems) }
}

/// The chain of one server or version (`key`); problems are named under `at`.
#[allow(clippy::too_many_arguments)]
async fn server_chain(
    rt: &'static Runtime,
    server: &str,
    key: &str,
    bindings: &[PolicyBinding],
    at: &str,
    places: &Places,
    locator: &Locator,
    files: &mut Vec<PathBuf>,
    problems: &mut Vec<Problem>,
) -> Chain {
    let mut chain = Chain { declared: bindings.to_vec(), ..Chain::default() };
    let mut names: HashSet<String> = HashSet::new();
    for (j, b) in bindings.iter().enumerate() {
        // Each version keeps its own state (counters, quotas), as its chain is its own.
        let mut namespace = format!("{key}/{}", b.name());
        let mut k = 1;
        while !names.insert(namespace.clone()) {
            k += 1;
            namespace = format!("{key}/{}#{k}", b.name());
        }
        // A protected server's jwt binding learns the server's canonical URL.
        match bind(rt, server, b, places, namespace, files).await {
            Ok(binding) => chain.bindings.push(binding),
            Err((field, message)) => problems.push(problem(locator, &format!("{at}[{j}]{field}"), message)),
        }
    }
    chain
}

/// A chain sent to the management API for the server or version `key`, compiled and each
/// binding's config checked by its policy, as at load; problems are named under `policies`.
/// State (counters, quotas) carries over from the chain it replaces, binding by binding name.
pub async fn load_chain(server: &str, key: &str, bindings: &[PolicyBinding], places: &Places) -> Result<Arc<Chain>, Vec<Problem>> {
    let mut chain = build_chain(server, key, bindings, places).await?;
    chain.from_api = true;
    Ok(Arc::new(chain))
}

/// The chain the file declares for `key`, handed back to the file by the API.
pub async fn load_file_chain(server: &str, key: &str, bindings: &[PolicyBinding], places: &Places) -> Result<Arc<Chain>, Vec<Problem>> {
    build_chain(server, key, bindings, places).await.map(Arc::new)
}

async fn build_chain(server: &str, key: &str, bindings: &[PolicyBinding], places: &Places) -> Result<Chain, Vec<Problem>> {
    let locator = Locator::new("");
    let chain = if bindings.is_empty() {
        Chain::default()
    } else {
        let rt = Runtime::get().map_err(|e| vec![problem(&locator, "policies", e)])?;
        let mut problems = Vec::new();
        let chain = server_chain(rt, server, key, bindings, "policies", places, &locator, &mut Vec::new(), &mut problems).await;
        if !problems.is_empty() {
            return Err(problems);
        }
        chain
    };
    Ok(chain)
}

/// A product's own chain; problems are named under `at`.
async fn product_chain(
    rt: &'static Runtime,
    product: &crate::config::ProductConfig,
    at: &str,
    places: &Places,
    locator: &Locator,
    files: &mut Vec<PathBuf>,
    problems: &mut Vec<Problem>,
) -> Chain {
    let mut chain = Chain::default();
    let owner = format!("product:{}", product.name);
    for (j, b) in product.policies.iter().enumerate() {
        // The product's state (counters, quotas) is its own, shared by all its servers.
        let namespace = format!("{owner}/{}#{j}", b.name());
        match bind(rt, &owner, b, places, namespace, files).await {
            Ok(binding) => chain.bindings.push(binding),
            Err((field, message)) => problems.push(problem(locator, &format!("{at}.policies[{j}]{field}"), message)),
        }
    }
    chain
}

/// One product's chain, for a product sent to the management API.
pub async fn load_product(product: &crate::config::ProductConfig, places: &Places) -> Result<Arc<Chain>, Vec<Problem>> {
    if product.policies.is_empty() {
        return Ok(Default::default());
    }
    let locator = Locator::new("");
    let rt = Runtime::get().map_err(|e| vec![problem(&locator, "product.policies", e)])?;
    let mut problems = Vec::new();
    let chain = product_chain(rt, product, "product", places, &locator, &mut Vec::new(), &mut problems).await;
    if problems.is_empty() { Ok(Arc::new(chain)) } else { Err(problems) }
}

/// The bytes of an uploaded component a binding names.
fn uploaded(b: &PolicyBinding, places: &Places) -> Result<Vec<u8>, (String, String)> {
    let hex = b.digest().unwrap_or_default();
    let Some(dir) = &places.components else {
        return Err((".policy".into(), format!("'{}' names an uploaded component, and uploads are kept in `management.data_dir`, which is not set", b.policy)));
    };
    uploads::read(dir, hex).map_err(|e| (".policy".into(), e))
}

fn problem(locator: &Locator, path: &str, message: String) -> Problem {
    Problem { path: path.to_owned(), line: locator.line_of(path), column: None, message }
}

/// One binding; on failure, the field at fault and why.
async fn bind(
    rt: &'static Runtime,
    server: &str,
    b: &PolicyBinding,
    places: &Places,
    namespace: String,
    files: &mut Vec<PathBuf>,
) -> Result<Binding, (String, String)> {
    let base = places.base.as_path();
    // The standard policies, shipped in the binary, reuse their instances unless told otherwise.
    let (bytes, standard): (Arc<[u8]>, bool) = match b.path(base) {
        _ if b.digest().is_some() => (uploaded(b, places)?.into(), false),
        Some(path) => {
            let bytes = std::fs::read(&path).map_err(|e| (".policy".into(), format!("cannot read {}: {e}", path.display())))?;
            files.push(path);
            (bytes.into(), false)
        }
        None => match standard::lookup(&b.policy) {
            Some(bytes) => (bytes.into(), true),
            None => {
                let known = standard::names();
                let hint = if known.is_empty() { String::new() } else { format!(" (standard policies: {})", known.join(", ")) };
                return Err((".policy".into(), format!("no standard policy is named '{}'{hint}; name a custom policy by its path, ending in .wasm", b.policy)));
            }
        },
    };
    let mut granted = HashMap::new();
    for (name, source) in &b.secrets {
        let value = source.read(base).map_err(|e| (format!(".secrets.{name}"), e.to_string()))?;
        granted.insert(name.clone(), value);
    }
    let http = match &b.tls {
        None => rt.http.clone(),
        Some(tls) => {
            // A binding is shown whole wherever its chain is (the API, `export`): its key only by reference.
            if tls.key.as_ref().is_some_and(|k| k.reference().is_none()) {
                return Err((".tls.key".into(), "give the key by reference ({file: ...} or {env: ...}): a binding is shown as it is written".into()));
            }
            let mut tls = tls.clone();
            tls.anchor(base);
            let material = tls.load().map_err(|(field, why)| (format!(".tls.{field}"), why))?;
            let builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
            material.apply(builder).and_then(reqwest::ClientBuilder::build).map_err(|e| (".tls".to_owned(), e.to_string()))?
        }
    };
    let grants = Arc::new(Grants {
        policy: b.name().into(),
        server: server.into(),
        namespace,
        allow_hosts: b.allow_hosts.clone(),
        secrets: granted,
        state: super::capability::state::for_binding(b.on_state_outage),
        http,
    });
    let config = serde_json::to_string(&b.config).expect("JSON values serialize");
    let canary = View {
        phase: Phase::Request,
        call: Arc::new(Call {
            msg: Message::notification("tollgate/canary", serde_json::json!({})),
            server: server.into(),
            version: None,
            session_id: None,
            protocol_version: None,
            // The canary runs `init` alone, which sees only the binding's config.
            resource: "".into(),
            caller: Arc::new(Caller::default()),
        }),
        attributes: Default::default(),
        outcome: None,
    };
    // Compiles are bounded: in the binary they run in a bounded child (`policy::compile`), and
    // a component's size is bounded by `management.max_component_mb`.
    let prepared = match preinit::prepare(rt, bytes, &config, b.limits, grants.clone(), canary).await {
        Ok(p) => p,
        Err(Failure::Compile(e)) => return Err((".policy".into(), format!("'{}' {e}", b.policy))),
        Err(Failure::Start(Fault::Refused(msg))) => return Err((".config".into(), format!("policy '{}' refused its config: {msg}", b.name()))),
        Err(Failure::Start(fault)) => return Err((".policy".into(), format!("policy '{}' failed to start: {fault}", b.name()))),
    };
    let reused = b.instances.unwrap_or(if standard { Instances::Reused } else { Instances::PerExchange }) == Instances::Reused;
    let kept = reused.then(Default::default);
    Ok(Binding {
        rt,
        pre: prepared.pre,
        config,
        initialized: prepared.initialized,
        hooks: prepared.hooks,
        fail_open: b.fail_open,
        limits: b.limits,
        grants,
        kept,
    })
}
