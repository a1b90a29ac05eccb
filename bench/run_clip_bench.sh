#!/bin/sh
# run_clip_bench.sh — CLIP image-tower benchmark, diffadapt (bench_clip.c) against a plain-PyTorch
# HF CLIP vision tower (bench_clip_torch.py) at the same thread count, after a cross-check that
# both compute the same embeddings and input gradients; markdown table on stdout, logs on stderr.
# Usage: bench/run_clip_bench.sh [threads=2] [iters=10, or env BENCH_ITERS]
#   env BUILD_DIR (default build): the CMake build folder to build bench_clip in.
#   env CLIP_ROWS (default vitb32,mini): which models to time.
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset for both commands (design.md §3) so that
# OpenBLAS picks its kernels for this CPU; the kernel that ran is printed with the table.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
THREADS=${1:-2}
ITERS=${2:-${BENCH_ITERS:-10}}
WARMUP=$(( ITERS / 5 + 1 ))
BUILD=${BUILD_DIR:-$ROOT/build}
PY=/usr/bin/python3
ROWS=${CLIP_ROWS:-vitb32,mini}
case ",$ROWS," in *,vitb32,*) VIT=1 ;; *) VIT=0 ;; esac
case ",$ROWS," in *,mini,*) MINI=1 ;; *) MINI=0 ;; esac

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
make -C "$BUILD" bench_clip >/dev/null
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# the same work: the reference must reproduce our embeddings and input gradient first
"$BUILD/bench_clip" --dump "$OUT/check.safetensors"
"$PY" "$ROOT/bench/bench_clip_torch.py" --check "$OUT/check.safetensors" > "$OUT/check.txt"
cat "$OUT/check.txt" >&2

env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$BUILD/bench_clip" --threads "$THREADS" --iters "$ITERS" \
    --warmup "$WARMUP" --rows "$ROWS" > "$OUT/c.txt"
cat "$OUT/c.txt" >&2
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$PY" "$ROOT/bench/bench_clip_torch.py" --threads "$THREADS" \
    --iters "$ITERS" --warmup "$WARMUP" --vitb32 $VIT --mini $MINI > "$OUT/t.txt"
cat "$OUT/t.txt" >&2

echo "### CLIP image tower: ViT-B/32 (random weights, 224x224x3, batch 8) and mini-CLIP (32x32x1, patch 4, width 128, 4 layers, batch 32), $THREADS threads"
echo
echo "- diffadapt $(grep '^OpenBLAS' "$OUT/c.txt")"
echo "- PyTorch $(head -1 "$OUT/t.txt" | cut -d' ' -f2) (plain-torch HF CLIP vision tower); $(grep '^OpenBLAS' "$OUT/t.txt")"
echo "- cross-check on a small 3-channel model: $(grep "check embeddings" "$OUT/check.txt" | sed "s/^check //"); $(grep "check input gradient" "$OUT/check.txt" | sed "s/^check //")"
echo "- fwd: forward only (no graph); grad: forward + gradient w.r.t. the input pixels, weights frozen (the directional loss's use). Model-size inputs, no resize. Median of $ITERS batches after $WARMUP warm-up; GFLOP counts matmuls and the patch conv"
echo
echo "| row | diffadapt img/s | diffadapt GFLOP/s | PyTorch img/s | PyTorch GFLOP/s | diffadapt speed-up |"
echo "|---|---:|---:|---:|---:|---:|"
awk '$1 == "RESULT" { if (FILENAME ~ /c.txt$/) c[$2] = $3; else { t[$2] = $3; g[$2] = $4; order[n++] = $2 } }
     END { for (i = 0; i < n; i++) { k = order[i]; if (!(k in c)) continue;
           printf "| %s | %.2f | %.1f | %.2f | %.1f | %.2fx |\n", k, c[k], g[k] * c[k], t[k], g[k] * t[k], c[k] / t[k] } }' \
    "$OUT/c.txt" "$OUT/t.txt"
echo
