#!/usr/bin/env bash
# The benchmarks on whatever GPU this machine has, in one go, for a machine lent for
# minutes: builds the release binary, prints the adapter, then runs `rankcode bench`
# on every task shape and on the peer benchmarks' workloads (JSON), the per-kernel
# profile of an RC training batch at the MNIST recipe's shape, and the criterion
# kernel benches, each under a time limit.
# Everything goes to OUT (JSON, logs); a summary of what ran is printed at the end.
#
#   scripts/gpu-bench.sh OUT
#
# WGPU_BACKEND and WGPU_ADAPTER_NAME choose the adapter as for any rankcode command
# (docs/cli.md). The whole script stays under about 8 minutes once built; a cold
# release build adds a few minutes (keep target/ between calls where possible).
set -uo pipefail
out=${1:?usage: scripts/gpu-bench.sh OUT}
mkdir -p "$out"
cd "$(dirname "$0")/.."
bin=target/release/rankcode
if ! cargo build --release >"$out/build.log" 2>&1; then
    echo "build failed; see $out/build.log" >&2
    exit 1
fi
status=0
step() { # FILE LIMIT_S COMMAND...: standard output to OUT/FILE, errors to OUT/NAME.log
    local file=$1 limit=$2
    local name=${file%.*}
    shift 2
    local start=$SECONDS
    if timeout "$limit" "$@" >"$out/$file" 2>"$out/$name.log"; then
        echo "$name: done in $((SECONDS - start)) s"
    else
        echo "$name: FAILED or timed out after $((SECONDS - start)) s (see $out/$name.log)"
        status=1
    fi
}
step info.txt 60 "$bin" info
step bench-all.json 240 "$bin" bench --config all --reps 5 --json
step bench-mnist-h256.json 120 "$bin" bench --config mnist --hidden 256 --batch 128 --reps 5 --json
# The peer benchmarks' workloads (docs/performance.md, "Side by side").
step bench-peers.json 120 "$bin" bench --config peers --reps 5 --json
step profile-mnist-h256.json 60 "$bin" bench --config mnist --hidden 256 --batch 128 --profile --json
# The criterion kernel benches: a short measurement each.
step criterion.txt 120 cargo bench --bench kernels -- --warm-up-time 1 --measurement-time 3
exit $status
