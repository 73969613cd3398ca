#!/usr/bin/env bash
# Sets up everything the tests need, then runs all of them: formatting and lints, the Rust
# unit and end-to-end suites (the layering check among them), the cross-SDK interop suite
# (TypeScript and Python clients, server-everything), and the fuzz targets, briefly.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
echo "== format and lints"
for manifest in Cargo.toml policies/Cargo.toml sdk/Cargo.toml vocabulary/Cargo.toml; do
  cargo fmt --manifest-path "$manifest" --all --check
  cargo clippy --manifest-path "$manifest" --all-targets --locked -- -D warnings
done
# The fuzz crate builds the host with coverage instrumentation; linting it would check the
# host a second time, so it is only formatted here.
cargo fmt --manifest-path fuzz/Cargo.toml --all --check
echo "== build"
cargo build --workspace --all-targets --locked
echo "== rust tests"
cargo test --workspace --locked --no-fail-fast
echo "== standard policies (their logic, natively)"
cargo test --manifest-path policies/Cargo.toml --locked --no-fail-fast
echo "== examples"
# The credentials example reads its client secret from the environment, as a deployment would;
# the cluster example its Redis and PostgreSQL URLs (validation connects to neither).
for f in examples/*.yaml examples/policies/*.yaml; do
  OAUTH_CLIENT_SECRET=example-only TOLLGATE_REDIS_URL=redis://127.0.0.1:6379/0 \
    TOLLGATE_DATABASE_URL=postgres://tollgate@127.0.0.1/tollgate \
    target/debug/tollgate validate --config "$f"
done
echo "== interop"
tests/interop/run.sh
echo "== fuzz (the readers of untrusted input, a short bounded run each)"
scripts/fuzz.sh "${FUZZ_SECONDS:-20}"

