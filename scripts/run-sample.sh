#!/usr/bin/env bash
# Sets up and runs the gateway on the sample that ships with the project
# (examples/sample.yaml): the reference MCP server "everything" over stdio.
# Connect any MCP client to http://127.0.0.1:8080/everything/mcp (or /everything/sse).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
cargo build --release -p tollgate --locked
exec target/release/tollgate serve --config examples/sample.yaml
