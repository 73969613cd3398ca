//! `jwt`: the caller must bring a bearer token this server accepts. Keys come from OIDC
//! discovery, a JWKS URL or the config; the token's algorithm must be an accepted asymmetric
//! one that fits the key; issuer, audience, time (with skew), required claims and scopes are
//! checked. A refused caller gets 401 (or 403 `insufficient_scope`) with a `Bearer` challenge.
//! An admitted one carries `auth.sub`, `auth.iss`, `auth.scopes` and chosen claims as
//! attributes to the policies after this one; the token itself never goes further.

mod challenge;
mod claims;
mod config;
mod jose;
mod keys;
mod verify;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Digest;
use tollgate_policy_sdk::{Exchange, Hooks, Mutation, Policy, Verdict, attr, now_ms, state};

pub use challenge::reject;
pub use claims::{Failure, bearer, check, check_scopes, scopes};
pub use config::{Config, KeySource, Settings, metadata_url};
pub use jose::{Algorithm, Jwk};
pub use verify::{Refusal, parse_jwks, public_jwk, verify};

/// Verified tokens are remembered at most this long, whatever their `exp`.
const MAX_REMEMBER_MS: u64 = 3_600_000;

pub struct Jwt(Settings);

/// A verified token as remembered in state.
#[derive(Serialize, Deserialize)]
struct Remembered {
    claims: Map<String, Value>,
    issuer: Option<String>,
    /// The fetch of the keys it was verified with ([`keys::generation`]); 0 for a token
    /// remembered before fetches were counted, which is then verified again.
    #[serde(default)]
    keys: u64,
}

impl Policy for Jwt {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        config.check().map(Jwt)
    }

    fn hooks(&self) -> Hooks {
        Hooks::REQUEST
    }

    fn on_request(&mut self, ex: &Exchange) -> Verdict {
        let resource = self.0.resource_from_gateway.then(|| ex.resource_url());
        match self.admit(ex, resource.as_deref()) {
            Ok(m) => m.into(),
            Err(f) => reject(&f, &self.0, resource.as_deref()).into(),
        }
    }
}

impl Jwt {
    fn admit(&self, ex: &Exchange, resource: Option<&str>) -> Result<Mutation, Failure> {
        let s = &self.0;
        let header = ex.header("authorization");
        let token = bearer(header.as_deref())?;
        let now = now_ms();
        let memo = s.cache_verified.then(|| memo_key(s, token));
        let remembered: Option<Remembered> = memo.as_ref().and_then(|k| state::get(k).ok().flatten()).and_then(|b| serde_json::from_slice(&b).ok());
        let remembered = remembered.filter(|r| r.keys == keys::generation(s));
        let (claims, issuer, fresh) = match remembered {
            Some(r) => (r.claims, r.issuer, false),
            None => {
                let (claims, issuer) = verified(s, token, now)?;
                (claims, issuer, true)
            }
        };
        let issuers = if s.issuers.is_empty() { issuer.iter().cloned().collect() } else { s.issuers.clone() };
        check(s, &issuers, &claims, now / 1000, resource)?;
        if let (true, Some(key)) = (fresh, &memo) {
            let exp_ms = claims.get("exp").and_then(Value::as_u64).unwrap_or(0).saturating_mul(1000);
            let remembered = Remembered { claims: claims.clone(), issuer, keys: keys::generation(s) };
            if let Ok(bytes) = serde_json::to_vec(&remembered) {
                let _ = state::set(key, &bytes, Some(remember_for(s, exp_ms, now)));
            }
        }
        let have = scopes(&claims);
        let tool = ex.target().filter(|_| ex.method() == "tools/call");
        check_scopes(s, &have, tool.as_deref())?;
        Ok(attributes(s, &claims, &have))
    }
}

/// Keys, then signature, refetching the keys once when the token names one we do not know.
fn verified(s: &Settings, token: &str, now: u64) -> Result<(Map<String, Value>, Option<String>), Failure> {
    // An unacceptable algorithm is refused before any key is fetched.
    verify::header(token, &s.algorithms).map_err(refusal)?;
    let k = keys::current(s, now)?;
    match verify(token, &k.keys, &s.algorithms) {
        Ok(c) => Ok((c, k.issuer)),
        Err(Refusal::UnknownKey) => match keys::refetched(s, now) {
            Some(fresh) => verify(token, &fresh, &s.algorithms).map(|c| (c, k.issuer)).map_err(refusal),
            None => Err(Failure::Invalid("the token's signing key is unknown".into())),
        },
        Err(r) => Err(refusal(r)),
    }
}

fn refusal(r: Refusal) -> Failure {
    match r {
        Refusal::UnknownKey => Failure::Invalid("the token's signing key is unknown".into()),
        Refusal::Invalid(why) => Failure::Invalid(why),
    }
}

/// How long a token verified now is remembered: until it expires, and never longer than the
/// signing keys are kept (`jwks_ttl`), so a key the issuer removed stops being honoured for
/// tokens remembered under it when the keys are renewed, as it does for every other token.
fn remember_for(s: &Settings, exp_ms: u64, now: u64) -> u64 {
    let keys = match s.keys {
        KeySource::Inline(_) => MAX_REMEMBER_MS,
        KeySource::Jwks(_) | KeySource::Discovery(_) => s.jwks_ttl_ms,
    };
    exp_ms.saturating_sub(now).min(keys).clamp(1, MAX_REMEMBER_MS)
}

/// Where a verified token is remembered: a hash of the token, of where its keys came from and
/// of the algorithms accepted, so a change of key source or a narrower `algorithms` forgets
/// tokens checked under the old settings (the claims are checked again on every call).
fn memo_key(s: &Settings, token: &str) -> String {
    let mut h = s.memo.clone();
    h.update(token.as_bytes());
    format!("verified:{}", policy_common::key::hex(&h.finalize()))
}

/// `auth.sub`, `auth.iss`, `auth.scopes`, and the configured claims.
pub fn attributes(s: &Settings, claims: &Map<String, Value>, scopes: &[String]) -> Mutation {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut m = Mutation::new();
    for (attr, claim) in [(attr::SUBJECT, "sub"), (attr::ISSUER, "iss")] {
        if let Some(v) = claims.get(claim) {
            m = m.attribute(attr, &text(v));
        }
    }
    m = m.attribute("auth.scopes", &scopes.join(" "));
    for (attr, claim) in &s.attributes {
        if let Some(v) = claims.get(claim) {
            m = m.attribute(attr, &text(v));
        }
    }
    m
}

// Natively (unit tests) there is no component to export, and no host to import from.
#[cfg(target_arch = "wasm32")]
tollgate_policy_sdk::export_policy!(Jwt);

#[cfg(test)]
mod tests;
