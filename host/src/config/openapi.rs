//! Settings of the `openapi` backend: a REST API described by an OpenAPI document, whose chosen
//! operations become tools. The document is read and checked here, at load, so that
//! `tollgate validate` reports an unreadable spec or an unknown operation with its place, and so
//! that serving never parses it again.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

mod catalog;
mod request;
pub mod response;
mod schema;
mod spec;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Config, Locator, Problem as ConfigProblem};

/// `backend: { openapi: { spec, base_url, operations, tools, timeout_ms, headers } }`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenApiConfig {
    /// The OpenAPI 3.0 or 3.1 document, JSON or YAML: an http(s) URL, or a file path taken
    /// relative to the config file.
    pub spec: String,
    /// Where calls go, overriding the document's `servers` (which often name production).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Which operations become tools: `all`, or operationIds and globs (`create*`).
    #[serde(default)]
    pub operations: Operations,
    /// Per-tool overrides, keyed by operationId (or the generated name of an operation without one).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tools: BTreeMap<String, ToolOverride>,
    /// Time one REST call may take; `limits.request_timeout_ms` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Headers sent on every call (credentials of the API). The client's own headers never are.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, super::Secret>,
    /// The document as loaded by validation, kept so serving does not read it a second time.
    #[serde(skip)]
    pub loaded: Loaded,
}

/// A rename or a better description for one tool, for models that need clearer words than the API's.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolOverride {
    /// The tool's name instead of the operationId.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The tool's description instead of the operation's summary and description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `all`, or a list of operationIds and globs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Operations {
    #[default]
    All,
    Only(Vec<String>),
}

impl<'de> Deserialize<'de> for Operations {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Operations;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`all` or a list of operationIds and globs")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Operations, E> {
                if s == "all" { Ok(Operations::All) } else { Err(E::invalid_value(de::Unexpected::Str(s), &self)) }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Operations, A::Error> {
                let mut list = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    list.push(s);
                }
                Ok(Operations::Only(list))
            }
        }
        d.deserialize_any(V)
    }
}

/// As [`Operations`]' `Deserialize` reads it: `all`, or a list of strings.
impl JsonSchema for Operations {
    fn schema_name() -> Cow<'static, str> {
        "Operations".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                { "const": "all", "description": "Every operation of the document." },
                {
                    "type": "array",
                    "items": { "type": "string" },
                    "description": "operationIds, and globs over them: `*` matches any run of characters, `?` any one (`create*`)."
                }
            ]
        })
    }
}

impl Serialize for Operations {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Operations::All => s.serialize_str("all"),
            Operations::Only(list) => list.serialize(s),
        }
    }
}

/// A cell holding the loaded catalog; clones share it.
#[derive(Clone, Default)]
pub struct Loaded(Arc<OnceLock<Arc<Catalog>>>);

impl Loaded {
    pub fn get(&self) -> Option<Arc<Catalog>> {
        self.0.get().cloned()
    }
}

impl fmt::Debug for Loaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.get().is_some() { "Loaded(yes)" } else { "Loaded(no)" })
    }
}

/// Makes relative spec paths relative to the config file's folder, not to wherever the gateway starts.
pub(super) fn resolve_paths(config: &mut Config, dir: Option<&Path>) {
    let Some(dir) = dir else { return };
    for s in &mut config.servers {
        resolve_server_paths(s, dir);
    }
}

pub(super) fn resolve_server_paths(server: &mut super::ServerConfig, dir: &Path) {
    let backends = std::iter::once(&mut server.backend).chain(server.versions.iter_mut().map(|v| &mut v.backend));
    for backend in backends {
        super::secret::anchor_backend(backend, dir);
        if let Some(o) = &mut backend.openapi {
            let is_url = o.spec.starts_with("http://") || o.spec.starts_with("https://");
            if !is_url && Path::new(&o.spec).is_relative() && !dir.as_os_str().is_empty() {
                o.spec = dir.join(&o.spec).to_string_lossy().into_owned();
            }
        }
    }
}

/// Checks every `openapi` backend, loading its document; the loaded catalog is kept for serving.
pub(super) fn check(config: &Config, locator: &Locator) -> Vec<ConfigProblem> {
    config.servers.iter().enumerate().flat_map(|(i, s)| check_server(config, &format!("servers[{i}]"), s, locator)).collect()
}

