/* gemm.c — da_sgemm on oneDNN or OpenBLAS (see gemm.h for the rule and its measurements). */
#include "tensor/ops/gemm.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifdef DA_HAVE_DNNL
#include <dnnl.h>
#endif

/* Whether this call goes to oneDNN: built in, and not forced to OpenBLAS. */
static bool use_dnnl(void) {
#ifdef DA_HAVE_DNNL
    const char *v = getenv("DIFFADAPT_GEMM");
    return !(v && strcmp(v, "blas") == 0);
#else
    return false;
#endif
}

static void blas_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                       const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K,
                alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

void da_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
              const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
#ifdef DA_HAVE_DNNL
    if (K > 0 && use_dnnl()) {
        /* oneDNN threads a call made outside a parallel region over all OpenMP threads; the
         * callers want it on this thread alone (they split the work themselves) */
        bool outside = !omp_in_parallel();
        int old = omp_get_max_threads();
        if (outside && old != 1) omp_set_num_threads(1);
        dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        if (outside && old != 1) omp_set_num_threads(old);
        if (st == dnnl_success) return;
        /* it checks only its arguments, which OpenBLAS takes as well: fall through */
    }
#endif
    blas_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

bool da_gemm_is_fast(void) {
    if (use_dnnl()) return true;
    static const char *const FAST[] = {"haswell", "zen", "skylakex", "cooperlake", "sapphirerapids"};
    const char *core = openblas_get_corename();
    for (size_t i = 0; core && i < sizeof FAST / sizeof FAST[0]; i++)
        if (strcasecmp(core, FAST[i]) == 0) return true;
    return false;
}

const char *da_gemm_backend_describe(void) {
    static char line[96];
    if (use_dnnl()) snprintf(line, sizeof line, "oneDNN sgemm");
    else snprintf(line, sizeof line, "OpenBLAS %s", openblas_get_corename());
    return line;
}
