#!/usr/bin/env bash
# Sets up and runs the gateway on the sample that ships with the project (examples/sample.yaml):
# the MCP reference server "everything" over stdio at http://127.0.0.1:8080/everything/mcp, and
# the Petstore REST API as an MCP server at http://127.0.0.1:8080/petstore/mcp.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
cargo build --release -p tollgate --locked
python3 examples/petstore-backend.py 9000 &
backend=$!
trap 'kill $backend 2>/dev/null' EXIT
target/release/tollgate serve --config examples/sample.yaml
