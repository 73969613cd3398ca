#!/usr/bin/env bash
# Cross-SDK interop suite for Tollgate.
#
# Starts server-everything (Streamable HTTP and legacy HTTP+SSE modes) on free
# loopback ports, runs the TypeScript and Python SDK clients directly against
# it (baseline), then starts Tollgate in front of it (http, sse and stdio
# backends, and a virtual server over the stdio one) and runs the same clients
# through the gateway.
#
# Usage: tests/interop/run.sh [--direct-only] [--gateway-only] [--keep-logs]
#
#   --direct-only   only the baseline (no gateway needed)
#   --gateway-only  skip the baseline
#   --keep-logs     keep the temp dir with configs and logs (its path is printed)
#
# Environment:
#   TOLLGATE_BIN            gateway binary (default: target/debug/tollgate under the repo root)
#   INTEROP_CLIENT_TIMEOUT  seconds allowed per client run (default 60)
#   INTEROP_CLIENTS         which clients to run: "ts py" (default), "ts" or "py"
#   INTEROP_PY_MODE         Python client connect mode: auto (default: server/discover
#                           probe, then initialize) or legacy (initialize only)
#
# Prints one line per check, then `N passed, N failed` alone on a line; exits
# non-zero when any check failed. Needs scripts/setup.sh to have been run.

set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

DIRECT=1
GATEWAY=1
KEEP_LOGS=0
for arg in "$@"; do
  case "$arg" in
    --direct-only) GATEWAY=0 ;;
    --gateway-only) DIRECT=0 ;;
    --keep-logs) KEEP_LOGS=1 ;;
    -h|--help) sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

