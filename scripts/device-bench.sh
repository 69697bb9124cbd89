#!/usr/bin/env bash
# A self-contained GPU benchmark run for a machine with no Node and no network (one NVIDIA GPU, x86-64).
#
#   scripts/device-bench.sh prepare         here (x86-64 Linux with node_modules): packs .device/ (git-ignored):
#                                           node (xz), Dawn's addon (xz) and JS, the built CLI, sentencepiece-js,
#                                           and the Vulkan loader and GL dispatch libraries from Debian packages
#   scripts/device-bench.sh run             there, from the repository root, with .device/ carried: unpacks into
#                                           $DEVICE_BENCH_WORK, sets up Vulkan, synthesizes packages in the 7B shape,
#                                           runs bench-encode, bench-kernels and bench, writes $OUT/summary.md
#   scripts/device-bench.sh run --dry-run   the same steps on this machine's adapters (lavapipe or SwiftShader):
#                                           uses .device/ when prepared, else this checkout's node and a fresh CLI
#                                           build; never sets the NVIDIA driver paths
#
# Time: one synth process per package, all at once (synth is single-threaded; the GPU machine has 16 cores): the
# full model ($DEVICE_BENCH_SHAPE, e.g. 32 layers, 3.8 GB in q4) and shallower copies ($DEVICE_BENCH_LAYERS, e.g.
# 4 and 8 layers). The shallow ones finish first and are benched while the full one is still being written; their
# decode times are fitted as a + b * layers, so the summary has a full-depth estimate even when the full package
# misses the time budget ($DEVICE_BENCH_BUDGET_S seconds for the whole run, default 450), and a check of the
# estimate when it does not.
#
# Environment (all optional):
#   OUT                      where results go (default $DEVICE_BENCH_WORK/out): summary.md, run.log, encode.json,
#                            kernels.json, bench-L<layers>.json
#   DEVICE_BENCH_SHAPE       synth shape (default llama2-7b; tiny, tinyllama, llama2-13b ...)
#   DEVICE_BENCH_QUANT       q4 (default), q8, f16, f32
#   DEVICE_BENCH_LAYERS      shallow layer counts to bench besides the full depth (default "4 8"; "" for none)
#   DEVICE_BENCH_FULL        1 (default): also synthesize and bench the full depth; 0: only the shallow ones
#   DEVICE_BENCH_PROMPT, DEVICE_BENCH_GEN   bench --prompt-tokens and --gen-tokens (default 128, 64)
#   DEVICE_BENCH_KERNELS_ONLY, DEVICE_BENCH_KERNEL_SECONDS   bench-kernels --only and --seconds (default all, 0.5)
#   DEVICE_BENCH_BANDWIDTH_GBS  the card's bandwidth when its name is not in src/cli/bench-summary.ts's table
#   DEVICE_BENCH_WORK        scratch folder (default /tmp/device-bench); DEVICE_BENCH_PACK (default .device)
#   DEVICE_BENCH_OFFLINE=1   prepare: copy this machine's installed Vulkan loader instead of downloading packages
#   DEVICE_BENCH_XZ_LEVEL    prepare: xz preset (default 9)
#   DEVICE_BENCH_FORCE_CARRIED_LIBS=1   run: use the carried libraries even where the system has its own
#   LLAMA_WEBGPU_ADAPTER     as for the CLI (default: the best adapter installed)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PACK=${DEVICE_BENCH_PACK:-$ROOT/.device}
WORK=${DEVICE_BENCH_WORK:-/tmp/device-bench}
NVIDIA_ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
# The Vulkan loader, and GLVND's dispatch libraries that NVIDIA's Vulkan driver (libGLX_nvidia) links against.
DEBS=(libvulkan1 libglvnd0 libegl1 libgl1 libglx0 libgles2 libopengl0)
MAX_CARRY_BYTES=$((56 * 1024 * 1024)) # the device tool carries 64 MiB, the checkout included

