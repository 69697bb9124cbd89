#!/usr/bin/env bash
# Builds a Chromium that gives WebGPU on Mesa lavapipe (shader-f16, many times faster than Chromium's bundled
# SwiftShader on a CPU-only machine), for the browser benchmark and the browser tests at Llama 2 7B width:
#   <out>/chromium/  a mirror of /usr/lib/chromium (every entry linked) without SwiftShader's Vulkan ICD, so
#                    Chromium's Vulkan loader finds only the ICD named in VK_ICD_FILENAMES (lavapipe)
#   <out>/layer/     a Vulkan layer that reports lavapipe under SwiftShader's PCI ids, the only CPU adapter
#                    Chromium's WebGPU accepts without external-image support
# The layer's source is ../shared/tools/chromium-lavapipe beside this repository. The launch environment is in
# src/cli/browser/chromium.ts (chromiumLaunch). Needs gcc and the Vulkan headers (libvulkan-dev); idempotent.
#   usage: scripts/setup-chromium-lavapipe.sh [out-dir]   (default $LLAMA_WEBGPU_CHROMIUM_LAVAPIPE or
#          /opt/llama-webgpu-chromium-lavapipe)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-${LLAMA_WEBGPU_CHROMIUM_LAVAPIPE:-/opt/llama-webgpu-chromium-lavapipe}}
SRC=${LLAMA_WEBGPU_SPOOF_LAYER_SRC:-$ROOT/../shared/tools/chromium-lavapipe}
LIB=/usr/lib/chromium

[ -x "$LIB/chromium" ] || { echo "no Chromium in $LIB: install the chromium package first (scripts/setup-system.sh)" >&2; exit 1; }
[ -f "$SRC/spoof_layer.c" ] || { echo "no $SRC/spoof_layer.c: the shared tools folder must sit beside the repository" >&2; exit 1; }

mkdir -p "$OUT/chromium" "$OUT/layer"
for entry in "$LIB"/*; do
  name=$(basename "$entry")
  case "$name" in
    libvk_swiftshader.so | vk_swiftshader_icd.json) ;;
    # The binary itself is a real file, so /proc/self/exe (where Chromium looks for its resources and ICDs) is here.
    chromium) ln -f "$entry" "$OUT/chromium/chromium" 2>/dev/null || cp -f "$entry" "$OUT/chromium/chromium" ;;
    *) ln -sfn "$entry" "$OUT/chromium/$name" ;;
  esac
done
rm -f "$OUT/chromium/libvk_swiftshader.so" "$OUT/chromium/vk_swiftshader_icd.json"

gcc -O2 -shared -fPIC -fvisibility=hidden -o "$OUT/layer/libVkLayer_spoof_swiftshader.so" "$SRC/spoof_layer.c" -lpthread
install -m 0644 "$SRC/VkLayer_spoof_swiftshader.json" "$OUT/layer/"
echo "Chromium on lavapipe ready: $OUT (chromium $("$OUT/chromium/chromium" --version 2>/dev/null | awk '{print $2}'))"
