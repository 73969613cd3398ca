#!/usr/bin/env bash
# Fuzzes the readers of untrusted input (JSON-RPC envelopes, the SSE decoder, the config file,
# OpenAPI documents) with cargo-fuzz and libFuzzer: builds every target once, then runs each
# for a bounded time from its seed corpus, and fails if any target found a crash, a panic or a
# hang, naming the input that reproduces it.
#
#   scripts/fuzz.sh                      # 30 s per target (CI)
#   FUZZ_SECONDS=600 scripts/fuzz.sh     # a longer run by hand; or: scripts/fuzz.sh 600
#   scripts/fuzz.sh 60 sse config        # some targets only
#
# FUZZ_KEEP=1 keeps the grown corpus in fuzz/work/ (ignored by git) for the next run instead of
# a temporary copy of the seeds. Reproduce a finding with `fuzz/target/<triple>/release/<target> <file>`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"

seconds="${1:-${FUZZ_SECONDS:-30}}"
if [[ $# -gt 0 ]]; then shift; fi
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS per target] [TARGET...]  (or FUZZ_SECONDS=N)" >&2
  exit 2
fi
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(jsonrpc sse config openapi)

# No sanitizer: the host denies unsafe code, and ASan would only make the build of wasmtime
# and Cranelift (linked, never called by the targets) slower. Without one, cargo-fuzz passes
# only flags that the stable toolchain takes.
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked --version 0.13.2
fi
triple="$(rustc -vV | sed -n 's/^host: //p')"
# FUZZ_TARGET_DIR puts the build elsewhere than fuzz/target, e.g. somewhere a fresh clone in
# CI finds the last build.
target_dir="${FUZZ_TARGET_DIR:-$root/fuzz/target}"

echo "== fuzz build"
started=$SECONDS
cargo fuzz build --fuzz-dir fuzz --sanitizer none --target "$triple" --target-dir "$target_dir"
echo "built in $((SECONDS - started)) s"

# No target may reach the network (a config's openapi `spec` can be a URL): with a network
# namespace of its own, it cannot. Where namespaces are not allowed, the config target's own
# filter is the guard.
sandbox=()
if unshare --net true 2>/dev/null; then
  sandbox=(unshare --net)
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The config target's relative specs (`openapi/petstore.yaml`) resolve against this folder.
mkdir -p "$work/cwd/openapi"
cp examples/openapi/*.yaml examples/openapi/*.json "$work/cwd/openapi/"

failed=()
summary=()
for t in "${targets[@]}"; do
  bin="$target_dir/$triple/release/$t"
  if [[ "${FUZZ_KEEP:-}" == 1 ]]; then
    corpus="$root/fuzz/work/corpus/$t"
  else
    corpus="$work/corpus/$t"
  fi
  mkdir -p "$corpus" "fuzz/artifacts/$t"
  cp fuzz/corpus/"$t"/* "$corpus/"
  # The repository's examples are seeds too, so they need no copies under fuzz/corpus.
  case "$t" in
    config) cp examples/*.yaml examples/policies/*.yaml "$corpus/" 2>/dev/null || true ;;
    openapi) cp examples/openapi/*.yaml examples/openapi/*.json "$corpus/" ;;
  esac
  dict=()
  if [[ -f "fuzz/dict/$t.dict" ]]; then dict=("-dict=$root/fuzz/dict/$t.dict"); fi
  log="$work/$t.log"
  echo "== fuzz $t for $seconds s"
  status=0
  (cd "$work/cwd" && "${sandbox[@]}" "$bin" "$corpus" "${dict[@]}" \
    -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$root/fuzz/artifacts/$t/" >"$log" 2>&1) || status=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)"
  if [[ $status -ne 0 ]]; then
    failed+=("$t")
    summary+=("$(printf '%-8s FAILED (exit %s) after %s execs' "$t" "$status" "${execs:-?}")")
    # libFuzzer's report: the panic message and backtrace, then the input it wrote.
    grep -v '^#[0-9]' "$log" | tail -n 60
    sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | grep -v '/slow-unit-' | while read -r f; do
      echo "reproducer: $f"
      echo "  run it:   $bin $f"
      echo "  as bytes: $(head -c 300 "$f" | od -An -c | tr -s ' \n' ' ' | head -c 600)"
    done || true
  else
    summary+=("$(printf '%-8s ok: %s execs (%s/s), coverage %s' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}")")
  fi
done

echo "== fuzz results ($seconds s per target; $((SECONDS - started)) s with the build)"
printf '%s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzzing found failures in: ${failed[*]} (inputs under fuzz/artifacts/)"
  exit 1
fi
echo "fuzz: no failures in ${targets[*]}"
