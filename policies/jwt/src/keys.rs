//! Signing keys fetched over HTTP, kept in the binding's shared state so one fetch serves every
//! instance: the JWKS (and, with discovery, the OpenID configuration that names it) is used
//! for `jwks_ttl`, renewed by one instance while the others use the stale copy, kept when the
//! endpoint is down, and refetched early when a token names an unknown `kid` — at most once
//! per `jwks_refresh_interval`, so tokens with made-up key ids cannot make us hammer the IdP.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tollgate_policy_sdk::http::{self, FetchError};
use tollgate_policy_sdk::{log, state};

use crate::claims::Failure;
use crate::config::{KeySource, Settings};
use crate::jose::Jwk;
use crate::verify::parse_jwks;

const JWKS: &str = "jwks";
const DISCOVERY: &str = "oidc";
const RENEWING: &str = "renewing:";
const UNKNOWN_KID_REFETCH: &str = "kid-refetch";
/// How many times the binding's keys were fetched: tokens remembered under an earlier fetch
/// are checked again.
const GENERATION: &str = "keys-fetched";
/// How long one instance may hold the renewal of a stale document.
const RENEW_LOCK_MS: u64 = 10_000;
const FETCH_TIMEOUT_MS: u32 = 5_000;

/// A fetched document and when it was fetched.
#[derive(Serialize, Deserialize)]
struct Stored {
    at: u64,
    body: Value,
}

/// The keys to verify with, and the issuer the discovery document named (if any).
pub struct Keys {
    pub keys: Vec<Jwk>,
    pub issuer: Option<String>,
}

/// The keys as they are now: from state, fetched when missing or stale.
pub fn current(s: &Settings, now: u64) -> Result<Keys, Failure> {
    match &s.keys {
        KeySource::Inline(k) => Ok(Keys { keys: k.clone(), issuer: None }),
        KeySource::Jwks(url) => Ok(Keys { keys: jwks(url, s.jwks_ttl_ms, now, false)?, issuer: None }),
        KeySource::Discovery(url) => {
            let (jwks_uri, issuer) = discovered(url, s.jwks_ttl_ms, now)?;
            Ok(Keys { keys: jwks(&jwks_uri, s.jwks_ttl_ms, now, false)?, issuer: Some(issuer) })
        }
    }
}

/// Which fetch of the keys is in force (0 for keys written in the config): a token remembered
/// under another one is verified again, so a key the issuer removed stops being honoured as
/// soon as the keys are renewed.
pub fn generation(s: &Settings) -> u64 {
    match s.keys {
        KeySource::Inline(_) => 0,
        KeySource::Jwks(_) | KeySource::Discovery(_) => {
            state::get(GENERATION).ok().flatten().and_then(|b| String::from_utf8(b).ok()).and_then(|n| n.parse().ok()).unwrap_or(0)
        }
    }
}

/// After an unknown `kid`: the keys refetched, if this is the one refetch the interval allows.
pub fn refetched(s: &Settings, now: u64) -> Option<Vec<Jwk>> {
    let url = match &s.keys {
        KeySource::Inline(_) => return None,
        KeySource::Jwks(url) => url.clone(),
        KeySource::Discovery(url) => discovered(url, s.jwks_ttl_ms, now).ok()?.0,
    };
    if !state::cas(UNKNOWN_KID_REFETCH, None, b"1", Some(s.refresh_ms)).unwrap_or(false) {
        return None;
    }
    jwks(&url, s.jwks_ttl_ms, now, true).ok()
}

fn jwks(url: &str, ttl: u64, now: u64, force: bool) -> Result<Vec<Jwk>, Failure> {
    let doc = cached(JWKS, url, ttl, now, force)?;
    parse_jwks(doc.to_string().as_bytes()).map_err(|e| unavailable(&format!("{url}: {e}")))
}

/// The `jwks_uri` and `issuer` of an OpenID configuration, which must name the issuer it was
/// fetched for (OpenID Connect Discovery §4.3).
fn discovered(url: &str, ttl: u64, now: u64) -> Result<(String, String), Failure> {
    let doc = cached(DISCOVERY, url, ttl, now, false)?;
    let issuer = doc.get("issuer").and_then(Value::as_str).unwrap_or_default();
    let expected = url.split("/.well-known/").next().unwrap_or_default();
    if issuer.trim_end_matches('/') != expected.trim_end_matches('/') {
        return Err(unavailable(&format!("{url} names issuer '{issuer}', not {expected}")));
    }
    let jwks_uri = doc.get("jwks_uri").and_then(Value::as_str).ok_or_else(|| unavailable(&format!("{url} has no jwks_uri")))?;
    Ok((jwks_uri.to_owned(), issuer.to_owned()))
}

/// A JSON document from state, or fetched: when absent, when `force`d, or when stale and this
/// instance wins the renewal. A failed fetch falls back on the stored copy.
fn cached(key: &str, url: &str, ttl: u64, now: u64, force: bool) -> Result<Value, Failure> {
    let key = format!("{key}:{url}");
    let stored: Option<Stored> = state::get(&key).ok().flatten().and_then(|b| serde_json::from_slice(&b).ok());
    let fetch_now = match &stored {
        None => true,
        Some(_) if force => true,
        Some(s) if now.saturating_sub(s.at) < ttl => false,
        Some(_) => state::cas(&format!("{RENEWING}{key}"), None, b"1", Some(RENEW_LOCK_MS)).unwrap_or(false),
    };
    if !fetch_now {
        return Ok(stored.map(|s| s.body).unwrap_or_default());
    }
    match fetch_json(url) {
        Ok(body) => {
            let value = serde_json::to_vec(&Stored { at: now, body: body.clone() }).unwrap_or_default();
            if let Err(e) = state::set(&key, &value, None) {
                log::warn(&format!("could not keep {url} in state: {e}"));
            }
            // Every fetched document counts: a new discovery document may name other keys.
            let _ = state::incr(GENERATION, 1, None);
            Ok(body)
        }
        Err(why) => match stored {
            Some(s) => {
                log::warn(&format!("{why}; using the copy fetched before"));
                Ok(s.body)
            }
            None => Err(unavailable(&why)),
        },
    }
}

fn fetch_json(url: &str) -> Result<Value, String> {
    let req = http::Request {
        method: "GET".into(),
        url: url.into(),
        headers: vec![("accept".into(), "application/json".into())],
        body: None,
        timeout_ms: Some(FETCH_TIMEOUT_MS),
    };
    let resp = http::fetch(&req).map_err(|e| match e {
        FetchError::Denied(why) => format!("{url} may not be fetched: {why}"),
        FetchError::Timeout => format!("{url} did not answer in time"),
        FetchError::Failed(why) => format!("{url} could not be fetched: {why}"),
    })?;
    if resp.status != 200 {
        return Err(format!("{url} answered {}", resp.status));
    }
    serde_json::from_slice(&resp.body).map_err(|_| format!("{url} did not answer with JSON"))
}

fn unavailable(why: &str) -> Failure {
    log::error(&format!("signing keys unavailable: {why}"));
    Failure::Unavailable("the token cannot be checked now: signing keys are unavailable".into())
}
