//! `tollgate:policy/outbound`: HTTP to the hosts a binding allows, and nowhere else.

use std::time::Duration;

use crate::policy::bindings::outbound::{self, Request};
pub use crate::policy::bindings::outbound::{FetchError, Response};
use crate::policy::engine::Host;

/// Bounds on one fetch, whatever the policy asks.
const MAX_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BODY: usize = 4 << 20;

/// Answers that stand in for the network, for `tollgate policy test`: when set, every fetch
/// is answered from them (or fails, naming the request) and none leaves the process.
static RECORDED: std::sync::RwLock<Option<std::sync::Arc<Vec<Recorded>>>> = std::sync::RwLock::new(None);

/// One recorded answer: the request it answers (method and exact URL) and what comes back.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub url: String,
    pub answer: Result<Response, FetchError>,
}

/// Switches this process to recorded answers (`Some`), offline; `None` goes back to the network.
pub fn answer_from(recorded: Option<Vec<Recorded>>) {
    *RECORDED.write().unwrap_or_else(std::sync::PoisonError::into_inner) = recorded.map(std::sync::Arc::new);
}

fn recorded(method: &str, url: &str) -> Option<Result<Response, FetchError>> {
    let all = RECORDED.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()?;
    let found = all.iter().find(|r| r.method.eq_ignore_ascii_case(method) && r.url == url);
    Some(found.map_or_else(|| Err(FetchError::Failed(format!("offline: no recorded answer for {method} {url}"))), |r| r.answer.clone()))
}

/// Whether `host` matches an entry of `allow`: exact, or `*.example.com` for any subdomain.
pub fn allowed(allow: &[String], host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    allow.iter().any(|a| match a.strip_prefix("*.") {
        Some(suffix) => host.strip_suffix(&suffix.to_ascii_lowercase()).is_some_and(|rest| rest.ends_with('.')),
        None => a.eq_ignore_ascii_case(&host),
    })
}

impl outbound::Host for Host {
    async fn fetch(&mut self, req: Request) -> wasmtime::Result<Result<Response, FetchError>> {
        self.reach.changing("outbound HTTP");
        let url = match reqwest::Url::parse(&req.url) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => u,
            _ => return Ok(Err(FetchError::Denied(format!("'{}' is not an http(s) URL", req.url)))),
        };
        let host = url.host_str().unwrap_or_default();
        if !allowed(&self.grants.allow_hosts, host) {
            return Ok(Err(FetchError::Denied(format!("host '{host}' is not in this binding's allow_hosts"))));
        }
        let Ok(method) = reqwest::Method::from_bytes(req.method.as_bytes()) else {
            return Ok(Err(FetchError::Failed(format!("invalid method '{}'", req.method))));
        };
        if let Some(answer) = recorded(method.as_str(), url.as_str()) {
            return Ok(answer);
        }
        let timeout = req.timeout_ms.map(|t| Duration::from_millis(t.into())).unwrap_or(MAX_TIMEOUT).min(MAX_TIMEOUT);
        let mut r = self.grants.http.request(method, url).timeout(timeout);
        for (k, v) in &req.headers {
            r = r.header(k.as_str(), v.as_str());
        }
        if let Some(body) = req.body {
            r = r.body(body);
        }
        let resp = match r.send().await {
            Ok(resp) => resp,
            Err(e) if e.is_timeout() => return Ok(Err(FetchError::Timeout)),
            Err(e) => return Ok(Err(FetchError::Failed(e.to_string()))),
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().iter().filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned()))).collect();
        if resp.content_length().is_some_and(|n| n as usize > MAX_BODY) {
            return Ok(Err(FetchError::Failed(format!("the response body exceeds {MAX_BODY} bytes"))));
        }
        let body = match resp.bytes().await {
            Ok(b) if b.len() <= MAX_BODY => b.to_vec(),
            Ok(_) => return Ok(Err(FetchError::Failed(format!("the response body exceeds {MAX_BODY} bytes")))),
            Err(e) if e.is_timeout() => return Ok(Err(FetchError::Timeout)),
            Err(e) => return Ok(Err(FetchError::Failed(e.to_string()))),
        };
        Ok(Ok(Response { status, headers, body }))
    }
}

#[cfg(test)]
mod tests {
    use super::allowed;

    #[test]
    fn only_listed_hosts_and_their_subdomains_pass() {
        let allow = vec!["idp.example.com".to_owned(), "*.keys.example".to_owned()];
        assert!(allowed(&allow, "IDP.example.com"));
        assert!(allowed(&allow, "a.keys.example"));
        assert!(!allowed(&allow, "keys.example"));
        assert!(!allowed(&allow, "evilkeys.example"));
        assert!(!allowed(&allow, "idp.example.com.evil"));
        assert!(!allowed(&[], "idp.example.com"));
    }
}
