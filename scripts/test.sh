#!/usr/bin/env bash
# Sets up everything the tests need, then runs all of them: the Rust unit and end-to-end
# suites, and the cross-SDK interop suite (TypeScript and Python clients, server-everything).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
echo "== build"
cargo build --workspace --all-targets --locked
echo "== rust tests"
cargo test --workspace --locked --no-fail-fast
echo "== examples"
for f in examples/*.yaml; do
  target/debug/tollgate validate --config "$f"
done
echo "== interop"
tests/interop/run.sh
