//! Builds the standard policies (`policies/`, a workspace of their own) and embeds them, so
//! users name them in the config without any build step of their own. They get their own
//! target directory: a nested cargo on ours would wait on its lock forever.
//!
//! They are built for `wasm32-unknown-unknown` and made components here (`wit-component`), so
//! they import the policy contract and nothing else: no WASI, whose imports a `wasm32-wasip2`
//! build links (and whose adapter module every instance would carry) though a policy uses none.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let host = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let policies = host.join("../policies");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    let out = out_dir.join("standard.rs");
    println!("cargo:rerun-if-changed={}", policies.join("Cargo.toml").display());
    println!("cargo:rerun-if-changed={}", host.join("../sdk/src").display());
    println!("cargo:rerun-if-changed={}", host.join("../wit").display());
    // The console's built assets, which `rust-embed` includes: their changes are tracked
    // through the files it includes; a first build of them through the directory appearing.
    let dist = host.join("../console/dist");
    let watched = if dist.is_dir() { dist } else { host.join("../console") };
    println!("cargo:rerun-if-changed={}", watched.display());
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
            .args(["build", "--release", "--target", "wasm32-unknown-unknown"])
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTFLAGS")
            // `cargo clippy` on the workspace must not lint (and so rebuild) the components:
            // they are linted, and built, on their own.
            .env_remove("RUSTC_WORKSPACE_WRAPPER")
            .env_remove("CLIPPY_ARGS")
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the standard policies failed (is the wasm32-unknown-unknown target installed? scripts/setup.sh adds it)");
        for name in &names {
            let core = target.join("wasm32-unknown-unknown/release").join(format!("{}.wasm", name.replace('-', "_")));
            let component = componentize(&core, &out_dir.join(format!("{name}.wasm")));
            writeln!(table, "    ({name:?}, include_bytes!({:?}) as &[u8]),", component.display().to_string()).expect("write to a string");
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

/// Wraps a core module in a component whose imports and exports are the ones its `wit-bindgen`
/// metadata names, and writes it to `to`.
fn componentize(core: &Path, to: &Path) -> PathBuf {
    let bytes = std::fs::read(core).unwrap_or_else(|e| panic!("{} was not built: {e}", core.display()));
    let component = wit_component::ComponentEncoder::default()
        .module(&bytes)
        .and_then(|e| e.validate(true).encode())
        .unwrap_or_else(|e| panic!("{} cannot be made a component: {e:#}", core.display()));
    std::fs::write(to, component).expect("write the component");
    to.to_path_buf()
}
