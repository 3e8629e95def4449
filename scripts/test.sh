#!/usr/bin/env bash
# The project's test command: installs the software Vulkan driver when it is missing
# (Debian/Ubuntu, as root or with sudo), then builds everything and runs every test,
# and ends with one line of totals. GPU tests fail loudly when no adapter is found;
# they never skip.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1; then
    echo "no Vulkan driver found; installing Mesa's software driver (lavapipe)" >&2
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi

# Examples are built (so they keep compiling) but hold no tests.
cargo build --release --examples
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --release --lib --bins --tests --benches 2>&1 | tee "$log" || status=$?
passed=$(grep -o '[0-9]* passed' "$log" | awk '{s += $1} END {print s + 0}')
failed=$(grep -o '[0-9]* failed' "$log" | awk '{s += $1} END {print s + 0}')
echo "${passed} passed, ${failed} failed"
exit "$status"
