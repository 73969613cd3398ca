//! Versions of a server: several side by side, each in the shape of a plain server (its own
//! backend and policy chain), one of them the default, and maybe one in preview for a share of
//! new sessions or for chosen subscriptions.

use std::collections::{BTreeSet, HashSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::validate::{Problems, check_backend, check_name};
use super::{BackendConfig, Config, Locator, PayloadLog, PolicyBinding, Problem, ServerConfig};

/// One version of a server, reached at `/{server}/{name}/mcp`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionConfig {
    /// The version's name in its URL: 1-64 of a-z, 0-9, '-' and '_'.
    pub name: String,
    /// The server's description when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where this version's traffic goes.
    pub backend: BackendConfig,
    /// This version's own chain: versions differ in policies as much as in tools.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<PolicyBinding>,
    /// The server's `payload_log` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_log: Option<PayloadLog>,
    /// Serves no one: requests get 410 with the version to use instead.
    #[serde(default, skip_serializing_if = "is_false")]
    pub retired: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The version some new sessions reach instead of the default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewConfig {
    /// A version's `name`: not the default, not retired.
    pub version: String,
    /// Percent of new sessions (0 to 100) that reach the preview.
    #[serde(default)]
    pub share: u32,
    /// Subscription ids whose new sessions always reach the preview.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<String>,
}

/// Which version serves whom: the part of a versioned server the management API changes at
/// run time, without a restart.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    /// The version new sessions reach, unless the preview takes them.
    pub default_version: String,
    /// The version a share of new sessions, and chosen subscriptions, reach instead.
    #[serde(default)]
    pub preview: Option<PreviewConfig>,
    /// Versions no one is served by: their requests get 410 naming the version to use.
    #[serde(default)]
    pub retired: BTreeSet<String>,
}

impl Routing {
    /// The routing a loaded server declares; `None` for a server without versions.
    pub fn of(server: &ServerConfig) -> Option<Routing> {
        if server.versions.is_empty() {
            return None;
        }
        Some(Routing {
            default_version: server.default_version.clone().unwrap_or_else(|| first_serving(server).unwrap_or_default()),
            preview: server.preview.clone(),
            retired: server.versions.iter().filter(|v| v.retired).map(|v| v.name.clone()).collect(),
        })
    }

    /// Writes this routing into `server` as the file would say it.
    pub fn write_into(&self, server: &mut ServerConfig) {
        server.default_version = Some(self.default_version.clone());
        server.preview = self.preview.clone();
        for v in &mut server.versions {
            v.retired = self.retired.contains(&v.name);
        }
    }
}

fn first_serving(server: &ServerConfig) -> Option<String> {
    server.versions.iter().find(|v| !v.retired).map(|v| v.name.clone())
}

/// What serves requests: a plain server, or one version of a versioned one, in the shape of a
/// plain server, so backends, chains and sessions need not know about versions.
pub struct Served {
    pub version: Option<String>,
    /// Where it sits in the file, after `servers[i]`: empty, or `.versions[k]`.
    pub at: String,
    pub config: ServerConfig,
}

impl Served {
    /// Names it among everything served: `docs`, or `docs@v2`.
    pub fn key(&self) -> String {
        version_key(&self.config.name, self.version.as_deref())
    }
}

/// `docs` or `docs@v2`; `@` cannot be part of a server or version name.
pub fn version_key(server: &str, version: Option<&str>) -> String {
    match version {
        Some(v) => format!("{server}@{v}"),
        None => server.to_owned(),
    }
}

impl ServerConfig {
    /// The server itself, or each of its versions.
    pub fn served(&self) -> Vec<Served> {
        if self.versions.is_empty() {
            return vec![Served { version: None, at: String::new(), config: self.clone() }];
        }
        self.versions
            .iter()
            .enumerate()
            .map(|(k, v)| Served {
                version: Some(v.name.clone()),
                at: format!(".versions[{k}]"),
                config: ServerConfig {
                    name: self.name.clone(),
                    description: v.description.clone().or_else(|| self.description.clone()),
                    backend: v.backend.clone(),
                    policies: v.policies.clone(),
                    payload_log: v.payload_log.clone().or_else(|| self.payload_log.clone()),
                    versions: Vec::new(),
                    default_version: None,
                    preview: None,
                    max_sessions: self.max_sessions,
                    compose: None,
                },
            })
            .collect()
    }
}

