#!/bin/sh
# run_finetune_memory.sh — peak memory of one DiffusionCLIP fine-tuning batch (one image, random
# weights, random ViT-B/32-sized CLIP) in each gradient mode, for the default 32x32 model and the
# CelebA-HQ 256 configuration. Each row is a separate process, so its RSS peak is its own.
# usage: bench/run_finetune_memory.sh [BUILD_DIR (build)] [THREADS (2)] [ROWS (default,celebahq256)]
# Memory of per-step and chain-recompute does not depend on the number of steps, so the 256 rows
# run them with 2 steps (the minimum) to save time. Chain at 256 runs 2 steps too (6 do not fit in
# 24 GB): the 6-step figure adds 4 steps of twice what one taped step keeps (mode step-tape; its
# activations and, during backward, their gradients; at 128x128 this predicts 1554 MB per step
# against 1518 MB measured between 2 and 3 chain steps).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
THREADS=${2:-2}
ROWS=${3:-default,celebahq256}
BIN=$BUILD/bench_finetune_memory
[ -x "$BIN" ] || { echo "error: $BIN not found; build it (cmake --build $BUILD --target bench_finetune_memory)" >&2; exit 1; }
for cfg in $(echo "$ROWS" | tr ',' ' '); do
    if [ "$cfg" = default ]; then
        for mode in chain chain-recompute per-step; do "$BIN" --config default --mode $mode --steps 6 --threads "$THREADS"; done
    else
        for mode in per-step chain-recompute; do "$BIN" --config "$cfg" --mode $mode --steps 2 --threads "$THREADS"; done
        r=$("$BIN" --config "$cfg" --mode chain --steps 2 --threads "$THREADS")
        echo "$r"
        a=$(echo "$r" | sed -n 's/.*arena_MB=\([0-9.]*\).*/\1/p')
        r=$("$BIN" --config "$cfg" --mode step-tape --threads "$THREADS")
        echo "$r"
        s=$(echo "$r" | sed -n 's/.*step_tape_MB=\([0-9.]*\).*/\1/p')
        awk -v a="$a" -v s="$s" -v c="$cfg" 'BEGIN { printf "RESULT config=%s mode=chain steps=6 arena_MB=%.1f (estimate: 2-step chain %.1f MB + 4 x 2 x %.1f MB, a taped step and its gradients)\n", c, a + 8 * s, a, s }'
    fi
done
