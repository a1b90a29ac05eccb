/* attention.c — softmax over the last dimension and fused scaled dot-product attention
 * (QK^T, masked softmax, PV in one op) with their backward passes, on OpenBLAS sgemm. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "tensor/ops/gemm.h"
#include "tensor/blas_threads.h"
#include "tensor/ops.h"

/* In-place stable softmax of one row of n values of which only the first `valid` take part;
 * the rest get probability 0 (the causal mask). */
static void softmax_row(float *row, int64_t n, int64_t valid) {
    float mx = row[0];
    for (int64_t j = 1; j < valid; j++) mx = row[j] > mx ? row[j] : mx;
    double sum = 0;
    for (int64_t j = 0; j < valid; j++) {
        row[j] = expf(row[j] - mx);
        sum += row[j];
    }
    float inv = (float)(1.0 / sum);
    for (int64_t j = 0; j < valid; j++) row[j] *= inv;
    for (int64_t j = valid; j < n; j++) row[j] = 0.0f;
}

/* dS = P * (dP - sum_j P dP) for one row, in place over dP: the softmax Jacobian-vector product. */
static void softmax_row_backward(const float *p, float *dp, int64_t n) {
    double dot = 0;
    for (int64_t j = 0; j < n; j++) dot += (double)p[j] * dp[j];
    float d = (float)dot;
    for (int64_t j = 0; j < n; j++) dp[j] = p[j] * (dp[j] - d);
}

/* ---- softmax ---------------------------------------------------------------------------- */

/* i[0]=rows, i[1]=T (last dim) */
static void softmax_backward(da_ctx *ctx, da_tape_entry *e) {
    int64_t R = e->i[0], T = e->i[1];
    const float *y = e->out->data, *dy = e->out->grad;
    float *dx = da_grad(ctx, e->in[0]);
    #pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; r++) {
        const float *yr = y + r * T, *dyr = dy + r * T;
        double dot = 0;
        for (int64_t j = 0; j < T; j++) dot += (double)yr[j] * dyr[j];
        float d = (float)dot;
        /* masked entries have y = 0 and so receive no gradient */
        for (int64_t j = 0; j < T; j++) dx[r * T + j] += yr[j] * (dyr[j] - d);
    }
}

da_tensor *da_softmax(da_ctx *ctx, da_tensor *x, bool causal) {
    char buf[64];
    da_check(x->ndim >= 1 && x->shape[x->ndim - 1] > 0, "softmax", "last dimension is empty");
    int64_t T = x->shape[x->ndim - 1], R = x->numel / T;
    if (causal)
        da_check(x->ndim >= 2 && x->shape[x->ndim - 2] == T, "softmax",
                 "a causal mask needs square last two dims, got %s", da_shape_str(x, buf, sizeof buf));
    da_tensor *out = da_new_like(ctx, x);
    memcpy(out->data, x->data, sizeof(float) * (size_t)x->numel);
    #pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; r++) softmax_row(out->data + r * T, T, causal ? r % T + 1 : T);
    if (da_needs_grad(ctx, 1, &x)) {
        da_tape_entry *e = da_record(ctx, softmax_backward, out, 1, &x);
        e->i[0] = R; e->i[1] = T;
    }
    return out;
}

/* ---- fused attention -------------------------------------------------------------------- */

/* All threads are OpenMP's: sgemm runs single-threaded inside them (OpenBLAS's own threads would
 * fight OpenMP's spinning workers for the cores). Many heads run one head per thread; few heads
 * (the UNet's single head) split each head into blocks of query rows (and, in backward, of key
 * columns). */
typedef struct {
    int64_t BH, Tq, Tk, D, Dv;
    float scale;
    bool causal;
    bool per_head;            /* one whole head per thread */
    int64_t rb;               /* rows (or key columns) per block when heads are split */
} attn_plan;

static attn_plan attn_make_plan(int64_t BH, int64_t Tq, int64_t Tk, int64_t D, int64_t Dv, float scale, bool causal) {
    attn_plan a = {BH, Tq, Tk, D, Dv, scale, causal, true, 0};
    int nth = omp_get_max_threads();
    a.per_head = nth == 1 || BH % nth == 0 || BH >= 4 * (int64_t)nth;
    /* about four blocks per thread (causal rows differ in cost), at least 16 rows each */
    int64_t t = Tq > Tk ? Tq : Tk;
    a.rb = (t + 4 * nth - 1) / (4 * nth);
    if (a.rb < 16) a.rb = 16;
    return a;
}

/* Keys query row i may attend to: j <= i when causal (top-left aligned, as torch's is_causal). */
static int64_t attn_valid(const attn_plan *a, int64_t i) { return a->causal && i + 1 < a->Tk ? i + 1 : a->Tk; }

