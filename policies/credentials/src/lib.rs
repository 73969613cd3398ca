//! `credentials`: the credential the backend gets, in place of the client's (which the
//! gateway never forwards): a static secret, an OAuth 2.0 client-credentials token kept in
//! shared state and renewed before it expires, or a secret chosen by the caller's identity.
//! Secret values and tokens never appear in a log line or an error.

mod config;
mod token;

use tollgate_policy_sdk::http::{FetchError, Request};
use tollgate_policy_sdk::{Exchange, Hooks, Mutation, Policy, Rejection, Verdict, attr, code, http, log, now_ms, secret, state};

pub use config::{ClientAuth, ClientCredentials, Config, PerUser, Source};
pub use token::{Cached, Plan, encode, parse_answer, plan, request};

/// Where the client-credentials token lives in the binding's state, and the renewal lock.
const TOKEN_KEY: &str = "cc:token";
const RENEW_LOCK: &str = "cc:renewing";
/// One instance renews; if it dies, another may try after this long.
const RENEW_LOCK_MS: u64 = 10_000;
const FETCH_TIMEOUT_MS: u32 = 5_000;

pub struct Credentials {
    header: String,
    prefix: String,
    source: Source,
}

impl Policy for Credentials {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        let (header, prefix, source) = config.source(|name| secret(name).is_some())?;
        Ok(Credentials { header, prefix, source })
    }

    fn hooks(&self) -> Hooks {
        Hooks::REQUEST
    }

    fn on_request(&mut self, ex: &Exchange) -> Verdict {
        let value = match &self.source {
            Source::Static(name) => secret(name).ok_or_else(missing),
            Source::PerUser(pu) => per_user(pu, ex),
            Source::Client(cc) => client_token(cc),
        };
        match value {
            Ok(v) => Mutation::new().set_header(&self.header, &format!("{}{v}", self.prefix)).into(),
            Err(r) => r.into(),
        }
    }
}

fn missing() -> Rejection {
    Rejection::new(code::BACKEND_UNAVAILABLE, "Backend credentials are unavailable").status(502)
}

fn per_user(pu: &PerUser, ex: &Exchange) -> Result<String, Rejection> {
    let who = ex.attribute(&pu.attribute);
    let same_issuer = pu.issuer.as_ref().is_none_or(|iss| ex.attribute(attr::ISSUER).as_ref() == Some(iss));
    let listed = who.as_ref().filter(|_| same_issuer).and_then(|w| pu.secrets.get(w));
    let name = listed.or(pu.default.as_ref());
    match name {
        Some(n) => secret(n).ok_or_else(missing),
        None if who.is_none() => Err(Rejection::unauthorized("Unauthorized: the caller is not identified, so no backend credential can be chosen")),
        None => Err(Rejection::forbidden("Forbidden: no backend credential is configured for this caller")),
    }
}

fn client_token(cc: &ClientCredentials) -> Result<String, Rejection> {
    let now = now_ms();
    let cached: Option<Cached> = state::get(TOKEN_KEY).ok().flatten().and_then(|b| serde_json::from_slice(&b).ok());
    match plan(now, cached.as_ref(), cc.refresh_before.ms()) {
        Plan::Use => return Ok(cached.map(|c| c.token).unwrap_or_default()),
        Plan::Renew if !state::cas(RENEW_LOCK, None, b"1", Some(RENEW_LOCK_MS)).unwrap_or(false) => {
            return Ok(cached.map(|c| c.token).unwrap_or_default());
        }
        Plan::Renew | Plan::Fetch => {}
    }
    let fetched = fetch(cc, now);
    let _ = state::delete(RENEW_LOCK);
    match fetched {
        Ok(fresh) => {
            let ttl = fresh.exp.saturating_sub(now);
            if let Ok(bytes) = serde_json::to_vec(&fresh)
                && let Err(e) = state::set(TOKEN_KEY, &bytes, Some(ttl))
            {
                log::warn(&format!("could not cache the backend token: {e}"));
            }
            Ok(fresh.token)
        }
        // A renewal that failed leaves a token that is still valid: keep using it.
        Err(why) => match cached.filter(|c| now < c.exp) {
            Some(c) => {
                log::warn(&format!("renewing the backend token failed ({why}); the current one is still valid"));
                Ok(c.token)
            }
            None => {
                log::error(&format!("no backend token: {why}"));
                Err(missing())
            }
        },
    }
}

fn fetch(cc: &ClientCredentials, now: u64) -> Result<Cached, String> {
    let client_secret = secret(&cc.client_secret).ok_or("the client secret is no longer granted")?;
    let (headers, body) = request(cc, &client_secret);
    let req = Request { method: "POST".into(), url: cc.token_url.clone(), headers, body: Some(body.into_bytes()), timeout_ms: Some(FETCH_TIMEOUT_MS) };
    let resp = http::fetch(&req).map_err(|e| match e {
        FetchError::Denied(why) => format!("the token endpoint may not be reached: {why}"),
        FetchError::Timeout => "the token endpoint did not answer in time".into(),
        FetchError::Failed(why) => format!("the token endpoint could not be reached: {why}"),
    })?;
    parse_answer(resp.status, &resp.body, now)
}

// Natively (unit tests) there is no component to export, and no host to import from.
#[cfg(target_arch = "wasm32")]
tollgate_policy_sdk::export_policy!(Credentials);
