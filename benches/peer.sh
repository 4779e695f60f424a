#!/usr/bin/env bash
# Benchmark 8: aifn's echo beside Extism's, back to back in one run.
#
#   bash benches/peer.sh
#
# Runs aifn's `echo/floor_wasmtime` and `echo/aifn_runtime`, then Extism
# 1.30's two modes (benches/peer-extism, its own workspace and wasmtime 43,
# never built by the test command), then aifn's again, all into one
# criterion directory; then benches/report.py prints the ratios and draws
# the plot. The first build of the Extism crate takes ~10 minutes here.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export CRITERION_HOME="$root/target/criterion"
aifn_echo() { cargo bench --locked -p aifn-benches --bench echo -- '^echo/(floor_wasmtime|aifn_runtime)$'; }
(cd benches/peer-extism && CARGO_TARGET_DIR="$root/target/peer-extism" cargo bench --locked --no-run)
aifn_echo
(cd benches/peer-extism && CARGO_TARGET_DIR="$root/target/peer-extism" cargo bench --locked --bench extism_echo)
aifn_echo
python3 benches/report.py "$CRITERION_HOME"
