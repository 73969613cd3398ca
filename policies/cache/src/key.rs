//! What a cached answer is filed under: server, method, target and canonical arguments (keys
//! sorted at every depth, so `{a,b}` and `{b,a}` are one entry), and the caller when entries
//! are private.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// JSON with object keys sorted at every depth.
pub fn canonical(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = Map::new();
                for k in keys {
                    out.insert(k.clone(), sort(&m[k]));
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    // serde_json keeps insertion order only with `preserve_order`; sorting first makes the
    // text canonical either way.
    sort(v).to_string()
}

/// The entry key: a SHA-256 over the parts, each length-prefixed so no two part lists collide.
pub fn entry(server: &str, method: &str, target: &str, args: &Value, caller: Option<&str>) -> String {
    let mut h = Sha256::new();
    for part in [server, method, target, &canonical(args), caller.unwrap_or("")] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    format!("entry:{}", policy_common::key::hex(&h.finalize()))
}

/// The arguments that make two requests the same: `arguments` of a tool call or a prompt;
/// a resource read has only its URI (the target).
pub fn args(params: &Value) -> Value {
    params.get("arguments").cloned().unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn argument_order_does_not_matter_but_everything_else_does() {
        let a = json!({ "q": "x", "opts": { "b": 1, "a": [ { "z": 1, "y": 2 } ] } });
        let b: Value = serde_json::from_str(r#"{ "opts": { "a": [ { "y": 2, "z": 1 } ], "b": 1 }, "q": "x" }"#).unwrap();
        assert_eq!(canonical(&a), canonical(&b));
        let k = entry("s", "tools/call", "search", &a, None);
        assert_eq!(k, entry("s", "tools/call", "search", &b, None));
        assert_ne!(k, entry("s2", "tools/call", "search", &a, None));
        assert_ne!(k, entry("s", "tools/call", "other", &a, None));
        assert_ne!(k, entry("s", "tools/call", "search", &json!({ "q": "y" }), None));
        assert_ne!(k, entry("s", "tools/call", "search", &a, Some("alice")));
        assert_ne!(entry("ab", "c", "", &Value::Null, None), entry("a", "bc", "", &Value::Null, None), "parts do not run into each other");
    }
}
