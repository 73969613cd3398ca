//! `tollgate policy build DIR`: builds a policy project into a component, whatever its
//! language, and prints the component's path last.
//!
//! - Rust (a `Cargo.toml`): `cargo build --release --target wasm32-wasip2`.
//! - Python (an `app.py`): componentize-py (`COMPONENTIZE_PY`, else on `PATH`), against the
//!   contract this binary speaks, into `DIR/<dir name>.wasm`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0} is not a policy project: expected a Cargo.toml (Rust) or an app.py (Python)")]
    Unknown(PathBuf),
    #[error("cannot run {tool}: {source} ({hint})")]
    Tool { tool: String, source: std::io::Error, hint: &'static str },
    #[error("{0} failed; its output is above")]
    Failed(String),
    #[error("{0}")]
    Other(String),
}

/// Builds the project in `dir`; the component's path.
pub fn build(dir: &Path) -> Result<PathBuf, BuildError> {
    if dir.join("Cargo.toml").is_file() {
        rust(dir)
    } else if dir.join("app.py").is_file() {
        python(dir)
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

fn python(dir: &Path) -> Result<PathBuf, BuildError> {
    let tool = std::env::var("COMPONENTIZE_PY").unwrap_or_else(|_| "componentize-py".into());
    let dir = std::fs::canonicalize(dir).map_err(|e| BuildError::Other(format!("{}: {e}", dir.display())))?;
    let name = dir.file_name().map_or_else(|| "policy".into(), |n| n.to_string_lossy().into_owned());
    let out = dir.join(format!("{name}.wasm"));
    // The contract this binary speaks, so the component matches the gateway that built it.
    let wit = std::env::temp_dir().join(format!("tollgate-wit-{}", std::process::id()));
    std::fs::create_dir_all(&wit)
        .and_then(|()| std::fs::write(wit.join("policy.wit"), crate::scaffold::CONTRACT))
        .map_err(|e| BuildError::Other(e.to_string()))?;
    let mut cmd = Command::new(&tool);
    cmd.current_dir(&dir).arg("-d").arg(&wit).args(["-w", "gateway-policy", "componentize", "app", "-o"]).arg(&out);
    let built = run(cmd, "componentize-py", "pip install componentize-py (scripts/setup.sh installs it in tests/interop/.venv)");
    let _ = std::fs::remove_dir_all(&wit);
    built?;
    Ok(out)
}
