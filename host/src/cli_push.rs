//! `tollgate policy push COMPONENT --server NAME [--version V] [--config FILE]`: uploads a
//! component through the management API and binds it in the chain of a server (or one of its
//! versions), showing the chain before and after first. The binding replaces the one that
//! names the same component, or one named with `--replace`; else it is added at the end. A
//! push that changes nothing says so and writes nothing.

use std::path::Path;

use serde_json::{Value, json};

use crate::cli_apply::Remote;

pub struct Push<'a> {
    pub component: &'a Path,
    pub server: &'a str,
    pub version: Option<&'a str>,
    /// The binding's `config`, from a YAML or JSON file.
    pub config: Option<&'a Path>,
    /// The `policy` of the binding to replace (a path or an older `sha256:` reference).
    pub replace: Option<&'a str>,
}

/// What the push did, in lines for the terminal: the difference, then what was done.
pub async fn push(remote: &Remote, p: &Push<'_>) -> anyhow::Result<Vec<String>> {
    let bytes = std::fs::read(p.component).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.component.display()))?;
    let config: Value = match p.config {
        Some(f) => {
            let text = std::fs::read_to_string(f).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", f.display()))?;
            serde_norway::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?
        }
        None => json!({}),
    };
    let uploaded = remote.upload(bytes).await?;
    let reference = uploaded["policy"].as_str().ok_or_else(|| anyhow::anyhow!("the upload's answer names no policy: {uploaded}"))?.to_owned();
    let path = match p.version {
        Some(v) => format!("/api/servers/{}/versions/{v}/policies", p.server),
        None => format!("/api/servers/{}/policies", p.server),
    };
    let (etag, current) = remote.read(&path).await?;
    let before: Vec<Value> = current.as_array().cloned().unwrap_or_default();
    let mut after = before.clone();
    let binding = |old: Option<&Value>| {
        // What the binding had besides (limits, secrets, hosts) stays; policy and config are the push's.
        let mut b = old.cloned().unwrap_or_else(|| json!({}));
        b["policy"] = json!(reference);
        if p.config.is_some() || old.is_none() {
            b["config"] = config.clone();
        }
        b
    };
    let at = after.iter().position(|b| b["policy"] == json!(reference)).or_else(|| p.replace.and_then(|r| after.iter().position(|b| b["policy"] == json!(r))));
    match (at, p.replace) {
        (Some(i), _) => after[i] = binding(Some(&after[i])),
        (None, Some(r)) => anyhow::bail!("the chain of '{}' has no binding of '{r}' to replace", p.server),
        (None, None) => after.push(binding(None)),
    }
    let mut out = vec![format!("component {reference} ({} bytes)", uploaded["size"])];
    if after == before {
        out.push("no difference".into());
        return Ok(out);
    }
    out.extend(difference(&before, &after));
    remote.put_if(&path, etag.as_deref(), &after).await?;
    out.push("applied".into());
    Ok(out)
}

/// The chain before and after, binding by binding, as `tollgate apply` shows changes.
fn difference(before: &[Value], after: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..before.len().max(after.len()) {
        match (before.get(i), after.get(i)) {
            (Some(b), Some(a)) if a == b => out.push(format!("  policies[{i}]: {}", a["policy"])),
            (Some(b), Some(a)) => {
                out.push(format!("- policies[{i}]: {}", compact(b)));
                out.push(format!("+ policies[{i}]: {}", compact(a)));
            }
            (Some(b), None) => out.push(format!("- policies[{i}]: {}", compact(b))),
            (None, Some(a)) => out.push(format!("+ policies[{i}]: {}", compact(a))),
            (None, None) => {}
        }
    }
    out
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).expect("JSON values serialize")
}
