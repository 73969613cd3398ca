//! The binding's settings, checked at load: where keys come from, what a token must say.

use std::collections::BTreeMap;

use policy_common::{Duration, Patterns};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::jose::{Algorithm, Jwk};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Accepted `iss` values. With `oidc_discovery` and none here, the discovered issuer.
    #[serde(default)]
    pub issuers: Vec<String>,
    /// Accepted `aud` values; a token must name at least one (or `authorization.resource`).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// An issuer URL (or its `/.well-known/openid-configuration`) whose `jwks_uri` gives the keys.
    #[serde(default)]
    pub oidc_discovery: Option<String>,
    /// A JWKS document's URL.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Keys written in the config: a list of public JWKs.
    #[serde(default)]
    pub keys: Option<Vec<Value>>,
    /// Default `[RS256, ES256]`. Only asymmetric algorithms: shared-secret (HS*) tokens could be
    /// forged by anyone holding the key, and `none` is no signature at all.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Leeway on `exp` and `nbf`. Default `60s`.
    #[serde(default = "default_skew")]
    pub clock_skew: Duration,
    /// Claims a token must carry, with the value (or one of the values) they must have. A
    /// claim that is a list passes when it contains the value.
    #[serde(default)]
    pub required_claims: BTreeMap<String, Value>,
    /// Scopes every request needs (`scope` or `scp` claim).
    #[serde(default)]
    pub required_scopes: Vec<String>,
    /// Scopes some tools need, on top of `required_scopes`.
    #[serde(default)]
    pub tool_scopes: Vec<ToolScopes>,
    /// Attributes to set from claims for later policies and logs: `{ email: email, subscription: azp }`.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// How long fetched keys are used before they are fetched again. Default `1h`.
    #[serde(default = "default_jwks_ttl")]
    pub jwks_ttl: Duration,
    /// At most one refetch per this long when a token names a key we do not have. Default `30s`.
    #[serde(default = "default_refresh")]
    pub jwks_refresh_interval: Duration,
    /// Remember verified tokens (by SHA-256) until they expire, so an agent's repeated calls
    /// skip the signature check. Default true.
    #[serde(default = "yes")]
    pub cache_verified: bool,
    /// MCP authorization: the gateway serves RFC 9728 metadata for this server from these.
    #[serde(default)]
    pub authorization: Option<Authorization>,
}

/// The protected resource metadata of this server (RFC 9728).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// Issuer URLs of the authorization servers clients should use.
    pub authorization_servers: Vec<String>,
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    #[serde(default)]
    pub resource_name: Option<String>,
    /// This server's canonical URL; the gateway fills it in (`public_url` + `/{server}/mcp`).
    /// Tokens must name it as audience (RFC 8707).
    #[serde(default)]
    pub resource: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolScopes {
    pub tools: Patterns,
    pub scopes: Vec<String>,
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".into(), "ES256".into()]
}
fn default_skew() -> Duration {
    Duration(60_000)
}
fn default_jwks_ttl() -> Duration {
    Duration(3_600_000)
}
fn default_refresh() -> Duration {
    Duration(30_000)
}
fn yes() -> bool {
    true
}

/// Where the signing keys come from.
#[derive(Debug)]
pub enum KeySource {
    Inline(Vec<Jwk>),
    Jwks(String),
    Discovery(String),
}

/// The checked config.
#[derive(Debug)]
pub struct Settings {
    pub keys: KeySource,
    pub algorithms: Vec<Algorithm>,
    pub issuers: Vec<String>,
    pub audiences: Vec<String>,
    pub skew_s: u64,
    pub required_claims: BTreeMap<String, Value>,
    pub required_scopes: Vec<String>,
    pub tool_scopes: Vec<ToolScopes>,
    pub attributes: BTreeMap<String, String>,
    pub jwks_ttl_ms: u64,
    pub refresh_ms: u64,
    pub cache_verified: bool,
    /// `resource_metadata` for challenges, when MCP authorization is on and names its resource.
    pub resource_metadata: Option<String>,
    /// MCP authorization is on without a `resource`: the server's canonical URL, which the
    /// gateway gives every exchange, is an accepted audience and names the metadata.
    pub resource_from_gateway: bool,
    /// For `scope=` in challenges.
    pub scopes_supported: Vec<String>,
    /// The remembered tokens' key, hashed as far as the config fixes it (the key source and
    /// the algorithms): each call hashes only the token.
    pub memo: Sha256,
}

