#!/usr/bin/env bash
# Sets up and runs the gateway on the sample that ships with the project (examples/sample.yaml):
# the MCP reference server "everything" over stdio at http://127.0.0.1:8080/everything/mcp, and
# the Petstore REST API as an MCP server at http://127.0.0.1:8080/petstore/mcp.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "run-sample: $*" >&2; }

# The sample's ports: the gateway's, and the Petstore backend's.
for port in 8080 9000; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    say "port $port is in use on 127.0.0.1; free it (the sample serves on 8080, its Petstore backend on 9000)"
    exit 1
  fi
done

say "checking what the sample needs (a C toolchain, Rust, node, python; the reference server's npm package)"
scripts/setup.sh --sample
if [[ ! -x target/release/tollgate ]]; then
  say "building the gateway (release; the first build takes about 15 minutes on 2 cores)"
fi
cargo build --release -p tollgate --locked
python3 examples/petstore-backend.py 9000 &
backend=$!
trap 'kill $backend 2>/dev/null' EXIT
say "serving http://127.0.0.1:8080/everything/mcp, http://127.0.0.1:8080/petstore/mcp and both as one at http://127.0.0.1:8080/workspace/mcp (Ctrl-C stops)"
target/release/tollgate serve --config examples/sample.yaml
