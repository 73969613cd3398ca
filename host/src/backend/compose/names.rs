//! What a virtual session has learned of its members' items: which member owns a name or a
//! URI, by the name clients see, and the member's own name for it; and the cursors that carry
//! a listing's place in every member.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// The four lists a virtual server merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum List {
    Tools,
    Prompts,
    Resources,
    Templates,
}

impl List {
    pub fn of(method: &str) -> Option<List> {
        Some(match method {
            "tools/list" => List::Tools,
            "prompts/list" => List::Prompts,
            "resources/list" => List::Resources,
            "resources/templates/list" => List::Templates,
            _ => return None,
        })
    }

    pub fn method(self) -> &'static str {
        match self {
            List::Tools => "tools/list",
            List::Prompts => "prompts/list",
            List::Resources => "resources/list",
            List::Templates => "resources/templates/list",
        }
    }

    /// The field of the answer that holds the items.
    pub fn field(self) -> &'static str {
        match self {
            List::Tools => "tools",
            List::Prompts => "prompts",
            List::Resources => "resources",
            List::Templates => "resourceTemplates",
        }
    }

    /// What the items are called in messages.
    pub fn noun(self) -> &'static str {
        match self {
            List::Tools => "tool",
            List::Prompts => "prompt",
            List::Resources => "resource",
            List::Templates => "resource template",
        }
    }

    /// The member capability that says it has such a list.
    pub fn capability(self) -> &'static str {
        match self {
            List::Tools => "tools",
            List::Prompts => "prompts",
            List::Resources | List::Templates => "resources",
        }
    }
}

/// Owners learned from the members' lists. The first member to show a name keeps it.
#[derive(Default)]
pub struct Learned {
    /// By list and outward name: the member and its own name.
    names: HashMap<(List, String), (usize, String)>,
    /// Resource URIs, by URI.
    uris: HashMap<String, usize>,
    /// Resource templates: the URI template and its member, in the order learned.
    templates: Vec<(String, usize)>,
    /// When each list was last followed to find an owner.
    walked: HashMap<List, std::time::Instant>,
}

/// A list is followed again to find an owner at most this often (unless a member says it
/// changed), so calls naming nothing cost the members little.
const WALK_AGAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether an item was taken into a merged list.
pub enum Taken {
    Yes,
    /// Another member already shows this name (or URI): the item is hidden.
    Collides(usize),
}

impl Learned {
    /// Notes that `member` shows `outward` (its own `own`) in `list`.
    pub fn name(&mut self, list: List, outward: &str, member: usize, own: &str) -> Taken {
        match self.names.get(&(list, outward.to_owned())) {
            Some((m, _)) if *m != member => Taken::Collides(*m),
            _ => {
                self.names.insert((list, outward.to_owned()), (member, own.to_owned()));
                Taken::Yes
            }
        }
    }

    pub fn uri(&mut self, uri: &str, member: usize) -> Taken {
        match self.uris.get(uri) {
            Some(m) if *m != member => Taken::Collides(*m),
            _ => {
                self.uris.insert(uri.to_owned(), member);
                Taken::Yes
            }
        }
    }

    pub fn template(&mut self, template: &str, member: usize) {
        if !self.templates.iter().any(|(t, _)| t == template) {
            self.templates.push((template.to_owned(), member));
        }
    }

    /// Whether `list` may be followed now to find an owner; if so, notes that it is.
    pub fn may_walk(&mut self, list: List) -> bool {
        if self.walked.get(&list).is_some_and(|at| at.elapsed() < WALK_AGAIN) {
            return false;
        }
        self.walked.insert(list, std::time::Instant::now());
        true
    }

    /// Member `member` says its `list` changed: what it showed there is learned again.
    pub fn forget(&mut self, list: List, member: usize) {
        self.walked.remove(&list);
        self.names.retain(|(l, _), (m, _)| !(*l == list && *m == member));
        match list {
            List::Resources => self.uris.retain(|_, m| *m != member),
            List::Templates => self.templates.retain(|(_, m)| *m != member),
            _ => {}
        }
    }

    /// The member and its own name for an outward name.
    pub fn owner(&self, list: List, outward: &str) -> Option<(usize, String)> {
        self.names.get(&(list, outward.to_owned())).cloned()
    }

