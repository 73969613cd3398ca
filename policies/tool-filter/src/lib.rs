//! `tool-filter`: which tools the clients behind it see and call, from one decision (the
//! gateway asks [`Policy::visible`] both to filter `tools/list` and to refuse `tools/call`, so
//! the two never disagree). Allow and deny lists of names and globs, extra tools granted to
//! callers by scope, subscription or subject, and renamed tools with new descriptions.

mod decide;
mod rename;

use policy_common::Patterns;
use serde::Deserialize;
use serde_json::Value;
use tollgate_policy_sdk::{Exchange, Hooks, Mutation, Policy, Verdict};

pub use decide::{Caller, Filter, Grant};
pub use rename::{Rename, Renames};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// When not empty, only these tools (names or globs) are visible.
    #[serde(default)]
    pub allow: Patterns,
    /// Never these, unless a grant gives them to the caller.
    #[serde(default)]
    pub deny: Patterns,
    /// More tools for some callers; a grant overrides `deny` and `allow` for its tools.
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// Tools shown under another name or description. The lists above name backend tools.
    #[serde(default)]
    pub rename: Vec<Rename>,
}

pub struct ToolFilter {
    filter: Filter,
    renames: Renames,
}

impl ToolFilter {
    /// The decision for the tool a client names: its backend name must pass the filter, and
    /// a renamed tool is only reachable by its new name.
    pub fn visible_as(&self, caller: &Caller, method: &str, tool: &str) -> bool {
        let backend = if method == "tools/call" {
            match self.renames.backend_name(tool) {
                Some(b) => b,
                None if self.renames.is_renamed(tool) => return false,
                None => tool,
            }
        } else {
            tool
        };
        self.filter.admits(caller, backend)
    }
}

impl Policy for ToolFilter {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        let filter = Filter { allow: config.allow, deny: config.deny, grants: config.grants };
        filter.check()?;
        Ok(ToolFilter { filter, renames: Renames::new(config.rename)? })
    }

    fn hooks(&self) -> Hooks {
        if self.renames.is_empty() { Hooks::VISIBILITY } else { Hooks::VISIBILITY | Hooks::REQUEST | Hooks::RESPONSE }
    }

    fn visible(&mut self, ex: &Exchange, tool: &str) -> bool {
        self.visible_as(&Caller::of(ex), &ex.method(), tool)
    }

    /// A call by a tool's new name goes to the backend under its own name.
    fn on_request(&mut self, ex: &Exchange) -> Verdict {
        if ex.method() != "tools/call" {
            return Verdict::next();
        }
        let (Some(tool), Ok(Some(mut params))) = (ex.target(), ex.params::<Value>()) else { return Verdict::next() };
        match self.renames.backend_name(&tool) {
            Some(backend) => {
                params["name"] = Value::String(backend.to_owned());
                Mutation::new().params(&params).into()
            }
            None => Verdict::next(),
        }
    }

    /// The list the client sees carries the new names and descriptions.
    fn on_response(&mut self, ex: &Exchange) -> Verdict {
        if ex.method() != "tools/list" {
            return Verdict::next();
        }
        let Some(Ok(text)) = ex.outcome() else { return Verdict::next() };
        let Ok(mut result) = serde_json::from_str::<Value>(&text) else { return Verdict::next() };
        if self.renames.apply(&mut result) { Mutation::new().params(&result).into() } else { Verdict::next() }
    }
}

// Natively (unit tests) there is no component to export, and no host to import from.
#[cfg(target_arch = "wasm32")]
tollgate_policy_sdk::export_policy!(ToolFilter);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_renamed_tool_is_called_by_its_new_name_only() {
        let config: Config = serde_json::from_value(json!({ "deny": ["drop_*"], "rename": [{ "tool": "get_weather", "as": "weather" }] })).unwrap();
        let f = ToolFilter::new(config).unwrap();
        let c = Caller::default();
        assert!(f.visible_as(&c, "tools/list", "get_weather"), "the list is filtered on backend names");
        assert!(f.visible_as(&c, "tools/call", "weather"));
        assert!(!f.visible_as(&c, "tools/call", "get_weather"));
        assert!(!f.visible_as(&c, "tools/call", "drop_table"));
        assert!(f.visible_as(&c, "tools/call", "echo"));
    }

    #[test]
    fn unknown_keys_fail_at_load() {
        let e = serde_json::from_value::<Config>(json!({ "alow": ["x"] })).unwrap_err().to_string();
        assert!(e.contains("unknown field"), "{e}");
    }
}
