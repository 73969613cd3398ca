//! A policy that exercises every verdict: it denies without an API key, hides tools, changes
//! arguments, injects a credential from a secret, answers cached tools itself, marks answers,
//! adds headers to the client's response, and redacts or drops what the backend streams.

use serde::Deserialize;
use serde_json::{Map, Value};
use tollgate_policy_sdk::{Exchange, Hooks, MessageVerdict, Mutation, Policy, Rejection, Verdict, export_policy, now_ms, secret, state};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Requests need `x-api-key` with this value; refused with 401 otherwise.
    #[serde(default)]
    api_key: Option<String>,
    /// Tools no caller sees or calls, unless an earlier policy set `role` to `admin`.
    #[serde(default)]
    hidden: Vec<String>,
    /// Sends the named secret to the backend as `authorization: Bearer …`.
    #[serde(default)]
    bearer_secret: Option<String>,
    /// Merged into the arguments of every `tools/call`.
    #[serde(default)]
    add_arguments: Map<String, Value>,
    /// Tools answered by the policy with this result, without calling the backend.
    #[serde(default)]
    cached: Map<String, Value>,
    /// Adds `"marked": true` to every result on the way back, and `x-marked: true` to the
    /// client's response.
    #[serde(default)]
    mark_answers: bool,
    /// `name: value`, added to the client's response by every admitted request.
    #[serde(default)]
    client_header: Option<String>,
    /// Sets this attribute on every request (for the policies after it).
    #[serde(default)]
    role: Option<String>,
    /// Replaces this word with `[redacted]` in every progress and logging message the backend sends.
    #[serde(default)]
    redact: Option<String>,
    /// Drops the backend's sampling requests, answering them with -32003.
    #[serde(default)]
    refuse_sampling: bool,
    /// Tells the backend which server version the gateway routed to, in `x-server-version`.
    #[serde(default)]
    version_header: bool,
    /// Tells the client, in `x-calls`, how many requests this instance has seen: 1 when each
    /// exchange gets an instance of its own, more when the binding reuses instances.
    #[serde(default)]
    count_calls: bool,
    /// Reads the clock in `init`, which then must run for every instance.
    #[serde(default)]
    clock_in_init: bool,
    /// Counts requests in this state key (the host's state, shared by instances), and refuses
    /// past `max_visits`.
    #[serde(default)]
    visits: Option<String>,
    #[serde(default)]
    max_visits: Option<i64>,
    /// Keeps this many KiB for good on every request: a heap that only grows, as a garbage
    /// collected engine's does between collections.
    #[serde(default)]
    leak_kib: usize,
}

/// The config, and the requests this instance has seen.
struct Gatekeeper(Config, u64);

impl Policy for Gatekeeper {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        if config.api_key.as_deref() == Some("") {
            return Err("api_key must not be empty".into());
        }
        if config.hidden.iter().any(String::is_empty) {
            return Err("hidden: tool names must not be empty".into());
        }
        if config.clock_in_init {
            let _ = now_ms();
        }
        Ok(Gatekeeper(config, 0))
    }

    fn hooks(&self) -> Hooks {
        let mut h = Hooks::REQUEST | Hooks::VISIBILITY;
        if self.0.mark_answers {
            h |= Hooks::RESPONSE;
        }
        if self.0.redact.is_some() || self.0.refuse_sampling {
            h |= Hooks::MESSAGE;
        }
        h
    }

    fn on_request(&mut self, ex: &Exchange) -> Verdict {
        self.1 += 1;
        let c = &self.0;
        if c.leak_kib > 0 {
            std::mem::forget(std::hint::black_box(vec![1u8; c.leak_kib << 10]));
        }
        if let Some(key) = &c.api_key {
            if ex.header("x-api-key").as_deref() != Some(key) {
                return Rejection::unauthorized("Unauthorized: a valid x-api-key is required").header("www-authenticate", "ApiKey realm=\"tollgate\"").into();
            }
        }
        if let Some(key) = &c.visits {
            match state::incr(key, 1, None) {
                Ok(n) if c.max_visits.is_some_and(|max| n > max) => return Rejection::forbidden(&format!("visit {n} is past the limit")).into(),
                Ok(_) => {}
                Err(e) => return Rejection::forbidden(&format!("state: {e}")).into(),
            }
        }
        let mut m = Mutation::new();
        if let Some((name, value)) = c.client_header.as_deref().and_then(|h| h.split_once(':')) {
            m = m.client_header(name.trim(), value.trim());
        }
        if c.count_calls {
            m = m.client_header("x-calls", &self.1.to_string());
        }
        if let Some(role) = &c.role {
            m = m.attribute("role", role);
        }
        if c.version_header {
            m = m.set_header("x-server-version", &ex.server_version().unwrap_or_else(|| "none".into()));
        }
        if let Some(name) = &c.bearer_secret {
            match secret(name) {
                Some(token) => m = m.set_header("authorization", &format!("Bearer {token}")),
                None => return Rejection::new(-32603, "the credential is not configured").into(),
            }
        }
        if ex.method() == "tools/call" {
            let target = ex.target().unwrap_or_default();
            if let Some(result) = c.cached.get(&target) {
                return Verdict::respond(result);
            }
            if !c.add_arguments.is_empty() {
                let mut params: Value = ex.params().ok().flatten().unwrap_or(Value::Null);
                let args = params.as_object_mut().map(|p| p.entry("arguments").or_insert_with(|| Value::Object(Map::new())));
                if let Some(Value::Object(args)) = args {
                    args.extend(c.add_arguments.clone());
                }
                m = m.params(&params);
            }
        }
        m.into()
    }

    fn on_response(&mut self, ex: &Exchange) -> Verdict {
        match ex.outcome() {
            Some(Ok(text)) => {
                let mut result: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if let Some(obj) = result.as_object_mut() {
                    obj.insert("marked".into(), Value::Bool(true));
                }
                Mutation::new().params(&result).client_header("x-marked", "true").into()
            }
            _ => Verdict::next(),
        }
    }

    fn on_message(&mut self, _ex: &Exchange, message: &Value) -> MessageVerdict {
        let method = message.get("method").and_then(Value::as_str).unwrap_or_default();
        if method == "sampling/createMessage" && self.0.refuse_sampling {
            return MessageVerdict::drop_with(-32003, "sampling is not allowed through this gateway");
        }
        let field = match method {
            "notifications/progress" => "message",
            "notifications/message" => "data",
            _ => return MessageVerdict::Pass,
        };
        let (Some(word), Some(text)) = (&self.0.redact, message["params"][field].as_str()) else { return MessageVerdict::Pass };
        if !text.contains(word.as_str()) {
            return MessageVerdict::Pass;
        }
        let mut changed = message.clone();
        changed["params"][field] = Value::String(text.replace(word.as_str(), "[redacted]"));
        MessageVerdict::replace(&changed)
    }

    fn visible(&mut self, ex: &Exchange, tool: &str) -> bool {
        ex.attribute("role").as_deref() == Some("admin") || !self.0.hidden.iter().any(|h| h == tool)
    }
}

export_policy!(Gatekeeper);
