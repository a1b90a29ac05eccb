/* loss.c — mean losses (MSE, L1, BCE with logits, cross-entropy) and cosine similarity over
 * the last dim, forward + backward, matching torch 1.13 numerics (L2 normalisation: norm.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/ops.h"
#include "tensor/ops/strided.h"

static da_tensor *scalar_out(da_ctx *ctx, double v) {
    da_tensor *out = da_new(ctx, 0, NULL);
    out->data[0] = (float)v;
    return out;
}

static void check_same(const da_tensor *a, const da_tensor *b, const char *op) {
    char sa[96], sb[96];
    da_check(da_same_shape(a, b), op, "shapes %s and %s differ", da_shape_str(a, sa, sizeof sa),
             da_shape_str(b, sb, sizeof sb));
}

/* Sum over i of f(a[i], b[i]) in double. Fixed blocks are summed in parallel, then in order,
 * so the result is the same for every thread count. */
typedef enum { E_SQ, E_L1, E_BCE } elem_kind;
#define SUM_BLOCK 4096

static double elem_sum(elem_kind kind, const float *a, const float *b, int64_t n) {
    int64_t nb = (n + SUM_BLOCK - 1) / SUM_BLOCK;
    double *part = nb > 0 ? (double *)da_scratch(2 * nb) : NULL;   /* 2 floats per double */
#pragma omp parallel for if (n > DA_PAR_MIN) schedule(static)
    for (int64_t k = 0; k < nb; k++) {
        int64_t i1 = (k + 1) * SUM_BLOCK < n ? (k + 1) * SUM_BLOCK : n;
        double s = 0;
        for (int64_t i = k * SUM_BLOCK; i < i1; i++) {
            double x = a[i], y = b[i], d = x - y;
            switch (kind) {
            case E_SQ: s += d * d; break;
            case E_L1: s += fabs(d); break;
            /* max(x,0) - x t + log(1 + exp(-|x|)): no overflow for any x */
            case E_BCE: s += (x > 0 ? x : 0) - x * y + log1p(exp(-fabs(x))); break;
            }
        }
        part[k] = s;
    }
    double s = 0;
    for (int64_t k = 0; k < nb; k++) s += part[k];
    free(part);
    return s;
}

/* ---- MSE and L1 --------------------------------------------------------------------------- */

/* i[0] = 1 for L1, 0 for MSE */
static void pair_loss_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *a = e->in[0], *b = e->in[1];
    int64_t n = a->numel;
    bool l1 = e->i[0];
    float g = e->out->grad[0] / (float)n;
    float *da = a->requires_grad ? da_grad(ctx, a) : NULL;
    float *db = b->requires_grad ? da_grad(ctx, b) : NULL;
#pragma omp parallel for if (n > DA_PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float d = a->data[i] - b->data[i];
        /* L1: torch.sign, so the subgradient at 0 is 0 */
        float v = l1 ? g * (float)((d > 0.0f) - (d < 0.0f)) : 2.0f * g * d;
        if (da) da[i] += v;
        if (db) db[i] -= v;
    }
}

static da_tensor *pair_loss(da_ctx *ctx, da_tensor *a, da_tensor *b, bool l1) {
    check_same(a, b, l1 ? "l1_loss" : "mse_loss");
    int64_t n = a->numel;
    da_tensor *out = scalar_out(ctx, elem_sum(l1 ? E_L1 : E_SQ, a->data, b->data, n) / (double)n);
    da_tensor *in[2] = {a, b};
    if (da_needs_grad(ctx, 2, in)) {
        da_tape_entry *e = da_record(ctx, pair_loss_backward, out, 2, in);
        e->i[0] = l1;
    }
    return out;
}

da_tensor *da_mse_loss(da_ctx *ctx, da_tensor *a, da_tensor *b) { return pair_loss(ctx, a, b, false); }
da_tensor *da_l1_loss(da_ctx *ctx, da_tensor *a, da_tensor *b) { return pair_loss(ctx, a, b, true); }

/* ---- binary cross-entropy with logits ----------------------------------------------------- */

