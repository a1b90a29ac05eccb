/* matmul.c — batched matrix products and linear layers on OpenBLAS sgemm, forward + backward.
 * All products go through one helper, gemm_batch, so transposes and batch broadcasting are
 * handled in one place. */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "tensor/ops/gemm.h"
#include "tensor/blas_threads.h"
#include "tensor/ops.h"

static void sgemm1(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                   const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    da_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}

/* Below this many multiply-adds a product runs on the calling thread. */
#define GEMM_SERIAL_MACS (1 << 18)

/* C[b] (M,N) = op(A[b]) op(B[b]) + beta * C[b] for b in [0,batch); a stride of 0 shares one
 * matrix across the batch.
 * The threads are OpenMP's, with OpenBLAS held to one thread: the two pools alternating made
 * the idle side spin against the busy one (perf: a fifth of a UNet step in sched_yield and
 * libgomp's wait loop). Whole products go to threads when the batch has enough of them;
 * otherwise each product is cut into column (or row) blocks, one per thread. Every element of C
 * is still one sgemm's dot product over all of K, so the split changes no sums. */
static void gemm_batch(int64_t batch, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                       const float *A, int64_t sa, const float *B, int64_t sb,
                       float beta, float *C, int64_t sc) {
    const int lda = ta ? (int)M : (int)K, ldb = tb ? (int)K : (int)N;
    int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (threads > 1 && batch * M * N * K < GEMM_SERIAL_MACS) threads = 1;
    const int blas_old = da_blas_serial_begin();
    if (threads <= 1 || (batch >= threads && sc != 0)) {
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
        for (int64_t i = 0; i < batch; i++) sgemm1(ta, tb, M, N, K, A + i * sa, lda, B + i * sb, ldb, beta, C + i * sc, N);
    } else {
        /* cut the longer side of C; column blocks are multiples of 16 floats */
        const bool by_cols = N >= M;
        const int64_t len = by_cols ? N : M, align = by_cols ? 16 : 4;
        int64_t chunk = (len + threads - 1) / threads;
        chunk = (chunk + align - 1) / align * align;
        const int64_t n_chunks = (len + chunk - 1) / chunk;
        for (int64_t i = 0; i < batch; i++) {
            const float *Ai = A + i * sa, *Bi = B + i * sb;
            float *Ci = C + i * sc;
#pragma omp parallel for schedule(static) num_threads(threads)
            for (int64_t c = 0; c < n_chunks; c++) {
                const int64_t lo = c * chunk, n = len - lo < chunk ? len - lo : chunk;
                if (by_cols) /* columns lo.. of op(B) and C */
                    sgemm1(ta, tb, M, n, K, Ai, lda, tb ? Bi + lo * ldb : Bi + lo, ldb, beta, Ci + lo, N);
                else         /* rows lo.. of op(A) and C */
                    sgemm1(ta, tb, n, N, K, ta ? Ai + lo : Ai + lo * lda, lda, Bi, ldb, beta, Ci + lo * N, N);
            }
        }
    }
    da_blas_serial_end(blas_old);
}

/* i[0]=ta, i[1]=tb, i[2]=M, i[3]=N, i[4]=K, i[5]=batch, i[6]=b is shared (2-D) */
static void matmul_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *a = e->in[0], *b = e->in[1], *out = e->out;
    bool ta = e->i[0], tb = e->i[1], shared_b = e->i[6];
    int64_t M = e->i[2], N = e->i[3], K = e->i[4], batch = e->i[5];
    const float *dC = out->grad;
    if (a->requires_grad) {
        /* dA = dC B^T (or its transpose when A was transposed) */
        float *dA = da_grad(ctx, a);
        int64_t sb = shared_b ? 0 : K * N;
        if (!ta) gemm_batch(batch, false, !tb, M, K, N, dC, M * N, b->data, sb, 1.0f, dA, M * K);
        else     gemm_batch(batch, tb, true, K, M, N, b->data, sb, dC, M * N, 1.0f, dA, M * K);
    }
    if (b->requires_grad) {
        float *dB = da_grad(ctx, b);
        if (shared_b) {
            /* Sum over the batch: treat (batch*M) as one long M when A is not transposed. */
            if (!ta) {
                if (!tb) gemm_batch(1, true, false, K, N, batch * M, a->data, 0, dC, 0, 1.0f, dB, 0);
                else     gemm_batch(1, true, false, N, K, batch * M, dC, 0, a->data, 0, 1.0f, dB, 0);
            } else {
                for (int64_t i = 0; i < batch; i++) {
                    if (!tb) gemm_batch(1, false, false, K, N, M, a->data + i * M * K, 0, dC + i * M * N, 0, 1.0f, dB, 0);
                    else     gemm_batch(1, true, true, N, K, M, dC + i * M * N, 0, a->data + i * M * K, 0, 1.0f, dB, 0);
                }
            }
        } else {
            if (!tb) gemm_batch(batch, !ta, false, K, N, M, a->data, M * K, dC, M * N, 1.0f, dB, K * N);
            else     gemm_batch(batch, true, ta, N, K, M, dC, M * N, a->data, M * K, 1.0f, dB, K * N);
        }
    }
}

