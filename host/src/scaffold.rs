//! `tollgate policy new NAME`: a policy crate that builds out of the box. It carries a copy of
//! the SDK and of the policy contract this binary speaks, so it builds offline and matches the
//! gateway that made it, whatever is published.

mod js;
mod python;

use std::path::{Path, PathBuf};

/// The languages `tollgate policy new` writes a project in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Lang {
    #[default]
    Rust,
    Python,
    Js,
}

impl Lang {
    /// Where `tollgate policy build` puts the component of the project `name`, from its directory.
    pub fn component(self, name: &str) -> String {
        match self {
            Lang::Rust => format!("target/wasm32-wasip2/release/{}.wasm", name.replace('-', "_")),
            Lang::Python | Lang::Js => format!("{name}.wasm"),
        }
    }
}

/// The SDK and contract as this binary was built with them: (path in the SDK copy, text).
const SDK: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../../sdk/Cargo.toml")),
    ("README.md", include_str!("../../sdk/README.md")),
    ("src/lib.rs", include_str!("../../sdk/src/lib.rs")),
    ("src/exchange.rs", include_str!("../../sdk/src/exchange.rs")),
    ("src/export.rs", include_str!("../../sdk/src/export.rs")),
    ("src/host.rs", include_str!("../../sdk/src/host.rs")),
    ("src/verdict.rs", include_str!("../../sdk/src/verdict.rs")),
    ("wit/policy.wit", CONTRACT),
];

/// The policy contract (WIT) this binary speaks.
pub const CONTRACT: &str = include_str!("../../wit/policy.wit");

/// The codes and attribute names the SDK shares with the gateway, beside the SDK copy (its
/// manifest names `../vocabulary`).
const VOCABULARY: &[(&str, &str)] = &[("Cargo.toml", include_str!("../../vocabulary/Cargo.toml")), ("src/lib.rs", include_str!("../../vocabulary/src/lib.rs"))];

/// The SDK's lock file seeds the policy's, so its dependencies resolve to versions known to build.
const LOCK: &str = include_str!("../../sdk/Cargo.lock");

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("'{0}' is not a usable policy name: use lowercase letters, digits and '-', starting with a letter")]
    Name(String),
    #[error("{0} already exists; choose another name or directory")]
    Exists(PathBuf),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// Writes the project `name`, in `lang`, under `parent` and returns its directory.
pub fn new_project(parent: &Path, name: &str, lang: Lang) -> Result<PathBuf, ScaffoldError> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !valid {
        return Err(ScaffoldError::Name(name.to_owned()));
    }
    let dir = parent.join(name);
    if dir.exists() {
        return Err(ScaffoldError::Exists(dir));
    }
    let files = match lang {
        Lang::Rust => rust_files(name),
        Lang::Python => vec![
            ("app.py".into(), python::APP.to_owned()),
            ("tollgate_policy.py".into(), python::HELPERS.to_owned()),
            ("wit/policy.wit".into(), CONTRACT.to_owned()),
            ("README.md".into(), python::readme(name)),
            (".gitignore".into(), "/*.wasm\n__pycache__/\n".to_owned()),
        ],
        Lang::Js => vec![
            ("policy.js".into(), js::POLICY.to_owned()),
            ("tollgate.js".into(), js::HELPERS.to_owned()),
            ("package.json".into(), js::manifest(name)),
            ("package-lock.json".into(), js::lock(name)),
            ("wit/policy.wit".into(), CONTRACT.to_owned()),
            ("README.md".into(), js::readme(name)),
            (".gitignore".into(), "/*.wasm\nnode_modules/\n".to_owned()),
        ],
    };
    let cases = ("cases.yaml".into(), CASES.replace("<component>", &lang.component(name)));
    for (rel, text) in files.into_iter().chain([cases]) {
        let path = dir.join(rel);
        let write = || {
            std::fs::create_dir_all(path.parent().expect("a file in the project"))?;
            std::fs::write(&path, text)
        };
        write().map_err(|source| ScaffoldError::Write { path: path.clone(), source })?;
    }
    Ok(dir)
}

fn rust_files(name: &str) -> Vec<(PathBuf, String)> {
    let mut files: Vec<(PathBuf, String)> = SDK.iter().map(|(p, text)| (Path::new("tollgate-policy-sdk").join(p), (*text).to_owned())).collect();
    files.extend(VOCABULARY.iter().map(|(p, text)| (Path::new("vocabulary").join(p), (*text).to_owned())));
    files.push(("Cargo.toml".into(), manifest(name)));
    files.push(("Cargo.lock".into(), LOCK.to_owned()));
    files.push(("src/lib.rs".into(), LIB.to_owned()));
    files.push(("README.md".into(), readme(name)));
    files.push((".gitignore".into(), "/target\n".to_owned()));
    files
}

