//! The decision: allowed, not denied, or granted to this caller.

use policy_common::Patterns;
use policy_common::key::{SUBJECT, SUBSCRIPTION};
use serde::Deserialize;
use tollgate_policy_sdk::Exchange;

/// The attribute the `jwt` policy sets to the token's scopes, space-separated.
pub const SCOPES: &str = "auth.scopes";

/// The lists of the config (see [`crate::Config`]).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    #[serde(default)]
    pub allow: Patterns,
    #[serde(default)]
    pub deny: Patterns,
    #[serde(default)]
    pub grants: Vec<Grant>,
}

/// Tools given to callers that have any of these scopes, subscriptions or subjects.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub subscriptions: Vec<String>,
    #[serde(default)]
    pub subjects: Vec<String>,
    pub allow: Patterns,
}

/// Who asks, as earlier policies established it.
#[derive(Debug, Default)]
pub struct Caller {
    pub scopes: Vec<String>,
    pub subscription: Option<String>,
    pub subject: Option<String>,
}

impl Caller {
    pub fn of(ex: &Exchange) -> Caller {
        let scopes = ex.attribute(SCOPES).map(|s| s.split_whitespace().map(str::to_owned).collect()).unwrap_or_default();
        Caller { scopes, subscription: ex.attribute(SUBSCRIPTION), subject: ex.attribute(SUBJECT) }
    }
}

impl Grant {
    fn applies(&self, c: &Caller) -> bool {
        self.scopes.iter().any(|s| c.scopes.contains(s))
            || c.subscription.as_ref().is_some_and(|s| self.subscriptions.contains(s))
            || c.subject.as_ref().is_some_and(|s| self.subjects.contains(s))
    }
}

impl Filter {
    pub fn check(&self) -> Result<(), String> {
        if self.allow.is_empty() && self.deny.is_empty() && self.grants.is_empty() {
            return Err("name tools in allow, deny or grants".into());
        }
        for (i, g) in self.grants.iter().enumerate() {
            if g.scopes.is_empty() && g.subscriptions.is_empty() && g.subjects.is_empty() {
                return Err(format!("grants[{i}] names no scopes, subscriptions or subjects, so it would apply to no one"));
            }
            if g.allow.is_empty() {
                return Err(format!("grants[{i}].allow names no tools"));
            }
        }
        Ok(())
    }

    /// Whether `caller` may see and call the backend tool `tool`.
    pub fn admits(&self, caller: &Caller, tool: &str) -> bool {
        if self.grants.iter().any(|g| g.allow.matches(tool) && g.applies(caller)) {
            return true;
        }
        !self.deny.matches(tool) && (self.allow.is_empty() || self.allow.matches(tool))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filter(v: serde_json::Value) -> Filter {
        let f: Filter = serde_json::from_value(v).unwrap();
        f.check().unwrap();
        f
    }

    #[test]
    fn deny_beats_allow_and_a_grant_beats_both_for_its_callers() {
        let f = filter(json!({
            "allow": ["search*", "read_file", "admin_*"],
            "deny": ["admin_*", "search_private"],
            "grants": [{ "scopes": ["admin"], "allow": ["admin_*"] }, { "subjects": ["carol"], "allow": ["write_file"] }],
        }));
        let anyone = Caller::default();
        let admin = Caller { scopes: vec!["read".into(), "admin".into()], ..Caller::default() };
        let carol = Caller { subject: Some("carol".into()), ..Caller::default() };
        assert!(f.admits(&anyone, "search_docs"));
        assert!(!f.admits(&anyone, "search_private"));
        assert!(!f.admits(&anyone, "admin_drop"));
        assert!(!f.admits(&anyone, "write_file"), "not in allow");
        assert!(f.admits(&admin, "admin_drop"));
        assert!(!f.admits(&admin, "write_file"));
        assert!(f.admits(&carol, "write_file"));
        assert!(!f.admits(&carol, "admin_drop"));
    }

    #[test]
    fn configs_that_mean_nothing_are_refused() {
        let empty: Filter = serde_json::from_value(json!({})).unwrap();
        assert!(empty.check().is_err());
        let nobody: Filter = serde_json::from_value(json!({ "grants": [{ "allow": ["x"] }] })).unwrap();
        assert!(nobody.check().unwrap_err().contains("no one"));
        assert!(serde_json::from_value::<Filter>(json!({ "allow": ["["] })).is_err());
    }
}
