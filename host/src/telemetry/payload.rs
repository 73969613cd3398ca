//! Payloads as the access log may show them: redacted by key, then cut to size.

use serde_json::Value;

use crate::config::PayloadLog;

const REDACTED: &str = "[redacted]";

/// The payload as it may be logged: configured keys redacted at any depth, then cut to
/// `max_bytes` of JSON text (a cut payload becomes a string ending in a note of its size).
pub fn render(value: &Value, rules: &PayloadLog) -> Value {
    let mut v = value.clone();
    if !rules.redact.is_empty() {
        redact(&mut v, &rules.redact);
    }
    let text = v.to_string();
    if text.len() <= rules.max_bytes {
        return v;
    }
    let mut end = rules.max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Value::String(format!("{}... [truncated, {} bytes]", &text[..end], text.len()))
}

fn redact(v: &mut Value, keys: &[String]) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if keys.iter().any(|r| r.eq_ignore_ascii_case(k)) {
                    *child = Value::String(REDACTED.into());
                } else {
                    redact(child, keys);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|c| redact(c, keys)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rules(max: usize, redact: &[&str]) -> PayloadLog {
        PayloadLog { arguments: true, results: true, max_bytes: max, redact: redact.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn redacts_keys_at_any_depth_ignoring_case() {
        let v = json!({"user": "a", "Password": "hunter2", "nested": [{"apiKey": "k1", "x": 1}]});
        let out = render(&v, &rules(4096, &["password", "APIKEY"]));
        assert_eq!(out, json!({"user": "a", "Password": "[redacted]", "nested": [{"apiKey": "[redacted]", "x": 1}]}));
    }

    #[test]
    fn cuts_long_payloads_on_a_char_boundary_and_says_so() {
        let v = json!({"text": "é".repeat(100)});
        let out = render(&v, &rules(21, &[]));
        let s = out.as_str().expect("a cut payload is a string");
        assert!(s.ends_with(&format!("[truncated, {} bytes]", v.to_string().len())), "{s}");
        assert!(s.len() < 21 + 40);
    }

    #[test]
    fn redaction_happens_before_the_cut() {
        let v = json!({"token": "x".repeat(500)});
        let out = render(&v, &rules(64, &["token"]));
        assert_eq!(out, json!({"token": "[redacted]"}));
    }
}
