//! `rate-limit`: requests per window, per key (subscription, subject, client IP, session,
//! tool, or a combination), with limits per tool in the same binding.
//!
//! Each request adds one to a counter in the gateway's shared state with an atomic `incr`, and
//! is admitted only while the new value is within the limit: concurrent callers can never be
//! admitted past it, across instances and (with a shared store) across gateways. An admitted
//! request is told, in `ratelimit-*` headers, the tightest of the limits it counted on.

mod rules;
mod window;

use policy_common::duration::Duration as Dur;
use serde_json::json;
use tollgate_policy_sdk::{Exchange, Hooks, Mutation, Policy, Rejection, Verdict, code, log, now_ms, state};

pub use rules::{Config, Rule, compile};
pub use window::{Count, Slot, judge, slot};

/// Counters outlive their window by this much, so a late request never sees a fresh counter.
const TTL_SLACK_MS: u64 = 1_000;

pub struct RateLimit {
    rules: Vec<Rule>,
}

impl Policy for RateLimit {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        Ok(RateLimit { rules: compile(config)? })
    }

    fn hooks(&self) -> Hooks {
        Hooks::REQUEST
    }

    fn on_request(&mut self, ex: &Exchange) -> Verdict {
        if ex.id().is_none() {
            return Verdict::next();
        }
        let now = now_ms();
        // The rule with the least left: what the `ratelimit-*` headers report.
        let mut tightest: Option<(&Rule, u64, Slot)> = None;
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.applies(ex) {
                continue;
            }
            let s = slot(now, rule.window_ms);
            let key = format!("{i}:{}:{}:{}", rule.window_ms, s.index, rule.keyer.key(ex));
            let count = match state::incr(&key, 1, Some(s.remaining_ms + TTL_SLACK_MS)) {
                Ok(n) => n,
                Err(e) => {
                    log::error(&format!("rate-limit state unavailable: {e}"));
                    return Rejection::new(code::POLICY_FAILED, "Rate limit unavailable; the request was refused").status(503).into();
                }
            };
            match judge(count, rule.limit, s) {
                Count::Refused { retry_after_ms } => {
                    return refuse(rule, ex.target().filter(|_| ex.method() == "tools/call"), retry_after_ms).into();
                }
                Count::Admitted { remaining } => {
                    if tightest.is_none_or(|(_, least, _)| remaining < least) {
                        tightest = Some((rule, remaining, s));
                    }
                }
            }
        }
        match tightest {
            Some((rule, remaining, s)) => {
                figures(rule.limit, remaining, s.remaining_ms).into_iter().fold(Mutation::new(), |m, (k, v)| m.client_header(&k, &v)).into()
            }
            None => Verdict::next(),
        }
    }
}

/// `ratelimit-limit`, `ratelimit-remaining` and `ratelimit-reset` (seconds until the window
/// ends, at least 1), as an admitted request gets them.
pub fn figures(limit: u64, remaining: u64, window_left_ms: u64) -> [(String, String); 3] {
    [
        ("ratelimit-limit".into(), limit.to_string()),
        ("ratelimit-remaining".into(), remaining.to_string()),
        ("ratelimit-reset".into(), Dur::secs_ceil(window_left_ms).max(1).to_string()),
    ]
}

/// 429 with `Retry-After`, and the wait in the JSON-RPC error for clients that only see the body.
pub fn refuse(rule: &Rule, tool: Option<String>, retry_after_ms: u64) -> Rejection {
    let secs = Dur::secs_ceil(retry_after_ms).max(1);
    let what = tool.map(|t| format!(" for tool '{t}'")).unwrap_or_default();
    Rejection::rate_limited(&format!("Rate limit exceeded: {}{what}; retry after {secs} s", rule.describe()), secs)
        .header("ratelimit-limit", &rule.limit.to_string())
        .header("ratelimit-remaining", "0")
        .header("ratelimit-reset", &secs.to_string())
        .data(&json!({ "retryAfter": secs, "limit": rule.limit, "windowMs": rule.window_ms }))
}

// Natively (unit tests) there is no component to export, and no host to import from.
#[cfg(target_arch = "wasm32")]
tollgate_policy_sdk::export_policy!(RateLimit);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_carries_status_retry_after_and_the_wait_in_its_data() {
        let rules = compile(serde_json::from_value(json!({ "limit": 5, "window": "1m" })).unwrap()).unwrap();
        let r = refuse(&rules[0], Some("search".into()), 12_001);
        assert_eq!(r.http_status, Some(429));
        assert_eq!(r.error.code, -32009);
        assert!(r.headers.contains(&("retry-after".into(), "13".into())), "{:?}", r.headers);
        assert_eq!(r.error.message, "Rate limit exceeded: 5 requests per 1m for tool 'search'; retry after 13 s");
        let data: serde_json::Value = serde_json::from_str(r.error.data.as_deref().unwrap()).unwrap();
        assert_eq!(data["retryAfter"], 13);
        assert_eq!(refuse(&rules[0], None, 0).headers[0], ("retry-after".into(), "1".into()), "never 0: a client would retry at once");
    }

    #[test]
    fn an_admitted_request_learns_what_is_left_of_its_window() {
        let f = figures(5, 3, 12_001);
        assert_eq!(f, [("ratelimit-limit".into(), "5".into()), ("ratelimit-remaining".into(), "3".into()), ("ratelimit-reset".into(), "13".into())]);
        assert_eq!(figures(5, 0, 0)[2].1, "1");
    }
}
