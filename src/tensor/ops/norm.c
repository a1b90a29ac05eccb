/* norm.c — group norm, layer norm and L2 normalisation, forward + backward.
 * Statistics are summed in double per group/row and saved (mean, 1/std) for the backward pass. */
#include <math.h>
#include <string.h>

#include "tensor/ops.h"
#include "tensor/ops/group_norm_grad.h"

/* ---- group norm ------------------------------------------------------------------------- */

/* i[0]=N, i[1]=C, i[2]=S (spatial size), i[3]=groups; saved = mean (N,G) then rstd (N,G) */
static void group_norm_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *x = e->in[0], *w = e->in[1], *b = e->in[2];
    int64_t N = e->i[0], C = e->i[1], S = e->i[2], G = e->i[3], Cg = C / G;
    const float *mean = e->saved, *rstd = (const float *)e->saved + N * G;
    const float *dy = e->out->grad, *xd = x->data;
    bool want_x = x->requires_grad;
    bool want_w = w && w->requires_grad, want_b = b && b->requires_grad;
    float *dx = want_x ? da_grad(ctx, x) : NULL;
    /* per (n,c): sum_s dy and sum_s dy*xhat, reduced over n afterwards for dw/db */
    double *sum_dy = da_arena_alloc(&ctx->arena, sizeof(double) * (size_t)(N * C));     /* (N,C) */
    double *sum_dyx = da_arena_alloc(&ctx->arena, sizeof(double) * (size_t)(N * C));    /* (N,C) */
    double inv_m = 1.0 / (double)(Cg * S);

    #pragma omp parallel for schedule(static)
    for (int64_t ng = 0; ng < N * G; ng++) {
        int64_t n = ng / G, g = ng % G;
        float mu = mean[ng], rs = rstd[ng];
        double sg = 0, sgx = 0;   /* sums of dy*w and dy*w*xhat over the group */
        for (int64_t c = g * Cg; c < (g + 1) * Cg; c++) {
            const float *dyc = dy + (n * C + c) * S, *xc = xd + (n * C + c) * S;
            double a = 0, bx = 0;
            for (int64_t s = 0; s < S; s++) {
                a += dyc[s];
                bx += (double)dyc[s] * ((xc[s] - mu) * rs);
            }
            sum_dy[n * C + c] = a;
            sum_dyx[n * C + c] = bx;
            double wc = w ? w->data[c] : 1.0;
            sg += wc * a;
            sgx += wc * bx;
        }
        if (!want_x) continue;
        /* dx = rstd * (dy*w - mean(dy*w) - xhat * mean(dy*w*xhat)) over the group */
        float m1 = (float)(sg * inv_m), m2 = (float)(sgx * inv_m);
        for (int64_t c = g * Cg; c < (g + 1) * Cg; c++) {
            const float *dyc = dy + (n * C + c) * S, *xc = xd + (n * C + c) * S;
            float *dxc = dx + (n * C + c) * S;
            float wc = w ? w->data[c] : 1.0f;
            for (int64_t s = 0; s < S; s++) {
                float xh = (xc[s] - mu) * rs;
                dxc[s] += rs * (wc * dyc[s] - m1 - xh * m2);
            }
        }
    }
    if (want_w || want_b) {
        float *dw = want_w ? da_grad(ctx, w) : NULL, *db = want_b ? da_grad(ctx, b) : NULL;
        da_gn_affine_grad(sum_dy, sum_dyx, N, C, dw, db);
    }
}

void da_gn_affine_grad(const double *sum_dy, const double *sum_dyx, int64_t N, int64_t C, float *dw, float *db) {
    for (int64_t c = 0; c < C; c++) {
        double a = 0, bx = 0;
        for (int64_t n = 0; n < N; n++) {
            a += sum_dy[n * C + c];
            bx += sum_dyx[n * C + c];
        }
        if (dw) dw[c] += (float)bx;
        if (db) db[c] += (float)a;
    }
}

