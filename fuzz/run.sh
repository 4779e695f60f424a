#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) and prints, per
# target, the executions, coverage and corpus size libFuzzer reports.
#
#   bash fuzz/run.sh [SECONDS] [TARGET...]
#
# Needs the nightly toolchain (rustup) and cargo-fuzz; installs cargo-fuzz
# if it is missing. `cargo xtask test` runs it with a short smoke period.
# A crash stops the script with libFuzzer's report and exit status 1; the
# crashing input is kept in fuzz/artifacts/TARGET/.
set -euo pipefail
secs="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(validate invoke_smith http_request audit_verify)
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"

rustup toolchain list | grep -q '^nightly' || { echo "fuzz/run.sh: needs the nightly toolchain (rustup)" >&2; exit 1; }
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --version 0.13.2 --locked
fi

# Seeds for the module targets: the adversarial corpus as wasm bytes (small
# modules only), written by an ignored test of tests/adversarial.
seeds="$here/target/seeds/modules"
if [ ! -d "$seeds" ] || [ -z "$(ls -A "$seeds" 2>/dev/null)" ]; then
  (cd "$root" && AIFN_FUZZ_SEEDS="$seeds" cargo test -q --locked -p aifn-tests --test adversarial write_fuzz_seeds -- --ignored >/dev/null)
fi

cd "$here"
# --sanitizer none: the code under test is safe Rust plus wasmtime's own
# unsafe, and ASan would multiply the build time of wasmtime; libFuzzer's
# coverage instrumentation and its crash, timeout and RSS checks remain.
cargo +nightly fuzz build --sanitizer none
summary=()
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  extra=()
  case "$t" in validate|invoke_smith) extra=("$seeds") ;; esac
  log="target/fuzz-$t.log"
  echo "== $t for ${secs}s"
  if ! cargo +nightly fuzz run --sanitizer none "$t" "corpus/$t" "${extra[@]}" -- \
      -max_total_time="$secs" -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 >"$log" 2>&1; then
    # The panic message first: a long backtrace would push it out of the tail.
    grep -m1 -A2 'panicked at' "$log" >&2 || true
    tail -n 60 "$log" >&2
    echo "fuzz/run.sh: $t failed; the input is in fuzz/artifacts/$t/" >&2
    exit 1
  fi
  execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)"
  last="$(grep -E '^#[0-9]+' "$log" | tail -1)"
  cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")"
  ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")"
  corp="$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")"
  summary+=("$(printf '%-13s %6ss  execs %-9s cov %-6s ft %-6s corpus %s' "$t" "$secs" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}")")
done
echo "== fuzz summary (no crashes)"
printf '%s\n' "${summary[@]}"
