//! `tollgate policy build DIR`: builds a policy project into a component, whatever its
//! language, and prints the component's path last.
//!
//! - Rust (a `Cargo.toml`): `cargo build --release --target wasm32-wasip2`.
//! - Python (an `app.py`): componentize-py (`COMPONENTIZE_PY`, else on `PATH`), against the
//!   contract this binary speaks, into `DIR/<dir name>.wasm`.
//! - JavaScript (a `policy.js`): componentize-js (the project's `node_modules`, else
//!   `COMPONENTIZE_JS`, else on `PATH`), against the contract this binary speaks, with only the
//!   WASI the gateway grants, into `DIR/<dir name>.wasm`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0} is not a policy project: expected a Cargo.toml (Rust), an app.py (Python) or a policy.js (JavaScript)")]
    Unknown(PathBuf),
    #[error("cannot run {tool}: {source} ({hint})")]
    Tool { tool: String, source: std::io::Error, hint: &'static str },
    #[error("{0} failed; its output is above")]
    Failed(String),
    #[error("{0}")]
    Other(String),
}

/// The build tools of the interpreted kits, when not the ones on `PATH`.
#[derive(Debug, Clone, Default)]
pub struct Tools {
    pub componentize_py: Option<std::ffi::OsString>,
    pub componentize_js: Option<std::ffi::OsString>,
}

impl Tools {
    /// As the environment names them: `COMPONENTIZE_PY`, `COMPONENTIZE_JS`.
    pub fn from_env() -> Tools {
        Tools { componentize_py: std::env::var_os("COMPONENTIZE_PY"), componentize_js: std::env::var_os("COMPONENTIZE_JS") }
    }
}

/// Builds the project in `dir`; the component's path.
pub fn build(dir: &Path) -> Result<PathBuf, BuildError> {
    build_with(dir, &Tools::from_env())
}

/// Builds the project in `dir` with these tools; the component's path.
pub fn build_with(dir: &Path, tools: &Tools) -> Result<PathBuf, BuildError> {
    if dir.join("Cargo.toml").is_file() {
        rust(dir)
    } else if dir.join("app.py").is_file() {
        python(dir, tools)
    } else if dir.join("policy.js").is_file() {
        javascript(dir, tools)
    } else {
        Err(BuildError::Unknown(dir.to_owned()))
    }
}

fn run(mut cmd: Command, tool: &str, hint: &'static str) -> Result<std::process::Output, BuildError> {
    // The tool's progress and errors go to the terminal; only its stdout is kept.
    let out = cmd.stderr(Stdio::inherit()).output().map_err(|source| BuildError::Tool { tool: tool.into(), source, hint })?;
    if !out.status.success() {
        eprint!("{}", String::from_utf8_lossy(&out.stdout));
        return Err(BuildError::Failed(tool.into()));
    }
    Ok(out)
}

fn rust(dir: &Path) -> Result<PathBuf, BuildError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let hint = "install Rust with rustup, then: rustup target add wasm32-wasip2";
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(dir).args(["build", "--release", "--target", "wasm32-wasip2"]);
    run(cmd, "cargo build", hint)?;
    let mut meta = Command::new(&cargo);
    meta.current_dir(dir).args(["metadata", "--no-deps", "--format-version", "1"]);
    let out = run(meta, "cargo metadata", hint)?;
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| BuildError::Other(format!("cargo metadata: {e}")))?;
    let target = meta["target_directory"].as_str().ok_or_else(|| BuildError::Other("cargo metadata names no target directory".into()))?;
    let manifest = std::fs::canonicalize(dir.join("Cargo.toml")).map_err(|e| BuildError::Other(e.to_string()))?;
    let lib = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["manifest_path"].as_str().map(Path::new) == Some(manifest.as_path()))
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .find(|t| t["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "cdylib")))
        .and_then(|t| t["name"].as_str().map(|n| n.replace('-', "_")))
        .ok_or_else(|| BuildError::Other("the crate has no cdylib target: a policy crate sets `crate-type = [\"cdylib\"]`".into()))?;
    Ok(Path::new(target).join("wasm32-wasip2/release").join(format!("{lib}.wasm")))
}

/// The project's directory, the component's path in it, and this binary's contract written to
/// a directory of its own (removed when dropped), so a component matches the gateway that built it.
struct Interpreted {
    dir: PathBuf,
    out: PathBuf,
    wit: PathBuf,
}

impl Interpreted {
    fn new(dir: &Path) -> Result<Interpreted, BuildError> {
        let dir = std::fs::canonicalize(dir).map_err(|e| BuildError::Other(format!("{}: {e}", dir.display())))?;
        let name = dir.file_name().map_or_else(|| "policy".into(), |n| n.to_string_lossy().into_owned());
        let out = dir.join(format!("{name}.wasm"));
        let wit = std::env::temp_dir().join(format!("tollgate-wit-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&wit)
            .and_then(|()| std::fs::write(wit.join("policy.wit"), crate::scaffold::CONTRACT))
            .map_err(|e| BuildError::Other(e.to_string()))?;
        Ok(Interpreted { dir, out, wit })
    }
}

impl Drop for Interpreted {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.wit);
    }
}

fn python(dir: &Path, tools: &Tools) -> Result<PathBuf, BuildError> {
    let tool = tools.componentize_py.clone().unwrap_or_else(|| "componentize-py".into());
    let p = Interpreted::new(dir)?;
    let mut cmd = Command::new(&tool);
    cmd.current_dir(&p.dir).arg("-d").arg(&p.wit).args(["-w", "gateway-policy", "componentize", "app", "-o"]).arg(&p.out);
    run(cmd, "componentize-py", "pip install componentize-py (scripts/setup.sh installs it in tests/interop/.venv)")?;
    Ok(p.out.clone())
}

fn javascript(dir: &Path, tools: &Tools) -> Result<PathBuf, BuildError> {
    let p = Interpreted::new(dir)?;
    let local = p.dir.join("node_modules/.bin/componentize-js");
    let tool = if local.exists() { local.into_os_string() } else { tools.componentize_js.clone().unwrap_or_else(|| "componentize-js".into()) };
    let mut cmd = Command::new(tool);
    // The gateway grants no stdio, no wasi:http and no incoming handler: a component that
    // imported them would not link.
    cmd.current_dir(&p.dir)
        .arg("policy.js")
        .arg("--wit")
        .arg(&p.wit)
        .args(["--world-name", "gateway-policy", "--disable", "stdio", "http", "fetch-event", "-o"])
        .arg(&p.out);
    run(cmd, "componentize-js", "npm install in the project (its package.json names componentize-js); scripts/setup.sh installs one in kits/js")?;
    Ok(p.out.clone())
}