da_tensor *da_group_norm(da_ctx *ctx, da_tensor *x, da_tensor *weight, da_tensor *bias, int groups, float eps) {
    char buf[64];
    da_check(x->ndim >= 2, "group_norm", "input %s needs at least (N,C)", da_shape_str(x, buf, sizeof buf));
    int64_t N = x->shape[0], C = x->shape[1], S = da_shape_numel(x->ndim - 2, x->shape + 2), G = groups;
    da_check(G > 0 && C % G == 0, "group_norm", "%lld channels are not divisible into %d groups",
             (long long)C, groups);
    da_check(!weight || weight->numel == C, "group_norm", "weight has %lld entries, expected %lld",
             weight ? (long long)weight->numel : 0LL, (long long)C);
    da_check(!bias || bias->numel == C, "group_norm", "bias has %lld entries, expected %lld",
             bias ? (long long)bias->numel : 0LL, (long long)C);
    int64_t Cg = C / G;
    da_tensor *out = da_new_like(ctx, x);
    float *stats = da_arena_alloc(&ctx->arena, sizeof(float) * (size_t)(2 * N * G + 1));
    float *mean = stats, *rstd = stats + N * G;   /* (N,G) each */
    const float *w = weight ? weight->data : NULL, *bb = bias ? bias->data : NULL;

    #pragma omp parallel for schedule(static)
    for (int64_t ng = 0; ng < N * G; ng++) {
        int64_t n = ng / G, g = ng % G;
        const float *xg = x->data + (n * C + g * Cg) * S;   /* (Cg,S) contiguous */
        int64_t M = Cg * S;
        /* two passes (mean, then squared deviations) avoid the cancellation of E[x^2]-E[x]^2 */
        double s = 0;
        for (int64_t j = 0; j < M; j++) s += xg[j];
        double mu = M ? s / (double)M : 0.0, ss = 0;
        for (int64_t j = 0; j < M; j++) {
            double d = xg[j] - mu;
            ss += d * d;
        }
        float rs = (float)(1.0 / sqrt((M ? ss / (double)M : 0.0) + (double)eps));
        float muf = (float)mu;
        mean[ng] = muf;
        rstd[ng] = rs;
        for (int64_t c = g * Cg; c < (g + 1) * Cg; c++) {
            const float *xc = x->data + (n * C + c) * S;
            float *yc = out->data + (n * C + c) * S;
            float a = w ? w[c] * rs : rs, b0 = (bb ? bb[c] : 0.0f);
            for (int64_t k = 0; k < S; k++) yc[k] = (xc[k] - muf) * a + b0;
        }
    }
    da_tensor *in[3] = {x, weight, bias};
    if (da_needs_grad(ctx, 3, in)) {
        da_tape_entry *e = da_record(ctx, group_norm_backward, out, 3, in);
        e->i[0] = N; e->i[1] = C; e->i[2] = S; e->i[3] = G;
        e->saved = stats;
    }
    return out;
}

/* ---- layer norm ------------------------------------------------------------------------- */

/* i[0]=rows, i[1]=D; saved = mean (rows) then rstd (rows) */
static void layer_norm_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *x = e->in[0], *w = e->in[1], *b = e->in[2];
    int64_t R = e->i[0], D = e->i[1];
    const float *mean = e->saved, *rstd = (const float *)e->saved + R;
    const float *dy = e->out->grad;
    if (x->requires_grad) {
        float *dx = da_grad(ctx, x);
        const float *wd = w ? w->data : NULL;
        #pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < R; r++) {
            const float *xr = x->data + r * D, *dyr = dy + r * D;
            float *dxr = dx + r * D;
            float mu = mean[r], rs = rstd[r];
            double sg = 0, sgx = 0;
            for (int64_t j = 0; j < D; j++) {
                float g = wd ? dyr[j] * wd[j] : dyr[j];
                sg += g;
                sgx += (double)g * ((xr[j] - mu) * rs);
            }
            float m1 = (float)(sg / (double)D), m2 = (float)(sgx / (double)D);
            for (int64_t j = 0; j < D; j++) {
                float g = wd ? dyr[j] * wd[j] : dyr[j];
                dxr[j] += rs * (g - m1 - (xr[j] - mu) * rs * m2);
            }
        }
    }
    bool want_w = w && w->requires_grad, want_b = b && b->requires_grad;
    if (want_w || want_b) {
        float *dw = want_w ? da_grad(ctx, w) : NULL, *db = want_b ? da_grad(ctx, b) : NULL;
        /* Threads own column blocks and sum over rows in order, so the result does not depend
         * on the thread count. */
        const int64_t BLK = 64;
        #pragma omp parallel for schedule(static)
        for (int64_t j0 = 0; j0 < D; j0 += BLK) {
            int64_t j1 = j0 + BLK < D ? j0 + BLK : D;
            double sw[64], sb[64];
            memset(sw, 0, sizeof sw);
            memset(sb, 0, sizeof sb);
            for (int64_t r = 0; r < R; r++) {
                const float *xr = x->data + r * D, *dyr = dy + r * D;
                float mu = mean[r], rs = rstd[r];
                for (int64_t j = j0; j < j1; j++) {
                    sw[j - j0] += (double)dyr[j] * ((xr[j] - mu) * rs);
                    sb[j - j0] += dyr[j];
                }
            }
            for (int64_t j = j0; j < j1; j++) {
                if (dw) dw[j] += (float)sw[j - j0];
                if (db) db[j] += (float)sb[j - j0];
            }
        }
    }
}

