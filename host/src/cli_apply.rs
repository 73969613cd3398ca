//! `tollgate export` and `tollgate apply`: the running gateway's configuration as YAML, and a
//! file made the running configuration, through the management API.
//!
//! What the API can change at run time (servers and their versions, products, policy chains,
//! and which version of a server serves whom) is applied; a difference elsewhere (listeners,
//! limits, telemetry) is shown and needs a restart with the file. Each change is shown with the
//! fields it changes. A component the file names by a local path is uploaded first and bound by
//! its digest. Each change is made only if what it replaces is still what the difference was
//! computed against: a change someone made since is refused, not overwritten.

mod fields;
mod local;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::config::{Config, Routing};

/// Talks to one gateway's management API with the admin token.
pub struct Remote {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Remote {
    pub fn new(base: &str, token: String) -> Remote {
        let http = reqwest::Client::builder().no_proxy().timeout(std::time::Duration::from_secs(30)).build().expect("an HTTP client");
        Remote { http, base: base.trim_end_matches('/').to_owned(), token }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<(u16, Option<String>, Value)> {
        let r = req.bearer_auth(&self.token).send().await.map_err(|e| anyhow::anyhow!("management API at {}: {e}", self.base))?;
        let status = r.status().as_u16();
        let etag = r.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let text = r.text().await?;
        let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        if status >= 400 {
            // The API's error body: problem+json (`detail`), or the older `{error: {message}}`.
            let msg = body["detail"].as_str().or(body["error"]["message"].as_str()).map(str::to_owned).unwrap_or_else(|| body.to_string());
            anyhow::bail!("HTTP {status}: {msg}");
        }
        Ok((status, etag, body))
    }

    /// Creates what `path` names; refused if it exists by now (no `If-Match`: only to create).
    async fn create(&self, path: &str, body: &Value) -> anyhow::Result<()> {
        self.send(self.http.put(format!("{}{path}", self.base)).json(body)).await.map(drop)
    }

    /// Replaces (or, with no `new`, deletes) what `path` holds, only if it still is `seen`:
    /// read, compared, then written with that read's ETag, so nothing changed in between either.
    async fn swap(&self, path: &str, seen: Option<&Value>, new: Option<&Value>) -> anyhow::Result<()> {
        let (etag, now) = self.read(path).await?;
        if let Some(seen) = seen
            && without_nulls(&now) != without_nulls(seen)
        {
            anyhow::bail!("{path} changed after the difference was shown; nothing of it was applied: run `tollgate apply` again to see the new difference");
        }
        let etag = etag.unwrap_or_default();
        let req = match new {
            Some(body) => self.http.put(format!("{}{path}", self.base)).json(body),
            None => self.http.delete(format!("{}{path}", self.base)),
        };
        self.send(req.header("if-match", etag)).await.map(drop)
    }

    /// What `path` holds, and its ETag.
    pub async fn read(&self, path: &str) -> anyhow::Result<(Option<String>, Value)> {
        let (_, etag, body) = self.send(self.http.get(format!("{}{path}", self.base))).await?;
        Ok((etag, body))
    }

    /// Replaces what `path` holds, if its ETag is still `etag`.
    pub async fn put_if(&self, path: &str, etag: Option<&str>, body: &impl serde::Serialize) -> anyhow::Result<Value> {
        let mut req = self.http.put(format!("{}{path}", self.base)).json(body);
        if let Some(e) = etag {
            req = req.header("if-match", e);
        }
        Ok(self.send(req).await?.2)
    }

    /// Uploads a component; the API's answer (`policy`, `sha256`, `size`).
    pub async fn upload(&self, bytes: Vec<u8>) -> anyhow::Result<Value> {
        Ok(self.send(self.http.post(format!("{}/api/components", self.base)).header("content-type", "application/wasm").body(bytes)).await?.2)
    }

    /// The running configuration.
    pub async fn config(&self) -> anyhow::Result<Value> {
        Ok(self.read("/api/config").await?.1)
    }
}

/// The running configuration as YAML.
pub async fn export(remote: &Remote) -> anyhow::Result<String> {
    let running = remote.config().await?;
    Ok(serde_norway::to_string(&running)?)
}

/// One line of the difference between a file and the running gateway, with the fields that
/// differ under it.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    AddServer(String),
    /// Anything of a server but its routing and chains differs: it is replaced whole.
    ChangeServer(String, Vec<String>),
    RemoveServer(String),
    AddProduct(String),
    ChangeProduct(String, Vec<String>),
    RemoveProduct(String),
    /// Which version of this server serves whom: its default, preview or retired versions.
    Routing(String, Routing),
    /// The policy chain of a server, or of one version of it, as JSON in the file's shape.
    Chain {
        server: String,
        version: Option<String>,
        policies: Value,
        fields: Vec<String>,
    },
    /// A top-level section other than products differs: it needs a restart.
    Restart(String),
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let under = |f: &mut std::fmt::Formatter<'_>, lines: &[String]| lines.iter().try_for_each(|l| write!(f, "\n    {l}"));
        match self {
            Change::AddServer(n) => write!(f, "+ server {n}"),
            Change::ChangeServer(n, lines) => {
                write!(f, "~ server {n}")?;
                under(f, lines)
            }
            Change::RemoveServer(n) => write!(f, "- server {n}"),
            Change::AddProduct(n) => write!(f, "+ product {n}"),
            Change::ChangeProduct(n, lines) => {
                write!(f, "~ product {n}")?;
                under(f, lines)
            }
            Change::RemoveProduct(n) => write!(f, "- product {n}"),
            Change::Routing(n, r) => {
                write!(f, "~ server {n} versions: default {}", r.default_version)?;
                match &r.preview {
                    Some(p) => write!(f, ", preview {} ({}%, {} subscription(s))", p.version, p.share, p.subscriptions.len())?,
                    None => write!(f, ", no preview")?,
                }
                if !r.retired.is_empty() {
                    write!(f, ", retired {}", r.retired.iter().cloned().collect::<Vec<_>>().join(", "))?;
                }
                Ok(())
            }
            Change::Chain { server, version, policies, fields } => {
                // As logs name them: an uploaded component by the first 12 digits of its digest.
                let short = |p: &'_ str| {
                    p.get(..crate::config::DIGEST_PREFIX.len() + 12).filter(|_| p.starts_with(crate::config::DIGEST_PREFIX)).unwrap_or(p).to_owned()
                };
                let names: Vec<String> = policies.as_array().into_iter().flatten().filter_map(|b| b["policy"].as_str()).map(short).collect();
                let names = if names.is_empty() { "(none)".to_owned() } else { names.join(", ") };
                match version {
                    Some(v) => write!(f, "~ server {server} version {v} policies: {names}")?,
                    None => write!(f, "~ server {server} policies: {names}")?,
                }
                under(f, fields)
            }
            Change::Restart(k) => write!(f, "! {k} differs: the API cannot change it; restart the gateway with the file"),
        }
    }
}