da_tensor *da_matmul(da_ctx *ctx, da_tensor *a, da_tensor *b, bool trans_a, bool trans_b) {
    da_check(a->ndim >= 2 && b->ndim >= 2, "matmul", "operands need at least 2 dims");
    int64_t M = trans_a ? a->shape[a->ndim - 1] : a->shape[a->ndim - 2];
    int64_t K = trans_a ? a->shape[a->ndim - 2] : a->shape[a->ndim - 1];
    int64_t Kb = trans_b ? b->shape[b->ndim - 1] : b->shape[b->ndim - 2];
    int64_t N = trans_b ? b->shape[b->ndim - 2] : b->shape[b->ndim - 1];
    da_check(K == Kb, "matmul", "inner dimensions differ (%lld vs %lld)", (long long)K, (long long)Kb);
    bool shared_b = b->ndim == 2;
    if (!shared_b) {
        da_check(a->ndim == b->ndim, "matmul", "batch ranks differ");
        for (int i = 0; i < a->ndim - 2; i++)
            da_check(a->shape[i] == b->shape[i], "matmul", "batch dim %d differs", i);
    }
    int64_t batch = da_shape_numel(a->ndim - 2, a->shape);
    int64_t shape[DA_MAX_DIMS];
    memcpy(shape, a->shape, sizeof(int64_t) * (size_t)(a->ndim - 2));
    shape[a->ndim - 2] = M;
    shape[a->ndim - 1] = N;
    da_tensor *out = da_new(ctx, a->ndim, shape);
    gemm_batch(batch, trans_a, trans_b, M, N, K, a->data, M * K, b->data, shared_b ? 0 : K * N,
               0.0f, out->data, M * N);
    da_tensor *in[2] = {a, b};
    if (da_needs_grad(ctx, 2, in)) {
        da_tape_entry *e = da_record(ctx, matmul_backward, out, 2, in);
        e->i[0] = trans_a; e->i[1] = trans_b; e->i[2] = M; e->i[3] = N; e->i[4] = K;
        e->i[5] = batch; e->i[6] = shared_b;
    }
    return out;
}

/* Adds the bias row to every row, and in backward sums dY over rows into db. */
static void bias_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *x = e->in[0], *bias = e->in[1], *out = e->out;
    int64_t D = bias->numel, rows = out->numel / D;
    if (x->requires_grad) {
        float *dx = da_grad(ctx, x);
        for (int64_t i = 0; i < out->numel; i++) dx[i] += out->grad[i];
    }
    if (bias->requires_grad) {
        float *db = da_grad(ctx, bias);
        for (int64_t r = 0; r < rows; r++) {
            const float *g = out->grad + r * D;
            for (int64_t j = 0; j < D; j++) db[j] += g[j];
        }
    }
}

da_tensor *da_linear(da_ctx *ctx, da_tensor *x, da_tensor *w, da_tensor *b) {
    da_check(w->ndim == 2 && x->shape[x->ndim - 1] == w->shape[1], "linear",
             "input features %lld do not match weight (%lld,%lld)", (long long)x->shape[x->ndim - 1],
             (long long)w->shape[0], (long long)w->shape[1]);
    /* Fold all leading dims into rows: (rows,in) x (out,in)^T. */
    int64_t in_f = w->shape[1], out_f = w->shape[0], rows = x->numel / in_f;
    da_tensor *x2 = x->ndim == 2 ? x : da_reshape(ctx, x, DA_SHAPE(rows, in_f));
    da_tensor *y = da_matmul(ctx, x2, w, false, true);
    if (b) {
        da_check(b->numel == out_f, "linear", "bias has %lld entries, expected %lld", (long long)b->numel, (long long)out_f);
        da_tensor *yb = da_new_like(ctx, y);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < out_f; j++) yb->data[r * out_f + j] = y->data[r * out_f + j] + b->data[j];
        da_tensor *in[2] = {y, b};
        if (da_needs_grad(ctx, 2, in)) da_record(ctx, bias_backward, yb, 2, in);
        y = yb;
    }
    if (x->ndim == 2) return y;
    int64_t shape[DA_MAX_DIMS];
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    shape[x->ndim - 1] = out_f;
    return da_reshape(ctx, y, x->ndim, shape);
}
