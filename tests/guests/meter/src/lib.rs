//! One policy written alike with each kit (Rust here; Python in `tests/guests-py/meter`,
//! JavaScript in `tests/guests-js/meter`), so one cases file (`tests/data/meter.cases.yaml`)
//! proves the kits equal. It touches every part of the contract a kit wraps: config, hooks,
//! secrets, state, attributes, headers both ways, every verdict, the response and message
//! phases.

use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_policy_sdk::{Exchange, Hooks, MessageVerdict, Mutation, Policy, Rejection, Verdict, export_policy, secret, state};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Tools no caller sees or calls.
    #[serde(default)]
    blocked: Vec<String>,
    /// `tools/call`s per caller per minute.
    #[serde(default = "three")]
    limit: i64,
    /// The secret whose value callers must send in `x-api-key`.
    #[serde(default)]
    api_key_secret: Option<String>,
}

fn three() -> i64 {
    3
}

struct Meter(Config);

impl Meter {
    /// The subject an earlier policy authenticated, else the caller's address.
    fn who(ex: &Exchange) -> String {
        ex.attribute("auth.sub").or_else(|| ex.client_ip()).unwrap_or_else(|| "anonymous".into())
    }
}

impl Policy for Meter {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        if config.limit <= 0 {
            return Err("limit: must be positive".into());
        }
        Ok(Meter(config))
    }

    fn hooks(&self) -> Hooks {
        Hooks::REQUEST | Hooks::RESPONSE | Hooks::VISIBILITY | Hooks::MESSAGE
    }

    fn on_request(&mut self, ex: &Exchange) -> Verdict {
        if let Some(name) = &self.0.api_key_secret {
            if ex.header("x-api-key").is_none() || ex.header("x-api-key") != secret(name) {
                return Rejection::unauthorized("a valid x-api-key is required").header("www-authenticate", "ApiKey realm=\"tollgate\"").into();
            }
        }
        if ex.method() != "tools/call" {
            return Verdict::next();
        }
        let who = Meter::who(ex);
        let key = format!("calls:{who}");
        if ex.target().as_deref() == Some("meter_status") {
            let calls = match state::get(&key) {
                Ok(v) => v.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_else(|| "0".into()),
                Err(e) => return Rejection::new(-32007, &format!("state unavailable: {e}")).status(503).into(),
            };
            return Verdict::respond(&json!({ "content": [{ "type": "text", "text": format!("calls: {calls}") }] }));
        }
        let n = match state::incr(&key, 1, Some(60_000)) {
            Ok(n) => n,
            Err(e) => return Rejection::new(-32007, &format!("state unavailable: {e}")).status(503).into(),
        };
        if n > self.0.limit {
            return Rejection::rate_limited("call limit reached", 60).into();
        }
        Mutation::new()
            .attribute("meter.calls", &n.to_string())
            .client_header("x-calls-left", &(self.0.limit - n).to_string())
            .set_header("x-caller", &who)
            .into()
    }

    fn on_response(&mut self, ex: &Exchange) -> Verdict {
        let Some(Ok(result)) = ex.outcome() else { return Verdict::next() };
        let (Some(calls), Ok(mut result)) = (ex.attribute("meter.calls"), serde_json::from_str::<Value>(&result)) else { return Verdict::next() };
        result["_meta"] = json!({ "meter.calls": calls });
        Mutation::new().params(&result).into()
    }

    fn on_message(&mut self, _ex: &Exchange, message: &Value) -> MessageVerdict {
        match message["method"].as_str() {
            Some("sampling/createMessage") => MessageVerdict::drop_with(-32003, "sampling is not allowed"),
            Some("notifications/message") if message["params"]["level"] == "debug" => MessageVerdict::Drop(None),
            _ => MessageVerdict::Pass,
        }
    }

    fn visible(&mut self, _ex: &Exchange, tool: &str) -> bool {
        !self.0.blocked.iter().any(|b| b == tool)
    }
}

export_policy!(Meter);