    /// The member a URI belongs to: listed as a resource, a template's own spelling, or
    /// matched by a template.
    pub fn owner_of_uri(&self, uri: &str) -> Option<usize> {
        if let Some(m) = self.uris.get(uri) {
            return Some(*m);
        }
        if let Some((_, m)) = self.templates.iter().find(|(t, _)| t == uri) {
            return Some(*m);
        }
        self.templates.iter().find(|(t, _)| matches_template(t, uri)).map(|(_, m)| *m)
    }
}

/// Whether `uri` is one of the URIs an RFC 6570 template describes: its literal parts in
/// order, each expression standing for at least one character.
pub fn matches_template(template: &str, uri: &str) -> bool {
    let mut tokens = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else { return false };
        if open > 0 {
            tokens.push(Some(&rest[..open]));
        }
        tokens.push(None);
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        tokens.push(Some(rest));
    }
    fn from(tokens: &[Option<&str>], s: &str) -> bool {
        match tokens.split_first() {
            None => s.is_empty(),
            Some((Some(literal), rest)) => s.strip_prefix(literal).is_some_and(|r| from(rest, r)),
            Some((None, rest)) => s.char_indices().skip(1).map(|(i, _)| i).chain(std::iter::once(s.len())).filter(|i| *i > 0).any(|i| from(rest, &s[i..])),
        }
    }
    from(&tokens, uri)
}

/// Where a listing stands: for each member with more to give, its own cursor (`None` for its
/// first page). Clients see it as base64url JSON, `[{"m": 0, "c": "..."}, ...]`.
pub type Place = Vec<(usize, Option<Value>)>;

pub fn encode(place: &Place) -> String {
    let list: Vec<Value> = place.iter().map(|(m, c)| serde_json::json!({ "m": m, "c": c })).collect();
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&list).expect("a list serializes"))
}

/// A cursor this gateway gave, or `None` for anything else.
pub fn decode(cursor: &str, members: usize) -> Option<Place> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let list: Vec<Value> = serde_json::from_slice(&bytes).ok()?;
    list.into_iter()
        .map(|v| {
            let m = usize::try_from(v.get("m")?.as_u64()?).ok().filter(|m| *m < members)?;
            Some((m, v.get("c").filter(|c| !c.is_null()).cloned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_the_uris_they_describe() {
        assert!(matches_template("test://static/resource/{id}", "test://static/resource/12"));
        assert!(!matches_template("test://static/resource/{id}", "test://static/resource/"));
        assert!(!matches_template("test://static/resource/{id}", "test://other/12"));
        assert!(matches_template("repo://{owner}/{name}/readme", "repo://a/b/readme"));
        assert!(!matches_template("repo://{owner}/{name}/readme", "repo://a/b/license"));
        assert!(matches_template("file:///fixed", "file:///fixed"));
        assert!(!matches_template("file:///fixed", "file:///fixed/more"));
    }

    #[test]
    fn the_first_member_keeps_a_name_and_a_change_lets_the_list_be_followed_again() {
        let mut l = Learned::default();
        assert!(matches!(l.name(List::Tools, "echo", 0, "echo"), Taken::Yes));
        assert!(matches!(l.name(List::Tools, "echo", 1, "echo"), Taken::Collides(0)));
        assert_eq!(l.owner(List::Tools, "echo"), Some((0, "echo".to_owned())));
        assert!(l.may_walk(List::Tools));
        assert!(!l.may_walk(List::Tools), "not twice in a row");
        assert!(l.may_walk(List::Prompts), "each list on its own");
        l.forget(List::Tools, 0);
        assert_eq!(l.owner(List::Tools, "echo"), None);
        assert!(matches!(l.name(List::Tools, "echo", 1, "echo"), Taken::Yes), "the other member may show it now");
        assert!(l.may_walk(List::Tools), "a change lets the list be followed again");
        l.template("demo://item/{id}", 1);
        assert_eq!(l.owner_of_uri("demo://item/7"), Some(1));
    }

    #[test]
    fn a_cursor_carries_every_member_s_place_and_refuses_foreign_ones() {
        let place = vec![(0, Some(Value::from("abc"))), (2, None)];
        let c = encode(&place);
        assert_eq!(decode(&c, 3), Some(place));
        assert_eq!(decode(&c, 2), None, "a member index past the members");
        assert_eq!(decode("not base64 !", 3), None);
    }
}
