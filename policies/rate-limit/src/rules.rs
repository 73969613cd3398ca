//! The config, compiled into rules: which requests each limit counts, and under which key.

use policy_common::client_ip::MovedToGateway;
use policy_common::duration::{Duration, show};
use policy_common::{Facts, KeyPart, Keyer, Patterns};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Whose counter a request counts on. Default: `[client_ip]`.
    #[serde(default = "default_key")]
    pub key: Vec<KeyPart>,
    /// Requests per `window` for each key.
    #[serde(default)]
    pub limit: Option<u64>,
    #[serde(default)]
    pub window: Option<Duration>,
    /// Methods that count against `limit`. Default: every request (notifications never count).
    #[serde(default)]
    pub methods: Vec<String>,
    /// Limits for some tools, checked before `limit`.
    #[serde(default)]
    pub tools: Vec<ToolLimit>,
    /// Refused: set once for the gateway, as `client_address.trusted_proxies`.
    #[serde(default)]
    pub trusted_proxies: Option<MovedToGateway>,
}

fn default_key() -> Vec<KeyPart> {
    vec![KeyPart::ClientIp]
}

/// A limit on calls of the tools that match `tools`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolLimit {
    pub tools: Patterns,
    pub limit: u64,
    pub window: Duration,
    /// Default: the binding's key and the tool, so each tool has its own counter. A key
    /// without `tool` makes the matching tools share one.
    #[serde(default)]
    pub key: Option<Vec<KeyPart>>,
}

/// One limit, ready to apply.
#[derive(Debug)]
pub struct Rule {
    pub limit: u64,
    pub window_ms: u64,
    pub keyer: Keyer,
    scope: Scope,
}

#[derive(Debug)]
enum Scope {
    Methods(Vec<String>),
    Tools(Patterns),
}

impl Rule {
    pub fn applies(&self, ex: &impl Facts) -> bool {
        match &self.scope {
            Scope::Methods(m) => m.is_empty() || m.contains(&ex.method()),
            Scope::Tools(p) => ex.method() == "tools/call" && ex.target().is_some_and(|t| p.matches(&t)),
        }
    }

    /// What the limit is, for messages: `5 requests per 1m`.
    pub fn describe(&self) -> String {
        format!("{} requests per {}", self.limit, show(self.window_ms))
    }
}

/// Tool limits first (narrower), then the binding's own limit.
pub fn compile(c: Config) -> Result<Vec<Rule>, String> {
    let mut rules = Vec::new();
    for (i, t) in c.tools.into_iter().enumerate() {
        if t.tools.is_empty() {
            return Err(format!("tools[{i}].tools names no tools"));
        }
        let key = t.key.unwrap_or_else(|| {
            let mut k = c.key.clone();
            if !k.contains(&KeyPart::Tool) {
                k.push(KeyPart::Tool);
            }
            k
        });
        let keyer = Keyer::new(key).map_err(|e| format!("tools[{i}].{e}"))?;
        rules.push(Rule { limit: t.limit, window_ms: t.window.ms(), keyer, scope: Scope::Tools(t.tools) });
    }
    match (c.limit, c.window) {
        (Some(limit), Some(window)) => {
            let keyer = Keyer::new(c.key)?;
            rules.push(Rule { limit, window_ms: window.ms(), keyer, scope: Scope::Methods(c.methods) });
        }
        (None, None) if !rules.is_empty() => {
            if !c.methods.is_empty() {
                return Err("methods applies to limit, which is not set".into());
            }
        }
        (None, None) => return Err("set limit and window, or per-tool limits under tools".into()),
        _ => return Err("limit and window go together: set both".into()),
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy_common::facts::Known;
    use serde_json::json;

    fn rules(v: serde_json::Value) -> Result<Vec<Rule>, String> {
        compile(serde_json::from_value(v).map_err(|e| e.to_string())?)
    }

    fn call(tool: &str) -> Known {
        Known {
            method: "tools/call".into(),
            target: Some(tool.into()),
            client_ip: Some("192.0.2.1".into()),
            attributes: vec![("auth.sub".into(), "alice".into())],
            ..Known::default()
        }
    }

    #[test]
    fn tool_limits_come_first_and_get_a_per_tool_key() {
        let r = rules(json!({ "key": ["subject"], "limit": 100, "window": "1m", "tools": [{ "tools": ["export-*"], "limit": 2, "window": "1h" }] })).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].describe(), "2 requests per 1h");
        assert_eq!(r[0].keyer.parts(), [KeyPart::Subject, KeyPart::Tool]);
        assert!(r[0].applies(&call("export-csv")) && !r[0].applies(&call("search")));
        assert!(r[1].applies(&call("search")));
        assert_ne!(r[0].keyer.key(&call("export-csv")), r[0].keyer.key(&call("export-pdf")), "each tool its own counter");
    }

    #[test]
    fn methods_narrow_the_main_limit() {
        let r = rules(json!({ "limit": 1, "window": "1s", "methods": ["tools/call"] })).unwrap();
        let mut list = call("x");
        list.method = "tools/list".into();
        assert!(r[0].applies(&call("x")) && !r[0].applies(&list));
        assert_eq!(r[0].keyer.parts(), [KeyPart::ClientIp], "the default key is the caller's address");
    }

    #[test]
    fn incomplete_configs_say_what_is_missing() {
        assert!(rules(json!({ "limit": 5 })).unwrap_err().contains("both"));
        assert!(rules(json!({})).unwrap_err().contains("set limit and window"));
        assert!(rules(json!({ "limit": 5, "window": "0s" })).unwrap_err().contains("longer than zero"));
        assert!(rules(json!({ "limit": 5, "window": "1m", "key": [] })).unwrap_err().contains("at least one part"));
        assert!(rules(json!({ "limit": 5, "window": "1m", "key": ["nobody"] })).is_err());
        assert!(rules(json!({ "limt": 5 })).unwrap_err().contains("unknown field"));
    }
}
