//! Builds the test policies in `guests/` for wasm32-wasip2 and tells the tests where they are.
//! They have their own target directory: a nested cargo on ours would wait on its lock forever.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let guests = root.join("guests");
    // Not `guests/` itself: its target directory changes on every build.
    let mut watched: Vec<PathBuf> = ["guests/Cargo.toml", "../sdk/src", "../sdk/Cargo.toml", "../wit"].iter().map(|p| root.join(p)).collect();
    for entry in std::fs::read_dir(&guests).expect("guests/ exists").flatten() {
        if entry.path().join("Cargo.toml").exists() {
            watched.extend([entry.path().join("Cargo.toml"), entry.path().join("src")]);
        }
    }
    for p in watched {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    let target = guests.join("target");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&guests)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        // `cargo clippy` on the workspace must not lint (and so rebuild) the test
        // components: they are fixtures, built as they are.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the test policies failed (rustup target add wasm32-wasip2)");
    println!("cargo:rustc-env=TOLLGATE_GUESTS={}", target.join("wasm32-wasip2/release").display());
}
