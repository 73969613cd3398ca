//! Builds the standard policies (`policies/`, a workspace of their own) for wasm32-wasip2 and
//! embeds them, so users name them in the config without any build step of their own.
//! They get their own target directory: a nested cargo on ours would wait on its lock forever.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let host = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let policies = host.join("../policies");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("standard.rs");
    println!("cargo:rerun-if-changed={}", policies.join("Cargo.toml").display());
    println!("cargo:rerun-if-changed={}", host.join("../sdk/src").display());
    println!("cargo:rerun-if-changed={}", host.join("../wit").display());
    let names = members(&policies);
    for name in &names {
        println!("cargo:rerun-if-changed={}", policies.join(name).join("src").display());
        println!("cargo:rerun-if-changed={}", policies.join(name).join("Cargo.toml").display());
    }
    let mut table = String::from("&[\n");
    if !names.is_empty() {
        let target = policies.join("target");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(&policies)
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTFLAGS")
            // `cargo clippy` on the workspace must not lint (and so rebuild) the components:
            // they are linted, and built, on their own.
            .env_remove("RUSTC_WORKSPACE_WRAPPER")
            .env_remove("CLIPPY_ARGS")
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the standard policies failed (is the wasm32-wasip2 target installed? scripts/setup.sh adds it)");
        for name in &names {
            let wasm = target.join("wasm32-wasip2/release").join(format!("{}.wasm", name.replace('-', "_")));
            assert!(wasm.exists(), "{} was not built", wasm.display());
            writeln!(table, "    ({name:?}, include_bytes!({:?}) as &[u8]),", wasm.display().to_string()).expect("write to a string");
        }
    }
    table.push(']');
    std::fs::write(&out, table).expect("write the policy table");
}

/// The policy crates: members of `policies/` that build a component (`cdylib`).
fn members(policies: &Path) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(policies) else { return Vec::new() };
    let mut names: Vec<String> = dir
        .flatten()
        .filter(|e| std::fs::read_to_string(e.path().join("Cargo.toml")).is_ok_and(|t| t.contains("cdylib")))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}
