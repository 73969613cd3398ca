//! `quota`: calls (and optionally result bytes) per long period — hour, day, week, calendar
//! month, or any duration — per key. Counted with atomic increments in the gateway's shared
//! state, so concurrent calls never overrun it. A caller over quota gets 429 with the time
//! until renewal; every counted call, admitted or not, gets `x-quota-*` headers with the
//! limit, what remains and when it renews.

mod period;

use policy_common::client_ip::MovedToGateway;
use policy_common::{Facts, KeyPart, Keyer};
use serde::Deserialize;
use serde_json::json;
use tollgate_policy_sdk::{Exchange, Hooks, Mutation, Policy, Rejection, Verdict, code, log, now_ms, state};

pub use period::Period;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Whose quota a call counts on. Default `[subject]`.
    #[serde(default = "default_key")]
    pub key: Vec<KeyPart>,
    /// Calls per period.
    #[serde(default)]
    pub calls: Option<u64>,
    /// Bytes of results per period (JSON text of the results returned).
    #[serde(default)]
    pub bytes: Option<u64>,
    /// `hour`, `day`, `week`, `month` (calendar, UTC) or a duration such as `6h`.
    pub period: Period,
    /// Methods that count. Default: `tools/call`, `resources/read`, `prompts/get`.
    #[serde(default = "default_methods")]
    pub methods: Vec<String>,
    /// Refused: set once for the gateway, as `client_address.trusted_proxies`.
    #[serde(default)]
    pub trusted_proxies: Option<MovedToGateway>,
}

fn default_key() -> Vec<KeyPart> {
    vec![KeyPart::Subject]
}

fn default_methods() -> Vec<String> {
    ["tools/call", "resources/read", "prompts/get"].map(String::from).to_vec()
}

/// Counters outlive their period by this much.
const TTL_SLACK_MS: u64 = 60_000;

#[derive(Debug)]
pub struct Quota {
    calls: Option<u64>,
    bytes: Option<u64>,
    period: Period,
    methods: Vec<String>,
    keyer: Keyer,
}

impl Quota {
    fn counts(&self, ex: &impl Facts) -> bool {
        self.methods.contains(&ex.method())
    }

    fn keys(&self, ex: &impl Facts, now: u64) -> (String, String, u64) {
        let (label, end) = self.period.at(now);
        let k = self.keyer.key(ex);
        (format!("calls:{label}:{k}"), format!("bytes:{label}:{k}"), end)
    }
}

/// Seconds until the period renews, at least 1.
fn renews_in(now: u64, end: u64) -> u64 {
    end.saturating_sub(now).div_ceil(1000).max(1)
}

/// The `x-quota-*` headers: the limit, what remains of it, and seconds until renewal.
pub fn figures(limit: u64, remaining: u64, now: u64, end: u64) -> [(String, String); 3] {
    [
        ("x-quota-limit".into(), limit.to_string()),
        ("x-quota-remaining".into(), remaining.to_string()),
        ("x-quota-reset".into(), renews_in(now, end).to_string()),
    ]
}

/// 429 until the period renews, with what the limit is.
pub fn exceeded(what: &str, limit: u64, now: u64, end: u64) -> Rejection {
    let secs = renews_in(now, end);
    let mut r = Rejection::new(code::QUOTA_EXCEEDED, &format!("Quota exceeded: {limit} {what} per period; renews in {secs} s"))
        .status(429)
        .header("retry-after", &secs.to_string())
        .data(&json!({ "retryAfter": secs, "limit": limit, "unit": what }));
    for (k, v) in figures(limit, 0, now, end) {
        r = r.header(&k, &v);
    }
    r
}

impl Policy for Quota {
    type Config = Config;

    fn new(c: Config) -> Result<Self, String> {
        if c.calls.is_none() && c.bytes.is_none() {
            return Err("set calls, bytes, or both".into());
        }
        if c.methods.is_empty() {
            return Err("methods is empty, so nothing would count".into());
        }
        Ok(Quota { calls: c.calls, bytes: c.bytes, period: c.period, methods: c.methods, keyer: Keyer::new(c.key)? })
    }

    fn hooks(&self) -> Hooks {
        if self.bytes.is_some() { Hooks::REQUEST | Hooks::RESPONSE } else { Hooks::REQUEST }
    }

