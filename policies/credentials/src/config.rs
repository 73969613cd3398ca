//! What the binding injects, and from where. Exactly one source: a static secret, an OAuth 2.0
//! client-credentials token, or a secret chosen by the caller's identity.

use std::collections::BTreeMap;

use policy_common::Duration;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The header the backend gets. Default `authorization`.
    #[serde(default = "default_header")]
    pub header: String,
    /// Put before the value. Default `Bearer ` for `authorization`, nothing otherwise.
    #[serde(default)]
    pub prefix: Option<String>,
    /// A static credential: the name of a secret granted to the binding.
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub client_credentials: Option<ClientCredentials>,
    #[serde(default)]
    pub per_user: Option<PerUser>,
}

fn default_header() -> String {
    "authorization".into()
}

/// OAuth 2.0 client credentials (RFC 6749 §4.4): a token for the gateway itself.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCredentials {
    pub token_url: String,
    pub client_id: String,
    /// The name of the secret that holds the client secret.
    pub client_secret: String,
    #[serde(default)]
    pub scope: Option<String>,
    /// RFC 8707 resource indicator, for authorization servers that issue per-resource tokens.
    #[serde(default)]
    pub resource: Option<String>,
    /// Some servers (Auth0, for one) want an `audience` parameter instead.
    #[serde(default)]
    pub audience: Option<String>,
    /// How the client authenticates: `basic` (HTTP Basic, the default) or `body`.
    #[serde(default)]
    pub auth: ClientAuth,
    /// How long before expiry a token is renewed. Default `60s`.
    #[serde(default = "default_refresh")]
    pub refresh_before: Duration,
}

fn default_refresh() -> Duration {
    Duration(60_000)
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    #[default]
    Basic,
    Body,
}

/// A credential per caller: the value of `attribute` (default `auth.sub`, the token's subject)
/// picks the secret.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerUser {
    #[serde(default = "default_attribute")]
    pub attribute: String,
    /// Attribute value → secret name.
    pub secrets: BTreeMap<String, String>,
    /// The secret for callers not listed; without it they are refused.
    #[serde(default)]
    pub default: Option<String>,
    /// The token issuer (`auth.iss`) whose subjects `secrets` names. A subject is unique only
    /// within its issuer: when `jwt` accepts several, set this, and a caller of another issuer
    /// gets no listed secret (only `default`).
    #[serde(default)]
    pub issuer: Option<String>,
}

fn default_attribute() -> String {
    "auth.sub".into()
}

/// The source, once the config is known to name exactly one.
pub enum Source {
    Static(String),
    Client(ClientCredentials),
    PerUser(PerUser),
}

impl Config {
    /// Checks the config; `granted` says whether a secret name is granted to the binding.
    pub fn source(self, granted: impl Fn(&str) -> bool) -> Result<(String, String, Source), String> {
        let header = self.header.trim().to_ascii_lowercase();
        if header.is_empty() || !header.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)) {
            return Err(format!("header '{}' is not a valid header name", self.header));
        }
        let prefix = self.prefix.unwrap_or_else(|| if header == "authorization" { "Bearer ".into() } else { String::new() });
        let need = |name: &str, field: &str| -> Result<(), String> {
            if granted(name) { Ok(()) } else { Err(format!("{field}: secret '{name}' is not granted to this binding (list it under the binding's secrets)")) }
        };
        let source = match (self.secret, self.client_credentials, self.per_user) {
            (Some(s), None, None) => {
                need(&s, "secret")?;
                Source::Static(s)
            }
            (None, Some(cc), None) => {
                if !(cc.token_url.starts_with("https://") || cc.token_url.starts_with("http://")) {
                    return Err(format!("client_credentials.token_url '{}' is not an http(s) URL", cc.token_url));
                }
                if cc.client_id.is_empty() {
                    return Err("client_credentials.client_id must not be empty".into());
                }
                need(&cc.client_secret, "client_credentials.client_secret")?;
                Source::Client(cc)
            }
            (None, None, Some(pu)) => {
                if pu.secrets.is_empty() && pu.default.is_none() {
                    return Err("per_user names no secrets".into());
                }
                for (who, name) in &pu.secrets {
                    need(name, &format!("per_user.secrets.{who}"))?;
                }
                if let Some(d) = &pu.default {
                    need(d, "per_user.default")?;
                }
                Source::PerUser(pu)
            }
            (None, None, None) => return Err("set one of secret, client_credentials or per_user".into()),
            _ => return Err("set only one of secret, client_credentials or per_user".into()),
        };
        Ok((header, prefix, source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(v: serde_json::Value) -> Result<(String, String, Source), String> {
        let c: Config = serde_json::from_value(v).map_err(|e| e.to_string())?;
        c.source(|name| name.starts_with("ok"))
    }

    #[test]
    fn exactly_one_source_with_granted_secrets() {
        let (h, p, s) = check(json!({ "secret": "ok_token" })).unwrap();
        assert_eq!((h.as_str(), p.as_str()), ("authorization", "Bearer "));
        assert!(matches!(s, Source::Static(_)));
        let (h, p, _) = check(json!({ "secret": "ok_key", "header": "X-Api-Key" })).unwrap();
        assert_eq!((h.as_str(), p.as_str()), ("x-api-key", ""));
        let e = check(json!({ "secret": "missing" })).err().unwrap();
        assert!(e.contains("'missing' is not granted"), "{e}");
        assert!(check(json!({})).err().unwrap().contains("set one of"));
        assert!(check(json!({ "secret": "ok", "per_user": { "secrets": {} } })).err().unwrap().contains("only one"));
        assert!(check(json!({ "per_user": { "secrets": { "alice": "ok_a", "bob": "nope" } } })).err().unwrap().contains("per_user.secrets.bob"));
        assert!(check(json!({ "client_credentials": { "token_url": "ftp://x", "client_id": "c", "client_secret": "ok" } })).err().unwrap().contains("http(s)"));
        assert!(check(json!({ "secret": "ok", "header": "bad header" })).err().unwrap().contains("not a valid header"));
        assert!(check(json!({ "secrt": "ok" })).err().unwrap().contains("unknown field"));
    }
}
