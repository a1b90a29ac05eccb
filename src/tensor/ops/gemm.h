/* gemm.h — the engine's one matrix product, C = alpha·op(A)·op(B) + beta·C, row-major, computed
 * on the calling thread (the ops parallelise around it). It runs on oneDNN's sgemm when oneDNN
 * is built in, else on OpenBLAS; DIFFADAPT_GEMM=blas or =dnnl forces one (read at every call).
 * Why oneDNN by default (single-thread GFLOP/s, docs/conv-backends.md): on this project's
 * AVX-512 VM OpenBLAS 0.3.21 does not recognise the CPU and runs its SSE3 kernel (18-21 against
 * oneDNN's 91-160); with OpenBLAS's own AVX-512 kernel oneDNN is still 1.2-1.5x faster, and
 * with both held to AVX2 0.99-1.23x. */
#ifndef DA_GEMM_H
#define DA_GEMM_H

#include <stdbool.h>
#include <stdint.h>

void da_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
              const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* Whether da_sgemm runs an AVX2-or-better kernel: oneDNN's, or OpenBLAS's when it recognised
 * the CPU (not its SSE3 "Prescott" fallback). */
bool da_gemm_is_fast(void);

/* "oneDNN" or "OpenBLAS <kernel>": which library da_sgemm runs now (for benchmarks and --version). */
const char *da_gemm_backend_describe(void);

#endif
