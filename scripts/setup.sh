#!/usr/bin/env bash
# Installs what Tollgate's builds and tests need on a fresh Debian machine that
# already has Rust (rustup), node 20 and python 3.11:
#   - the wasm32-wasip2 and wasm32-unknown-unknown Rust targets (your policies; the standard
#     ones, built without WASI), and rustfmt and clippy
#   - the interop suite's node packages (npm ci in tests/interop)
#   - the JavaScript policy kit's build tool, componentize-js (npm ci in kits/js)
#   - the console (npm ci and npm run build in console/: console/dist, embedded in the binary)
#   - Debian's chromium, which the console's browser tests drive (playwright-core)
#   - the interop suite's Python venv (tests/interop/.venv)
#   - Debian's redis-server and postgresql packages, whose binaries the end-to-end tests run
#     (each test its own server on a free loopback port; not the packages' own services)
#
# With --sample, only what the shipped sample needs (scripts/run-sample.sh): a C toolchain,
# Rust with the wasm targets the standard policies build for, node with the reference server's
# package, the console, and python for the Petstore backend. No test servers, venv, policy kits
# or browser.
#
# Idempotent: steps whose inputs have not changed are skipped. Quiet on
# success; on failure prints the failing step's output and exits non-zero.

set -euo pipefail

SAMPLE=0
case "${1:-}" in
  --sample) SAMPLE=1 ;;
  "") ;;
  *) echo "usage: scripts/setup.sh [--sample]" >&2; exit 2 ;;
esac

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INTEROP="$ROOT/tests/interop"
LOG="$(mktemp "${TMPDIR:-/tmp}/tollgate-setup.XXXXXX")"
trap 'rm -f "$LOG"' EXIT

die() {
  echo "setup.sh: error: $*" >&2
  exit 1
}

# step DESCRIPTION CMD... : run CMD with its output captured; show it on failure.
step() {
  local desc="$1"
  shift
  if ! "$@" >"$LOG" 2>&1; then
    echo "setup.sh: FAILED: $desc" >&2
    echo "setup.sh: command: $*" >&2
    sed 's/^/  | /' "$LOG" >&2
    exit 1
  fi
}

sha() {
  sha256sum "$@" | sha256sum | cut -d' ' -f1
}

# npm_ci DIR: npm ci in DIR when its package files (or node) changed since the last time.
npm_ci() {
  local dir="$1" stamp="$1/node_modules/.tollgate-setup-stamp" want
  want="$(sha "$dir/package.json" "$dir/package-lock.json")-$(node --version)"
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    step "npm ci in ${dir#"$ROOT"/}" npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
    echo "$want" >"$stamp"
  fi
}

apt_updated=0
apt_install() {
  if [[ "$(id -u)" != 0 ]]; then
    die "missing $* and not root: install it with apt-get"
  fi
  if [[ "$apt_updated" == 0 ]]; then
    step "apt-get update" apt-get update -q
    apt_updated=1
  fi
  step "apt-get install $*" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

# --- tools the suite calls directly ------------------------------------------

for tool in curl:curl setsid:util-linux pgrep:procps timeout:coreutils sha256sum:coreutils; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || apt_install "${tool##*:}"
done

# The build compiles C (ring, mimalloc, zstd): a C compiler and make are needed. Installed
# here when root on Debian; otherwise say how to get them.
if ! command -v cc >/dev/null 2>&1 || ! command -v make >/dev/null 2>&1; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    command -v cc >/dev/null 2>&1 || apt_install gcc libc6-dev
    command -v make >/dev/null 2>&1 || apt_install make
  else
    die "the build needs a C compiler and make: install them (Debian/Ubuntu: sudo apt-get install gcc libc6-dev make; Fedora: sudo dnf install gcc make; macOS: xcode-select --install)"
  fi
fi

command -v rustup >/dev/null 2>&1 || die "rustup not found (install Rust with rustup first)"
command -v node >/dev/null 2>&1 || die "node not found (node 20 or newer is required)"
command -v npm >/dev/null 2>&1 || die "npm not found (it ships with node)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
((node_major >= 20)) || die "node $(node --version) is too old; node 20 or newer is required"

PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (python 3.11 or newer is required)"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || die "$("$PYTHON" --version 2>&1) is too old; python 3.11 or newer is required"
if ((!SAMPLE)) && ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  pyver="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
  apt_install "python${pyver}-venv"
fi

# --- what the tests run: the servers end-to-end tests start (tests/src/redis.rs, postgres.rs), and the browser the console tests drive ----

# Debian keeps PostgreSQL's server binaries off PATH, in /usr/lib/postgresql/VERSION/bin.
have_pg() {
  local tool
  for tool in initdb postgres psql pg_isready; do
    command -v "$tool" >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/$tool" >/dev/null || return 1
  done
}
packages=()
if ((!SAMPLE)); then
  command -v redis-server >/dev/null 2>&1 || packages+=(redis-server)
  have_pg || packages+=(postgresql)
  [[ -x /usr/bin/chromium ]] || packages+=(chromium)
fi
((${#packages[@]} == 0)) || apt_install "${packages[@]}"

# --- Rust --------------------------------------------------------------------

((SAMPLE)) || for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
    step "rustup component add $component" rustup component add "$component"
  fi
done
for target in wasm32-wasip2 wasm32-unknown-unknown; do
  if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    step "rustup target add $target" rustup target add "$target"
  fi
done

# --- node packages for the interop suite ---------------------------------------

npm_ci "$INTEROP"

# --- the console: built into console/dist, which the binary embeds -----------------

CONSOLE="$ROOT/console"
npm_ci "$CONSOLE"
# Built again when any of its sources changed (the tests beside it are not built in).
built_stamp="$CONSOLE/node_modules/.tollgate-build-stamp"
built_want="$(cd "$CONSOLE" && find . \( -path ./node_modules -o -path ./dist -o -path ./tests \) -prune -o -type f -print | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$CONSOLE/dist/index.html" || ! -f "$built_stamp" || "$(cat "$built_stamp")" != "$built_want" ]]; then
  step "npm run build in console" npm run build --prefix "$CONSOLE"
  echo "$built_want" >"$built_stamp"
fi

((SAMPLE)) && exit 0

# --- the JavaScript policy kit's componentize-js ---------------------------------

KIT_JS="$ROOT/kits/js"
npm_ci "$KIT_JS"

# --- Python venv for the interop suite -----------------------------------------

VENV="$INTEROP/.venv"
if [[ -d "$VENV" ]] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
  rm -rf "$VENV" # a venv left behind by another python is unusable
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  step "create venv $VENV" "$PYTHON" -m venv "$VENV"
fi
py_stamp="$VENV/.tollgate-setup-stamp"
py_want="$(sha "$INTEROP/requirements.txt")-$("$VENV/bin/python" --version 2>&1)"
if [[ ! -f "$py_stamp" || "$(cat "$py_stamp")" != "$py_want" ]]; then
  step "pip install -r tests/interop/requirements.txt" \
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$INTEROP/requirements.txt"
  step "import mcp and openapi_spec_validator in the venv" "$VENV/bin/python" -c 'import mcp.client, mcp_types, openapi_spec_validator'
  echo "$py_want" >"$py_stamp"
fi