fn manifest(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
tollgate-policy-sdk = {{ path = "tollgate-policy-sdk" }}
serde = {{ version = "1", features = ["derive"] }}
serde_json = "1"

# Small, fast components: each request instantiates the policy afresh.
[profile.release]
opt-level = "s"
lto = true
strip = true
codegen-units = 1
panic = "abort"

[workspace]
"#
    )
}

fn readme(name: &str) -> String {
    let component = Lang::Rust.component(name);
    format!(
        "# {name}\n\nA Tollgate policy. Build it with\n\n```sh\nrustup target add wasm32-wasip2\ncargo build --release --target wasm32-wasip2\n```\n\ntry it offline against the cases in `cases.yaml` (the gateway's runtime and limits, no server):\n\n```sh\ntollgate policy test {component} --cases cases.yaml\n```\n\nthen bind it to a server in the gateway's config:\n\n```yaml\npolicies:\n  - policy: ./{name}/{component}\n    config:\n      blocked: [delete_everything]\n```\n\n`tollgate-policy-sdk/` is the SDK (with `vocabulary/`, the codes and attribute names it shares\nwith the gateway), and `tollgate-policy-sdk/wit/policy.wit` the contract, of the gateway that\nwrote this crate; `tollgate-policy-sdk/README.md` tells what a policy can do.\n"
    )
}

/// The template's cases, for `tollgate policy test`: what the policy does, checked offline.
const CASES: &str = r#"# tollgate policy test <component> --cases cases.yaml
config: { blocked: [delete_everything] }
cases:
  - name: a blocked tool cannot be called
    request: { method: tools/call, params: { name: delete_everything, arguments: {} } }
    expect: { verdict: deny, code: -32003 }
  - name: other tools can
    request: { method: tools/call, params: { name: echo, arguments: { text: hi } } }
    expect: { verdict: continue, params: { name: echo } }
  - name: a blocked tool is not listed
    request: { method: tools/list }
    answer:
      tools:
        - { name: echo, inputSchema: { type: object } }
        - { name: delete_everything, inputSchema: { type: object } }
    expect: { verdict: continue, tools: [echo] }
"#;

/// A working policy to start from: it hides the tools its config names, from `tools/list` and
/// from `tools/call` alike, and logs what it refused.
const LIB: &str = r#"use serde::Deserialize;
use tollgate_policy_sdk::{Exchange, Hooks, Policy, export_policy, log};

/// The binding's `config:`. Unknown keys are refused at load, so a typo fails `tollgate validate`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Tools no caller may see or call.
    #[serde(default)]
    blocked: Vec<String>,
}

struct Blocklist(Config);

impl Policy for Blocklist {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        if config.blocked.iter().any(String::is_empty) {
            return Err("blocked: tool names must not be empty".into());
        }
        Ok(Blocklist(config))
    }

    /// Only the hooks implemented here: the gateway skips the others, instance and all.
    fn hooks(&self) -> Hooks {
        Hooks::VISIBILITY
    }

    fn visible(&mut self, ex: &Exchange, tool: &str) -> bool {
        let blocked = self.0.blocked.iter().any(|b| b == tool);
        if blocked && ex.method() == "tools/call" {
            log::info(&format!("refused a call of {tool}"));
        }
        !blocked
    }
}

export_policy!(Blocklist);
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_not_make_a_crate_or_a_file_are_refused() {
        let dir = std::env::temp_dir().join(format!("tollgate-scaffold-{}", std::process::id()));
        for bad in ["", "Upper", "1st", "a b", "../escape", "trailing-"] {
            assert!(matches!(new_project(&dir, bad, Lang::Rust), Err(ScaffoldError::Name(_))), "{bad:?}");
        }
        let made = new_project(&dir, "ok-name", Lang::Rust).expect("a good name");
        assert!(made.join("tollgate-policy-sdk/wit/policy.wit").exists());
        assert!(matches!(new_project(&dir, "ok-name", Lang::Rust), Err(ScaffoldError::Exists(_))), "never overwrites");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The kits are versioned as the contract they cover, and the JavaScript helper imports the
    /// contract's interfaces at that version: a bump that forgets one fails here.
    #[test]
    fn every_kit_follows_the_contract_s_version() {
        let v = crate::policy::CONTRACT_VERSION;
        assert!(SDK[0].1.contains(&format!("\nversion = \"{v}\"")), "sdk/Cargo.toml");
        assert!(python::HELPERS.contains(&format!("__version__ = \"{v}\"")), "kits/python/tollgate_policy.py");
        assert!(js::manifest("x").contains(&format!("\"version\": \"{v}\"")), "kits/js/package.json");
        let imports: Vec<&str> = js::HELPERS.lines().filter(|l| l.starts_with("import ") && l.contains("'tollgate:policy/")).collect();
        assert_eq!(imports.len(), 6, "{imports:?}");
        assert!(imports.iter().all(|l| l.ends_with(&format!("@{v}';"))), "{imports:?}");
    }
}
