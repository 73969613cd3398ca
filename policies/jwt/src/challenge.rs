//! Refusals as RFC 6750 and the MCP authorization spec want them: 401 with a `Bearer`
//! challenge naming the error and, with MCP authorization on, the `resource_metadata` URL that
//! tells a client where to get a token; 403 `insufficient_scope` with the scopes that would do.

use serde_json::json;
use tollgate_policy_sdk::Rejection;

use crate::claims::Failure;
use crate::config::Settings;

/// `resource` is the server's canonical URL, when the gateway gives it (no `resource` configured).
pub fn reject(f: &Failure, s: &Settings, resource: Option<&str>) -> Rejection {
    let metadata = s.resource_metadata.clone().or_else(|| resource.map(crate::config::metadata_url));
    match f {
        Failure::Invalid(why) => {
            let mut c = format!("Bearer error=\"invalid_token\", error_description=\"{}\"", quote(why));
            let scope = if s.required_scopes.is_empty() { &s.scopes_supported } else { &s.required_scopes };
            if !scope.is_empty() {
                c.push_str(&format!(", scope=\"{}\"", quote(&scope.join(" "))));
            }
            if let Some(url) = &metadata {
                c.push_str(&format!(", resource_metadata=\"{}\"", quote(url)));
            }
            Rejection::unauthorized(&format!("Unauthorized: {why}")).header("www-authenticate", &c).data(&json!({ "error": "invalid_token" }))
        }
        Failure::Scope { needed, message } => {
            let scope = needed.join(" ");
            let mut c = format!("Bearer error=\"insufficient_scope\", scope=\"{}\", error_description=\"{}\"", quote(&scope), quote(message));
            if let Some(url) = &metadata {
                c.push_str(&format!(", resource_metadata=\"{}\"", quote(url)));
            }
            Rejection::forbidden(&format!("Forbidden: insufficient scope: {message}"))
                .header("www-authenticate", &c)
                .data(&json!({ "error": "insufficient_scope", "scope": scope }))
        }
        Failure::Unavailable(why) => Rejection::unauthorized(&format!("Unauthorized: {why}")).status(503),
    }
}

/// A quoted-string value may hold neither `"` nor `\`, nor control characters.
fn quote(s: &str) -> String {
    s.chars().filter(|c| *c != '"' && *c != '\\' && !c.is_control()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn settings() -> Settings {
        let c = json!({ "jwks_url": "https://idp/jwks", "required_scopes": ["mcp"], "authorization": { "authorization_servers": ["https://as"], "resource": "https://gw/s/mcp" } });
        serde_json::from_value::<Config>(c).unwrap().check().unwrap()
    }

    fn header(r: &Rejection) -> &str {
        &r.headers.iter().find(|(k, _)| k == "www-authenticate").unwrap().1
    }

    #[test]
    fn a_bad_token_gets_401_with_the_metadata_url() {
        let r = reject(&Failure::Invalid("the token has \"expired\"".into()), &settings(), None);
        assert_eq!((r.http_status, r.error.code), (Some(401), -32001));
        assert_eq!(
            header(&r),
            "Bearer error=\"invalid_token\", error_description=\"the token has expired\", scope=\"mcp\", resource_metadata=\"https://gw/.well-known/oauth-protected-resource/s/mcp\""
        );
    }

    #[test]
    fn a_missing_scope_gets_403_insufficient_scope() {
        let r = reject(&Failure::Scope { needed: vec!["mcp".into(), "admin".into()], message: "tool 'drop' needs scope admin".into() }, &settings(), None);
        assert_eq!((r.http_status, r.error.code), (Some(403), -32003));
        assert!(header(&r).starts_with("Bearer error=\"insufficient_scope\", scope=\"mcp admin\""), "{}", header(&r));
        assert_eq!(r.error.message, "Forbidden: insufficient scope: tool 'drop' needs scope admin");
    }

    #[test]
    fn keys_that_cannot_be_had_are_a_503_not_the_callers_fault() {
        let r = reject(&Failure::Unavailable("keys".into()), &settings(), None);
        assert_eq!(r.http_status, Some(503));
        assert!(r.headers.is_empty());
    }
}
