#!/bin/sh
# run_mlp_bench.sh — MLP training-step benchmark, diffadapt (bench_mlp.c) against PyTorch
# (bench_mlp_torch.py) at the same thread count; prints a markdown table on stdout, logs on stderr.
# Usage: bench/run_mlp_bench.sh [threads=2] [iters=100, or env BENCH_ITERS]
#   env BUILD_DIR (default build): the CMake build folder to build bench_mlp in.
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset for both commands (design.md §3) so that
# OpenBLAS picks its kernels for this CPU; the kernel that ran is printed with the table.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
THREADS=${1:-2}
ITERS=${2:-${BENCH_ITERS:-100}}
WARMUP=$(( ITERS / 10 + 1 ))
BUILD=${BUILD_DIR:-$ROOT/build}
PY=/usr/bin/python3

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
make -C "$BUILD" bench_mlp >/dev/null
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$BUILD/bench_mlp" --threads "$THREADS" --iters "$ITERS" \
    --warmup "$WARMUP" > "$OUT/c.txt"
cat "$OUT/c.txt" >&2
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$PY" "$ROOT/bench/bench_mlp_torch.py" --threads "$THREADS" \
    --iters "$ITERS" --warmup "$WARMUP" > "$OUT/t.txt"
cat "$OUT/t.txt" >&2

echo "### MLP 784-512-512-10, ReLU, cross-entropy, Adam, batch 256 ($THREADS threads)"
echo
echo "- diffadapt $(grep '^OpenBLAS' "$OUT/c.txt")"
echo "- PyTorch $(head -1 "$OUT/t.txt" | cut -d' ' -f2); $(grep '^OpenBLAS' "$OUT/t.txt")"
echo "- median of $ITERS steps after $WARMUP warm-up; GFLOP counts matmuls only; loss over the run: diffadapt $(grep '^LOSS' "$OUT/c.txt" | awk '{print $2" -> "$3}'), PyTorch $(grep '^LOSS' "$OUT/t.txt" | awk '{print $2" -> "$3}')"
echo
echo "| step | diffadapt ms | diffadapt GFLOP/s | PyTorch ms | PyTorch GFLOP/s | diffadapt speed-up |"
echo "|---|---:|---:|---:|---:|---:|"
awk '$1 == "RESULT" { if (FILENAME ~ /c.txt$/) c[$2] = $3; else { t[$2] = $3; g[$2] = $4; order[n++] = $2 } }
     END { for (i = 0; i < n; i++) { k = order[i]; if (!(k in c)) continue;
           printf "| %s | %.2f | %.1f | %.2f | %.1f | %.2fx |\n", k, c[k], g[k] / c[k] * 1e3, t[k], g[k] / t[k] * 1e3, t[k] / c[k] } }' \
    "$OUT/c.txt" "$OUT/t.txt"
echo
