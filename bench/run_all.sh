#!/bin/sh
# run_all.sh — runs every bench/run_*.sh in turn (conv, mlp, unet, clip, translate first, then any
# other) at one thread count and collects their output into one markdown file for the README.
# Usage: bench/run_all.sh [threads=2] [results file=bench/results.md]
#   env BUILD_DIR (default build): the Release build folder every benchmark is built in and run from.
#   env BENCH_ONLY: comma list of names to run (e.g. "mlp,clip" for run_mlp_bench.sh and
#       run_clip_bench.sh); default: all.
#   Quick smoke runs: BENCH_ITERS=2 (mlp, clip), DA_BENCH_SECONDS=0.1 (conv), CLIP_ROWS=mini.
# Each script's stderr goes to <results>.log. A script's arguments are read from the first
# `usage:` line of its header: each leading [..] slot naming a build folder or threads gets
# ours, in the order the script lists them (e.g. "[threads] [build dir]" or "[BUILD_DIR] [THREADS]").
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are unset here (design.md §3); the kernel is recorded.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
THREADS=${1:-2}
RESULTS=${2:-$ROOT/bench/results.md}
BUILD=${BUILD_DIR:-$ROOT/build}
case $BUILD in /*) ;; *) BUILD=$(pwd)/$BUILD ;; esac
case $RESULTS in /*) ;; *) RESULTS=$(pwd)/$RESULTS ;; esac
LOG=${RESULTS%.md}.log
PY=/usr/bin/python3
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
export BUILD_DIR="$BUILD"

: > "$LOG"
echo "building in $BUILD (log: $LOG)" >&2
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >> "$LOG" 2>&1 || { echo "cmake failed, see $LOG" >&2; exit 1; }
targets="diffadapt"
for c in "$ROOT"/bench/bench_*.c; do targets="$targets $(basename "$c" .c)"; done
# shellcheck disable=SC2086
cmake --build "$BUILD" -j "$(nproc)" --target $targets >> "$LOG" 2>&1 || { echo "build failed, see $LOG" >&2; exit 1; }

# the scripts, known ones in the README's order first
scripts=""
for n in conv mlp unet clip translate; do
    [ -f "$ROOT/bench/run_${n}_bench.sh" ] && scripts="$scripts $ROOT/bench/run_${n}_bench.sh"
done
for s in "$ROOT"/bench/run_*.sh; do
    case $s in */run_all.sh) continue ;; esac
    case " $scripts " in *" $s "*) ;; *) scripts="$scripts $s" ;; esac
done

# the arguments a script takes, from its usage line (see the header)
script_args() {
    line=$(grep -i -m1 '^#.*usage:' "$1" | sed 's/.*[Uu][Ss][Aa][Gg][Ee]: *[^ ]*//')
    out=""
    while :; do
        slot=$(printf '%s' "$line" | sed -n 's/^ *\[\([^]]*\)\].*/\1/p')
        [ -n "$slot" ] || break
        case $(printf '%s' "$slot" | tr 'A-Z' 'a-z') in
            *build*) out="$out $BUILD" ;;
            *thread*) out="$out $THREADS" ;;
            *) break ;;
        esac
        line=$(printf '%s' "$line" | sed 's/^ *\[[^]]*\]//')
    done
    printf '%s' "$out"
}

blas=$("$PY" -c "import ctypes; l = ctypes.CDLL('libopenblas.so.0'); l.openblas_get_config.restype = ctypes.c_char_p; l.openblas_get_corename.restype = ctypes.c_char_p; print(l.openblas_get_config().decode(), '(core', l.openblas_get_corename().decode() + ')')" 2>/dev/null || echo unknown)
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ] && commit="$commit (with uncommitted changes)"
{
    echo "# diffadapt benchmarks"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) cores available"
    echo "- threads: $THREADS (diffadapt: OpenMP threads, OpenBLAS single-threaded inside them; PyTorch: torch.set_num_threads)"
    echo "- OpenBLAS: $blas (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset)"
    echo "- PyTorch: $("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo unavailable); compiler: $(cc --version | head -1)"
    echo "- commit: $commit"
    # what the engine will run here: CPU extensions, convolution and gemm paths, precision
    echo "- diffadapt --version (kernel paths on this machine):"
    "$BUILD/diffadapt" --version 2>/dev/null | sed -n 's/^\(cpu extensions\|openblas\|convolutions\|matrix products\|inference precision[^:]*\): */  - \1: /p'
    [ -n "${ONEDNN_MAX_CPU_ISA:-}${ATEN_CPU_CAPABILITY:-}${DA_BENCH_OPENBLAS_CORETYPE:-}" ] &&
        echo "- held back for this run: ONEDNN_MAX_CPU_ISA=${ONEDNN_MAX_CPU_ISA:-<unset>} ATEN_CPU_CAPABILITY=${ATEN_CPU_CAPABILITY:-<unset>} DA_BENCH_OPENBLAS_CORETYPE=${DA_BENCH_OPENBLAS_CORETYPE:-<unset>}"
    echo "- load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
} > "$RESULTS"

failed=0
for s in $scripts; do
    name=$(basename "$s" .sh | sed 's/^run_//; s/_bench$//')
    if [ -n "${BENCH_ONLY:-}" ]; then
        case ",$BENCH_ONLY," in *",$name,"*) ;; *) continue ;; esac
    fi
    args=$(script_args "$s")
    echo "== $name: $(basename "$s")$args" >&2
    echo "== $name: $(basename "$s")$args" >> "$LOG"
    start=$(date +%s)
    # shellcheck disable=SC2086
    if [ -x "$s" ]; then "$s" $args; else bash "$s" $args; fi > "$RESULTS.part" 2>> "$LOG"
    rc=$?
    secs=$(( $(date +%s) - start ))
    {
        echo "## $name"
        echo
        echo "\`bench/$(basename "$s")$(echo "$args" | sed "s|$BUILD|\$BUILD|g")\`, ${secs} s, load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
        echo
        if grep -q '^|' "$RESULTS.part"; then
            cat "$RESULTS.part"
        else
            echo '```'
            cat "$RESULTS.part"
            echo '```'
        fi
        if [ $rc -ne 0 ]; then
            echo
            echo "**FAILED** (exit $rc); see $(basename "$LOG")"
            failed=1
        fi
        echo
    } >> "$RESULTS"
    rm -f "$RESULTS.part"
    [ $rc -eq 0 ] || echo "   $name FAILED (exit $rc), see $LOG" >&2
done
echo "results in $RESULTS" >&2
exit $failed
