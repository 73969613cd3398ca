//! Virtual servers (`compose`): other servers of the file served as one, each member's tools,
//! prompts and resource templates under its prefix (or renamed one by one).

use std::collections::{BTreeMap, HashMap};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::validate::Problems;
use super::{Config, Locator, Problem, ServerConfig};

/// One member of a virtual server: another server of the file (or one of its versions).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComposeMember {
    /// The member: the name of another server of this file, itself not virtual.
    pub server: String,
    /// One version of the member (`/{server}/{version}/mcp`); unset, the path of the server
    /// itself (its default version, when it has versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Put before the names of the member's tools, prompts and resource templates
    /// (`docs_` makes `search` `docs_search`). Unset, names stay as the member gives them,
    /// and must not collide with other members' names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Names given one by one, member's name to virtual name (`{ search: find }`); in place
    /// of the prefix for those.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rename: BTreeMap<String, String>,
}

impl ComposeMember {
    /// The name clients see for the member's item `name`.
    pub fn outward(&self, name: &str) -> String {
        match self.rename.get(name) {
            Some(r) => r.clone(),
            None => format!("{}{name}", self.prefix.as_deref().unwrap_or("")),
        }
    }

    /// The member's own name for a name clients see, if it is one of this member's by its
    /// spelling (a renamed item, or a name under the prefix).
    pub fn inward(&self, name: &str) -> Option<String> {
        if let Some((own, _)) = self.rename.iter().find(|(_, v)| v.as_str() == name) {
            return Some(own.clone());
        }
        let rest = name.strip_prefix(self.prefix.as_deref().unwrap_or(""))?;
        // A renamed item answers to its new name only.
        (!rest.is_empty() && !self.rename.contains_key(rest)).then(|| rest.to_owned())
    }

    /// `docs`, or `docs@v2`: the member as the logs name it.
    pub fn key(&self) -> String {
        super::version_key(&self.server, self.version.as_deref())
    }
}

