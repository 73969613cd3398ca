//! What a token must say once its signature holds: issuer, audience, time, required claims,
//! and scopes (for every request, and per tool). Plain functions of the claims and the time.

use serde_json::{Map, Value};

use crate::config::Settings;

/// Why a request is refused, in RFC 6750 terms.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// 401 `invalid_token` (or no token at all).
    Invalid(String),
    /// 403 `insufficient_scope`, with the scopes that would do.
    Scope { needed: Vec<String>, message: String },
    /// 503: the keys could not be had, so no token can be checked now.
    Unavailable(String),
}

fn invalid(s: impl Into<String>) -> Failure {
    Failure::Invalid(s.into())
}

/// Tokens longer than this are refused before any work.
pub const MAX_TOKEN: usize = 16 * 1024;

/// The token of an `Authorization: Bearer …` header.
pub fn bearer(header: Option<&str>) -> Result<&str, Failure> {
    let h = header.ok_or_else(|| invalid("missing bearer token"))?.trim();
    let (scheme, token) = h.split_once(' ').ok_or_else(|| invalid("the Authorization header is not a bearer token"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(invalid("the Authorization header is not a bearer token"));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(invalid("missing bearer token"));
    }
    if token.len() > MAX_TOKEN {
        return Err(invalid("the token is too large"));
    }
    Ok(token)
}

/// Checks the claims at `now` (seconds since the epoch). `issuers` are those accepted;
/// `resource`, the server's canonical URL, is an accepted audience besides the configured ones.
pub fn check(s: &Settings, issuers: &[String], claims: &Map<String, Value>, now: u64, resource: Option<&str>) -> Result<(), Failure> {
    let exp = claims.get("exp").ok_or_else(|| invalid("the token has no exp claim"))?;
    let exp = numeric(exp).ok_or_else(|| invalid("the token's exp claim is not a number"))?;
    if exp.saturating_add(s.skew_s) <= now {
        return Err(invalid("the token has expired"));
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = numeric(nbf).ok_or_else(|| invalid("the token's nbf claim is not a number"))?;
        if nbf > now.saturating_add(s.skew_s) {
            return Err(invalid("the token is not valid yet"));
        }
    }
    if !issuers.is_empty() {
        let iss = claims.get("iss").and_then(Value::as_str).ok_or_else(|| invalid("the token has no iss claim"))?;
        if !issuers.iter().any(|i| i == iss) {
            return Err(invalid("the token was issued by an issuer that is not accepted"));
        }
    }
    let aud: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => return Err(invalid("the token has no aud claim")),
    };
    if !aud.iter().any(|a| s.audiences.iter().map(String::as_str).chain(resource).any(|want| want == *a)) {
        return Err(invalid("the token was not issued for this server (audience)"));
    }
    for (name, want) in &s.required_claims {
        let got = claims.get(name).ok_or_else(|| invalid(format!("the token has no {name} claim")))?;
        if !satisfies(got, want) {
            return Err(invalid(format!("the token's {name} claim does not have a required value")));
        }
    }
    Ok(())
}

/// `want` is one value, or a list of acceptable ones; a list claim passes if it holds one.
fn satisfies(got: &Value, want: &Value) -> bool {
    let ok = |w: &Value| got == w || got.as_array().is_some_and(|items| items.contains(w));
    match want {
        Value::Array(options) => options.iter().any(ok),
        w => ok(w),
    }
}

fn numeric(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_f64().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f as u64))
}

/// The token's scopes: `scope` (space-separated, RFC 8693 / RFC 9068) or `scp` (a list or a string).
pub fn scopes(claims: &Map<String, Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in ["scope", "scp"] {
        match claims.get(name) {
            Some(Value::String(s)) => out.extend(s.split_whitespace().map(str::to_owned)),
            Some(Value::Array(list)) => out.extend(list.iter().filter_map(Value::as_str).map(str::to_owned)),
            _ => {}
        }
    }
    out.dedup();
    out
}