    fn on_request(&mut self, ex: &Exchange) -> Verdict {
        if ex.id().is_none() || !self.counts(ex) {
            return Verdict::next();
        }
        let now = now_ms();
        let (calls_key, bytes_key, end) = self.keys(ex, now);
        let ttl = end.saturating_sub(now) + TTL_SLACK_MS;
        let mut m = Mutation::new();
        if let Some(limit) = self.bytes {
            let used = state::get(&bytes_key).ok().flatten().and_then(|b| String::from_utf8(b).ok()).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
            if used >= limit {
                return exceeded("bytes", limit, now, end).into();
            }
        }
        if let Some(limit) = self.calls {
            let n = match state::incr(&calls_key, 1, Some(ttl)) {
                Ok(n) => u64::try_from(n).unwrap_or(0),
                Err(e) => {
                    log::error(&format!("quota state unavailable: {e}"));
                    return Rejection::new(code::POLICY_FAILED, "Quota unavailable; the request was refused").status(503).into();
                }
            };
            if n > limit {
                return exceeded("calls", limit, now, end).into();
            }
            m = m.attribute("quota.remaining", &(limit - n).to_string());
            for (k, v) in figures(limit, limit - n, now, end) {
                m = m.client_header(&k, &v);
            }
        } else if let Some(limit) = self.bytes {
            // A bytes-only quota: what remains before this call's result is counted.
            let used = state::get(&bytes_key).ok().flatten().and_then(|b| String::from_utf8(b).ok()).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
            for (k, v) in figures(limit, limit.saturating_sub(used), now, end) {
                m = m.client_header(&k, &v);
            }
        }
        m.into()
    }

    /// Counts the bytes of the result just returned.
    fn on_response(&mut self, ex: &Exchange) -> Verdict {
        if ex.id().is_none() || !self.counts(ex) {
            return Verdict::next();
        }
        if let Some(Ok(result)) = ex.outcome() {
            let now = now_ms();
            let (_, bytes_key, end) = self.keys(ex, now);
            let _ = state::incr(&bytes_key, result.len() as i64, Some(end.saturating_sub(now) + TTL_SLACK_MS));
        }
        Verdict::next()
    }
}

// Natively (unit tests) there is no component to export, and no host to import from.
#[cfg(target_arch = "wasm32")]
tollgate_policy_sdk::export_policy!(Quota);

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(v: serde_json::Value) -> Result<Quota, String> {
        Quota::new(serde_json::from_value(v).map_err(|e| e.to_string())?)
    }

    #[test]
    fn a_refusal_says_when_the_quota_renews() {
        let r = exceeded("calls", 1000, 10_000, 3_610_000);
        assert_eq!((r.http_status, r.error.code), (Some(429), -32010));
        assert!(r.headers.contains(&("retry-after".into(), "3600".into())));
        assert!(r.headers.contains(&("x-quota-remaining".into(), "0".into())));
        assert_eq!(r.error.message, "Quota exceeded: 1000 calls per period; renews in 3600 s");
    }

    #[test]
    fn admitted_calls_are_told_what_remains_and_when_it_renews() {
        let f = figures(1000, 998, 10_000, 3_610_000);
        assert_eq!(f[0], ("x-quota-limit".into(), "1000".into()));
        assert_eq!(f[1], ("x-quota-remaining".into(), "998".into()));
        assert_eq!(f[2], ("x-quota-reset".into(), "3600".into()));
        // The last second of a period still says 1, never 0.
        assert_eq!(figures(5, 0, 3_609_999, 3_610_000)[2].1, "1");
    }

    #[test]
    fn periods_key_the_counters_and_configs_are_checked() {
        let q = quota(json!({ "calls": 10, "period": "month", "key": ["subject"] })).unwrap();
        let ex = policy_common::facts::Known { method: "tools/call".into(), attributes: vec![("auth.sub".into(), "alice".into())], ..Default::default() };
        let (calls, bytes, end) = q.keys(&ex, 1_709_208_000_000);
        assert_eq!(calls, "calls:2024-02:[\"alice\"]");
        assert_eq!(bytes, "bytes:2024-02:[\"alice\"]");
        assert_eq!(end, 1_709_251_200_000);
        assert!(q.counts(&ex));
        assert!(!q.counts(&policy_common::facts::Known { method: "tools/list".into(), ..Default::default() }));
        assert!(quota(json!({ "period": "day" })).unwrap_err().contains("calls, bytes"));
        assert!(quota(json!({ "calls": 1 })).unwrap_err().contains("period"));
        assert!(quota(json!({ "calls": 1, "period": "day", "methods": [] })).is_err());
    }
}