/// `null` and absent are the same to the config: compared without them.
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(o.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), without_nulls(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// A server's routing as the config writes it: `default_version`, `preview`, `versions[].retired`.
fn routing_of(server: &Value) -> Option<Routing> {
    let retired = server
        .get("versions")?
        .as_array()?
        .iter()
        .filter(|v| v["retired"] == Value::Bool(true))
        .filter_map(|v| v["name"].as_str().map(str::to_owned))
        .collect();
    let preview = server.get("preview").filter(|p| !p.is_null()).and_then(|p| serde_json::from_value(p.clone()).ok());
    Some(Routing { default_version: server.get("default_version")?.as_str()?.to_owned(), preview, retired })
}

/// A server without what the API changes on its own: its routing and its chains.
fn without_live(server: &Value) -> Value {
    let mut server = server.clone();
    if let Some(s) = server.as_object_mut() {
        s.remove("default_version");
        s.remove("preview");
        s.remove("policies");
        for v in s.get_mut("versions").and_then(Value::as_array_mut).into_iter().flatten().filter_map(Value::as_object_mut) {
            v.remove("retired");
            v.remove("policies");
        }
    }
    server
}

/// A chain as the config writes it; absent is empty.
fn chain_of(v: &Value) -> Value {
    v.get("policies").filter(|p| !p.is_null()).cloned().unwrap_or(Value::Array(Vec::new()))
}

/// Each chain of a server: its own (`None`), or each version's.
fn chains_of(server: &Value) -> BTreeMap<Option<String>, Value> {
    match server.get("versions").and_then(Value::as_array).filter(|v| !v.is_empty()) {
        Some(versions) => versions.iter().filter_map(|v| Some((Some(v.get("name")?.as_str()?.to_owned()), chain_of(v)))).collect(),
        None => BTreeMap::from([(None, chain_of(server))]),
    }
}

fn by_name(v: &Value, key: &str) -> BTreeMap<String, Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten().filter_map(|p| Some((p.get("name")?.as_str()?.to_owned(), p.clone()))).collect()
}

/// What applying a file would do: its changes, the running configuration they were computed
/// against, and the local components to upload first.
pub struct Plan {
    pub changes: Vec<Change>,
    seen: Value,
    /// The file as JSON, unmasked, with local components named by digest: what is sent.
    file: Value,
    components: Vec<local::Component>,
}

/// What applying `file` (read from `base`'s directory) to `running` would change: servers added
/// or replaced first (products may name them), products, routings and chains, then what is
/// removed. The running config shows secrets masked, so the file's are compared masked too: a
/// change of a literal secret alone is not seen (references are seen by name).
pub fn plan(file: &Config, base: &std::path::Path, running: Value) -> anyhow::Result<Plan> {
    let components = local::find(file, base)?;
    let mut wanted = serde_json::to_value(file.masked()).expect("the config serializes");
    let mut sent = serde_json::to_value(file).expect("the config serializes");
    local::rename(&mut wanted, &components);
    local::rename(&mut sent, &components);
    let changes = diff(&wanted, &running);
    Ok(Plan { changes, seen: running, file: sent, components })
}