/* Query rows [i0,i1) of one head: S = scale Q K^T, P = softmax(S) into p (rows from i0,
 * leading dim Tk), O = P V. Keys beyond the block's causal reach are skipped in both products. */
static void attn_rows_forward(const attn_plan *a, const float *q, const float *k, const float *v, float *p,
                              float *o, int64_t i0, int64_t i1) {
    int m = (int)(i1 - i0), Tk = (int)a->Tk, D = (int)a->D, Dv = (int)a->Dv;
    int kn = (int)attn_valid(a, i1 - 1);
    da_sgemm(false, true, m, kn, D, a->scale, q + i0 * D, D, k, D, 0.0f, p, Tk);
    for (int64_t i = i0; i < i1; i++) softmax_row(p + (i - i0) * Tk, Tk, attn_valid(a, i));
    da_sgemm(false, false, m, Dv, kn, 1.0f, p, Tk, v, Dv, 0.0f, o + i0 * Dv, Dv);
}

/* Backward, phase 1, query rows [i0,i1) of one head: dS = softmax'(dO V^T) into ds (the whole
 * head, leading dim Tk; masked entries 0) and dQ += scale dS K. */
static void attn_rows_backward(const attn_plan *a, const float *k, const float *v, const float *p,
                               const float *dout, float *ds, float *dq, int64_t i0, int64_t i1) {
    int m = (int)(i1 - i0), Tk = (int)a->Tk, D = (int)a->D, Dv = (int)a->Dv;
    int kn = (int)attn_valid(a, i1 - 1);
    float *dsb = ds + i0 * Tk;
    da_sgemm(false, true, m, kn, Dv, 1.0f, dout + i0 * Dv, Dv, v, Dv, 0.0f, dsb, Tk);
    for (int64_t i = i0; i < i1; i++) {
        int64_t nv = attn_valid(a, i);
        softmax_row_backward(p + i * Tk, dsb + (i - i0) * Tk, nv);
        memset(dsb + (i - i0) * Tk + nv, 0, sizeof(float) * (size_t)(Tk - nv));
    }
    if (dq)
        da_sgemm(false, false, m, D, kn, a->scale, dsb, Tk, k, D, 1.0f, dq + i0 * D, D);
}

/* Backward, phase 2, key rows [j0,j1) of one head: dV += P^T dO and dK += scale dS^T Q over
 * the query rows that see these keys. */
static void attn_cols_backward(const attn_plan *a, const float *q, const float *p, const float *dout,
                               const float *ds, float *dk, float *dv, int64_t j0, int64_t j1) {
    int64_t r0 = a->causal ? j0 : 0;   /* causal: key j is seen by rows i >= j only */
    if (r0 >= a->Tq) return;
    int n = (int)(j1 - j0), rows = (int)(a->Tq - r0), Tk = (int)a->Tk, D = (int)a->D, Dv = (int)a->Dv;
    if (dv)
        da_sgemm(true, false, n, Dv, rows, 1.0f, p + r0 * Tk + j0, Tk,
                    dout + r0 * Dv, Dv, 1.0f, dv + j0 * Dv, Dv);
    if (dk)
        da_sgemm(true, false, n, D, rows, a->scale, ds + r0 * Tk + j0, Tk,
                    q + r0 * D, D, 1.0f, dk + j0 * D, D);
}

