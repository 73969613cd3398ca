#!/usr/bin/env bash
# Starts a three-replica cluster on this machine, to try what docs/deploy.md describes:
# Redis (policy state) on 127.0.0.1:16379, PostgreSQL (management records) on 127.0.0.1:15432,
# the Petstore backend on :9000, and three gateways on examples/cluster.yaml:
#   replica 1: http://127.0.0.1:8081/petstore/mcp   management http://127.0.0.1:9091
#   replica 2: http://127.0.0.1:8082/petstore/mcp   management http://127.0.0.1:9092
#   replica 3: http://127.0.0.1:8083/petstore/mcp   management http://127.0.0.1:9093
# State lives under .cluster/ and survives a restart of the script; Ctrl-C stops everything.
# The admin token is TOLLGATE_ADMIN_TOKEN if set, else "cluster-admin-token".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
DIR="$ROOT/.cluster"

scripts/setup.sh
cargo build --release -p tollgate --locked
mkdir -p "$DIR"

pids=()
stop() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT INT TERM

# --- Redis: kept on disk (appendonly), so quotas outlive a restart of the cluster -----------
mkdir -p "$DIR/redis"
redis-server --port 16379 --bind 127.0.0.1 --dir "$DIR/redis" --appendonly yes --save '' --daemonize no >"$DIR/redis.log" 2>&1 &
pids+=($!)

# --- PostgreSQL: its own cluster in .cluster/pg (run as the postgres user when root) --------
pgbin="$(dirname "$(readlink -f "$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | tail -1)")")"
as_pg=()
if [[ "$(id -u)" == 0 ]]; then
  as_pg=(setpriv --reuid postgres --regid postgres --init-groups)
  mkdir -p "$DIR/pg" "$DIR/pg-socket"
  chown postgres:postgres "$DIR/pg" "$DIR/pg-socket"
  chmod 0700 "$DIR/pg"
fi
if [[ ! -f "$DIR/pg/PG_VERSION" ]]; then
  "${as_pg[@]}" "$pgbin/initdb" -D "$DIR/pg" -U tollgate -A trust -E UTF8 --locale=C >"$DIR/initdb.log"
fi
mkdir -p "$DIR/pg-socket"
"${as_pg[@]}" "$pgbin/postgres" -D "$DIR/pg" -p 15432 -k "$DIR/pg-socket" -c listen_addresses=127.0.0.1 >"$DIR/postgres.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  "$pgbin/pg_isready" -q -h 127.0.0.1 -p 15432 && break
  sleep 0.1
done
"$pgbin/psql" -h 127.0.0.1 -p 15432 -U tollgate -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = 'tollgate'" | grep -q 1 \
  || "$pgbin/psql" -h 127.0.0.1 -p 15432 -U tollgate -d postgres -qc "CREATE DATABASE tollgate"

# --- the backend and three replicas -----------------------------------------------------------
python3 examples/petstore-backend.py 9000 >"$DIR/petstore.log" 2>&1 &
pids+=($!)
export TOLLGATE_REDIS_URL=redis://127.0.0.1:16379/0
export TOLLGATE_DATABASE_URL=postgres://tollgate@127.0.0.1:15432/tollgate
export TOLLGATE_ADMIN_TOKEN="${TOLLGATE_ADMIN_TOKEN:-cluster-admin-token}"
for n in 1 2 3; do
  # The same file for every replica; only the addresses and data_dir differ.
  sed -e "s|127.0.0.1:8080|127.0.0.1:808$n|" -e "s|127.0.0.1:9090|127.0.0.1:909$n|" \
    -e "s|data_dir: data/replica|data_dir: $DIR/replica-$n|" -e "s|spec: openapi/|spec: $ROOT/examples/openapi/|" \
    examples/cluster.yaml >"$DIR/replica-$n.yaml"
  target/release/tollgate serve --config "$DIR/replica-$n.yaml" 2>&1 | sed -u "s/^/[replica $n] /" &
  pids+=($!)
done
echo "cluster starting: replicas on :8081 :8082 :8083 (management :9091-9093), Redis :16379, PostgreSQL :15432; Ctrl-C stops"
wait
