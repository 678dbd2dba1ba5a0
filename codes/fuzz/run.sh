#!/usr/bin/env bash
# Run every fuzz target of bobbin-codes for SECONDS each (default 30).
# Installs cargo-fuzz if missing. Only a stable toolchain is assumed: RUSTC_BOOTSTRAP=1
# lets cargo-fuzz pass the nightly-only sanitizer/coverage flags to stable rustc.
set -euo pipefail
SECONDS_PER_TARGET="${1:-30}"
cd "$(dirname "$0")"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
# Keep fuzz builds out of the workspace's target dir (other crates build there).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
TARGETS=$(cargo fuzz list)
mkdir -p corpus
for t in $TARGETS; do
    echo "== fuzz target $t: ${SECONDS_PER_TARGET}s"
    mkdir -p "corpus/$t"
    # Seed corpus: the published vectors that reach deep into each parser.
    if [ -z "$(ls -A "corpus/$t")" ] && [ -d seeds ]; then cp seeds/* "corpus/$t/"; fi
    cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$SECONDS_PER_TARGET" -max_len=512 -print_final_stats=1
done
echo "all fuzz targets ran ${SECONDS_PER_TARGET}s without a crash"
