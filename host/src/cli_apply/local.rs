//! Components a file names by a local path (`policy: ./blocklist/blocklist.wasm`): a remote
//! gateway cannot read them, so `apply` uploads them and binds them by digest (`sha256:<hex>`),
//! the name the management API gives an upload.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::Digest;

use crate::config::Config;

/// One local component: the `policy` as the file writes it, where it is, its bytes and digest.
pub struct Component {
    pub written: String,
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub reference: String,
}

/// The local components the file's chains name (servers, versions, products), each once.
pub fn find(file: &Config, base: &Path) -> anyhow::Result<Vec<Component>> {
    let chains = file
        .servers
        .iter()
        .flat_map(|s| std::iter::once(&s.policies).chain(s.versions.iter().map(|v| &v.policies)))
        .chain(file.products.iter().map(|p| &p.policies));
    let mut out: Vec<Component> = Vec::new();
    for b in chains.flatten() {
        let Some(path) = b.path(base).filter(|_| !out.iter().any(|c| c.written == b.policy)) else { continue };
        let bytes = std::fs::read(&path).map_err(|e| anyhow::anyhow!("policy {}: cannot read {}: {e}", b.policy, path.display()))?;
        let reference = format!("sha256:{:x}", sha2::Sha256::digest(&bytes));
        out.push(Component { written: b.policy.clone(), path, bytes, reference });
    }
    Ok(out)
}

/// The config as JSON with each local component's `policy` replaced by its reference.
pub fn rename(config: &mut Value, components: &[Component]) {
    for list in ["servers", "products"] {
        for item in config.get_mut(list).and_then(Value::as_array_mut).into_iter().flatten() {
            rename_chain(item, components);
            for v in item.get_mut("versions").and_then(Value::as_array_mut).into_iter().flatten() {
                rename_chain(v, components);
            }
        }
    }
}

fn rename_chain(holder: &mut Value, components: &[Component]) {
    for binding in holder.get_mut("policies").and_then(Value::as_array_mut).into_iter().flatten() {
        if let Some(c) = binding.get("policy").and_then(Value::as_str).and_then(|p| components.iter().find(|c| c.written == p)) {
            binding["policy"] = Value::String(c.reference.clone());
        }
    }
}