da_tensor *da_layer_norm(da_ctx *ctx, da_tensor *x, da_tensor *weight, da_tensor *bias, float eps) {
    da_check(x->ndim >= 1, "layer_norm", "input needs at least one dimension");
    int64_t D = x->shape[x->ndim - 1], R = D ? x->numel / D : 0;
    da_check(D > 0, "layer_norm", "last dimension is empty");
    da_check(!weight || weight->numel == D, "layer_norm", "weight has %lld entries, expected %lld",
             weight ? (long long)weight->numel : 0LL, (long long)D);
    da_check(!bias || bias->numel == D, "layer_norm", "bias has %lld entries, expected %lld",
             bias ? (long long)bias->numel : 0LL, (long long)D);
    da_tensor *out = da_new_like(ctx, x);
    float *stats = da_arena_alloc(&ctx->arena, sizeof(float) * (size_t)(2 * R + 1));
    float *mean = stats, *rstd = stats + R;   /* (rows) each */
    const float *w = weight ? weight->data : NULL, *bb = bias ? bias->data : NULL;

    #pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; r++) {
        const float *xr = x->data + r * D;
        float *yr = out->data + r * D;
        double s = 0, ss = 0;
        for (int64_t j = 0; j < D; j++) s += xr[j];
        double mu = s / (double)D;
        for (int64_t j = 0; j < D; j++) {
            double d = xr[j] - mu;
            ss += d * d;
        }
        float rs = (float)(1.0 / sqrt(ss / (double)D + (double)eps)), muf = (float)mu;
        mean[r] = muf;
        rstd[r] = rs;
        for (int64_t j = 0; j < D; j++) {
            float xh = (xr[j] - muf) * rs;
            yr[j] = (w ? xh * w[j] : xh) + (bb ? bb[j] : 0.0f);
        }
    }
    da_tensor *in[3] = {x, weight, bias};
    if (da_needs_grad(ctx, 3, in)) {
        da_tape_entry *e = da_record(ctx, layer_norm_backward, out, 3, in);
        e->i[0] = R; e->i[1] = D;
        e->saved = stats;
    }
    return out;
}

/* ---- L2 normalisation ------------------------------------------------------------------- */

/* i[0]=rows, i[1]=D, f[0]=eps; saved = max(||x||, eps) per row */
static void l2_normalize_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *x = e->in[0];
    int64_t R = e->i[0], D = e->i[1];
    float eps = e->f[0];
    const float *den = e->saved, *y = e->out->data, *dy = e->out->grad;
    float *dx = da_grad(ctx, x);
    #pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; r++) {
        const float *yr = y + r * D, *dyr = dy + r * D;
        float *dxr = dx + r * D;
        float inv = 1.0f / den[r];
        if (den[r] > eps) {
            /* y = x/|x|: dx = (dy - y (dy.y)) / |x| */
            double dot = 0;
            for (int64_t j = 0; j < D; j++) dot += (double)dyr[j] * yr[j];
            float d = (float)dot;
            for (int64_t j = 0; j < D; j++) dxr[j] += (dyr[j] - yr[j] * d) * inv;
        } else {
            /* the clamp is active: y = x/eps is linear in x */
            for (int64_t j = 0; j < D; j++) dxr[j] += dyr[j] * inv;
        }
    }
}

da_tensor *da_l2_normalize(da_ctx *ctx, da_tensor *x, float eps) {
    da_check(x->ndim >= 1 && x->shape[x->ndim - 1] > 0, "l2_normalize", "last dimension is empty");
    int64_t D = x->shape[x->ndim - 1], R = x->numel / D;
    da_tensor *out = da_new_like(ctx, x);
    float *den = da_arena_alloc(&ctx->arena, sizeof(float) * (size_t)(R + 1));   /* (rows) */
    #pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; r++) {
        const float *xr = x->data + r * D;
        double ss = 0;
        for (int64_t j = 0; j < D; j++) ss += (double)xr[j] * xr[j];
        float n = (float)sqrt(ss);
        den[r] = n > eps ? n : eps;
        for (int64_t j = 0; j < D; j++) out->data[r * D + j] = xr[j] / den[r];
    }
    if (da_needs_grad(ctx, 1, &x)) {
        da_tape_entry *e = da_record(ctx, l2_normalize_backward, out, 1, &x);
        e->i[0] = R; e->i[1] = D; e->f[0] = eps;
        e->saved = den;
    }
    return out;
}