/* saved = targets data */
static void bce_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *x = e->in[0];
    const float *t = e->saved;
    int64_t n = x->numel;
    float g = e->out->grad[0] / (float)n;
    float *dx = da_grad(ctx, x);
#pragma omp parallel for if (n > DA_PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) dx[i] += g * (1.0f / (1.0f + expf(-x->data[i])) - t[i]);
}

da_tensor *da_bce_with_logits(da_ctx *ctx, da_tensor *logits, da_tensor *targets) {
    check_same(logits, targets, "bce_with_logits");
    int64_t n = logits->numel;
    da_tensor *out = scalar_out(ctx, elem_sum(E_BCE, logits->data, targets->data, n) / (double)n);
    if (da_needs_grad(ctx, 1, &logits)) {
        da_tape_entry *e = da_record(ctx, bce_backward, out, 1, &logits);
        e->saved = targets->data;
    }
    return out;
}

/* ---- cross-entropy ------------------------------------------------------------------------ */

/* sum_c exp(row[c] - max) of a row of C logits, with the max in *mx: the stable softmax
 * denominator that forward and backward both need. */
static double row_exp_sum(const float *row, int64_t C, float *mx) {
    float m = row[0];
    for (int64_t c = 1; c < C; c++) m = row[c] > m ? row[c] : m;
    double z = 0;
    for (int64_t c = 0; c < C; c++) z += exp((double)row[c] - m);
    *mx = m;
    return z;
}

/* saved = labels (N) */
static void cross_entropy_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *x = e->in[0];
    int64_t N = x->shape[0], C = x->shape[1];
    const int64_t *labels = e->saved;
    float g = e->out->grad[0] / (float)N;
    float *dx = da_grad(ctx, x);
    /* d/dx (logsumexp - x_label) = softmax - onehot */
#pragma omp parallel for if (x->numel > DA_PAR_MIN) schedule(static)
    for (int64_t r = 0; r < N; r++) {
        const float *row = x->data + r * C;
        float mx;
        double z = row_exp_sum(row, C, &mx);
        for (int64_t c = 0; c < C; c++) {
            float p = (float)(exp((double)row[c] - mx) / z);
            dx[r * C + c] += g * (p - (c == labels[r] ? 1.0f : 0.0f));
        }
    }
}

da_tensor *da_cross_entropy(da_ctx *ctx, da_tensor *logits, const int64_t *labels) {
    da_check(logits->ndim == 2, "cross_entropy", "logits must be (N,C), they have %d dims", logits->ndim);
    int64_t N = logits->shape[0], C = logits->shape[1];
    for (int64_t r = 0; r < N; r++)
        da_check(labels[r] >= 0 && labels[r] < C, "cross_entropy", "label %lld of row %lld outside [0,%lld)",
                 (long long)labels[r], (long long)r, (long long)C);
    double s = 0;
    for (int64_t r = 0; r < N; r++) {
        const float *row = logits->data + r * C;
        float mx;
        double z = row_exp_sum(row, C, &mx);
        s += log(z) + mx - row[labels[r]];   /* -log softmax at the label, stable */
    }
    da_tensor *out = scalar_out(ctx, s / (double)N);
    if (da_needs_grad(ctx, 1, &logits)) {
        int64_t *saved = da_arena_alloc(&ctx->arena, sizeof(int64_t) * (size_t)(N ? N : 1));
        memcpy(saved, labels, sizeof(int64_t) * (size_t)N);
        da_tape_entry *e = da_record(ctx, cross_entropy_backward, out, 1, &logits);
        e->saved = saved;
    }
    return out;
}

/* ---- cosine similarity -------------------------------------------------------------------- */

/* torch 1.13: cos = sum((a / max(|a|,eps)) * (b / max(|b|,eps))) over the last dim. Its
 * backward takes d max(|a|,eps)/da as a / max(|a|,eps) even where the clamp is active (the
 * clamp runs in place under no_grad), so we do the same:
 *   dcos/da = b / (na nb) - cos a / na^2,  na = max(|a|,eps), nb = max(|b|,eps). */
