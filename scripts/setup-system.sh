#!/usr/bin/env bash
# Installs the Debian packages the tests need: a software Vulkan driver that Dawn accepts
# (Mesa 25 lavapipe from bookworm-backports, with shader-f16) and Chromium (for its SwiftShader
# Vulkan driver and for the browser tests), then builds Chromium on lavapipe for the browser tests
# and benchmark at Llama 2 7B width (scripts/setup-chromium-lavapipe.sh, into
# /opt/llama-webgpu-chromium-lavapipe), and xz-utils for scripts/device-bench.sh's pack. Idempotent; needs root.
set -euo pipefail

SRC=/etc/apt/sources.list.d/debian.sources
BP=/etc/apt/sources.list.d/llama-webgpu-backports.sources
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

if [ ! -f "$BP" ] && [ -f "$SRC" ]; then
  # Take the first stanza of the machine's own Debian source (the main archive) and change only the suite.
  awk 'BEGIN{RS=""; ORS="\n\n"} NR==1 {print; exit}' "$SRC" \
    | sed -E 's/^Suites:.*/Suites: bookworm-backports/' | $SUDO tee "$BP" >/dev/null
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers >/dev/null
$SUDO apt-get install -y -qq libvulkan1 chromium >/dev/null
$SUDO apt-get install -y -qq gcc libc6-dev libvulkan-dev xz-utils >/dev/null
$SUDO bash "$(dirname "${BASH_SOURCE[0]}")/setup-chromium-lavapipe.sh"
echo "system packages ready: $(dpkg-query -W -f='${Package} ${Version}\n' mesa-vulkan-drivers chromium | tr '\n' ';')"
