#!/bin/sh
# run_translate_bench.sh — seconds per translated image (DDIM inversion with 40 steps = 39 model
# calls, then 6 generation steps with a second model) for the default 32x32 model and the
# CelebA-HQ 256 configuration, random weights, diffadapt vs the same loop in PyTorch, same threads.
# usage: bench/run_translate_bench.sh [BUILD_DIR (build)] [THREADS (2)] [ROWS (default,celebahq256)]
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
THREADS=${2:-2}
ROWS=${3:-default,celebahq256}
BIN=$BUILD/diffadapt
PY=/usr/bin/python3
[ -x "$BIN" ] || { echo "error: $BIN not found; build first (cmake --build $BUILD --target diffadapt)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/da_translate_bench_XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# This machine sets OPENBLAS_CORETYPE=Haswell for everyone; the benchmark lets OpenBLAS pick its
# own kernels (AVX-512 here) and says which ones it got.
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
$PY -c "import ctypes, ctypes.util; l = ctypes.CDLL('libopenblas.so.0'); l.openblas_get_config.restype = ctypes.c_char_p; print('OpenBLAS:', l.openblas_get_config().decode())"
echo "threads: $THREADS, t0 500, 40 inversion steps (39 calls) + 6 generation steps"
for cfg in $(echo "$ROWS" | tr ',' ' '); do
    case $cfg in
        default) N=32; B=16 ;;
        celebahq256) N=1; B=1 ;;
        *) echo "unknown row $cfg" >&2; exit 2 ;;
    esac
    D=$WORK/$cfg
    $PY "$ROOT/bench/bench_translate_torch.py" make "$D" --config $cfg --images $N
    /usr/bin/time -f "%e %U %S" -o "$D/time.txt" "$BIN" translate --model "$D/m.safetensors" --finetuned "$D/m_ft.safetensors" \
        --data "$D/data.safetensors" --out "$D/out" --t0 500 --inv-steps 40 --gen-steps 6 --batch $B \
        --threads "$THREADS" 2> "$D/log.txt" || { cat "$D/log.txt" >&2; exit 1; }
    grep -o 'translated.*' "$D/log.txt"
    # the translation loop's own wall time (the CLI's summary), and the process's CPU time
    loop=$(sed -n 's/.*(\([0-9.]*\) s per image).*/\1/p' "$D/log.txt")
    awk -v l="$loop" -v n=$N -v cfg=$cfg '{ printf "RESULT diffadapt config=%s wall_s_per_img=%.4f cpu_s_per_img=%.4f (process CPU incl. loading; wall %.1f s)\n", cfg, l, ($2 + $3) / n, $1 }' "$D/time.txt"
    $PY "$ROOT/bench/bench_translate_torch.py" run "$D" --threads "$THREADS" --batch $B --compare "$D/out"
done
