//! Field-level differences between two JSON values as the config writes them: what `tollgate
//! apply` shows under a changed server, product or chain, one line per field.

use serde_json::Value;

/// Lines `path: old -> new`, `+ path: new`, `- path: old`, in document order. Arrays of named
/// objects (servers, versions, products) are matched by name; other arrays by position, since
/// order is meaning there (a chain).
pub fn lines(old: &Value, new: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk("", old, new, &mut out);
    out
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() { key.to_owned() } else { format!("{at}.{key}") }
}

fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 80 { format!("{}…", text.chars().take(79).collect::<String>()) } else { text }
}

fn named(a: &[Value]) -> Option<Vec<(&str, &Value)>> {
    a.iter().map(|v| Some((v.get("name")?.as_str()?, v))).collect()
}

fn walk(at: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            for (k, v) in n {
                match o.get(k) {
                    None => out.push(format!("+ {}: {}", join(at, k), short(v))),
                    Some(w) => walk(&join(at, k), w, v, out),
                }
            }
            for (k, v) in o.iter().filter(|(k, _)| !n.contains_key(*k)) {
                out.push(format!("- {}: {}", join(at, k), short(v)));
            }
        }
        (Value::Array(o), Value::Array(n)) => match (named(o), named(n)) {
            (Some(o), Some(n)) => {
                for (name, v) in &n {
                    let here = format!("{at}[{name}]");
                    match o.iter().find(|(m, _)| m == name) {
                        None => out.push(format!("+ {here}: {}", short(v))),
                        Some((_, w)) => walk(&here, w, v, out),
                    }
                }
                for (name, v) in o.iter().filter(|(m, _)| !n.iter().any(|(k, _)| k == m)) {
                    out.push(format!("- {at}[{name}]: {}", short(v)));
                }
            }
            _ => {
                for (i, v) in n.iter().enumerate() {
                    match o.get(i) {
                        None => out.push(format!("+ {at}[{i}]: {}", short(v))),
                        Some(w) => walk(&format!("{at}[{i}]"), w, v, out),
                    }
                }
                for (i, v) in o.iter().enumerate().skip(n.len()) {
                    out.push(format!("- {at}[{i}]: {}", short(v)));
                }
            }
        },
        _ => out.push(format!("{}: {} -> {}", if at.is_empty() { "(whole)" } else { at }, short(old), short(new))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn each_changed_field_is_named_with_its_old_and_new_value() {
        let old = json!({ "backend": { "http": "http://a/mcp" }, "timeout_ms": 5, "versions": [{ "name": "v1", "x": 1 }, { "name": "v2" }] });
        let new = json!({ "backend": { "http": "http://b/mcp" }, "tags": ["t"], "versions": [{ "name": "v2" }, { "name": "v1", "x": 2 }, { "name": "v3" }] });
        assert_eq!(
            super::lines(&old, &new),
            [
                r#"backend.http: "http://a/mcp" -> "http://b/mcp""#,
                r#"+ tags: ["t"]"#,
                "versions[v1].x: 1 -> 2",
                r#"+ versions[v3]: {"name":"v3"}"#,
                "- timeout_ms: 5",
            ]
        );
    }

    #[test]
    fn a_chain_is_compared_by_position() {
        let old = json!([{ "policy": "jwt" }, { "policy": "rate-limit", "config": { "limit": 3 } }]);
        let new = json!([{ "policy": "jwt" }, { "policy": "rate-limit", "config": { "limit": 5 } }, { "policy": "cache" }]);
        assert_eq!(super::lines(&old, &new), ["[1].config.limit: 3 -> 5", r#"+ [2]: {"policy":"cache"}"#]);
    }
}
