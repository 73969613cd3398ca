#!/usr/bin/env bash
# Sets up and runs the gateway on the sample that ships with the project (examples/sample.yaml):
# the MCP reference server "everything" over stdio at http://127.0.0.1:8080/everything/mcp, and
# the Petstore REST API as an MCP server at http://127.0.0.1:8080/petstore/mcp.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "run-sample: $*" >&2; }

# The sample's ports: the gateway's, and the Petstore backend's.
for port in 8080 9000 9090; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    say "port $port is in use on 127.0.0.1; free it (the sample serves on 8080, its console on 9090, its Petstore backend on 9000)"
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
# The console's admin token: yours if TOLLGATE_ADMIN_TOKEN is set, else one made for this
# machine and kept in a file only this user reads (never printed).
if [[ -z "${TOLLGATE_ADMIN_TOKEN:-}" ]]; then
  token_file=target/sample-admin-token
  if [[ ! -s "$token_file" ]]; then
    (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$token_file")
  fi
  TOLLGATE_ADMIN_TOKEN="$(cat "$token_file")"
  token_hint="the token in $token_file"
else
  token_hint="your TOLLGATE_ADMIN_TOKEN"
fi
export TOLLGATE_ADMIN_TOKEN
say "serving http://127.0.0.1:8080/everything/mcp, http://127.0.0.1:8080/petstore/mcp and both as one at http://127.0.0.1:8080/workspace/mcp (Ctrl-C stops)"
say "console: http://127.0.0.1:9090/ui/ (sign in with $token_hint)"
target/release/tollgate serve --config examples/sample.yaml