/// The start of every remembered token's key: tokens verified with other keys or algorithms
/// are someone else's.
fn memo_prefix(keys: &KeySource, algorithms: &[Algorithm]) -> Sha256 {
    let source = match keys {
        KeySource::Inline(k) => format!("inline:{}", serde_json::to_string(k).unwrap_or_default()),
        KeySource::Jwks(u) | KeySource::Discovery(u) => u.clone(),
    };
    let mut h = Sha256::new();
    h.update(source.as_bytes());
    h.update([0]);
    h.update(format!("{algorithms:?}").as_bytes());
    h.update([0]);
    h
}

/// Accepted names; everything else (HS*, `none`) is refused at load.
pub fn algorithm(name: &str) -> Result<Algorithm, String> {
    Ok(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        "HS256" | "HS384" | "HS512" => {
            return Err(format!("algorithm {name} is refused: shared-secret tokens can be forged by anyone who can check them; use RS256 or ES256"));
        }
        "none" => return Err("algorithm none is refused: it means no signature".into()),
        other => return Err(format!("unknown algorithm '{other}' (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)")),
    })
}

fn http_url(field: &str, url: &str) -> Result<(), String> {
    if url.starts_with("https://") || url.starts_with("http://") { Ok(()) } else { Err(format!("{field} '{url}' is not an http(s) URL")) }
}

impl Config {
    pub fn check(self) -> Result<Settings, String> {
        let keys = match (self.keys, self.jwks_url, self.oidc_discovery) {
            (Some(k), None, None) => {
                let mut keys = Vec::with_capacity(k.len());
                for (i, v) in k.into_iter().enumerate() {
                    keys.push(crate::verify::public_jwk(v).map_err(|e| format!("keys[{i}]: {e}"))?);
                }
                if keys.is_empty() {
                    return Err("keys holds no key".into());
                }
                KeySource::Inline(keys)
            }
            (None, Some(u), None) => {
                http_url("jwks_url", &u)?;
                KeySource::Jwks(u)
            }
            (None, None, Some(u)) => {
                http_url("oidc_discovery", &u)?;
                KeySource::Discovery(discovery_url(&u))
            }
            (None, None, None) => return Err("set one of oidc_discovery, jwks_url or keys".into()),
            _ => return Err("set only one of oidc_discovery, jwks_url or keys".into()),
        };
        if self.algorithms.is_empty() {
            return Err("algorithms is empty".into());
        }
        let algorithms = self.algorithms.iter().map(|a| algorithm(a)).collect::<Result<Vec<_>, _>>()?;
        let mut audiences = self.audiences;
        let mut resource_metadata = None;
        let mut resource_from_gateway = false;
        let mut scopes_supported = Vec::new();
        if let Some(a) = self.authorization {
            if a.authorization_servers.is_empty() {
                return Err("authorization.authorization_servers must name at least one authorization server".into());
            }
            for s in &a.authorization_servers {
                http_url("authorization.authorization_servers", s)?;
            }
            match a.resource {
                Some(r) => {
                    http_url("authorization.resource", &r)?;
                    resource_metadata = Some(metadata_url(&r));
                    audiences.push(r);
                }
                None => resource_from_gateway = true,
            }
            scopes_supported = a.scopes_supported;
        }
        if audiences.is_empty() && !resource_from_gateway {
            return Err("set audiences (or authorization): a token issued for any other service would be accepted".into());
        }
        if let Some((i, _)) = self.tool_scopes.iter().enumerate().find(|(_, t)| t.tools.is_empty() || t.scopes.is_empty()) {
            return Err(format!("tool_scopes[{i}] needs tools and scopes"));
        }
        if self.attributes.keys().any(|k| k.is_empty() || k.starts_with("auth.")) {
            return Err("attributes: names must not be empty, and auth.* is the policy's own (auth.sub, auth.scopes, auth.iss)".into());
        }
        Ok(Settings {
            memo: memo_prefix(&keys, &algorithms),
            keys,
            algorithms,
            issuers: self.issuers,
            audiences,
            skew_s: self.clock_skew.ms() / 1000,
            required_claims: self.required_claims,
            required_scopes: self.required_scopes,
            tool_scopes: self.tool_scopes,
            attributes: self.attributes,
            jwks_ttl_ms: self.jwks_ttl.ms(),
            refresh_ms: self.jwks_refresh_interval.ms(),
            cache_verified: self.cache_verified,
            resource_metadata,
            resource_from_gateway,
            scopes_supported,
        })
    }
}

/// `https://idp/tenant` → `https://idp/tenant/.well-known/openid-configuration` (OpenID
/// Connect Discovery §4); a URL already ending in `.well-known/...` is kept.
pub fn discovery_url(u: &str) -> String {
    if u.contains("/.well-known/") { u.to_owned() } else { format!("{}/.well-known/openid-configuration", u.trim_end_matches('/')) }
}

