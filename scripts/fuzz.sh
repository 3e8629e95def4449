#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ (or those named) for SECONDS each, one after
# the other, and prints for each how many inputs it ran and whether it found a crash;
# exits non-zero when one did. Installs cargo-fuzz when it is missing; needs a nightly
# toolchain (`cargo +nightly`).
#
#   scripts/fuzz.sh SECONDS [TARGET...]
#
# Limits, for every target: no input may take more than 1 s (-timeout=1), nor make
# the process use more than 2 GiB (-rss_limit_mb=2048) or ask for more than 2 GiB in
# one allocation (-malloc_limit_mb=2048, which AddressSanitizer's allocator enforces;
# the targets are built with it, with optimisations, debug assertions and overflow
# checks). Each target starts from its seeds in fuzz/seeds/TARGET and keeps what it
# finds in fuzz/corpus/TARGET; a crashing input is written to fuzz/artifacts/TARGET/.
# FUZZ_FLAGS, if set, is passed to libFuzzer after these (a later flag wins), e.g.
# FUZZ_FLAGS=-seed=1 for a run that can be repeated.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}
shift
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing; installing it" >&2
    cargo install cargo-fuzz --locked
fi
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

if [ ${#targets[@]} -eq 1 ]; then
    cargo +nightly fuzz build -O -a "${targets[0]}" >&2
else
    cargo +nightly fuzz build -O -a >&2
fi
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
crashed=0
summary=()
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$target"
    log="$logs/$target.log"
    status=0
    cargo +nightly fuzz run -O -a "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -max_total_time="$secs" -timeout=1 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
        -print_final_stats=1 ${FUZZ_FLAGS:-} >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -1)
    if [ -z "$runs" ]; then
        # No final stats (a crash ends the run before them): the last status line.
        runs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
    fi
    runs=${runs:-0}
    rss=$(sed -n 's/^stat::peak_rss_mb: *\([0-9]*\).*/\1/p' "$log" | tail -1)
    if [ "$status" -eq 0 ]; then
        verdict="no crash"
    else
        crashed=1
        artifact=$(grep -o 'Test unit written to [^ ]*' "$log" | tail -1 | sed 's/Test unit written to //')
        verdict="CRASH (exit $status${artifact:+, input in $artifact}); the log ends:"
    fi
    line="$target: $runs inputs in $secs s ($(( runs / secs )) a second${rss:+, peak RSS $rss MB}), $verdict"
    summary+=("$line")
    echo "$line"
    [ "$status" -eq 0 ] || tail -40 "$log"
done
echo "---"
printf '%s\n' "${summary[@]}"
exit "$crashed"