/* i[0..4]=BH,Tq,Tk,D,Dv, i[5]=causal; f[0]=scale; saved = P (B,H,Tq,Tk) */
static void attention_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *q = e->in[0], *k = e->in[1], *v = e->in[2];
    attn_plan a = attn_make_plan(e->i[0], e->i[1], e->i[2], e->i[3], e->i[4], e->f[0], e->i[5] != 0);
    int64_t BH = a.BH, Tq = a.Tq, Tk = a.Tk, D = a.D, Dv = a.Dv;
    const float *P = e->saved, *dO = e->out->grad;
    float *dq = q->requires_grad ? da_grad(ctx, q) : NULL;
    float *dk = k->requires_grad ? da_grad(ctx, k) : NULL;
    float *dv = v->requires_grad ? da_grad(ctx, v) : NULL;
    bool want_s = dq || dk;   /* dS is needed only for dQ and dK */
    int nth = a.per_head ? omp_get_max_threads() : 1;
    float *scratch = da_arena_alloc(&ctx->arena, sizeof(float) * (size_t)(nth * Tq * Tk));   /* (threads,Tq,Tk) dS */
    int old = da_blas_serial_begin();
    if (a.per_head) {
        #pragma omp parallel for schedule(dynamic, 1)
        for (int64_t bh = 0; bh < BH; bh++) {
            float *ds = scratch + (int64_t)omp_get_thread_num() * Tq * Tk;
            const float *qh = q->data + bh * Tq * D, *kh = k->data + bh * Tk * D, *vh = v->data + bh * Tk * Dv;
            const float *ph = P + bh * Tq * Tk, *doh = dO + bh * Tq * Dv;
            if (want_s) attn_rows_backward(&a, kh, vh, ph, doh, ds, dq ? dq + bh * Tq * D : NULL, 0, Tq);
            attn_cols_backward(&a, qh, ph, doh, ds, dk ? dk + bh * Tk * D : NULL, dv ? dv + bh * Tk * Dv : NULL, 0, Tk);
        }
    } else {
        int64_t nrb = (Tq + a.rb - 1) / a.rb, ncb = (Tk + a.rb - 1) / a.rb;
        #pragma omp parallel
        for (int64_t bh = 0; bh < BH; bh++) {
            const float *qh = q->data + bh * Tq * D, *kh = k->data + bh * Tk * D, *vh = v->data + bh * Tk * Dv;
            const float *ph = P + bh * Tq * Tk, *doh = dO + bh * Tq * Dv;
            if (want_s) {
                #pragma omp for schedule(dynamic, 1)
                for (int64_t b = 0; b < nrb; b++)
                    attn_rows_backward(&a, kh, vh, ph, doh, scratch, dq ? dq + bh * Tq * D : NULL, b * a.rb,
                                       (b + 1) * a.rb < Tq ? (b + 1) * a.rb : Tq);
            }
            /* the implied barrier: all of dS is ready; the next one keeps scratch until phase 2 ends */
            #pragma omp for schedule(dynamic, 1)
            for (int64_t b = 0; b < ncb; b++)
                attn_cols_backward(&a, qh, ph, doh, scratch, dk ? dk + bh * Tk * D : NULL,
                                   dv ? dv + bh * Tk * Dv : NULL, b * a.rb, (b + 1) * a.rb < Tk ? (b + 1) * a.rb : Tk);
        }
    }
    da_blas_serial_end(old);
}

da_tensor *da_attention(da_ctx *ctx, da_tensor *q, da_tensor *k, da_tensor *v, bool causal, float scale) {
    char bq[64], bk[64], bv[64];
    da_check(q->ndim == 4 && k->ndim == 4 && v->ndim == 4, "attention",
             "q, k, v must be (B,H,T,D), got %s %s %s", da_shape_str(q, bq, sizeof bq),
             da_shape_str(k, bk, sizeof bk), da_shape_str(v, bv, sizeof bv));
    int64_t B = q->shape[0], H = q->shape[1], Tq = q->shape[2], D = q->shape[3];
    int64_t Tk = k->shape[2], Dv = v->shape[3];
    da_check(k->shape[0] == B && k->shape[1] == H && k->shape[3] == D && v->shape[0] == B &&
             v->shape[1] == H && v->shape[2] == Tk && Tk > 0 && D > 0 && Dv > 0,
             "attention", "incompatible shapes q %s, k %s, v %s", da_shape_str(q, bq, sizeof bq),
             da_shape_str(k, bk, sizeof bk), da_shape_str(v, bv, sizeof bv));
    float sc = scale > 0 ? scale : (float)(1.0 / sqrt((double)D));
    attn_plan a = attn_make_plan(B * H, Tq, Tk, D, Dv, sc, causal);
    da_tensor *out = da_new(ctx, DA_SHAPE(B, H, Tq, Dv));
    da_tensor *in[3] = {q, k, v};
    bool record = da_needs_grad(ctx, 3, in);
    /* Work items: (head, block of query rows); a whole head per item in per-head mode. */
    int64_t rows = a.per_head ? (Tq ? Tq : 1) : a.rb, nrb = (Tq + rows - 1) / rows;
    int nth = omp_get_max_threads();
    /* With a tape the probabilities are kept for backward; otherwise one block scratch per thread. */
    float *P = da_arena_alloc(&ctx->arena, sizeof(float) * (size_t)(record ? a.BH * Tq * Tk : nth * rows * Tk));
    int old = da_blas_serial_begin();
    #pragma omp parallel for schedule(dynamic, 1)
    for (int64_t it = 0; it < a.BH * nrb; it++) {
        int64_t bh = it / nrb, i0 = (it % nrb) * rows, i1 = i0 + rows < Tq ? i0 + rows : Tq;
        float *p = record ? P + bh * Tq * Tk + i0 * Tk : P + (int64_t)omp_get_thread_num() * rows * Tk;
        attn_rows_forward(&a, q->data + bh * Tq * D, k->data + bh * Tk * D, v->data + bh * Tk * Dv, p,
                          out->data + bh * Tq * Dv, i0, i1);
    }
    da_blas_serial_end(old);
    if (record) {
        da_tape_entry *e = da_record(ctx, attention_backward, out, 3, in);
        e->i[0] = a.BH; e->i[1] = Tq; e->i[2] = Tk; e->i[3] = D; e->i[4] = Dv; e->i[5] = causal;
        e->f[0] = sc;
        e->saved = P;
    }
    return out;
}
