#!/bin/sh
# reference_run_bench.sh — time and memory of the reference run's translation step at 256x256:
# DDIM inversion with the original model up to t0 601 in 40 steps (39 model calls), then 6
# generation steps with the fine-tuned model, model_ratio 1 (45 calls per image), one image.
# The models are random weights of the real sizes (configs/*.yml: the CelebA-HQ DDPM of
# celeba_hq.ckpt / human_sketch_t601.pth, the AFHQ-dog ADM of afhq_dog_4m.pt, guided-diffusion's
# unconditional ImageNet 256 ADM), so nothing needs downloading; speed does not depend on the
# weights' values.
#
# usage: bench/reference_run_bench.sh [BUILD_DIR (build)] [THREADS (all cores)] [ROWS]
#   ROWS: comma-separated NAME=full or NAME=INV+GEN; default
#         celeba_hq_ddpm=full,afhq_dog_adm=full,imagenet256_uncond_adm=3+2
#   NAME=full translates with the reference step counts; NAME=INV+GEN (each >= 2) runs --inv-steps INV
#   --gen-steps GEN (INV-1+GEN calls) and extrapolates the per-call time to 45 calls.
# Prints the machine (CPU model, cores, threads), `uptime` before and after every row, the
# translate summary, wall seconds per image (the translation loop, without loading) and the
# peak resident memory of the process (/usr/bin/time -v).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
THREADS=${2:-$(nproc)}
ROWS=${3:-celeba_hq_ddpm=full,afhq_dog_adm=full,imagenet256_uncond_adm=3+2}
BIN=$BUILD/diffadapt
MAKE=$BUILD/bench_reference_inputs
for b in "$BIN" "$MAKE"; do
    [ -x "$b" ] || { echo "error: $b not found; build first (bash scripts/build.sh $BUILD)" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "error: /usr/bin/time (GNU time) is needed for the peak memory" >&2; exit 1; }
WORK=$(mktemp -d /tmp/da_reference_bench_XXXXXX)
trap 'rm -rf "$WORK"' EXIT

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(nproc) cores visible; threads: $THREADS"
echo "OPENBLAS_CORETYPE: ${OPENBLAS_CORETYPE:-unset}"
echo "memory: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "build: $("$BIN" --version 2>&1 | head -n 1)"
echo "translation: t0 601, model_ratio 1, batch 1, 256x256x3"
"$MAKE" images 1 256 "$WORK/image.safetensors"

for row in $(echo "$ROWS" | tr ',' ' '); do
    name=${row%%=*}
    steps=${row#*=}
    cfg=$ROOT/configs/$name.yml
    [ -f "$cfg" ] || { echo "error: no config $cfg" >&2; exit 2; }
    if [ "$steps" = full ]; then inv=40; gen=6; else inv=${steps%+*}; gen=${steps#*+}; fi
    calls=$((inv - 1 + gen))
    D=$WORK/$name
    mkdir -p "$D"
    "$MAKE" model "$cfg" 1 "$D/m.safetensors" 2> "$D/make.txt"
    "$MAKE" model "$cfg" 2 "$D/m_ft.safetensors" 2>> "$D/make.txt"
    echo
    echo "== $name: $(head -n 1 "$D/make.txt" | sed 's/.*: //'), $inv inversion steps + $gen generation steps = $calls model calls"
    echo "load before: $(uptime)"
    /usr/bin/time -v -o "$D/time.txt" "$BIN" translate --model "$D/m.safetensors" --finetuned "$D/m_ft.safetensors" \
        --data "$WORK/image.safetensors" --out "$D/out" --t0 601 --inv-steps "$inv" --gen-steps "$gen" --model-ratio 1 \
        --batch 1 --grid-images 0 --threads "$THREADS" 2> "$D/log.txt" || { cat "$D/log.txt" >&2; exit 1; }
    echo "load after:  $(uptime)"
    tr '\r' '\n' < "$D/log.txt" | grep -o 'translated.*' || true
    per=$(tr '\r' '\n' < "$D/log.txt" | sed -n 's/.*(\([0-9.]*\) s per image).*/\1/p' | tail -n 1)
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$D/time.txt")
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$D/time.txt")
    cpu=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { printf "%.1f", u + s }' "$D/time.txt")
    awk -v n="$name" -v per="$per" -v calls="$calls" -v rss="$rss" -v wall="$wall" -v cpu="$cpu" -v steps="$steps" 'BEGIN {
        pc = per / calls
        est = steps == "full" ? per : pc * 45
        printf "RESULT %s: %.2f s per model call; %s s per image (%s, 45 calls); peak RSS %.2f GiB; process wall %s, CPU %s s\n",
            n, pc, sprintf("%.1f", est), steps == "full" ? "measured" : "extrapolated from " calls " calls",
            rss / 1048576, wall, cpu
    }'
done
