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
    pub chains: HashMap<String, Arc<Chain>>,
    pub files: Vec<PathBuf>,
}

/// Loads the chains of every server of a validated config; `base` resolves relative paths.
pub async fn load(config: &Config, base: &Path, locator: &Locator) -> Result<Loaded, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut loaded = Loaded::default();
    if config.servers.iter().all(|s| s.policies.is_empty()) {
        return Ok(loaded);
    }
    let rt = match Runtime::get() {
        Ok(rt) => rt,
        Err(e) => return Err(vec![problem(locator, "servers", e)]),
    };
    for (i, server) in config.servers.iter().enumerate() {
        let mut chain = Chain::default();
        let mut names: HashSet<String> = HashSet::new();
        for (j, b) in server.policies.iter().enumerate() {
            let at = format!("servers[{i}].policies[{j}]");
            let mut namespace = format!("{}/{}", server.name, b.name());
            let mut k = 1;
            while !names.insert(namespace.clone()) {
                k += 1;
                namespace = format!("{}/{}#{k}", server.name, b.name());
            }
            // A protected server's jwt binding learns the server's canonical URL.
            let b = &crate::authorization::complete(config, &server.name, b);
            match bind(rt, &server.name, b, base, namespace, &mut loaded.files).await {
                Ok(binding) => chain.bindings.push(binding),
                Err((field, message)) => problems.push(problem(locator, &format!("{at}{field}"), message)),
            }
        }
        loaded.chains.insert(server.name.clone(), Arc::new(chain));
    }
    if problems.is_empty() { Ok(loaded) } else { Err(problems) }
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
        call: Arc::new(Call { msg: Message::notification("tollgate/canary", serde_json::json!({})), server: server.into(), session_id: None, protocol_version: None, caller: Arc::new(Caller::default()) }),
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