/// The checks of one server's versions, under `at` (`servers[i]`).
pub(super) fn check(out: &mut Problems, at: &str, server: &ServerConfig) {
    if server.versions.is_empty() {
        if server.default_version.is_some() {
            out.push(&format!("{at}.default_version"), "a server without `versions` has no version to choose");
        }
        if server.preview.is_some() {
            out.push(&format!("{at}.preview"), "a server without `versions` has no version to preview");
        }
        return;
    }
    if !server.backend.is_unset() {
        out.push(&format!("{at}.backend"), "a server with `versions` has no backend of its own: each version names its backend");
    }
    if !server.policies.is_empty() {
        out.push(&format!("{at}.policies"), "a server with `versions` has no chain of its own: each version lists its policies");
    }
    let mut seen = HashSet::new();
    for (k, v) in server.versions.iter().enumerate() {
        let here = format!("{at}.versions[{k}]");
        check_name(out, &format!("{here}.name"), &v.name, "version");
        if !seen.insert(v.name.as_str()) {
            out.push(&format!("{here}.name"), &format!("version name '{}' is already used", v.name));
        }
        check_backend(out, &format!("{here}.backend"), &v.backend);
        super::policy::check(out, &format!("{here}.policies"), &v.policies);
        if let Some(p) = &v.payload_log {
            super::telemetry::check_payload(out, &format!("{here}.payload_log"), p);
        }
    }
    check_choice(out, at, server);
}

/// The default and the preview name versions that serve, and the share is a percentage.
fn check_choice(out: &mut Problems, at: &str, server: &ServerConfig) {
    let names: Vec<&str> = server.versions.iter().map(|v| v.name.as_str()).collect();
    let retired = |name: &str| server.versions.iter().any(|v| v.name == name && v.retired);
    let unknown = |name: &str| format!("no version is named '{name}' (versions: {})", names.join(", "));
    let default = match &server.default_version {
        Some(d) => {
            let place = format!("{at}.default_version");
            if !names.contains(&d.as_str()) {
                out.push(&place, &unknown(d));
            } else if retired(d) {
                out.push(&place, &format!("version '{d}' is retired: the default must be a version that serves"));
            }
            Some(d.clone())
        }
        None => {
            let first = first_serving(server);
            if first.is_none() {
                out.push(&format!("{at}.versions"), "every version is retired: at least one must serve");
            }
            first
        }
    };
    let Some(p) = &server.preview else { return };
    let place = format!("{at}.preview.version");
    if !names.contains(&p.version.as_str()) {
        out.push(&place, &unknown(&p.version));
    } else if retired(&p.version) {
        out.push(&place, &format!("version '{}' is retired: a preview must be a version that serves", p.version));
    } else if default.as_deref() == Some(p.version.as_str()) {
        out.push(&place, &format!("version '{}' is the default already: a preview names another version", p.version));
    }
    if p.share > 100 {
        out.push(&format!("{at}.preview.share"), &format!("{} is not a percentage: use 0 to 100", p.share));
    }
    for (k, s) in p.subscriptions.iter().enumerate() {
        if s.trim().is_empty() {
            out.push(&format!("{at}.preview.subscriptions[{k}]"), "a subscription id must not be empty");
        }
    }
}

/// A routing sent to the management API for `server`, checked in the words `tollgate validate`
/// uses, its places under `routing`.
pub fn check_routing(server: &ServerConfig, routing: &Routing) -> Vec<Problem> {
    let locator = Locator::new("");
    let mut out = Problems::new(&locator);
    if server.versions.is_empty() {
        out.push("routing", &format!("server '{}' has no versions", server.name));
        return out.into_list();
    }
    for (k, r) in routing.retired.iter().enumerate() {
        if !server.versions.iter().any(|v| &v.name == r) {
            let names: Vec<&str> = server.versions.iter().map(|v| v.name.as_str()).collect();
            out.push(&format!("routing.retired[{k}]"), &format!("no version is named '{r}' (versions: {})", names.join(", ")));
        }
    }
    let mut changed = server.clone();
    routing.write_into(&mut changed);
    check_choice(&mut out, "routing", &changed);
    out.into_list()
}

/// Names the default of every versioned server that left it unset, so what runs (and what
/// `tollgate export` writes) says which version it is.
pub(super) fn settle_defaults(config: &mut Config) {
    for s in &mut config.servers {
        settle_default(s);
    }
}

pub(super) fn settle_default(s: &mut ServerConfig) {
    if !s.versions.is_empty() && s.default_version.is_none() {
        s.default_version = first_serving(s);
    }
}
