//! Settings of the `openapi` backend: a REST API described by an OpenAPI document, whose chosen
//! operations become tools. The document is read and checked here, at load, so that
//! `tollgate validate` reports an unreadable spec or an unknown operation with its place, and so
//! that serving never parses it again.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::{Config, Locator, Problem};
use crate::backend::openapi::{Catalog, Place};

/// `backend: { openapi: { spec, base_url, operations, tools, timeout_ms, headers } }`.
#[derive(Debug, Clone, Deserialize, Serialize)]
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
    pub headers: BTreeMap<String, String>,
    /// The document as loaded by validation, kept so serving does not read it a second time.
    #[serde(skip)]
    pub loaded: Loaded,
}

/// A rename or a better description for one tool, for models that need clearer words than the API's.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ToolOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
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
        if let Some(o) = &mut backend.openapi {
            let is_url = o.spec.starts_with("http://") || o.spec.starts_with("https://");
            if !is_url && Path::new(&o.spec).is_relative() && !dir.as_os_str().is_empty() {
                o.spec = dir.join(&o.spec).to_string_lossy().into_owned();
            }
        }
    }
}

/// Checks every `openapi` backend, loading its document; the loaded catalog is kept for serving.
pub(super) fn check(config: &Config, locator: &Locator) -> Vec<Problem> {
    config.servers.iter().enumerate().flat_map(|(i, s)| check_server(config, &format!("servers[{i}]"), s, locator)).collect()
}

/// The `openapi` backends of one server, at `at`.
pub(super) fn check_server(config: &Config, at: &str, server: &super::ServerConfig, locator: &Locator) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut push = |path: String, message: String| {
        out.push(Problem { line: locator.line_of(&path), path, column: None, message });
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
        for name in o.headers.keys() {
            let lower = name.to_ascii_lowercase();
            if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                push(format!("{at}.headers.{name}"), format!("'{name}' is not a valid header name"));
            } else if crate::transport::headers::is_hop_by_hop(&lower) || lower == "host" || lower == "content-length" {
                push(format!("{at}.headers.{name}"), format!("'{name}' is set by the gateway and cannot be configured"));
            }
        }
        if let Operations::Only(list) = &o.operations && list.is_empty() {
            push(format!("{at}.operations"), "list at least one operation, or write `all`".into());
        }
        match Catalog::load(o, config.limits.connect_timeout()) {
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
