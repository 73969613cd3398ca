//! The answers a case gives to the policy's outbound HTTP requests, so a policy that fetches
//! (a JWKS, a token) is tested offline, and a missing answer fails as the network would.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::policy::outbound::{FetchError, Recorded, Response};

/// `{ url, method: GET, status: 200, headers: {}, body }`, or `{ url, fail: timeout | <why> }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchAnswer {
    pub url: String,
    #[serde(default = "get")]
    pub method: String,
    #[serde(default = "ok")]
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A string is sent as it is; any other JSON value, serialized.
    #[serde(default)]
    pub body: Option<Value>,
    /// The request fails instead: `timeout`, or a network error with this text.
    #[serde(default)]
    pub fail: Option<String>,
}

fn get() -> String {
    "GET".into()
}

fn ok() -> u16 {
    200
}

impl FetchAnswer {
    /// As the outbound capability matches it: the URL normalized as the policy's will be.
    pub fn recorded(&self) -> Result<Recorded, String> {
        let url = url::Url::parse(&self.url).map_err(|e| format!("fetch: '{}' is not a URL: {e}", self.url))?;
        let answer = match self.fail.as_deref() {
            Some("timeout") => Err(FetchError::Timeout),
            Some(why) => Err(FetchError::Failed(why.to_owned())),
            None => {
                let body = match &self.body {
                    None => Vec::new(),
                    Some(Value::String(s)) => s.clone().into_bytes(),
                    Some(v) => v.to_string().into_bytes(),
                };
                let headers = self.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                Ok(Response { status: self.status, headers, body })
            }
        };
        Ok(Recorded { method: self.method.to_ascii_uppercase(), url: url.into(), answer })
    }
}
