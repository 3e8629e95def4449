#!/usr/bin/env bash
# The project's test command: installs the software Vulkan driver when it is missing
# (Debian/Ubuntu, as root or with sudo), then runs every test. GPU tests fail loudly
# when no adapter is found; they never skip.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1; then
    echo "no Vulkan driver found; installing Mesa's software driver (lavapipe)" >&2
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi

cargo test --release --all-targets
