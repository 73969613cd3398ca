//! OAuth 2.0 client credentials: the token request, its answer, and when a cached token is
//! used, renewed ahead of expiry by one instance, or fetched anew.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::config::{ClientAuth, ClientCredentials};

/// A token as the shared state keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cached {
    pub token: String,
    /// Expiry, ms since the epoch.
    pub exp: u64,
}

/// What to do with what the state holds.
#[derive(Debug, PartialEq)]
pub enum Plan {
    /// Fresh: use it.
    Use,
    /// Still valid but due for renewal: one instance renews, the others go on using it.
    Renew,
    /// None, or expired: fetch one now.
    Fetch,
}

pub fn plan(now: u64, cached: Option<&Cached>, refresh_before_ms: u64) -> Plan {
    match cached {
        Some(c) if now.saturating_add(refresh_before_ms) < c.exp => Plan::Use,
        Some(c) if now < c.exp => Plan::Renew,
        _ => Plan::Fetch,
    }
}

/// The token request: headers and form body.
pub fn request(cc: &ClientCredentials, client_secret: &str) -> (Vec<(String, String)>, String) {
    let mut headers = vec![("content-type".to_owned(), "application/x-www-form-urlencoded".to_owned()), ("accept".to_owned(), "application/json".to_owned())];
    let mut form = vec![("grant_type", "client_credentials")];
    match cc.auth {
        ClientAuth::Basic => {
            // RFC 6749 §2.3.1: both parts form-encoded before Basic encoding.
            let pair = format!("{}:{}", encode(&cc.client_id), encode(client_secret));
            headers.push(("authorization".into(), format!("Basic {}", STANDARD.encode(pair))));
        }
        ClientAuth::Body => {
            form.push(("client_id", &cc.client_id));
            form.push(("client_secret", client_secret));
        }
    }
    for (k, v) in [("scope", &cc.scope), ("resource", &cc.resource), ("audience", &cc.audience)] {
        if let Some(v) = v {
            form.push((k, v));
        }
    }
    let body = form.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect::<Vec<_>>().join("&");
    (headers, body)
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// A token endpoint's answer. Without `expires_in` a token is kept for an hour. The error
/// names the OAuth error code at most, never the body (it could echo a credential).
pub fn parse_answer(status: u16, body: &[u8], now: u64) -> Result<Cached, String> {
    if !(200..300).contains(&status) {
        let code = serde_json::from_slice::<serde_json::Value>(body).ok().and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned));
        return Err(format!("the token endpoint answered {status}{}", code.map(|c| format!(" ({c})")).unwrap_or_default()));
    }
    let a: TokenAnswer = serde_json::from_slice(body).map_err(|_| "the token endpoint's answer has no access_token".to_owned())?;
    if a.access_token.is_empty() {
        return Err("the token endpoint returned an empty access_token".into());
    }
    if a.token_type.as_deref().is_some_and(|t| !t.eq_ignore_ascii_case("bearer")) {
        return Err("the token endpoint returned a token that is not a bearer token".into());
    }
    let life = a.expires_in.unwrap_or(3600).min(365 * 86_400);
    Ok(Cached { token: a.access_token, exp: now + life * 1000 })
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cc(v: serde_json::Value) -> ClientCredentials {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn tokens_are_used_then_renewed_ahead_then_fetched() {
        let c = Cached { token: "t".into(), exp: 100_000 };
        assert_eq!(plan(10_000, Some(&c), 60_000), Plan::Use);
        assert_eq!(plan(40_000, Some(&c), 60_000), Plan::Renew);
        assert_eq!(plan(100_000, Some(&c), 60_000), Plan::Fetch);
        assert_eq!(plan(0, None, 60_000), Plan::Fetch);
    }

    #[test]
    fn the_request_authenticates_as_configured() {
        let basic = cc(json!({ "token_url": "http://idp/token", "client_id": "gw:1", "client_secret": "s", "scope": "read write" }));
        let (h, body) = request(&basic, "p@ss word");
        assert_eq!(body, "grant_type=client_credentials&scope=read+write");
        let auth = &h.iter().find(|(k, _)| k == "authorization").unwrap().1;
        assert_eq!(STANDARD.decode(auth.strip_prefix("Basic ").unwrap()).unwrap(), b"gw%3A1:p%40ss+word");
        let body_auth =
            cc(json!({ "token_url": "http://idp/token", "client_id": "gw", "client_secret": "s", "auth": "body", "resource": "https://api.example/" }));
        let (h, body) = request(&body_auth, "x&y");
        assert!(h.iter().all(|(k, _)| k != "authorization"));
        assert_eq!(body, "grant_type=client_credentials&client_id=gw&client_secret=x%26y&resource=https%3A%2F%2Fapi.example%2F");
    }

    #[test]
    fn answers_are_checked_and_errors_hold_no_body() {
        assert_eq!(
            parse_answer(200, br#"{"access_token":"abc","token_type":"Bearer","expires_in":120}"#, 1000),
            Ok(Cached { token: "abc".into(), exp: 121_000 })
        );
        assert_eq!(parse_answer(200, br#"{"access_token":"abc"}"#, 0).unwrap().exp, 3_600_000);
        let e = parse_answer(401, br#"{"error":"invalid_client","error_description":"secret s3cr3t is wrong"}"#, 0).unwrap_err();
        assert_eq!(e, "the token endpoint answered 401 (invalid_client)");
        assert!(parse_answer(200, b"not json", 0).is_err());
        assert!(parse_answer(200, br#"{"access_token":"a","token_type":"mac"}"#, 0).is_err());
        assert!(parse_answer(200, br#"{"access_token":""}"#, 0).is_err());
    }
}
