//! Reading an OpenAPI document: JSON or YAML, from a file or a URL, version 3.0 or 3.1.
//!
//! The document is kept as a `serde_json::Value` and `$ref`s are followed in it on demand.
//! Typed OpenAPI crates each cover one version (`openapiv3` 3.0 only, `oas3` 3.1 only); one
//! resolver over the plain value reads both, and keeps every JSON Schema keyword as written.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};

use super::SpecError;

/// Bound on a document's size: larger ones are refused rather than held in memory.
const MAX_SPEC_BYTES: usize = 64 << 20;
/// Bound on `$ref` chains (a ref to a ref to ...), which also stops a ref that points at itself.
const MAX_HOPS: usize = 32;

pub const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Which revision of OpenAPI a document follows; 3.0 schemas need translating to JSON Schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V30,
    V31,
}

/// Where a document comes from.
#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    Url(url::Url),
}

impl Source {
    pub fn parse(spec: &str) -> Result<Source, SpecError> {
        if spec.starts_with("http://") || spec.starts_with("https://") {
            let url = url::Url::parse(spec).map_err(|e| SpecError::Read(format!("'{spec}' is not a URL: {e}")))?;
            Ok(Source::Url(url))
        } else {
            Ok(Source::File(PathBuf::from(spec)))
        }
    }
}

/// A parsed OpenAPI document.
pub struct Document {
    pub root: Value,
    pub version: Version,
    /// The document's own URL, against which relative `servers` URLs resolve.
    pub url: Option<url::Url>,
}

/// One operation as the document states it, with the path item that holds it.
pub struct RawOperation<'a> {
    pub method: &'static str,
    pub path: &'a str,
    pub op: &'a Map<String, Value>,
    pub item: &'a Map<String, Value>,
}

impl Document {
    /// Reads and parses a document. Runs before the async runtime serves anything, so a URL is
    /// fetched on a thread of its own (safe whether or not the caller is inside a runtime).
    /// A URL is fetched with the backend's `tls` (its CA bundle, its client certificate).
    pub fn read(source: &Source, timeout: Duration, tls: &crate::config::TlsMaterial) -> Result<Document, SpecError> {
        let (bytes, url) = match source {
            Source::File(path) => {
                let bytes = std::fs::read(path).map_err(|e| SpecError::Read(format!("cannot read {}: {e}", path.display())))?;
                (bytes, None)
            }
            Source::Url(url) => (fetch(url.clone(), timeout, tls.clone())?, Some(url.clone())),
        };
        if bytes.len() > MAX_SPEC_BYTES {
            return Err(SpecError::Read(format!("the document is larger than {} MiB", MAX_SPEC_BYTES >> 20)));
        }
        let text = String::from_utf8(bytes).map_err(|_| SpecError::Syntax("the document is not UTF-8 text".into()))?;
        let mut doc = Document::parse(&text)?;
        doc.url = url;
        Ok(doc)
    }

