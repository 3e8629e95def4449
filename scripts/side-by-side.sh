#!/usr/bin/env bash
# rankcode beside the peer benchmarks of ../shared/peers (burn 0.22's wgpu LSTM and
# PyTorch on the CPU), interleaved on one machine: these machines differ from one to the
# next, so only figures of one run compare (docs/performance.md, "Side by side").
#
#   scripts/side-by-side.sh [ROUNDS]        # default 2
#
# BURN: the built burn-lstm-bench (see ../shared/peers/README.md; default
#   $CARGO_TARGET_DIR_BURN/release/burn-lstm-bench, else skipped);
# PYTHON: a Python with torch installed (default python3; skipped without torch);
# PEERS: the peer benchmarks' folder (default ../shared/peers).
# Each round runs burn's nvs, rankcode's `bench --config peers` (nvs, mnist dense and
# sparse), burn's mnist, PyTorch's nvs full and cellshrink and mnist full, then the
# 1024^3 GEMM of burn and rankcode's GEMM ceiling. Lines are the tools' own, each
# round headed by the time and the load average.
set -uo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-2}
peers=${PEERS:-../shared/peers}
burn=${BURN:-${CARGO_TARGET_DIR_BURN:-/nonexistent}/release/burn-lstm-bench}
python=${PYTHON:-python3}
cargo build --release --quiet || exit 1
rankcode=target/release/rankcode

have_burn=true
[ -x "$burn" ] || { echo "burn-lstm-bench not found at $burn (set BURN): burn skipped" >&2; have_burn=false; }
have_torch=true
"$python" -c "import torch" 2>/dev/null || { echo "$python has no torch (set PYTHON): PyTorch skipped" >&2; have_torch=false; }

burn_run() { $have_burn && "$burn" --backend wgpu "$@" --chunks 5 --batches 2 2>&1 | grep RESULT; }
torch_run() { $have_torch && "$python" "$peers/torch_bench.py" "$@" 2>&1 | grep RESULT | cut -d'{' -f1; }

echo "# $("$rankcode" info 2>/dev/null | head -1 | tr -s " "); $(nproc) cores of$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | tr -s " ")"
for round in $(seq 1 "$rounds"); do
    echo "## round $round of $rounds, $(date +%T), load average $(cut -d' ' -f1-3 /proc/loadavg)"
    burn_run --config nvs --variant full --warmup 3
    "$rankcode" bench --config peers --reps 5 2>/dev/null
    burn_run --config mnist --variant full --warmup 3
    torch_run --config nvs --variant full
    torch_run --config nvs --variant cellshrink
    torch_run --config mnist --variant full
    burn_run --gemm 1024
    "$rankcode" bench --config toy --reps 1 2>/dev/null | grep -m1 "GEMM ceiling"
done
echo "# end $(date +%T), load average $(cut -d' ' -f1-3 /proc/loadavg)"
