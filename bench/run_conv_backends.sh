#!/usr/bin/env bash
# run_conv_backends.sh — the measurement behind conv_dispatch.c's rule: bench_conv forward +
# backward per shape with DIFFADAPT_CONV=blas and =dnnl, alternating (blas, dnnl, blas, dnnl, ...)
# so that the machine's changing load hits both alike. Prints per shape each backend's fastest
# fwd+bwd pass over all rounds (on a shared machine the least disturbed one) and blas/dnnl
# (> 1: oneDNN faster).
# Usage: bench/run_conv_backends.sh [threads (default 2)] [rounds (default 3)] [build dir (default build)]
# Env: ONEDNN_MAX_CPU_ISA (e.g. AVX2) caps oneDNN's instruction set; OPENBLAS_CORETYPE is unset
#      unless DA_BENCH_OPENBLAS_CORETYPE gives one (e.g. Haswell, for an AVX2-only machine).
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
rounds=${2:-3}
build=${3:-build}
. "$(dirname "$0")/bench_env.sh"
echo "rounds $rounds"
run env DIFFADAPT_CONV=dnnl "$build/bench_conv" "$threads" 0 none | head -n 2
printf "%-24s | %10s %10s | %9s\n" "shape" "blas min" "dnnl min" "blas/dnnl"
for s in $("$build/bench_conv" --list); do
  b=() d=()
  for ((r = 0; r < rounds; r++)); do
    for m in blas dnnl; do
      t=$(run env DIFFADAPT_CONV=$m "$build/bench_conv" "$threads" 1 "$s" | awk '$1 == "MIN" { print $3 + $4 }')
      if [ $m = blas ]; then b+=("$t"); else d+=("$t"); fi
    done
  done
  mb=$(printf "%s\n" "${b[@]}" | sort -g | head -n 1)
  md=$(printf "%s\n" "${d[@]}" | sort -g | head -n 1)
  awk -v s="$s" -v b="$mb" -v d="$md" 'BEGIN { printf "%-24s | %10.2f %10.2f | %9.2f\n", s, b, d, b / d }'
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