TOLLGATE_BIN="${TOLLGATE_BIN:-target/debug/tollgate}"
case "$TOLLGATE_BIN" in
  /*) ;;
  *) TOLLGATE_BIN="$ROOT/$TOLLGATE_BIN" ;;
esac
CLIENT_TIMEOUT="${INTEROP_CLIENT_TIMEOUT:-60}"
CLIENTS="${INTEROP_CLIENTS:-ts py}"

SE_JS="$HERE/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
PY="$HERE/.venv/bin/python"

PASSED=0
FAILED=0
GATEWAY_FAILED=0

summary() {
  echo "$PASSED passed, $FAILED failed"
}

fail_setup() {
  # A failure outside any client run still counts as one failed check.
  echo "FAIL $1"
  FAILED=$((FAILED + 1))
}

if [[ ! -f "$SE_JS" || ! -d "$HERE/node_modules/@modelcontextprotocol/sdk" ]]; then
  fail_setup "setup: node packages missing in tests/interop (run scripts/setup.sh)"
  summary
  exit 1
fi
if [[ ! -x "$PY" ]]; then
  fail_setup "setup: python venv missing at tests/interop/.venv (run scripts/setup.sh)"
  summary
  exit 1
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/tollgate-interop.XXXXXX")"
PIDS=()
# Passed as an extra (ignored) argument to the stdio backends the gateway
# starts, so this run can find exactly its own backend processes.
RUN_MARK="--tollgate-interop-run=$(basename "$WORK")"

marked_pids() {
  pgrep -f -- "$RUN_MARK" 2>/dev/null || true
}

cleanup() {
  local pid
  # Every service runs in its own process group (setsid): signal the group so
  # children (e.g. the gateway's stdio backends) go too.
  for pid in "${PIDS[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  local deadline=$((SECONDS + 5))
  for pid in "${PIDS[@]}"; do
    while kill -0 -- "-$pid" 2>/dev/null && ((SECONDS < deadline)); do
      sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
  # stdio backends that left the gateway's process group, if any.
  for pid in $(marked_pids); do
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [[ "$KEEP_LOGS" == 1 ]]; then
    echo "# logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# start NAME LOGFILE CMD... : run CMD in its own session, remember its pid.
start() {
  local name="$1" log="$2"
  shift 2
  setsid "$@" >"$log" 2>&1 </dev/null &
  local pid=$!
  PIDS+=("$pid")
  eval "PID_${name//-/_}=$pid"
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_port PORT PID SECONDS
wait_port() {
  local port="$1" pid="$2" limit="$3"
  local deadline=$((SECONDS + limit))
  while ((SECONDS < deadline)); do
    kill -0 "$pid" 2>/dev/null || return 2
    port_open "$port" && return 0
    sleep 0.2
  done
  return 1
}

CLIENT_SEQ=0

# exec_client ID KIND(ts|py) TRANSPORT URL [extra args...]: run one client
# (bounded by timeout) with its output in $WORK/c.ID.{out,err,rc}.
exec_client() {
  local id="$1" kind="$2" transport="$3" url="$4"
  shift 4
  local -a cmd
  if [[ "$kind" == ts ]]; then
    cmd=(node "$HERE/ts_client.mjs" --transport "$transport" --url "$url" "$@")
  elif [[ "$kind" == oauth ]]; then
    cmd=(node "$HERE/oauth_client.mjs" --url "$url" "$@")
  elif [[ "$kind" == modern ]]; then
    cmd=("$PY" "$HERE/modern_client.py" --url "$url" "$@")
  else
    cmd=("$PY" "$HERE/py_client.py" --transport "$transport" --url "$url" --mode "${INTEROP_PY_MODE:-auto}" "$@")
  fi
  (cd "$HERE" && timeout -k 5 "$CLIENT_TIMEOUT" "${cmd[@]}") >"$WORK/c.$id.out" 2>"$WORK/c.$id.err"
  echo $? >"$WORK/c.$id.rc"
}

# collect ID LABEL KIND: print a finished client's lines and count its checks.
collect() {
  local id="$1" label="$2" kind="$3"
  local rc ok=0 bad=0 line
  rc="$(cat "$WORK/c.$id.rc" 2>/dev/null || echo 255)"
  while IFS= read -r line; do
    case "$line" in
      "ok "*) ok=$((ok + 1)); echo "[$label $kind] $line" ;;
      "FAIL "*) bad=$((bad + 1)); echo "[$label $kind] $line" ;;
      *) echo "[$label $kind] $line" ;;
    esac
  done <"$WORK/c.$id.out"
  if ((rc == 124 || rc == 137)); then
    bad=$((bad + 1))
    echo "[$label $kind] FAIL client-timeout: client run exceeded ${CLIENT_TIMEOUT}s and was killed"
  elif ((rc != 0 && bad == 0)); then
    bad=$((bad + 1))
    echo "[$label $kind] FAIL client-exit: exited with status $rc without a failed check"
  fi
  if ((bad > 0)) && [[ -s "$WORK/c.$id.err" ]]; then
    echo "[$label $kind] # client stderr (last 15 lines):"
    tail -n 15 "$WORK/c.$id.err" | sed "s/^/[$label $kind] #   /"
  fi
  PASSED=$((PASSED + ok))
  FAILED=$((FAILED + bad))
  if [[ "$label" == gateway* ]]; then
    GATEWAY_FAILED=$((GATEWAY_FAILED + bad))
  fi
}

# run_client LABEL KIND(ts|py) TRANSPORT URL [extra args...]
run_client() {
  local label="$1" kind="$2" transport="$3" url="$4"
  shift 4
  CLIENT_SEQ=$((CLIENT_SEQ + 1))
  echo "# --- $label: $kind client, $transport, $url"
  exec_client "$CLIENT_SEQ" "$kind" "$transport" "$url" "$@"
  collect "$CLIENT_SEQ" "$label" "$kind"
}

# run_parallel LABEL TRANSPORT URL COPIES [extra args...]: COPIES of every
# selected client at once on the same endpoint, so their sessions overlap.
# Each client uses its own tokens in sampling, elicitation and roots answers,
# so a server-to-client request routed to the wrong session fails a check.
run_parallel() {
  local label="$1" transport="$2" url="$3" copies="$4"
  shift 4
  local -a ids=() kinds=() pids=()
  local kind n i
  echo "# --- $label: $copies x ($CLIENTS) clients at once, $transport, $url"
  for ((n = 1; n <= copies; n++)); do
    for kind in $CLIENTS; do
      CLIENT_SEQ=$((CLIENT_SEQ + 1))
      exec_client "$CLIENT_SEQ" "$kind" "$transport" "$url" "$@" &
      pids+=($!)
      ids+=("$CLIENT_SEQ")
      kinds+=("$kind")
    done
  done
  for i in "${pids[@]}"; do wait "$i"; done
  for i in "${!ids[@]}"; do
    collect "${ids[$i]}" "$label #$((i + 1))" "${kinds[$i]}"
  done
}

# run_pair LABEL TRANSPORT URL [extra args...]: every selected client once.
run_pair() {
  local label="$1" transport="$2" url="$3"
  shift 3
  local kind
  for kind in $CLIENTS; do
    run_client "$label" "$kind" "$transport" "$url" "$@"
  done
}

# --- server-everything backends ---------------------------------------------

HTTP_PORT="$(free_port)"
SSE_PORT="$(free_port)"
while [[ "$SSE_PORT" == "$HTTP_PORT" ]]; do SSE_PORT="$(free_port)"; done

export NODE_OPTIONS="--require $HERE/loopback.cjs${NODE_OPTIONS:+ $NODE_OPTIONS}"
start se-http "$WORK/se-http.log" env PORT="$HTTP_PORT" node "$SE_JS" streamableHttp
start se-sse "$WORK/se-sse.log" env PORT="$SSE_PORT" node "$SE_JS" sse
MODERN_PORT="$(free_port)"
while [[ "$MODERN_PORT" == "$HTTP_PORT" || "$MODERN_PORT" == "$SSE_PORT" ]]; do MODERN_PORT="$(free_port)"; done
start modern "$WORK/modern.log" "$PY" "$HERE/modern_server.py" "$MODERN_PORT"
# The authorization server the `protected` server's tokens come from (MCP authorization).
AS_PORT="$(free_port)"
while [[ "$AS_PORT" == "$HTTP_PORT" || "$AS_PORT" == "$SSE_PORT" || "$AS_PORT" == "$MODERN_PORT" ]]; do AS_PORT="$(free_port)"; done
AS_URL="http://127.0.0.1:$AS_PORT"
start oauth-as "$WORK/oauth-as.log" node "$HERE/oauth_server.mjs" "$AS_PORT"

backends_up=1
for pair in "se-http:$HTTP_PORT" "se-sse:$SSE_PORT" "modern:$MODERN_PORT" "oauth-as:$AS_PORT"; do
  name="${pair%%:*}"
  port="${pair##*:}"
  var="PID_${name//-/_}"
  if ! wait_port "$port" "${!var}" 20; then
    fail_setup "backend-start $name: did not listen on 127.0.0.1:$port"
    tail -n 20 "$WORK/$name.log" | sed 's/^/#   /'
    backends_up=0
  fi
done
if [[ "$backends_up" == 0 ]]; then
  summary
  exit 1
fi
echo "# server-everything: streamableHttp on 127.0.0.1:$HTTP_PORT, sse on 127.0.0.1:$SSE_PORT"

# --- baseline: clients straight at server-everything ------------------------

if [[ "$DIRECT" == 1 ]]; then
  run_pair "direct http" streamable "http://127.0.0.1:$HTTP_PORT/mcp"
  run_pair "direct sse" sse "http://127.0.0.1:$SSE_PORT/sse"
  run_parallel "direct http parallel" streamable "http://127.0.0.1:$HTTP_PORT/mcp" 2
  run_client "direct modern" modern streamable "http://127.0.0.1:$MODERN_PORT/mcp"
fi

# --- through the gateway -----------------------------------------------------

gateway_log_tail() {
  echo "# gateway stderr (last 40 lines of $WORK/gateway.log):"
  tail -n 40 "$WORK/gateway.log" 2>/dev/null | sed 's/^/#   /'
}

if [[ "$GATEWAY" == 1 ]]; then
  if [[ ! -x "$TOLLGATE_BIN" ]]; then
    fail_setup "gateway-start: TOLLGATE_BIN=$TOLLGATE_BIN is not an executable (build it or set TOLLGATE_BIN)"
    summary
    exit 1
  fi

  GW_PORT="$(free_port)"
  ENV_TOKEN="stdio-env-$RANDOM$RANDOM"
  CONFIG="$WORK/tollgate.yaml"
  cat >"$CONFIG" <<EOF
listen: 127.0.0.1:$GW_PORT
servers:
  - name: everything-http
    backend:
      http: http://127.0.0.1:$HTTP_PORT/mcp
  - name: everything-sse
    backend:
      sse: http://127.0.0.1:$SSE_PORT/sse
  - name: everything-stdio
    backend:
      stdio:
        command: node
        args: ["$SE_JS", "stdio", "$RUN_MARK"]
        env:
          TOLLGATE_INTEROP_ENV: "$ENV_TOKEN"
  # A virtual server over the stdio one, without a prefix: the same names, through compose.
  - name: workspace
    compose:
      - { server: everything-stdio }
  - name: modern-http
    backend:
      http: http://127.0.0.1:$MODERN_PORT/mcp
  # MCP authorization: tokens from oauth_server.mjs, for this server's canonical URL only.
  - name: protected
    backend:
      http: http://127.0.0.1:$HTTP_PORT/mcp
    policies:
      - policy: jwt
        config:
          jwks_url: $AS_URL/jwks
          issuers: ["$AS_URL"]
          audiences: ["http://127.0.0.1:$GW_PORT/protected/mcp"]
          required_scopes: [mcp]
          authorization:
            authorization_servers: ["$AS_URL"]
            scopes_supported: [mcp]
        allow_hosts: [127.0.0.1]
EOF
  echo "# gateway: $TOLLGATE_BIN serve --config $CONFIG (127.0.0.1:$GW_PORT)"
  # The gateway's own stdio children need no loopback preload.
  start gateway "$WORK/gateway.log" env -u NODE_OPTIONS "$TOLLGATE_BIN" serve --config "$CONFIG"

  ready=0
  how=""
  deadline=$((SECONDS + 60))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$PID_gateway" 2>/dev/null; then
      wait "$PID_gateway" 2>/dev/null
      how="exited with status $?"
      break
    fi
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$GW_PORT/healthz" 2>/dev/null)"
    if [[ "$code" == 200 ]]; then
      ready=1; how="/healthz 200"; break
    elif [[ "$code" == 404 ]]; then
      # No health endpoint: a listening port is the best readiness signal there is.
      ready=1; how="port open (/healthz answered 404)"; break
    fi
    sleep 0.2
  done
  if [[ "$ready" == 1 ]]; then
    echo "ok gateway-ready ($how)"
    PASSED=$((PASSED + 1))
    # /readyz may answer 503 while backends are still coming up; it should
    # turn 200 soon after. A gateway without /readyz (404) is not held to it.
    rz_start=$SECONDS
    rz_deadline=$((SECONDS + 20))
    while :; do
      code="$(curl -s -o "$WORK/readyz.body" -w '%{http_code}' --max-time 5 "http://127.0.0.1:$GW_PORT/readyz" 2>/dev/null)"
      [[ "$code" == 200 || "$code" == 404 ]] && break
      ((SECONDS >= rz_deadline)) && break
      sleep 0.2
    done
    case "$code" in
      200) echo "ok gateway-readyz (200 after $((SECONDS - rz_start))s)"; PASSED=$((PASSED + 1)) ;;
      404) echo "# gateway has no /readyz (404); not checked" ;;
      *)
        echo "FAIL gateway-readyz: /readyz still answered HTTP $code after 20s: $(head -c 300 "$WORK/readyz.body" 2>/dev/null | tr '\n' ' ')"
        FAILED=$((FAILED + 1)); GATEWAY_FAILED=$((GATEWAY_FAILED + 1)) ;;
    esac

    for name in everything-http everything-sse everything-stdio workspace; do
      extra=()
      if [[ "$name" == everything-stdio || "$name" == workspace ]]; then
        extra=(--expect-env "TOLLGATE_INTEROP_ENV=$ENV_TOKEN")
      fi
      run_pair "gateway $name mcp" streamable "http://127.0.0.1:$GW_PORT/$name/mcp" "${extra[@]}"
      run_pair "gateway $name sse" sse "http://127.0.0.1:$GW_PORT/$name/sse" "${extra[@]}"
      if ! kill -0 "$PID_gateway" 2>/dev/null; then
        fail_setup "gateway-alive: the gateway process died during the $name runs"
        break
      fi
    done
    if kill -0 "$PID_gateway" 2>/dev/null; then
      for name in everything-http everything-stdio workspace; do
        run_parallel "gateway $name mcp parallel" streamable "http://127.0.0.1:$GW_PORT/$name/mcp" 2
      done
      run_parallel "gateway everything-http sse parallel" sse "http://127.0.0.1:$GW_PORT/everything-http/sse" 2
      run_client "gateway modern-http" modern streamable "http://127.0.0.1:$GW_PORT/modern-http/mcp"
      if [[ " $CLIENTS " == *" ts "* ]]; then
        run_client "gateway protected" oauth streamable "http://127.0.0.1:$GW_PORT/protected/mcp" \
          --issuer "$AS_URL" --other-resource "http://127.0.0.1:$GW_PORT/everything-http/mcp"
      fi
      if ! kill -0 "$PID_gateway" 2>/dev/null; then
        fail_setup "gateway-alive: the gateway process died during the parallel runs"
      fi
    fi
  else
    fail_setup "gateway-ready: gateway not ready within 60s (${how:-no answer on 127.0.0.1:$GW_PORT})"
    GATEWAY_FAILED=$((GATEWAY_FAILED + 1))
  fi
  if kill -0 "$PID_gateway" 2>/dev/null; then
    # Graceful stop: SIGTERM to the gateway alone; it should exit promptly and
    # take the stdio backends it started with it.
    kill -TERM "$PID_gateway" 2>/dev/null
    stop_deadline=$((SECONDS + 15))
    while kill -0 "$PID_gateway" 2>/dev/null && ((SECONDS < stop_deadline)); do sleep 0.1; done
    if kill -0 "$PID_gateway" 2>/dev/null; then
      fail_setup "gateway-shutdown: still running 15s after SIGTERM"
      GATEWAY_FAILED=$((GATEWAY_FAILED + 1))
    else
      wait "$PID_gateway" 2>/dev/null
      st=$?
      if ((st == 0 || st == 143)); then
        echo "ok gateway-shutdown (exit status $st after SIGTERM)"
        PASSED=$((PASSED + 1))
      else
        fail_setup "gateway-shutdown: exited with status $st after SIGTERM"
        GATEWAY_FAILED=$((GATEWAY_FAILED + 1))
      fi
      orphan_deadline=$((SECONDS + 5))
      while [[ -n "$(marked_pids)" ]] && ((SECONDS < orphan_deadline)); do sleep 0.1; done
      left="$(marked_pids | tr '\n' ' ')"
      if [[ -z "$left" ]]; then
        echo "ok gateway-no-orphans"
        PASSED=$((PASSED + 1))
      else
        fail_setup "gateway-no-orphans: stdio backend processes still running after the gateway exited: pids $left"
        GATEWAY_FAILED=$((GATEWAY_FAILED + 1))
      fi
    fi
  fi
  if ((GATEWAY_FAILED > 0)); then
    gateway_log_tail
  fi
fi

summary
((FAILED == 0))