die() {
  echo "device-bench: $*" >&2
  exit 1
}

usage() {
  echo "usage: scripts/device-bench.sh prepare | run [--dry-run]" >&2
  exit 2
}

# ---------------------------------------------------------------------------------------------------------------
prepare() {
  [[ $(uname -s) == Linux && $(uname -m) == x86_64 ]] || die "prepare must run on x86-64 Linux: the GPU machine runs the Node binary and Dawn addon packed here"
  local node_bin dawn
  node_bin=$(command -v node) || die "node is not on PATH"
  dawn=$ROOT/node_modules/webgpu/dist/linux-x64/dawn.node
  [[ -f $dawn ]] || die "$dawn is missing: run npm ci"
  [[ -d $ROOT/node_modules/sentencepiece-js ]] || die "node_modules/sentencepiece-js is missing: run npm ci"
  command -v xz >/dev/null || die "xz is missing (apt-get install xz-utils)"
  local level=${DEVICE_BENCH_XZ_LEVEL:-9}

  rm -rf "$PACK"
  mkdir -p "$PACK/app/node_modules/webgpu/dist/linux-x64" "$PACK/lib"
  echo "building the CLI (vite.cli.config.ts) ..." >&2
  (cd "$ROOT" && npx vite build -c vite.cli.config.ts --outDir "$PACK/app/dist/cli" --emptyOutDir --logLevel warn)
  # dist/cli is ES modules with npm packages left as imports: webgpu, and sentencepiece-js for tokenizer.model files.
  printf '{ "type": "module", "private": true }\n' >"$PACK/app/package.json"
  cp "$ROOT/node_modules/webgpu/package.json" "$ROOT/node_modules/webgpu/index.js" "$PACK/app/node_modules/webgpu/"
  cp -r "$ROOT/node_modules/sentencepiece-js" "$PACK/app/node_modules/"

  echo "compressing $node_bin ($(node --version)) and dawn.node with xz -$level ..." >&2
  xz -"$level" -T2 -c "$node_bin" >"$PACK/node.xz"
  xz -"$level" -T2 -c "$dawn" >"$PACK/dawn.node.xz"

  # stories260K at f32 for a greedy-output check on the GPU (llama2.c's documented text), when the samples are here.
  local stories=$ROOT/../shared/models/stories260K
  if [[ -f $stories/stories260K.bin && -f $stories/tok512.bin ]]; then
    node "$PACK/app/dist/cli/bin.js" convert "$stories/stories260K.bin" "$PACK/stories260K" --tokenizer "$stories/tok512.bin" --quant f32 >&2
  else
    echo "no ../shared/models/stories260K here: the run will skip its greedy-output check" >&2
  fi

  local debs=$PACK/debs
  mkdir -p "$debs"
  if [[ ${DEVICE_BENCH_OFFLINE:-0} != 1 ]] && (cd "$debs" && apt-get download "${DEBS[@]}" >&2); then
    for f in "$debs"/*.deb; do dpkg-deb -x "$f" "$debs/root"; done
    find "$debs/root" -name '*.so*' \( -type f -o -type l \) -exec cp -P {} "$PACK/lib/" \;
    rm -rf "$debs"
  else
    echo "no package download: copying the installed Vulkan loader and GL dispatch libraries" >&2
    local lib
    for lib in libvulkan.so.1 libGLdispatch.so.0 libGLX.so.0 libEGL.so.1 libGL.so.1 libOpenGL.so.0; do
      local path
      # awk reads to the end: exiting at the first match could close the pipe on ldconfig mid-write, and under
      # pipefail its SIGPIPE would end this script.
      path=$(/sbin/ldconfig -p | awk -v l="$lib" '!found && $1 == l && /x86-64/ { print $NF; found = 1 }')
      if [[ -n $path ]]; then cp -L "$path" "$PACK/lib/$lib"; else echo "  $lib: not installed here, not packed" >&2; fi
    done
    rm -rf "$debs"
  fi
  [[ -e $PACK/lib/libvulkan.so.1 ]] || die "no libvulkan.so.1 was packed (apt-get download libvulkan1 failed and none is installed)"

  local carried tree
  carried=$(du -sb "$PACK" | cut -f1)
  tree=$(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
  {
    echo "packed $(date -u +%FT%TZ) from the working tree at $(cd "$ROOT" && git rev-parse --short HEAD) ($(cd "$ROOT" && git status --short | wc -l) changed files)"
    echo "node $(node --version), webgpu $(node -p "require('$ROOT/node_modules/webgpu/package.json').version")"
    (cd "$PACK" && find . -type f -printf '%s\t%p\n' | sort -k2)
  } >"$PACK/MANIFEST"
  echo "packed $PACK: $((carried / 1024 / 1024)) MiB (+ $((tree / 1024 / 1024)) MiB checkout)" >&2
  ((carried + tree < MAX_CARRY_BYTES)) || die "$PACK and the checkout hold $(((carried + tree) / 1024 / 1024)) MiB, over the $((MAX_CARRY_BYTES / 1024 / 1024)) MiB kept under the device tool's 64 MiB"
  echo "next, on the GPU machine: scripts/device-bench.sh run (carry .device)" >&2
}

# ---------------------------------------------------------------------------------------------------------------
START=$SECONDS
log() { echo "[$((SECONDS - START))s] $*" | tee -a "$OUT/run.log" >&2; }
left() { echo $((BUDGET - (SECONDS - START))); }

unxz_to() { # <file.xz> <dest>: xz where installed, else Python's lzma
  if command -v xz >/dev/null; then
    xz -dc "$1" >"$2"
  else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"
  fi
}

has_lib() { /sbin/ldconfig -p 2>/dev/null | awk -v l="$1" '$1 == l { n++ } END { exit n ? 0 : 1 }'; }

# True while `pid` runs (a finished child that was not waited for yet is a zombie, state Z, and counts as done).
running() {
  local state
  [[ -r /proc/$1/stat ]] || return 1
  state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}

# Node, Dawn and the CLI: from the pack into $WORK/app, or (dry run without a pack) this checkout's.
setup_node() {
  if [[ -f $PACK/node.xz ]]; then
    log "unpacking $PACK into $WORK"
    rm -rf "$WORK/app" "$WORK/bin"
    mkdir -p "$WORK/bin"
    cp -r "$PACK/app" "$WORK/app"
    unxz_to "$PACK/node.xz" "$WORK/bin/node"
    chmod +x "$WORK/bin/node"
    unxz_to "$PACK/dawn.node.xz" "$WORK/app/node_modules/webgpu/dist/linux-x64/dawn.node"
    NODE=$WORK/bin/node
    CLI=$WORK/app/dist/cli/bin.js
  else
    [[ $DRY_RUN == 1 ]] || die "$PACK/node.xz is missing: run scripts/device-bench.sh prepare on a machine with Node, and carry .device"
    log "no pack at $PACK: using this checkout's node and a fresh CLI build"
    NODE=$(command -v node) || die "node is not on PATH"
    rm -rf "$WORK/app"
    (cd "$ROOT" && npx vite build -c vite.cli.config.ts --outDir "$WORK/app/dist/cli" --emptyOutDir --logLevel warn)
    CLI=$WORK/app/dist/cli/bin.js
    # Resolve npm packages from the checkout.
    ln -sfn "$ROOT/node_modules" "$WORK/app/node_modules"
  fi
  log "node $("$NODE" --version) at $NODE; CLI $CLI"
}

# The Vulkan loader: the system's where it has one, else the carried libraries (each linked only where missing).
setup_vulkan() {
  mkdir -p "$WORK/lib"
  rm -f "$WORK/lib"/*
  if [[ -d $PACK/lib ]]; then
    local f name
    for f in "$PACK"/lib/*.so*; do
      name=$(basename "$f")
      if [[ ${DEVICE_BENCH_FORCE_CARRIED_LIBS:-0} == 1 ]] || ! has_lib "$name"; then
        ln -sf "$f" "$WORK/lib/$name"
        log "carried $name"
      fi
    done
  fi
  local path=$WORK/lib
  for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
    if [[ -d $d ]]; then path=$path:$d; fi
  done
  export LD_LIBRARY_PATH=$path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  if [[ $DRY_RUN == 0 && -z ${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-} && -f $NVIDIA_ICD ]]; then
    export VK_DRIVER_FILES=$NVIDIA_ICD
  fi
  log "LD_LIBRARY_PATH=$LD_LIBRARY_PATH VK_DRIVER_FILES=${VK_DRIVER_FILES:-} VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-}"
  if [[ ! -e $WORK/lib/libvulkan.so.1 ]] && ! has_lib libvulkan.so.1; then
    die "no Vulkan loader (libvulkan.so.1) on this machine and none carried: run prepare and carry .device"
  fi
}

# stories260K greedy from BOS must start with llama2.c's documented text, with Dawn's default toggles and with
# shader-f16 allowed on NVIDIA (vulkan_enable_f16_on_nvidia; a no-op elsewhere). Results go to run.log and GREEDY.
GREEDY_TEXT='Once upon a time, there was a little girl named Lily. She loved to play outside in the park'
GREEDY=()
greedy_check() {
  if [[ ! -f $PACK/stories260K/manifest.json ]]; then
    log "greedy check skipped: no stories260K package in $PACK"
    return 0
  fi
  local toggles label text adapter sets=("${LLAMA_WEBGPU_DAWN_TOGGLES:-}")
  if [[ ,${LLAMA_WEBGPU_DAWN_TOGGLES:-}, != *,vulkan_enable_f16_on_nvidia,* ]]; then
    sets+=("${LLAMA_WEBGPU_DAWN_TOGGLES:+$LLAMA_WEBGPU_DAWN_TOGGLES,}vulkan_enable_f16_on_nvidia")
  fi
  for toggles in "${sets[@]}"; do
    label=${toggles:-Dawn defaults}
    if LLAMA_WEBGPU_DAWN_TOGGLES=$toggles timeout 120 "$NODE" "$CLI" generate "$PACK/stories260K" --prompt "" --temperature 0 --max-tokens 30 --json \
      >"$WORK/greedy.json" 2>"$WORK/greedy.err"; then
      text=$("$NODE" -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).text)' "$WORK/greedy.json")
      adapter=$(grep -o '^\[adapter .*\]$' "$WORK/greedy.err" | head -1 || true)
      if [[ $text == "$GREEDY_TEXT"* ]]; then
        GREEDY+=("stories260K greedy ($label): matches llama2.c $adapter")
      else
        GREEDY+=("stories260K greedy ($label): WRONG TEXT \"$text\" $adapter")
      fi
    else
      GREEDY+=("stories260K greedy ($label): failed: $(grep -v artificially "$WORK/greedy.err" | tail -2 | tr '\n' ' ')")
    fi
    log "${GREEDY[-1]}"
  done
}

full_layers() {
  case $SHAPE in
    tiny) echo 5 ;;
    tinyllama) echo 22 ;;
    llama2-7b) echo 32 ;;
    llama2-13b) echo 40 ;;
    llama2-70b) echo 80 ;;
    *) die "unknown DEVICE_BENCH_SHAPE $SHAPE" ;;
  esac
}

# bench one package into $OUT/bench-L<layers>.json, within the time left.
bench_package() {
  local layers=$1 t
  t=$(($(left) - 15))
  if ((t < 30)); then
    log "skipping bench of $layers layers: ${t}s left"
    return 0
  fi
  log "bench $layers layers (timeout ${t}s)"
  if timeout "$t" "$NODE" "$CLI" bench "$WORK/pkg-L$layers" --prompt-tokens "$PROMPT" --gen-tokens "$GEN" --json \
    >"$OUT/bench-L$layers.json" 2> >(tee -a "$OUT/run.log" >&2); then
    log "bench $layers layers: $("$NODE" -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(`decode ${r.decodeTokensPerSecond.toFixed(2)} tok/s, prefill ${r.prefillTokensPerSecond.toFixed(1)} tok/s, ${r.dispatchesPerToken} dispatches, ${r.encodeUsPerDispatch.toFixed(2)} µs/dispatch encode`)' "$OUT/bench-L$layers.json")"
  else
    log "bench $layers layers failed or timed out (status $?)"
    rm -f "$OUT/bench-L$layers.json"
  fi
}

# Waits for the synth of `layers` layers, at most until the budget leaves `reserve` seconds; 0 when it finished.
wait_synth() {
  local layers=$1 reserve=$2 pid=${SYNTH_PID[$1]}
  while running "$pid"; do
    if (($(left) < reserve)); then
      log "synth of $layers layers still running with $(left)s left: stopped"
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      return 1
    fi
    sleep 2
  done
  if wait "$pid"; then
    log "synth of $layers layers done: $(tail -1 "$WORK/synth-L$layers.log")"
    return 0
  fi
  log "synth of $layers layers failed: $(tail -3 "$WORK/synth-L$layers.log" | tr '\r' '\n' | tail -2)"
  return 1
}

run() {
  DRY_RUN=0
  if [[ ${1:-} == --dry-run ]]; then DRY_RUN=1; fi
  [[ $# -le 1 && (${1:-} == "" || $DRY_RUN == 1) ]] || usage
  SHAPE=${DEVICE_BENCH_SHAPE:-llama2-7b}
  QUANT=${DEVICE_BENCH_QUANT:-q4}
  PROMPT=${DEVICE_BENCH_PROMPT:-128}
  GEN=${DEVICE_BENCH_GEN:-64}
  BUDGET=${DEVICE_BENCH_BUDGET_S:-450}
  local full shallow=() layers
  full=$(full_layers)
  for layers in ${DEVICE_BENCH_LAYERS-4 8}; do
    if ((layers < full)); then shallow+=("$layers"); fi
  done
  OUT=${OUT:-$WORK/out}
  mkdir -p "$OUT" "$WORK"
  rm -f "$OUT"/bench-L*.json "$OUT/kernels.json" "$OUT/encode.json" "$OUT/summary.md"
  : >"$OUT/run.log"
  log "device-bench run$([[ $DRY_RUN == 1 ]] && echo ' --dry-run'): $SHAPE $QUANT, layers ${shallow[*]:-} $([[ ${DEVICE_BENCH_FULL:-1} == 1 ]] && echo "$full"), budget ${BUDGET}s, $(nproc) CPUs"
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.memory --format=csv,noheader 2>&1 | while read -r l; do log "nvidia-smi: $l"; done
  fi

  setup_node
  setup_vulkan

  # Synthesize every package at once, one process each, while the GPU runs the short benchmarks.
  declare -gA SYNTH_PID=()
  local all=("${shallow[@]}")
  if [[ ${DEVICE_BENCH_FULL:-1} == 1 ]]; then all+=("$full"); fi
  for layers in "${all[@]}"; do
    rm -rf "$WORK/pkg-L$layers"
    "$NODE" "$CLI" synth "$WORK/pkg-L$layers" --shape "$SHAPE" --quant "$QUANT" --layers "$layers" >"$WORK/synth-L$layers.log" 2>&1 &
    SYNTH_PID[$layers]=$!
  done
  log "synthesizing $SHAPE $QUANT with ${all[*]} layers (pids ${SYNTH_PID[*]})"

  greedy_check

  log "bench-encode (JS cost per encoding call)"
  if timeout 120 "$NODE" "$CLI" bench-encode --json --rounds 3 >"$OUT/encode.json" 2> >(tee -a "$OUT/run.log" >&2); then
    log "adapter: $("$NODE" -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).node; console.log(`${r.adapter} (${r.adapterReason}); µs/call setPipeline ${r.usPerCall.setPipeline.toFixed(2)}, setBindGroup ${r.usPerCall.setBindGroup.toFixed(2)}, dispatchWorkgroups ${r.usPerCall.dispatchWorkgroups.toFixed(2)}, all three ${r.usPerCall.allThree.toFixed(2)}`)' "$OUT/encode.json")"
  else
    log "bench-encode failed: no WebGPU adapter? See the lines above."
  fi

  local kt=$(($(left) - 120))
  if ((kt > 200)); then kt=200; fi
  if ((kt > 20)); then
    log "bench-kernels (timeout ${kt}s)"
    local only=()
    if [[ -n ${DEVICE_BENCH_KERNELS_ONLY:-} ]]; then only=(--only "$DEVICE_BENCH_KERNELS_ONLY"); fi
    # Exit 1 with JSON on stdout: some kernels failed their check; the others are timed and kept.
    timeout "$kt" "$NODE" "$CLI" bench-kernels --json --shape "$SHAPE" --seconds "${DEVICE_BENCH_KERNEL_SECONDS:-0.5}" "${only[@]}" \
      >"$OUT/kernels.json" 2> >(tee -a "$OUT/run.log" >&2) || {
      if "$NODE" -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' "$OUT/kernels.json" 2>/dev/null; then
        log "bench-kernels: some kernels gave wrong results (listed in kernels.json and the summary)"
      else
        log "bench-kernels failed or timed out"; rm -f "$OUT/kernels.json"
      fi
    }
  fi

  for layers in "${shallow[@]}"; do
    wait_synth "$layers" 60 && bench_package "$layers"
  done
  if [[ ${DEVICE_BENCH_FULL:-1} == 1 ]]; then
    # Loading and benching the full model needs about a minute on a GPU; stop its synth before that.
    wait_synth "$full" 75 && bench_package "$full"
  fi
  for pid in "${SYNTH_PID[@]}"; do kill "$pid" 2>/dev/null || true; done

  local files=("$OUT"/bench-L*.json) args=()
  [[ -e ${files[0]} ]] || files=()
  if [[ -s $OUT/kernels.json ]]; then files+=("$OUT/kernels.json"); fi
  if [[ -n ${DEVICE_BENCH_BANDWIDTH_GBS:-} ]]; then args+=(--bandwidth-gbs "$DEVICE_BENCH_BANDWIDTH_GBS"); fi
  if [[ $DRY_RUN == 0 ]] && command -v nvidia-smi >/dev/null; then
    args+=(--gpu-name "$( (nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || true) | sed -n 1p)")
  fi
  if ((${#files[@]} == 0)); then
    log "no results to summarize"
    echo "# llama-webgpu device bench: no results (see run.log)" >"$OUT/summary.md"
    exit 1
  fi
  "$NODE" "$CLI" bench-summary "${files[@]}" --full-layers "$full" "${args[@]}" >"$OUT/summary.md"
  {
    echo
    echo "Run: $SHAPE $QUANT, prompt $PROMPT tokens, $GEN generated, $(nproc) CPUs, $((SECONDS - START)) s in all$([[ $DRY_RUN == 1 ]] && echo ', dry run')."
    [[ -e $OUT/bench-L$full.json ]] || echo "The full $full-layer package was not benched in the time budget: the full-depth figure above is the fit's estimate."
    local g
    for g in "${GREEDY[@]}"; do echo "- $g"; done
  } >>"$OUT/summary.md"
  log "summary: $OUT/summary.md"
  cat "$OUT/summary.md"
  # Packages are large; the GPU machine is given back anyway, but a dry run should not leave gigabytes in /tmp.
  if [[ $DRY_RUN == 1 ]]; then rm -rf "$WORK"/pkg-L*; fi
}

case ${1:-} in
  prepare) prepare ;;
  run) shift && run "$@" ;;
  *) usage ;;
esac
