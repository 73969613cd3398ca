//! Credentials in the config: backend headers, a stdio child's environment, an OpenAPI
//! backend's headers, policy secrets.
//!
//! A value is written in place, or read from the environment (`{env: NAME}`) or a file
//! (`{file: PATH}`) so the file holds no secret. Whatever the gateway shows of its config
//! (`GET /api/config`, `tollgate export`, `Debug`) keeps references as they are and masks
//! literal values as [`MASKED`]; errors name the source, never the value.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a literal secret shows as. A config that still holds it (an export applied as it is)
/// is refused at load, since the value it stood for is not in it.
pub const MASKED: &str = "<redacted>";

/// Where a secret's value comes from, when it is not written in place. Exactly one of the two.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = super::schema::one_source)]
pub struct SecretRef {
    /// The environment variable holding the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub env: Option<String>,
    /// The file holding the value, relative to the config file. Trailing line breaks are not
    /// part of the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub file: Option<PathBuf>,
}

/// Why a secret could not be read. Names the source, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {0} is not set")]
    UnsetEnv(String),
    #[error("cannot read {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("give exactly one of `env` or `file`")]
    Shape,
    #[error("this value was masked when the config was shown; give the secret again, or as {{env: NAME}} or {{file: PATH}}")]
    Masked,
}

impl SecretRef {
    /// Reads the value; a relative file is taken from `base`.
    pub fn read(&self, base: &Path) -> Result<String, SecretError> {
        match (&self.env, &self.file) {
            (Some(var), None) => std::env::var(var).map_err(|_| SecretError::UnsetEnv(var.clone())),
            (None, Some(file)) => {
                let path = base.join(file);
                match std::fs::read_to_string(&path) {
                    Ok(s) => Ok(s.trim_end_matches(['\n', '\r']).to_owned()),
                    Err(e) => Err(SecretError::File { path, reason: e.kind().to_string() }),
                }
            }
            _ => Err(SecretError::Shape),
        }
    }
}

/// A credential: a literal, or a reference read when the backend starts.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    Literal(String),
    Ref(SecretRef),
}

impl Secret {
    /// The value. File references are absolute once the config is loaded.
    pub fn reveal(&self) -> Result<String, SecretError> {
        match self {
            Secret::Literal(s) if s == MASKED => Err(SecretError::Masked),
            Secret::Literal(s) => Ok(s.clone()),
            Secret::Ref(r) => r.read(Path::new("")),
        }
    }

    /// Whether the value can be read now and, for a header, is header text. The message names
    /// the source, never the value.
    pub fn check(&self, header: bool) -> Result<(), String> {
        match self.reveal() {
            Err(e) => Err(e.to_string()),
            Ok(v) if header && hyper::header::HeaderValue::from_str(&v).is_err() => {
                Err("is not a valid header value (a line break or control character)".into())
            }
            Ok(_) => Ok(()),
        }
    }

    /// As shown to anyone: references as they are, literals masked.
    pub fn masked(&self) -> Secret {
        match self {
            Secret::Literal(_) => Secret::Literal(MASKED.into()),
            Secret::Ref(r) => Secret::Ref(r.clone()),
        }
    }

    /// A file reference taken relative to the config file's directory.
    pub fn anchor(&mut self, dir: &Path) {
        if let Secret::Ref(SecretRef { file: Some(f), .. }) = self
            && f.is_relative()
            && !dir.as_os_str().is_empty()
        {
            *f = dir.join(&*f);
        }
    }

    /// The environment variable or file a reference names, for the management API's
    /// allow-list; `None` for a literal.
    pub fn reference(&self) -> Option<&SecretRef> {
        match self {
            Secret::Ref(r) => Some(r),
            Secret::Literal(_) => None,
        }
    }
}

impl super::BackendConfig {
    /// Every secret of the backend, with its place under it: `headers.NAME`,
    /// `stdio.env.NAME`, `openapi.headers.NAME`, `tls.key`.
    pub fn secrets(&self) -> impl Iterator<Item = (String, &Secret)> {
        let headers = self.headers.iter().map(|(k, v)| (format!("headers.{k}"), v));
        let stdio = self.stdio.iter().flat_map(|s| s.env.iter().map(|(k, v)| (format!("stdio.env.{k}"), v)));
        let openapi = self.openapi.iter().flat_map(|o| o.headers.iter().map(|(k, v)| (format!("openapi.headers.{k}"), v)));
        let key = self.tls.iter().filter_map(|t| t.key.as_ref()).map(|k| ("tls.key".to_owned(), k));
        headers.chain(stdio).chain(openapi).chain(key)
    }

    /// As [`super::BackendConfig::secrets`], to change them.
    fn secrets_mut(&mut self) -> impl Iterator<Item = &mut Secret> {
        let stdio = self.stdio.iter_mut().flat_map(|s| s.env.values_mut());
        let openapi = self.openapi.iter_mut().flat_map(|o| o.headers.values_mut());
        let key = self.tls.iter_mut().filter_map(|t| t.key.as_mut());
        self.headers.values_mut().chain(stdio).chain(openapi).chain(key)
    }
}

