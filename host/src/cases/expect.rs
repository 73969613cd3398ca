//! What a case expects, and the comparisons that name what differed.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::mcp::jsonrpc::Message;
use crate::policy::{ClientHeaders, Delivery, Relay};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The message goes on to the backend.
    Continue,
    /// Refused.
    Deny,
    /// Answered by the policy, without the backend.
    Respond,
    /// A notification the policy dropped.
    Drop,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub verdict: Verdict,
    /// A refusal's HTTP status and JSON-RPC code.
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub code: Option<i32>,
    /// Words a refusal's message contains.
    #[serde(default)]
    pub message: Option<String>,
    /// The params forwarded, after the policy's changes: each key given must match.
    #[serde(default)]
    pub params: Option<Value>,
    /// The result the client gets (the policy's answer, or the backend's after the response
    /// phase): each key given must match.
    #[serde(default)]
    pub result: Option<Value>,
    /// The error the client gets after the response phase: each key given must match.
    #[serde(default)]
    pub error: Option<Value>,
    /// The tool names a `tools/list` answer keeps, in order.
    #[serde(default)]
    pub tools: Option<Vec<String>>,
    /// Headers the client's response gets (a refusal's too: `www-authenticate`, `retry-after`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// What the message phase made of each of the case's `messages`, in order.
    #[serde(default)]
    pub messages: Vec<MessageExpect>,
}

/// The message phase's verdict on one streamed message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageExpect {
    pub verdict: MessageVerdict,
    /// What the client gets instead (`replace`): each key given must match.
    #[serde(default)]
    pub message: Option<Value>,
    /// The code a dropped request of the backend's is answered with (`drop`).
    #[serde(default)]
    pub code: Option<i32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageVerdict {
    Pass,
    Replace,
    Drop,
}

pub fn want(expected: Verdict, got: Verdict, what: &str) -> Result<(), String> {
    if expected == got { Ok(()) } else { Err(format!("expected {expected:?}, but the message was {what}")) }
}

/// Runs each streamed message through the message phase and compares what became of it.
pub async fn messages(e: &Expect, sent: &[Value], relay: Option<Relay>) -> Result<(), String> {
    if sent.len() != e.messages.len() {
        return Err(format!("the case streams {} messages but expects verdicts on {}", sent.len(), e.messages.len()));
    }
    for (i, (raw, want)) in sent.iter().zip(&e.messages).enumerate() {
        let mut body = raw.clone();
        if let Some(o) = body.as_object_mut() {
            o.entry("jsonrpc").or_insert_with(|| "2.0".into());
        }
        let msg = Message::from_value(body).map_err(|err| format!("messages[{i}]: not a JSON-RPC message: {err}"))?;
        let original = msg.body.clone();
        let is_request = msg.id.is_some() && msg.body.contains_key("method");
        let delivered = match &relay {
            None => Delivery::Deliver(msg),
            Some(r) => r.pass(msg, None).await,
        };
        let (got, detail) = match delivered {
            Delivery::Deliver(m) if m.body == original => (MessageVerdict::Pass, Value::Object(m.body)),
            Delivery::Deliver(m) => (MessageVerdict::Replace, Value::Object(m.body)),
            Delivery::Drop(answer) => (MessageVerdict::Drop, answer.map(|a| Value::Object(a.body)).unwrap_or(Value::Null)),
        };
        if got != want.verdict {
            return Err(format!("messages[{i}]: expected {:?}, got {got:?} ({detail})", want.verdict));
        }
        if let Some(m) = &want.message {
            contains(&format!("messages[{i}]"), m, &detail)?;
        }
        if let Some(code) = want.code {
            let answered = detail.get("error").and_then(|e| e.get("code")).and_then(Value::as_i64);
            if !is_request || answered != Some(code.into()) {
                return Err(format!("messages[{i}]: expected the backend's request answered with code {code}, got {detail}"));
            }
        }
    }
    Ok(())
}

pub fn check_answer(e: &Expect, body: &serde_json::Map<String, Value>, client: &ClientHeaders) -> Result<(), String> {
    if let Some(r) = &e.result {
        contains("result", r, body.get("result").unwrap_or(&Value::Null))?;
    }
    if let Some(r) = &e.error {
        contains("error", r, body.get("error").unwrap_or(&Value::Null))?;
    }
    if let Some(tools) = &e.tools {
        let got: Vec<&str> =
            body.get("result").and_then(|r| r.get("tools")).and_then(Value::as_array).into_iter().flatten().filter_map(|t| t["name"].as_str()).collect();
        if got != tools.iter().map(String::as_str).collect::<Vec<_>>() {
            return Err(format!("tools: expected {tools:?}, got {got:?}"));
        }
    }
    headers_match(&e.headers, client)
}

pub fn headers_match(expected: &BTreeMap<String, String>, client: &[(String, String)]) -> Result<(), String> {
    for (k, v) in expected {
        let got = client.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.as_str());
        if got != Some(v.as_str()) {
            return Err(format!("header {k}: expected {v:?}, got {got:?}"));
        }
    }
    Ok(())
}

/// Every key of `expected` is in `got` with the same value, recursively into objects.
pub fn contains(at: &str, expected: &Value, got: &Value) -> Result<(), String> {
    match (expected, got) {
        (Value::Object(e), Value::Object(g)) => {
            for (k, v) in e {
                contains(&format!("{at}.{k}"), v, g.get(k).unwrap_or(&Value::Null))?;
            }
            Ok(())
        }
        _ if expected == got => Ok(()),
        _ => Err(format!("{at}: expected {expected}, got {got}")),
    }
}