typedef struct {
    int64_t rows, D, rows_a, rows_b;
    float *na, *nb;               /* (rows) clamped norms */
} cos_saved;

static void cosine_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *a = e->in[0], *b = e->in[1], *out = e->out;
    const cos_saved *s = e->saved;
    int64_t D = s->D;
    float *da = a->requires_grad ? da_grad(ctx, a) : NULL;
    float *db = b->requires_grad ? da_grad(ctx, b) : NULL;
    /* A shared row (rows_x == 1) collects from every row, so the loop stays serial then. */
    bool serial = s->rows_a != s->rows_b;
#pragma omp parallel for if (!serial && s->rows * D > DA_PAR_MIN) schedule(static)
    for (int64_t r = 0; r < s->rows; r++) {
        const float *x = a->data + (s->rows_a == 1 ? 0 : r * D), *y = b->data + (s->rows_b == 1 ? 0 : r * D);
        float c = out->data[r], g = out->grad[r], na = s->na[r], nb = s->nb[r];
        float inv = 1.0f / (na * nb);
        if (da) {
            float *d = da + (s->rows_a == 1 ? 0 : r * D), k = c / (na * na);
            for (int64_t j = 0; j < D; j++) d[j] += g * (y[j] * inv - k * x[j]);
        }
        if (db) {
            float *d = db + (s->rows_b == 1 ? 0 : r * D), k = c / (nb * nb);
            for (int64_t j = 0; j < D; j++) d[j] += g * (x[j] * inv - k * y[j]);
        }
    }
}

da_tensor *da_cosine_similarity(da_ctx *ctx, da_tensor *a, da_tensor *b, float eps) {
    char sa[96], sb[96];
    da_check(a->ndim >= 1 && b->ndim >= 1 && a->shape[a->ndim - 1] == b->shape[b->ndim - 1], "cosine_similarity",
             "last dims of %s and %s differ", da_shape_str(a, sa, sizeof sa), da_shape_str(b, sb, sizeof sb));
    int64_t D = a->shape[a->ndim - 1], rows_a = a->numel / (D ? D : 1), rows_b = b->numel / (D ? D : 1);
    /* Rows pair up one to one, or a single row of either side is shared (e.g. one direction). */
    const da_tensor *lead = a;
    if (!da_same_shape(a, b)) {
        da_check(rows_a == 1 || rows_b == 1, "cosine_similarity",
                 "shapes %s and %s: need equal shapes or a single row on one side",
                 da_shape_str(a, sa, sizeof sa), da_shape_str(b, sb, sizeof sb));
        lead = rows_b == 1 && (rows_a > 1 || a->ndim >= b->ndim) ? a : b;
    }
    da_tensor *out = da_new(ctx, lead->ndim - 1, lead->shape);
    int64_t rows = out->numel;
    cos_saved *s = da_arena_alloc(&ctx->arena, sizeof *s);
    s->rows = rows; s->D = D; s->rows_a = rows_a; s->rows_b = rows_b;
    s->na = da_arena_alloc(&ctx->arena, sizeof(float) * (size_t)(rows ? rows : 1));
    s->nb = da_arena_alloc(&ctx->arena, sizeof(float) * (size_t)(rows ? rows : 1));
#pragma omp parallel for if (rows * D > DA_PAR_MIN) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *x = a->data + (rows_a == 1 ? 0 : r * D), *y = b->data + (rows_b == 1 ? 0 : r * D);
        double xx = 0, yy = 0, xy = 0;
        for (int64_t j = 0; j < D; j++) {
            xx += (double)x[j] * x[j];
            yy += (double)y[j] * y[j];
            xy += (double)x[j] * y[j];
        }
        double na = fmax(sqrt(xx), (double)eps), nb = fmax(sqrt(yy), (double)eps);
        s->na[r] = (float)na;
        s->nb[r] = (float)nb;
        out->data[r] = (float)(xy / (na * nb));
    }
    da_tensor *in[2] = {a, b};
    if (da_needs_grad(ctx, 2, in)) {
        da_tape_entry *e = da_record(ctx, cosine_backward, out, 2, in);
        e->saved = s;
    }
    return out;
}
