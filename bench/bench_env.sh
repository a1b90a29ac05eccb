# bench_env.sh — sourced by the benchmark scripts (with $threads set): reports the environment and
# defines run(), which starts a command with the OpenBLAS kernel and thread count of the benchmark.
# design.md §3: the machine's environment may force a slower OpenBLAS kernel (OPENBLAS_CORETYPE)
# and cache size; the benchmarks drop both for their own commands and print the kernel used.
echo "environment: OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-<unset>} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-<unset>}" \
     "(both unset for the benchmark unless DA_BENCH_OPENBLAS_CORETYPE), threads $threads, load average $(cut -d' ' -f1-3 /proc/loadavg)"
# DA_BENCH_OPENBLAS_CORETYPE (e.g. Haswell, with ONEDNN_MAX_CPU_ISA=AVX2 and
# ATEN_CPU_CAPABILITY=avx2 for an AVX2-only machine) sets a kernel for both sides instead.
core=${DA_BENCH_OPENBLAS_CORETYPE:-}
run() {
  if [ -n "$core" ]; then env -u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE="$core" OMP_NUM_THREADS="$threads" "$@"
  else env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS="$threads" "$@"; fi
}
echo "conv backend: DIFFADAPT_CONV=${DIFFADAPT_CONV:-<unset>}, ONEDNN_MAX_CPU_ISA=${ONEDNN_MAX_CPU_ISA:-<unset>}," \
     "ATEN_CPU_CAPABILITY=${ATEN_CPU_CAPABILITY:-<unset>}, OPENBLAS_CORETYPE for the run: ${core:-<unset>}"