fn diff(wanted: &Value, running: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    if let (Some(w), Some(r)) = (wanted.as_object(), running.as_object()) {
        let keys: std::collections::BTreeSet<&String> = w.keys().chain(r.keys()).filter(|k| !["products", "servers"].contains(&k.as_str())).collect();
        for k in keys {
            if w.get(k) != r.get(k) {
                out.push(Change::Restart(k.clone()));
            }
        }
    }
    let (wanted_servers, running_servers) = (by_name(wanted, "servers"), by_name(running, "servers"));
    let mut removed = Vec::new();
    for (name, s) in &wanted_servers {
        match running_servers.get(name) {
            None => out.push(Change::AddServer(name.clone())),
            // A server replaced whole brings its routing and chains with it.
            Some(r) if without_live(s) != without_live(r) => out.push(Change::ChangeServer(name.clone(), fields::lines(r, s))),
            Some(r) => {
                if let (Some(w), Some(r)) = (routing_of(s), routing_of(r))
                    && w != r
                {
                    out.push(Change::Routing(name.clone(), w));
                }
                let running = chains_of(r);
                for (version, chain) in chains_of(s) {
                    let before = running.get(&version).cloned().unwrap_or(Value::Array(Vec::new()));
                    if before != chain {
                        let fields = fields::lines(&before, &chain);
                        out.push(Change::Chain { server: name.clone(), version, policies: chain, fields });
                    }
                }
            }
        }
    }
    for name in running_servers.keys().filter(|n| !wanted_servers.contains_key(*n)) {
        removed.push(Change::RemoveServer(name.clone()));
    }
    let (w, r) = (by_name(wanted, "products"), by_name(running, "products"));
    for (name, p) in &w {
        match r.get(name) {
            None => out.push(Change::AddProduct(name.clone())),
            Some(q) if q != p => out.push(Change::ChangeProduct(name.clone(), fields::lines(q, p))),
            _ => {}
        }
    }
    for name in r.keys().filter(|n| !w.contains_key(*n)) {
        out.push(Change::RemoveProduct(name.clone()));
    }
    out.extend(removed);
    out
}

/// What a `--dry-run --plan FILE` saved: the running configuration the difference was shown against.
pub fn read_seen(path: &std::path::Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let saved: Value = serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: not a saved plan: {e}", path.display()))?;
    saved.get("seen").cloned().ok_or_else(|| anyhow::anyhow!("{}: not a saved plan: no `seen`", path.display()))
}

impl Plan {
    /// Saves what the difference was computed against, for a later `apply --plan`. Secrets in it
    /// are masked as the API shows them.
    pub fn save_seen(&self, path: &std::path::Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(&serde_json::json!({ "seen": self.seen }))?;
        std::fs::write(path, text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Uploads the local components, then makes each change the API can make, each only if what
    /// it replaces is still what the plan saw (read again, compared, then written with that
    /// read's ETag), so a change made since the difference was shown is refused.
    pub async fn apply(&self, remote: &Remote) -> anyhow::Result<()> {
        for c in &self.components {
            let answer = remote.upload(c.bytes.clone()).await?;
            anyhow::ensure!(
                answer["policy"].as_str() == Some(c.reference.as_str()),
                "{}: the gateway named the upload {}, not {}",
                c.path.display(),
                answer["policy"],
                c.reference
            );
        }
        let (servers, products) = (by_name(&self.file, "servers"), by_name(&self.file, "products"));
        let (seen_servers, seen_products) = (by_name(&self.seen, "servers"), by_name(&self.seen, "products"));
        for c in &self.changes {
            match c {
                Change::AddServer(n) => remote.create(&format!("/api/servers/{n}"), &servers[n]).await?,
                Change::ChangeServer(n, _) => remote.swap(&format!("/api/servers/{n}"), Some(&seen_servers[n]), Some(&servers[n])).await?,
                Change::RemoveServer(n) => remote.swap(&format!("/api/servers/{n}"), Some(&seen_servers[n]), None).await?,
                Change::AddProduct(n) => remote.create(&format!("/api/products/{n}"), &products[n]).await?,
                Change::ChangeProduct(n, _) => remote.swap(&format!("/api/products/{n}"), Some(&seen_products[n]), Some(&products[n])).await?,
                Change::RemoveProduct(n) => remote.swap(&format!("/api/products/{n}"), Some(&seen_products[n]), None).await?,
                Change::Routing(n, r) => {
                    let seen = routing_of(&seen_servers[n]).map(|r| serde_json::to_value(r).expect("a routing serializes"));
                    remote.swap(&format!("/api/servers/{n}/routing"), seen.as_ref(), Some(&serde_json::to_value(r)?)).await?
                }
                Change::Chain { server, version, .. } => {
                    let path = match version {
                        Some(v) => format!("/api/servers/{server}/versions/{v}/policies"),
                        None => format!("/api/servers/{server}/policies"),
                    };
                    let seen = chains_of(&seen_servers[server]).remove(version);
                    let sent = chains_of(&servers[server]).remove(version).unwrap_or(Value::Array(Vec::new()));
                    remote.swap(&path, seen.as_ref(), Some(&sent)).await?
                }
                Change::Restart(_) => {}
            }
        }
        Ok(())
    }
}