/// RFC 9728 §3.1: the well-known path goes between the host and the resource's path:
/// `https://gw/docs/mcp` → `https://gw/.well-known/oauth-protected-resource/docs/mcp`.
pub fn metadata_url(resource: &str) -> String {
    let (scheme, rest) = resource.split_once("://").unwrap_or(("https", resource));
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let path = path.trim_end_matches('/');
    if path.is_empty() {
        format!("{scheme}://{authority}/.well-known/oauth-protected-resource")
    } else {
        format!("{scheme}://{authority}/.well-known/oauth-protected-resource/{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(v: Value) -> Result<Settings, String> {
        serde_json::from_value::<Config>(v).map_err(|e| e.to_string())?.check()
    }

    #[test]
    fn shared_secret_and_none_algorithms_are_refused_at_load() {
        let base = json!({ "jwks_url": "https://idp/jwks", "audiences": ["a"] });
        for alg in ["HS256", "none", "XX1"] {
            let mut c = base.clone();
            c["algorithms"] = json!([alg]);
            assert!(check(c).unwrap_err().contains(alg));
        }
        assert_eq!(check(base).unwrap().algorithms, [Algorithm::RS256, Algorithm::ES256]);
    }

    #[test]
    fn one_key_source_and_an_audience_are_required() {
        assert!(check(json!({ "audiences": ["a"] })).unwrap_err().contains("set one of"));
        assert!(check(json!({ "audiences": ["a"], "jwks_url": "https://x", "oidc_discovery": "https://y" })).unwrap_err().contains("only one"));
        assert!(check(json!({ "jwks_url": "https://x" })).unwrap_err().contains("audiences"));
        assert!(check(json!({ "jwks_url": "file:///etc/passwd", "audiences": ["a"] })).unwrap_err().contains("http(s)"));
        assert!(check(json!({ "keys": [], "audiences": ["a"] })).unwrap_err().contains("no key"));
        assert!(check(json!({ "keys": [{ "kty": "oct", "k": "c2VjcmV0" }], "audiences": ["a"] })).unwrap_err().contains("keys[0]"));
        assert!(check(json!({ "jwks_url": "https://x", "audiences": ["a"], "attributes": { "auth.sub": "sub" } })).is_err());
        assert!(check(json!({ "jwks_url": "https://x", "audience": ["a"] })).unwrap_err().contains("unknown field"));
    }

    #[test]
    fn without_a_resource_the_gateway_gives_the_servers_own() {
        let s = check(json!({ "jwks_url": "https://x", "authorization": { "authorization_servers": ["https://as"] } })).unwrap();
        assert!(s.resource_from_gateway && s.audiences.is_empty() && s.resource_metadata.is_none());
        let claims = json!({ "exp": 2_000_000_000u64, "aud": "https://gw/docs/mcp" });
        let claims = claims.as_object().unwrap();
        assert!(crate::claims::check(&s, &[], claims, 1_000_000_000, Some("https://gw/docs/mcp")).is_ok());
        assert!(crate::claims::check(&s, &[], claims, 1_000_000_000, Some("https://gw/other/mcp")).is_err(), "another server's token");
        let r = crate::challenge::reject(&crate::claims::Failure::Invalid("no token".into()), &s, Some("https://gw/docs/mcp"));
        let challenge = &r.headers.iter().find(|(k, _)| k == "www-authenticate").unwrap().1;
        assert!(challenge.contains("resource_metadata=\"https://gw/.well-known/oauth-protected-resource/docs/mcp\""), "{challenge}");
    }

    #[test]
    fn the_resource_becomes_an_audience_and_names_its_metadata() {
        let s =
            check(json!({ "jwks_url": "https://x", "authorization": { "authorization_servers": ["https://as"], "resource": "https://gw.example/docs/mcp" } }))
                .unwrap();
        assert_eq!(s.audiences, ["https://gw.example/docs/mcp"]);
        assert_eq!(s.resource_metadata.as_deref(), Some("https://gw.example/.well-known/oauth-protected-resource/docs/mcp"));
        assert_eq!(metadata_url("http://[::1]:8080"), "http://[::1]:8080/.well-known/oauth-protected-resource");
        assert_eq!(discovery_url("https://idp/t1/"), "https://idp/t1/.well-known/openid-configuration");
        assert!(check(json!({ "jwks_url": "https://x", "authorization": { "authorization_servers": [] } })).is_err());
    }
}