    /// Parses JSON or YAML text and checks that it is OpenAPI 3.0 or 3.1.
    pub fn parse(text: &str) -> Result<Document, SpecError> {
        let root = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| SpecError::Syntax(format!("not valid JSON: {e}")))?
        } else {
            let yaml: serde_norway::Value = serde_norway::from_str(text).map_err(|e| SpecError::Syntax(format!("not valid YAML: {e}")))?;
            yaml_to_json(yaml)
        };
        let version = match root.get("openapi").and_then(Value::as_str) {
            Some(v) if v.starts_with("3.0.") || v == "3.0" => Version::V30,
            Some(v) if v.starts_with("3.1.") || v == "3.1" => Version::V31,
            Some(v) => return Err(SpecError::Version(format!("OpenAPI {v} is not supported; use 3.0 or 3.1"))),
            None if root.get("swagger").is_some() => {
                return Err(SpecError::Version("Swagger 2.0 is not supported; convert the document to OpenAPI 3 first".into()));
            }
            None => return Err(SpecError::Version("no `openapi` version field: this is not an OpenAPI document".into())),
        };
        if !root.get("paths").is_none_or(Value::is_object) {
            return Err(SpecError::Syntax("`paths` must be a mapping".into()));
        }
        Ok(Document { root, version, url: None })
    }

    /// Every operation in the document, path by path, methods in a fixed order: tool order is stable.
    pub fn operations(&self) -> Result<Vec<RawOperation<'_>>, SpecError> {
        let mut out = Vec::new();
        let Some(paths) = self.root.get("paths").and_then(Value::as_object) else { return Ok(out) };
        for (path, item) in paths {
            if !path.starts_with('/') {
                continue; // `x-` extensions live here too
            }
            let item = self.resolve(item)?.as_object().ok_or_else(|| SpecError::Syntax(format!("path item {path} is not a mapping")))?;
            for method in METHODS {
                if let Some(op) = item.get(method) {
                    let op = op.as_object().ok_or_else(|| SpecError::Syntax(format!("{} {path} is not a mapping", method.to_uppercase())))?;
                    out.push(RawOperation { method, path, op, item });
                }
            }
        }
        Ok(out)
    }

    /// Follows `$ref` until a value that is not a reference.
    pub fn resolve<'a>(&'a self, mut v: &'a Value) -> Result<&'a Value, SpecError> {
        for _ in 0..MAX_HOPS {
            match v.get("$ref").and_then(Value::as_str) {
                Some(r) => v = self.pointer(r)?,
                None => return Ok(v),
            }
        }
        Err(SpecError::Ref("a chain of $ref that never ends".into()))
    }

    /// The value a local reference (`#/components/schemas/Pet`) points at.
    pub fn pointer(&self, reference: &str) -> Result<&Value, SpecError> {
        let Some(fragment) = reference.strip_prefix('#') else {
            return Err(SpecError::Ref(format!("'{reference}' points into another document; bundle the spec into one file first")));
        };
        let decoded = percent_encoding::percent_decode_str(fragment).decode_utf8_lossy();
        self.root.pointer(&decoded).ok_or_else(|| SpecError::Ref(format!("'{reference}' does not resolve")))
    }

    /// The first server URL, with its variables at their defaults.
    pub fn server_url(&self) -> Option<String> {
        let server = self.root.get("servers")?.as_array()?.first()?;
        let mut url = server.get("url")?.as_str()?.to_owned();
        if let Some(vars) = server.get("variables").and_then(Value::as_object) {
            for (name, var) in vars {
                let default = var.get("default").and_then(Value::as_str).unwrap_or_default();
                url = url.replace(&format!("{{{name}}}"), default);
            }
        }
        match url::Url::parse(&url) {
            Ok(_) => Some(url),
            Err(_) => self.url.as_ref().and_then(|base| base.join(&url).ok()).map(String::from),
        }
    }
}

fn fetch(url: url::Url, timeout: Duration, tls: crate::config::TlsMaterial) -> Result<Vec<u8>, SpecError> {
    let shown = url.to_string();
    let job = std::thread::spawn(move || -> Result<Vec<u8>, String> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        rt.block_on(async {
            let builder = reqwest::Client::builder().connect_timeout(timeout).timeout(timeout * 6);
            let client = tls.apply(builder).and_then(|b| b.build()).map_err(|e| e.to_string())?;
            let resp = client.get(url).send().await.map_err(|e| with_causes(&e))?;
            if !resp.status().is_success() {
                return Err(format!("HTTP {}", resp.status()));
            }
            let body = resp.bytes().await.map_err(|e| e.to_string())?;
            Ok(body.to_vec())
        })
    });
    job.join().unwrap_or_else(|_| Err("the fetch failed".into())).map_err(|e| SpecError::Read(format!("cannot fetch {shown}: {e}")))
}

/// An error with its causes: reqwest's own message names only the request, not why it failed
/// (a certificate no root vouches for, a refused connection).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// YAML allows keys that are not strings (`200:` for a response code); JSON Schema wants strings.
fn yaml_to_json(v: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64().and_then(serde_json::Number::from_f64).map(Value::Number).unwrap_or(Value::Null)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect()),
        Y::Mapping(m) => {
            let mut out = Map::with_capacity(m.len());
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    Y::Bool(b) => b.to_string(),
                    Y::Number(n) => n.to_string(),
                    Y::Null => "null".to_owned(),
                    other => serde_norway::to_string(&other).unwrap_or_default().trim().to_owned(),
                };
                out.insert(key, yaml_to_json(v));
            }
            Value::Object(out)
        }
        Y::Tagged(t) => yaml_to_json(t.value),
    }
}
