//! Tools shown to clients under another name or description.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rename {
    /// The backend's name of the tool.
    pub tool: String,
    /// The name clients see and call; the backend name is then not callable.
    #[serde(rename = "as", default)]
    pub name: Option<String>,
    /// The description clients see.
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Default)]
pub struct Renames {
    by_backend: HashMap<String, Rename>,
    /// New name → backend name.
    by_alias: HashMap<String, String>,
}

impl Renames {
    pub fn new(list: Vec<Rename>) -> Result<Renames, String> {
        let mut r = Renames::default();
        for (i, x) in list.into_iter().enumerate() {
            if x.tool.is_empty() || x.name.as_deref() == Some("") {
                return Err(format!("rename[{i}]: tool names must not be empty"));
            }
            if x.name.is_none() && x.description.is_none() {
                return Err(format!("rename[{i}] ('{}') changes nothing: give `as` or `description`", x.tool));
            }
            if let Some(alias) = &x.name
                && r.by_alias.insert(alias.clone(), x.tool.clone()).is_some()
            {
                return Err(format!("rename[{i}]: two tools are renamed to '{alias}'"));
            }
            let tool = x.tool.clone();
            if r.by_backend.insert(tool.clone(), x).is_some() {
                return Err(format!("rename[{i}]: '{tool}' is renamed twice"));
            }
        }
        Ok(r)
    }

    pub fn is_empty(&self) -> bool {
        self.by_backend.is_empty()
    }

    /// The backend name of a tool the client called by its new name.
    pub fn backend_name(&self, alias: &str) -> Option<&str> {
        self.by_alias.get(alias).map(String::as_str)
    }

    /// Whether the backend name `tool` is hidden behind a new name.
    pub fn is_renamed(&self, tool: &str) -> bool {
        self.by_backend.get(tool).is_some_and(|r| r.name.is_some())
    }

    /// Renames the tools of a `tools/list` result in place; true if anything changed.
    pub fn apply(&self, result: &mut Value) -> bool {
        let Some(tools) = result.get_mut("tools").and_then(Value::as_array_mut) else { return false };
        let mut changed = false;
        for t in tools {
            let Some(r) = t.get("name").and_then(Value::as_str).and_then(|n| self.by_backend.get(n)) else { continue };
            if let Some(n) = &r.name {
                t["name"] = Value::String(n.clone());
            }
            if let Some(d) = &r.description {
                t["description"] = Value::String(d.clone());
            }
            changed = true;
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn renames(v: Value) -> Result<Renames, String> {
        Renames::new(serde_json::from_value(v).unwrap())
    }

    #[test]
    fn a_list_shows_new_names_and_descriptions_and_calls_map_back() {
        let r = renames(
            json!([{ "tool": "get_weather", "as": "weather", "description": "Today's weather" }, { "tool": "search", "description": "Find documents" }]),
        )
        .unwrap();
        let mut list = json!({ "tools": [{ "name": "get_weather", "description": "old" }, { "name": "search" }, { "name": "other", "description": "kept" }] });
        assert!(r.apply(&mut list));
        assert_eq!(
            list,
            json!({ "tools": [{ "name": "weather", "description": "Today's weather" }, { "name": "search", "description": "Find documents" }, { "name": "other", "description": "kept" }] })
        );
        assert_eq!(r.backend_name("weather"), Some("get_weather"));
        assert_eq!(r.backend_name("search"), None);
        assert!(r.is_renamed("get_weather") && !r.is_renamed("search"));
        assert!(!r.apply(&mut json!({ "nope": 1 })));
    }

    #[test]
    fn ambiguous_or_empty_renames_are_refused() {
        assert!(renames(json!([{ "tool": "a", "as": "x" }, { "tool": "b", "as": "x" }])).unwrap_err().contains("'x'"));
        assert!(renames(json!([{ "tool": "a" }])).unwrap_err().contains("changes nothing"));
        assert!(renames(json!([{ "tool": "a", "as": "b" }, { "tool": "a", "as": "c" }])).is_err());
    }
}