/// The scopes this request needs that the token lacks; `tool` for a `tools/call`.
pub fn check_scopes(s: &Settings, have: &[String], tool: Option<&str>) -> Result<(), Failure> {
    let mut needed: Vec<String> = s.required_scopes.clone();
    if let Some(tool) = tool {
        for t in s.tool_scopes.iter().filter(|t| t.tools.matches(tool)) {
            needed.extend(t.scopes.iter().cloned());
        }
    }
    let missing: Vec<&String> = needed.iter().filter(|n| !have.contains(n)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let what = tool.map(|t| format!("tool '{t}'")).unwrap_or_else(|| "this server".into());
    let list = missing.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(" ");
    Err(Failure::Scope { needed, message: format!("{what} needs scope {list}") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::json;

    fn settings(extra: Value) -> Settings {
        let mut c = json!({ "jwks_url": "https://idp/jwks", "audiences": ["https://gw/s/mcp"], "issuers": ["https://idp"] });
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        serde_json::from_value::<Config>(c).unwrap().check().unwrap()
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    const NOW: u64 = 1_700_000_000;

    fn good() -> Value {
        json!({ "iss": "https://idp", "aud": "https://gw/s/mcp", "exp": NOW + 600, "sub": "alice" })
    }

    fn with(k: &str, v: Value) -> Map<String, Value> {
        let mut c = claims(good());
        if v.is_null() {
            c.remove(k);
        } else {
            c.insert(k.into(), v);
        }
        c
    }

    #[test]
    fn time_issuer_and_audience_are_enforced_with_skew() {
        let s = settings(json!({ "clock_skew": "30s" }));
        let iss = &s.issuers;
        assert_eq!(check(&s, iss, &claims(good()), NOW, None), Ok(()));
        assert_eq!(check(&s, iss, &with("exp", json!(NOW - 10)), NOW, None), Ok(()), "within the skew");
        assert_eq!(check(&s, iss, &with("exp", json!(NOW - 31)), NOW, None), Err(invalid("the token has expired")));
        assert!(check(&s, iss, &with("exp", Value::Null), NOW, None).is_err(), "exp is required");
        assert!(check(&s, iss, &with("exp", json!("soon")), NOW, None).is_err());
        assert_eq!(check(&s, iss, &with("nbf", json!(NOW + 20)), NOW, None), Ok(()));
        assert_eq!(check(&s, iss, &with("nbf", json!(NOW + 31)), NOW, None), Err(invalid("the token is not valid yet")));
        assert!(check(&s, iss, &with("iss", json!("https://evil")), NOW, None).is_err());
        assert!(check(&s, iss, &with("iss", Value::Null), NOW, None).is_err());
        assert!(
            check(&s, iss, &with("aud", json!("https://gw/other/mcp")), NOW, None).unwrap_err()
                == invalid("the token was not issued for this server (audience)")
        );
        assert_eq!(check(&s, iss, &with("aud", json!(["x", "https://gw/s/mcp"])), NOW, None), Ok(()));
        assert!(check(&s, iss, &with("aud", Value::Null), NOW, None).is_err());
    }

    #[test]
    fn required_claims_match_values_lists_and_list_claims() {
        let s = settings(json!({ "required_claims": { "tenant": ["acme", "globex"], "email_verified": true, "groups": "staff" } }));
        let mut c = claims(good());
        c.extend(claims(json!({ "tenant": "acme", "email_verified": true, "groups": ["staff", "dev"] })));
        assert_eq!(check(&s, &s.issuers, &c, NOW, None), Ok(()));
        c.insert("tenant".into(), json!("initech"));
        assert!(check(&s, &s.issuers, &c, NOW, None).is_err());
        c.insert("tenant".into(), json!("acme"));
        c.insert("groups".into(), json!(["dev"]));
        assert!(check(&s, &s.issuers, &c, NOW, None).is_err());
        c.remove("groups");
        assert_eq!(check(&s, &s.issuers, &c, NOW, None), Err(invalid("the token has no groups claim")));
    }

    #[test]
    fn scopes_are_read_from_scope_or_scp_and_required_per_tool() {
        assert_eq!(scopes(&claims(json!({ "scope": "a b" }))), ["a", "b"]);
        assert_eq!(scopes(&claims(json!({ "scp": ["a", "c"] }))), ["a", "c"]);
        let s = settings(json!({ "required_scopes": ["mcp"], "tool_scopes": [{ "tools": ["admin_*"], "scopes": ["admin"] }] }));
        let have = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(check_scopes(&s, &have(&["mcp"]), Some("search")), Ok(()));
        let Err(Failure::Scope { needed, message }) = check_scopes(&s, &have(&["mcp"]), Some("admin_drop")) else { panic!() };
        assert_eq!((needed, message.as_str()), (have(&["mcp", "admin"]), "tool 'admin_drop' needs scope admin"));
        assert!(check_scopes(&s, &have(&[]), None).is_err());
        assert_eq!(check_scopes(&s, &have(&["mcp", "admin"]), Some("admin_drop")), Ok(()));
    }

    #[test]
    fn bearer_headers_are_parsed_strictly() {
        assert_eq!(bearer(Some("Bearer abc")), Ok("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Ok("abc"));
        assert!(bearer(None).is_err());
        assert!(bearer(Some("Basic dXNlcg==")).is_err());
        assert!(bearer(Some("Bearer")).is_err());
        assert!(bearer(Some("Bearer ")).is_err());
        assert_eq!(bearer(Some(&format!("Bearer {}", "a".repeat(MAX_TOKEN + 1)))), Err(invalid("the token is too large")));
    }
}
