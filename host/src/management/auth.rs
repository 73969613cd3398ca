//! The admin token: read from the environment at start, compared in constant time.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Shared;

/// The admin token, kept only as its SHA-256: comparing digests of equal length takes the same
/// time whatever the presented token is, so timing tells nothing about the token or its length.
pub struct AdminToken {
    digest: [u8; 32],
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("management names the token variable {0}, which is not set")]
    Unset(String),
    #[error("management names the token variable {0}, which is empty")]
    Empty(String),
}

impl AdminToken {
    /// The token from the environment variable `name`.
    pub fn from_env(name: &str) -> Result<AdminToken, TokenError> {
        match std::env::var(name) {
            Err(_) => Err(TokenError::Unset(name.to_owned())),
            Ok(v) if v.trim().is_empty() => Err(TokenError::Empty(name.to_owned())),
            Ok(v) => Ok(AdminToken::new(&v)),
        }
    }

    pub fn new(token: &str) -> AdminToken {
        AdminToken { digest: Sha256::digest(token.as_bytes()).into() }
    }

    pub fn matches(&self, presented: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        d.ct_eq(&self.digest).into()
    }
}

/// Which token signed a request in: what the console shows, so a read-only operator knows
/// that changes will be refused before trying one.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Whoami {
    /// `admin` (reads and changes) or `read-only`.
    role: &'static str,
}

pub async fn whoami(State(m): State<Shared>, headers: axum::http::HeaderMap) -> axum::Json<Whoami> {
    // The route is behind [`require_admin`]: the token is one of the two.
    let admin = bearer(&headers).is_some_and(|t| m.admin.matches(t));
    axum::Json(Whoami { role: if admin { "admin" } else { "read-only" } })
}

fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
}

/// Lets the request through only with `Authorization: Bearer <admin token>`, or with the
/// read-only token for a request that changes nothing.
pub async fn require_admin(State(m): State<Shared>, req: Request, next: Next) -> Response {
    let reads = matches!(*req.method(), Method::GET | Method::HEAD);
    match bearer(req.headers()) {
        Some(t) if m.admin.matches(t) => next.run(req).await,
        Some(t) if m.reader.as_ref().is_some_and(|r| r.matches(t)) => {
            if reads {
                next.run(req).await
            } else {
                super::api_error::problem("read-only", "the read-only token can read, not change: use the admin token", None)
            }
        }
        Some(_) => unauthorized("the admin token is not valid"),
        None => unauthorized("the management API needs `Authorization: Bearer <admin token>`"),
    }
}

fn unauthorized(message: &str) -> Response {
    let mut r = super::api_error::problem("unauthorized", message, None);
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"tollgate-management\""));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_token_matches() {
        let t = AdminToken::new("s3cret");
        assert!(t.matches("s3cret"));
        assert!(!t.matches("s3cre"));
        assert!(!t.matches("s3cret "));
        assert!(!t.matches(""));
    }
}