/// The `openapi` backends of one server, at `at`.
pub(super) fn check_server(config: &Config, at: &str, server: &super::ServerConfig, locator: &Locator) -> Vec<ConfigProblem> {
    let mut out = Vec::new();
    let mut push = |path: String, message: String| {
        out.push(ConfigProblem { line: locator.line_of(&path), path, column: None, message });
    };
    let backends = server.served().into_iter().map(|v| (format!("{at}{}.backend", v.at), v.config.backend));
    for (place, backend) in backends {
        let Some(o) = &backend.openapi else { continue };
        let at = format!("{place}.openapi");
        if !backend.headers.is_empty() {
            push(format!("{place}.headers"), "an openapi backend takes its headers under `openapi.headers`".into());
        }
        if let Some(u) = &o.base_url {
            match url::Url::parse(u) {
                Ok(url) if (url.scheme() == "http" || url.scheme() == "https") && url.host().is_some() => {}
                Ok(_) => push(format!("{at}.base_url"), format!("'{u}' must be an http or https URL with a host")),
                Err(e) => push(format!("{at}.base_url"), format!("'{u}' is not a URL: {e}")),
            }
        }
        let deadline = backend.request_timeout_ms.unwrap_or(config.limits.request_timeout_ms);
        match o.timeout_ms {
            Some(0) => push(format!("{at}.timeout_ms"), "must be greater than zero".into()),
            // Past the gateway's own deadline the client gets a bare timeout instead of the tool error.
            Some(t) if t >= deadline => push(format!("{at}.timeout_ms"), format!("must be less than the request timeout of the server ({deadline} ms)")),
            _ => {}
        }
        for (name, value) in &o.headers {
            if let Err(e) = value.check(true) {
                push(format!("{at}.headers.{name}"), e);
            }
            let lower = name.to_ascii_lowercase();
            if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                push(format!("{at}.headers.{name}"), format!("'{name}' is not a valid header name"));
            } else if crate::mcp::headers::is_hop_by_hop(&lower) || lower == "host" || lower == "content-length" {
                push(format!("{at}.headers.{name}"), format!("'{name}' is set by the gateway and cannot be configured"));
            }
        }
        if let Operations::Only(list) = &o.operations
            && list.is_empty()
        {
            push(format!("{at}.operations"), "list at least one operation, or write `all`".into());
        }
        // A `tls` that does not load is reported at its own place; the spec is then fetched
        // with the public roots, and fails there too if it needed the bundle.
        let tls = backend.tls.as_ref().and_then(|t| t.load().ok()).unwrap_or_default();
        match Catalog::load(o, config.limits.connect_timeout(), &tls) {
            Ok(catalog) => {
                let _ = o.loaded.0.set(Arc::new(catalog));
            }
            Err(problems) => {
                for p in problems {
                    let path = match p.place {
                        Place::Spec => format!("{at}.spec"),
                        Place::BaseUrl => format!("{at}.base_url"),
                        Place::Operation(n) => format!("{at}.operations[{n}]"),
                        Place::Tool(key) => format!("{at}.tools.{key}"),
                    };
                    push(path, p.message);
                }
            }
        }
    }
    out
}

pub use catalog::Tool;

/// Something wrong with the document itself.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SpecError {
    #[error("{0}")]
    Read(String),
    #[error("{0}")]
    Syntax(String),
    #[error("{0}")]
    Version(String),
    #[error("{0}")]
    Ref(String),
}

/// Which setting a problem belongs to, so the config can point at its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Spec,
    BaseUrl,
    /// The n-th entry of `operations`.
    Operation(usize),
    /// The override under `tools` with this key.
    Tool(String),
}

#[derive(Debug, Clone)]
pub struct Problem {
    pub place: Place,
    pub message: String,
}

/// The document's tools, and what the MCP handshake tells about the API.
pub struct Catalog {
    pub title: String,
    pub version: String,
    pub instructions: Option<String>,
    /// Where calls go: the config's `base_url`, else the document's first server.
    pub base_url: String,
    pub tools: Vec<Tool>,
    index: HashMap<String, usize>,
    /// The `tools/list` answer, built once.
    listing: Value,
}

impl Catalog {
    /// Reads the document and builds the chosen tools; every problem found, each with its place.
    /// A spec given by URL is fetched with `tls`, the backend's.
    pub fn load(cfg: &OpenApiConfig, fetch_timeout: Duration, tls: &crate::config::TlsMaterial) -> Result<Catalog, Vec<Problem>> {
        let at_spec = |e: SpecError| vec![Problem { place: Place::Spec, message: e.to_string() }];
        let source = spec::Source::parse(&cfg.spec).map_err(at_spec)?;
        let doc = spec::Document::read(&source, fetch_timeout, tls).map_err(at_spec)?;
        Catalog::from_document(&doc, cfg)
    }

    /// Builds the catalog of an already parsed document.
    pub fn from_text(text: &str, cfg: &OpenApiConfig) -> Result<Catalog, Vec<Problem>> {
        let doc = spec::Document::parse(text).map_err(|e| vec![Problem { place: Place::Spec, message: e.to_string() }])?;
        Catalog::from_document(&doc, cfg)
    }

    fn from_document(doc: &spec::Document, cfg: &OpenApiConfig) -> Result<Catalog, Vec<Problem>> {
        let mut problems = Vec::new();
        let base_url = match cfg.base_url.clone().or_else(|| doc.server_url()) {
            Some(u) if url::Url::parse(&u).is_ok() => u,
            _ => {
                problems.push(Problem { place: Place::BaseUrl, message: "the spec names no absolute server URL: set `base_url`".into() });
                String::new()
            }
        };
        let fixed = cfg.headers.keys().map(|k| k.to_ascii_lowercase()).collect();
        let tools = match catalog::build(doc, &cfg.operations, &cfg.tools, &fixed) {
            Ok(t) => t,
            Err(p) => {
                problems.extend(p);
                Vec::new()
            }
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        let info = doc.root.get("info");
        let text = |k: &str| info.and_then(|i| i.get(k)).and_then(Value::as_str).map(str::to_owned);
        let index = tools.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
        let listing = json!({ "tools": tools.iter().map(|t| t.listing.clone()).collect::<Vec<_>>() });
        Ok(Catalog {
            title: text("title").unwrap_or_else(|| "REST API".into()),
            version: text("version").unwrap_or_else(|| "0".into()),
            instructions: text("description"),
            base_url,
            tools,
            index,
            listing,
        })
    }

    /// The `tools/list` answer.
    pub fn listing(&self) -> &Value {
        &self.listing
    }

    pub fn tool(&self, name: &str) -> Option<&Tool> {
        self.index.get(name).map(|i| &self.tools[*i])
    }
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").field("title", &self.title).field("base_url", &self.base_url).field("tools", &self.index.len()).finish()
    }
}
