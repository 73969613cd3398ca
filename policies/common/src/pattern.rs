//! Tool names and globs (`search`, `admin_*`, `fs.?ead`).
//!
//! Built on `glob::Pattern` (the rust-lang crate): small when compiled to Wasm, unlike
//! `globset`, which pulls in a regex engine for what tool names never need.

use glob::Pattern;
use serde::{Deserialize, Deserializer, de};

/// A list of names and globs; a name matches if any entry does.
#[derive(Debug, Clone, Default)]
pub struct Patterns(Vec<Pattern>);

impl Patterns {
    pub fn new(texts: &[String]) -> Result<Patterns, String> {
        texts
            .iter()
            .map(|t| {
                if t.is_empty() {
                    return Err("a tool pattern must not be empty".to_owned());
                }
                Pattern::new(t).map_err(|e| format!("'{t}' is not a valid pattern: {e}"))
            })
            .collect::<Result<_, _>>()
            .map(Patterns)
    }
    pub fn matches(&self, name: &str) -> bool {
        self.0.iter().any(|p| p.matches(name))
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for Patterns {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Patterns::new(&Vec::<String>::deserialize(d)?).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(list: &[&str]) -> Patterns {
        Patterns::new(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn names_and_globs_match_whole_names() {
        let ps = p(&["search", "admin_*", "fs.?ead"]);
        assert!(ps.matches("search"));
        assert!(!ps.matches("search2"), "a plain name is not a prefix");
        assert!(ps.matches("admin_drop"));
        assert!(ps.matches("fs.read"));
        assert!(!ps.matches("fs.write"));
        assert!(!p(&[]).matches("search"));
        assert!(Patterns::new(&["[".into()]).is_err());
        assert!(Patterns::new(&["".into()]).is_err());
    }
}