/// Takes every file reference of a backend from `dir`.
pub(super) fn anchor_backend(b: &mut super::BackendConfig, dir: &Path) {
    for s in b.secrets_mut() {
        s.anchor(dir);
    }
    if let Some(t) = &mut b.tls {
        t.anchor(dir);
    }
}

impl super::ServerConfig {
    /// The server as shown to anyone: literal secrets masked, credentials in URLs removed.
    pub fn masked(&self) -> super::ServerConfig {
        let mut s = self.clone();
        mask_backend(&mut s.backend);
        for v in &mut s.versions {
            mask_backend(&mut v.backend);
        }
        s
    }
}

impl super::VersionConfig {
    /// As [`super::ServerConfig::masked`].
    pub fn masked(&self) -> super::VersionConfig {
        let mut v = self.clone();
        mask_backend(&mut v.backend);
        v
    }
}

impl super::Config {
    /// The config as shown to anyone (`GET /api/config`, `tollgate export`).
    pub fn masked(&self) -> super::Config {
        let mut c = self.clone();
        c.servers = c.servers.iter().map(super::ServerConfig::masked).collect();
        c.state = c.state.as_ref().map(super::StateConfig::masked);
        if let Some(db) = c.management.as_mut().and_then(|m| m.database.as_mut()) {
            *db = db.masked();
        }
        c
    }
}

fn mask_backend(b: &mut super::BackendConfig) {
    for s in b.secrets_mut() {
        *s = s.masked();
    }
    let urls = b.http.iter_mut().chain(b.sse.iter_mut()).chain(b.openapi.iter_mut().flat_map(|o| std::iter::once(&mut o.spec).chain(o.base_url.iter_mut())));
    for u in urls {
        *u = without_userinfo(u);
    }
}

/// `https://user:key@host/x` shown as `https://<redacted>@host/x`.
pub fn without_userinfo(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut url) if !url.username().is_empty() || url.password().is_some() => {
            let _ = url.set_password(None);
            let _ = url.set_username(MASKED);
            url.to_string()
        }
        _ => text.to_owned(),
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret::Literal(s.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Literal(_) => f.write_str(MASKED),
            Secret::Ref(r) => r.fmt(f),
        }
    }
}

/// Serializes the value itself: for the gateway's own records and comparisons. What is
/// shown goes through [`Secret::masked`] first.
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Secret::Literal(v) => s.serialize_str(v),
            Secret::Ref(r) => r.serialize(s),
        }
    }
}

/// As [`Secret`]'s `Deserialize` reads it: a string, or a map that is a [`SecretRef`]. Never a
/// value: no default, no example.
impl JsonSchema for Secret {
    fn schema_name() -> Cow<'static, str> {
        "Secret".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A credential: written in place, or read when the gateway starts from the environment \
                            (`{env: NAME}`) or a file (`{file: PATH}`), so the config file holds no secret.",
            "anyOf": [
                {
                    "type": "string",
                    "description": "The value itself. What the gateway shows of its config masks it; a masked one is refused.",
                    "not": { "const": MASKED }
                },
                generator.subschema_for::<SecretRef>()
            ]
        })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, {env: NAME} or {file: PATH}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret::Literal(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Secret, E> {
                Ok(Secret::Literal(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Secret, A::Error> {
                SecretRef::deserialize(de::value::MapAccessDeserializer::new(map)).map(Secret::Ref)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_references_read_and_show_apart() {
        let dir = std::env::temp_dir().join(format!("tollgate-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("key"), "s3cret\n").unwrap();
        let parsed: std::collections::BTreeMap<String, Secret> =
            serde_norway::from_str("a: plain\nb: {file: key}\nc: {env: TOLLGATE_TEST_SURELY_UNSET}").unwrap();
        let mut b = parsed["b"].clone();
        b.anchor(&dir);
        assert_eq!(parsed["a"].reveal().unwrap(), "plain");
        assert_eq!(b.reveal().unwrap(), "s3cret", "a trailing line break is not part of the value");
        assert_eq!(parsed["c"].reveal(), Err(SecretError::UnsetEnv("TOLLGATE_TEST_SURELY_UNSET".into())));
        assert_eq!(format!("{:?}", parsed["a"]), MASKED);
        assert_eq!(serde_json::to_value(parsed["a"].masked()).unwrap(), MASKED);
        assert_eq!(serde_json::to_value(parsed["c"].masked()).unwrap(), serde_json::json!({"env": "TOLLGATE_TEST_SURELY_UNSET"}));
        assert_eq!(Secret::from(MASKED).reveal(), Err(SecretError::Masked));
        let wrong = serde_norway::from_str::<Secret>("{env: A, file: b}").unwrap();
        assert_eq!(wrong.reveal(), Err(SecretError::Shape));
        let err = serde_norway::from_str::<Secret>("{envv: A}").unwrap_err().to_string();
        assert!(err.contains("unknown field `envv`"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