/// Tool and prompt names as MCP allows them: 1-128 of A-Z, a-z, 0-9, `_`, `-` and `.`.
fn is_item_name(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// A virtual server's own checks, at `at` (`servers[2]`): what it may not have besides
/// `compose`, and its members.
pub(super) fn check(out: &mut Problems, config: &Config, at: &str, server: &ServerConfig) {
    let Some(members) = &server.compose else { return };
    let place = format!("{at}.compose");
    if !server.backend.is_unset() {
        out.push(&format!("{at}.backend"), "a virtual server (`compose`) has no backend of its own: its members have theirs");
    }
    if !server.versions.is_empty() {
        out.push(&format!("{at}.versions"), "a virtual server (`compose`) has no versions yet; its members may (`{ server, version }`)");
    }
    if members.is_empty() {
        out.push(&place, "list at least one member server");
    }
    if config.tls.is_some() {
        out.push(&place, "a virtual server reaches its members through the client listener over loopback, which is not served over `tls` yet");
    }
    for (k, m) in members.iter().enumerate() {
        let here = format!("{place}[{k}]");
        if m.server == server.name {
            out.push(&format!("{here}.server"), "a virtual server cannot be its own member");
            continue;
        }
        match config.servers.iter().find(|s| s.name == m.server) {
            None => out.push(&format!("{here}.server"), &format!("no server is named '{}'", m.server)),
            Some(s) if s.compose.is_some() => {
                out.push(&format!("{here}.server"), &format!("'{}' is a virtual server itself: members are servers with a backend", m.server))
            }
            Some(s) => {
                if let Some(v) = &m.version
                    && !s.versions.iter().any(|x| &x.name == v)
                {
                    out.push(&format!("{here}.version"), &format!("server '{}' has no version '{v}'", m.server));
                }
            }
        }
        if let Some(p) = &m.prefix
            && !is_item_name(p, 64)
        {
            out.push(&format!("{here}.prefix"), &format!("'{p}' is not a valid prefix: use 1-64 of A-Z, a-z, 0-9, '_', '-' and '.'"));
        }
        for (own, new) in &m.rename {
            if !is_item_name(new, 128) {
                out.push(&format!("{here}.rename.{own}"), &format!("'{new}' is not a valid name: use 1-128 of A-Z, a-z, 0-9, '_', '-' and '.'"));
            }
        }
    }
}

/// Collisions among the names known at load: those of OpenAPI members, whose tools the
/// document says. Names of other members are known only when they answer; a collision among
/// them hides the later member's item at run time.
pub(super) fn check_names(config: &Config, locator: &Locator) -> Vec<Problem> {
    let mut out = Problems::new(locator);
    for (i, server) in config.servers.iter().enumerate() {
        let Some(members) = &server.compose else { continue };
        let mut owners: HashMap<String, usize> = HashMap::new();
        for (k, m) in members.iter().enumerate() {
            let here = format!("servers[{i}].compose[{k}]");
            let Some(tools) = known_tools(config, m) else { continue };
            for own in m.rename.keys().filter(|own| !tools.contains(own)) {
                out.push(&format!("{here}.rename.{own}"), &format!("'{}' has no tool '{own}'", m.server));
            }
            for tool in &tools {
                let name = m.outward(tool);
                match owners.get(&name) {
                    Some(&first) => out.push(
                        &here,
                        &format!(
                            "tool '{name}' of '{}' collides with the one of compose[{first}] ('{}'): give one of them a prefix or a rename",
                            m.server, members[first].server
                        ),
                    ),
                    None => {
                        owners.insert(name, k);
                    }
                }
            }
        }
    }
    out.into_list()
}

/// The tools of an OpenAPI member, as its document (loaded by validation) gives them.
fn known_tools(config: &Config, m: &ComposeMember) -> Option<Vec<String>> {
    let s = config.servers.iter().find(|s| s.name == m.server)?;
    let backend = match (&m.version, s.versions.is_empty()) {
        (_, true) => &s.backend,
        (Some(v), false) => &s.versions.iter().find(|x| &x.name == v)?.backend,
        (None, false) => {
            let d = s.default_version.as_deref();
            &s.versions.iter().find(|x| Some(x.name.as_str()) == d).or_else(|| s.versions.iter().find(|x| !x.retired))?.backend
        }
    };
    let catalog = backend.openapi.as_ref()?.loaded.get()?;
    Some(catalog.tools.iter().map(|t| t.name.clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        Config::parse(text).err().unwrap_or_default().iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn members_are_servers_of_the_file_with_a_backend_of_their_own() {
        let text = "\
servers:
  - name: docs
    versions:
      - { name: v1, backend: { http: http://127.0.0.1:1/mcp } }
  - name: inner
    compose: [{ server: docs }]
  - name: outer
    backend: { http: http://127.0.0.1:2/mcp }
    compose:
      - { server: inner }
      - { server: docs, version: v9 }
      - { server: nowhere, prefix: 'bad prefix' }
      - { server: docs, rename: { search: 'not ok' } }
      - { server: outer }
";
        let shown = problems(text);
        for expected in [
            "line 8: servers[2].backend: a virtual server (`compose`) has no backend of its own",
            "line 10: servers[2].compose[0].server: 'inner' is a virtual server itself",
            "line 11: servers[2].compose[1].version: server 'docs' has no version 'v9'",
            "servers[2].compose[2].server: no server is named 'nowhere'",
            "servers[2].compose[2].prefix: 'bad prefix' is not a valid prefix",
            "servers[2].compose[3].rename.search: 'not ok' is not a valid name",
            "servers[2].compose[4].server: a virtual server cannot be its own member",
        ] {
            assert!(shown.iter().any(|p| p.starts_with(expected) || p.contains(expected)), "{expected}\n{shown:#?}");
        }
        assert_eq!(shown.len(), 7, "{shown:#?}");
    }

    #[test]
    fn a_virtual_server_lists_at_least_one_member() {
        let empty = problems("servers:\n  - name: w\n    compose: []\n");
        assert!(empty.iter().any(|p| p.contains("servers[0].compose: list at least one member server")), "{empty:#?}");
        let ok = Config::parse("servers:\n  - name: a\n    backend: { http: http://127.0.0.1:1/mcp }\n  - name: w\n    compose: [{ server: a, prefix: a_ }]\n");
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn names_go_out_under_the_prefix_or_the_rename_and_come_back() {
        let m = ComposeMember { server: "s".into(), version: None, prefix: Some("s_".into()), rename: BTreeMap::from([("search".into(), "find".into())]) };
        assert_eq!(m.outward("echo"), "s_echo");
        assert_eq!(m.outward("search"), "find");
        assert_eq!(m.inward("s_echo").as_deref(), Some("echo"));
        assert_eq!(m.inward("find").as_deref(), Some("search"));
        assert_eq!(m.inward("s_search"), None, "a renamed item answers to its new name only");
        assert_eq!(m.inward("echo"), None);
        let bare = ComposeMember { prefix: None, rename: BTreeMap::new(), ..m };
        assert_eq!(bare.inward("echo").as_deref(), Some("echo"));
    }
}
