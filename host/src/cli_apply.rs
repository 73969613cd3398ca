//! `tollgate export` and `tollgate apply`: the running gateway's configuration as YAML, and a
//! file made the running configuration, through the management API.
//!
//! What the API can change at run time (servers and their versions, products, policy chains,
//! and which version of a server serves whom) is applied; a difference elsewhere (listeners,
//! limits, telemetry) is shown and needs a restart with the file.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::config::{Config, PolicyBinding, ProductConfig, Routing, ServerConfig};

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
            let msg = body["error"]["message"].as_str().map(str::to_owned).unwrap_or_else(|| body.to_string());
            anyhow::bail!("HTTP {status}: {msg}");
        }
        Ok((status, etag, body))
    }

    /// Replaces what `path` names with `body`, with the ETag just read, so a change made
    /// since is refused rather than overwritten.
    async fn replace(&self, path: &str, body: &impl serde::Serialize) -> anyhow::Result<()> {
        let (etag, _) = self.read(path).await?;
        self.put_if(path, Some(etag.as_deref().unwrap_or_default()), body).await.map(drop)
    }

    /// Deletes what `path` names, with the ETag just read.
    async fn remove(&self, path: &str) -> anyhow::Result<()> {
        let (etag, _) = self.read(path).await?;
        self.send(self.http.delete(format!("{}{path}", self.base)).header("if-match", etag.unwrap_or_default())).await.map(drop)
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

/// One line of the difference between a file and the running gateway.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    AddServer(String),
    /// Anything of a server but its routing and chains differs: it is replaced whole.
    ChangeServer(String),
    RemoveServer(String),
    AddProduct(String),
    ChangeProduct(String),
    RemoveProduct(String),
    /// Which version of this server serves whom: its default, preview or retired versions.
    Routing(String, Routing),
    /// The policy chain of a server, or of one version of it.
    Chain {
        server: String,
        version: Option<String>,
        policies: Vec<PolicyBinding>,
    },
    /// A top-level section other than products differs: it needs a restart.
    Restart(String),
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::AddServer(n) => write!(f, "+ server {n}"),
            Change::ChangeServer(n) => write!(f, "~ server {n}"),
            Change::RemoveServer(n) => write!(f, "- server {n}"),
            Change::AddProduct(n) => write!(f, "+ product {n}"),
            Change::ChangeProduct(n) => write!(f, "~ product {n}"),
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
            Change::Chain { server, version, policies } => {
                let names: Vec<&str> = policies.iter().map(PolicyBinding::name).collect();
                let names = if names.is_empty() { "(none)".to_owned() } else { names.join(", ") };
                match version {
                    Some(v) => write!(f, "~ server {server} version {v} policies: {names}"),
                    None => write!(f, "~ server {server} policies: {names}"),
                }
            }
            Change::Restart(k) => write!(f, "! {k} differs: the API cannot change it; restart the gateway with the file"),
        }
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

/// What applying `file` to `running` would change: servers added or replaced first (products
/// may name them), products, routings and chains, then what is removed. The running config
/// shows secrets masked, so the file's are compared masked too: a change of a literal secret
/// alone is not seen (references are seen by name).
pub fn diff(file: &Config, running: &Value) -> Vec<Change> {
    let wanted = serde_json::to_value(file.masked()).expect("the config serializes");
    let mut out = Vec::new();
    if let (Some(w), Some(r)) = (wanted.as_object(), running.as_object()) {
        let keys: std::collections::BTreeSet<&String> = w.keys().chain(r.keys()).filter(|k| !["products", "servers"].contains(&k.as_str())).collect();
        for k in keys {
            if w.get(k) != r.get(k) {
                out.push(Change::Restart(k.clone()));
            }
        }
    }
    let (wanted_servers, running_servers) = (by_name(&wanted, "servers"), by_name(running, "servers"));
    let mut removed = Vec::new();
    for (name, s) in &wanted_servers {
        match running_servers.get(name) {
            None => out.push(Change::AddServer(name.clone())),
            // A server replaced whole brings its routing and chains with it.
            Some(r) if without_live(s) != without_live(r) => out.push(Change::ChangeServer(name.clone())),
            Some(r) => {
                if let (Some(w), Some(r)) = (routing_of(s), routing_of(r))
                    && w != r
                {
                    out.push(Change::Routing(name.clone(), w));
                }
                let running = chains_of(r);
                for (version, chain) in chains_of(s) {
                    if running.get(&version) != Some(&chain) {
                        let policies = serde_json::from_value(chain).expect("a chain read from the file");
                        out.push(Change::Chain { server: name.clone(), version, policies });
                    }
                }
            }
        }
    }
    for name in running_servers.keys().filter(|n| !wanted_servers.contains_key(*n)) {
        removed.push(Change::RemoveServer(name.clone()));
    }
    let (w, r) = (by_name(&wanted, "products"), by_name(running, "products"));
    for (name, p) in &w {
        match r.get(name) {
            None => out.push(Change::AddProduct(name.clone())),
            Some(q) if q != p => out.push(Change::ChangeProduct(name.clone())),
            _ => {}
        }
    }
    for name in r.keys().filter(|n| !w.contains_key(*n)) {
        out.push(Change::RemoveProduct(name.clone()));
    }
    out.extend(removed);
    out
}

/// Applies the changes the API can make, each with the ETag just read, so a concurrent change
/// is refused.
pub async fn apply(remote: &Remote, file: &Config, changes: &[Change]) -> anyhow::Result<()> {
    let by_name: BTreeMap<&str, &ProductConfig> = file.products.iter().map(|p| (p.name.as_str(), p)).collect();
    let servers: BTreeMap<&str, &ServerConfig> = file.servers.iter().map(|s| (s.name.as_str(), s)).collect();
    for c in changes {
        match c {
            Change::AddServer(n) => {
                remote.send(remote.http.put(format!("{}/api/servers/{n}", remote.base)).json(servers[n.as_str()])).await?;
            }
            Change::ChangeServer(n) => remote.replace(&format!("/api/servers/{n}"), servers[n.as_str()]).await?,
            Change::RemoveServer(n) => remote.remove(&format!("/api/servers/{n}")).await?,
            Change::AddProduct(n) => {
                remote.send(remote.http.put(format!("{}/api/products/{n}", remote.base)).json(by_name[n.as_str()])).await?;
            }
            Change::ChangeProduct(n) => remote.replace(&format!("/api/products/{n}"), by_name[n.as_str()]).await?,
            Change::RemoveProduct(n) => remote.remove(&format!("/api/products/{n}")).await?,
            Change::Routing(n, r) => remote.replace(&format!("/api/servers/{n}/routing"), r).await?,
            Change::Chain { server, version, policies } => {
                let path = match version {
                    Some(v) => format!("/api/servers/{server}/versions/{v}/policies"),
                    None => format!("/api/servers/{server}/policies"),
                };
                remote.replace(&path, policies).await?;
            }
            Change::Restart(_) => {}
        }
    }
    Ok(())
}
