/* gn_swish.c — fused GroupNorm + swish (+ shift, + dropout) and a vectorised swish for the UNet.
 * Forward: per (sample, group) the statistics, then one pass that normalises, applies the affine,
 * swish and dropout. Backward: one pass recomputes the activation and reduces the two group sums,
 * a second writes dx; nothing but the statistics (and the dropout mask) is stored. Declared in
 * tensor/fused_ops.h. */
#include "tensor/fused_ops.h"

/* The float clamps in exp_approx only vectorise when GCC may assume no FP traps; nothing here
 * relies on floating-point exception flags. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include <math.h>
#include <omp.h>
#include <string.h>

#include "tensor/ops/group_norm_grad.h"
#include "tensor/rng.h"

/* below this many elements a thread team costs more than it saves */
#define PAR_MIN 32768

/* e^x for |x| <= 80 in about 1 ulp (Cephes' polynomial after reduction by ln 2), written without
 * calls or branches so that loops over it vectorise; beyond, e^±80.
 * Why 80 and not 88 (where float overflows): GCC folds the clamped end into a constant, and
 * e^-88 (6e-39) is a denormal; multiplying by it costs a microcode assist on every vector
 * iteration, whatever the data (measured: swish 8.5 -> 1.2 ns per element). e^-80 (1.8e-35) is a
 * normal float, and sigmoid(z) for z < -80 is then 1.8e-35 instead of a smaller number, which
 * no output can tell from 0. */
static inline float exp_approx(float x) {
    /* NaN goes to 80 here (the int conversion below must see a finite value); callers
     * multiply by the original input, so a NaN still propagates to their output */
    x = !(x < 80.0f) ? 80.0f : x;
    x = x < -80.0f ? -80.0f : x;
    /* n = round(x / ln 2), via truncation of a positive number (|x / ln 2| < 128) */
    int32_t ni = (int32_t)(x * 1.44269504088896341f + 128.5f) - 128;
    float n = (float)ni;
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { int32_t i; float f; } scale = {.i = (ni + 127) << 23};
    return p * scale.f;
}

static inline float sigmoid_approx(float z) { return 1.0f / (1.0f + exp_approx(-z)); }

/* ---- GroupNorm + swish ----------------------------------------------------------------------- */

/* in = {x, weight, bias, shift?}; i[0]=N, i[1]=C, i[2]=S, i[3]=G, i[4]=dropout on;
 * f[0]=dropout scale; saved = mean (N,G), rstd (N,G), then the keep mask (bytes, N*C*S) */
static void gn_swish_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *x = e->in[0], *w = e->in[1], *b = e->in[2], *shift = e->n_in > 3 ? e->in[3] : NULL;
    const int64_t N = e->i[0], C = e->i[1], S = e->i[2], G = e->i[3], Cg = C / G;
    const bool drop = e->i[4];
    const float scale = e->f[0];
    const float *mean = e->saved, *rstd = mean + N * G;
    const unsigned char *keep = drop ? (const unsigned char *)(rstd + N * G) : NULL;
    const float *dy = e->out->grad, *xd = x->data, *wd = w->data, *bd = b->data;
    const float *sh = shift ? shift->data : NULL;
    float *dx = x->requires_grad ? da_grad(ctx, x) : NULL;
    float *dsh = shift && shift->requires_grad ? da_grad(ctx, shift) : NULL;
    /* per (n,c): sum_s dz and sum_s dz*xhat, dz the gradient at the norm's output */
    double *sums = da_arena_alloc(&ctx->arena, sizeof(double) * (size_t)(2 * N * C));
    double *sum_dz = sums, *sum_dzx = sums + N * C;   /* (N,C) each */
    const double inv_m = 1.0 / (double)(Cg * S);
    /* dz of a whole group is kept between the two passes: Cg*S floats per thread */
    int threads = omp_get_max_threads();
    float *work = da_arena_alloc(&ctx->arena, sizeof(float) * (size_t)(threads * Cg * S));

    #pragma omp parallel for schedule(static) if (N * C * S > PAR_MIN)
    for (int64_t ng = 0; ng < N * G; ng++) {
        int64_t n = ng / G, g = ng % G;
        float *dzg = work + (int64_t)omp_get_thread_num() * Cg * S;   /* (Cg,S) */
        const float mu = mean[ng], rs = rstd[ng];
        double sg = 0, sgx = 0;   /* group sums of w*dz and w*dz*xhat */
        for (int64_t cc = 0; cc < Cg; cc++) {
            int64_t c = g * Cg + cc, off = (n * C + c) * S;
            const float *xc = xd + off, *dyc = dy + off;
            const unsigned char *kc = keep ? keep + off : NULL;
            float *dz = dzg + cc * S;
            const float wc = wd[c], bc = bd[c], m = mu - (sh ? sh[n * C + c] : 0.0f);
            /* the upstream gradient through the dropout mask first (dz holds it for now) */
            if (kc) {
                for (int64_t s = 0; s < S; s++) dz[s] = kc[s] ? dyc[s] * scale : 0.0f;
                dyc = dz;
            }
            float a = 0.0f, ax = 0.0f;
            #pragma omp simd reduction(+ : a, ax)
            for (int64_t s = 0; s < S; s++) {
                float xh = (xc[s] - m) * rs;
                float z = xh * wc + bc;
                float sig = sigmoid_approx(z);
                float d = dyc[s] * sig * (1.0f + z * (1.0f - sig));
                dz[s] = d;
                a += d;
                ax += d * xh;
            }
            sum_dz[n * C + c] = a;
            sum_dzx[n * C + c] = ax;
            sg += (double)wc * a;
            sgx += (double)wc * ax;
        }
        if (!dx && !dsh) continue;
        /* dx = rstd * (w*dz - mean(w*dz) - xhat * mean(w*dz*xhat)) over the group */
        const float m1 = (float)(sg * inv_m), m2 = (float)(sgx * inv_m);
        for (int64_t cc = 0; cc < Cg; cc++) {
            int64_t c = g * Cg + cc, off = (n * C + c) * S;
            const float *xc = xd + off, *dz = dzg + cc * S;
            const float wc = wd[c], m = mu - (sh ? sh[n * C + c] : 0.0f);
            float tot = 0.0f;
            if (dx) {
                float *dxc = dx + off;
                #pragma omp simd reduction(+ : tot)
                for (int64_t s = 0; s < S; s++) {
                    float xh = (xc[s] - m) * rs;
                    float v = rs * (wc * dz[s] - m1 - xh * m2);
                    dxc[s] += v;
                    tot += v;
                }
            } else {
                #pragma omp simd reduction(+ : tot)
                for (int64_t s = 0; s < S; s++) tot += rs * (wc * dz[s] - m1 - (xc[s] - m) * rs * m2);
            }
            if (dsh) dsh[n * C + c] += tot;   /* the shift is added to every position */
        }
    }
    float *dw = w->requires_grad ? da_grad(ctx, w) : NULL, *db = b->requires_grad ? da_grad(ctx, b) : NULL;
    da_gn_affine_grad(sum_dz, sum_dzx, N, C, dw, db);
}

da_tensor *da_gn_swish(da_ctx *ctx, da_tensor *x, da_tensor *shift, da_tensor *weight, da_tensor *bias, int groups,
                       float eps, float dropout) {
    da_check(x->ndim >= 2, "gn_swish", "input needs at least (N,C)");
    const int64_t N = x->shape[0], C = x->shape[1], S = da_shape_numel(x->ndim - 2, x->shape + 2), G = groups;
    da_check(G > 0 && C % G == 0, "gn_swish", "%lld channels are not divisible into %d groups", (long long)C, groups);
    da_check(weight && bias && weight->numel == C && bias->numel == C, "gn_swish", "weight and bias need %lld entries", (long long)C);
    da_check(!shift || shift->numel == N * C, "gn_swish", "shift needs (N,C) = %lld entries", (long long)(N * C));
    da_check(dropout >= 0.0f && dropout < 1.0f, "gn_swish", "dropout %g outside [0,1)", (double)dropout);
    const int64_t Cg = C / G;
    const bool drop = ctx->training && dropout > 0.0f;
    const float scale = drop ? 1.0f / (1.0f - dropout) : 1.0f;
    const uint64_t stream = drop ? da_rng_at(ctx->seed, ctx->dropout_calls++) : 0;
    da_tensor *out = da_new_like(ctx, x);
    size_t stat_bytes = sizeof(float) * (size_t)(2 * N * G);
    float *saved = da_arena_alloc(&ctx->arena, stat_bytes + (drop ? (size_t)x->numel : 0) + 1);
    float *mean = saved, *rstd = saved + N * G;   /* (N,G) each */
    unsigned char *keep = drop ? (unsigned char *)(rstd + N * G) : NULL;
    const float *wd = weight->data, *bd = bias->data, *sh = shift ? shift->data : NULL;

    #pragma omp parallel for schedule(static) if (N * C * S > PAR_MIN)
    for (int64_t ng = 0; ng < N * G; ng++) {
        int64_t n = ng / G, g = ng % G;
        /* two passes (mean, then squared deviations) avoid the cancellation of E[x^2]-E[x]^2;
         * each channel row is summed in float lanes, rows are combined in double */
        double s = 0;
        for (int64_t c = g * Cg; c < (g + 1) * Cg; c++) {
            const float *xc = x->data + (n * C + c) * S;
            float a = 0.0f;
            #pragma omp simd reduction(+ : a)
            for (int64_t k = 0; k < S; k++) a += xc[k];
            s += (double)a + (sh ? (double)sh[n * C + c] * (double)S : 0.0);
        }
        const double M = (double)(Cg * S), mu = s / M;
        double ss = 0;
        for (int64_t c = g * Cg; c < (g + 1) * Cg; c++) {
            const float *xc = x->data + (n * C + c) * S;
            const float m = (float)(mu - (sh ? sh[n * C + c] : 0.0f));
            float a = 0.0f;
            #pragma omp simd reduction(+ : a)
            for (int64_t k = 0; k < S; k++) {
                float d = xc[k] - m;
                a += d * d;
            }
            ss += a;
        }
        const float rs = (float)(1.0 / sqrt(ss / M + (double)eps));
        mean[ng] = (float)mu;
        rstd[ng] = rs;
        for (int64_t c = g * Cg; c < (g + 1) * Cg; c++) {
            int64_t off = (n * C + c) * S;
            const float *xc = x->data + off;
            float *yc = out->data + off;
            const float a = wd[c] * rs, b0 = bd[c] - ((float)mu - (sh ? sh[n * C + c] : 0.0f)) * a;
            #pragma omp simd
            for (int64_t k = 0; k < S; k++) {
                float z = xc[k] * a + b0;
                yc[k] = z * sigmoid_approx(z);
            }
            if (drop) {
                unsigned char *kc = keep + off;
                for (int64_t k = 0; k < S; k++) {
                    float u = (float)(da_rng_at(stream, (uint64_t)(off + k)) >> 40) * (1.0f / 16777216.0f);
                    kc[k] = u >= dropout;
                    yc[k] = kc[k] ? yc[k] * scale : 0.0f;
                }
            }
        }
    }
    da_tensor *in[4] = {x, weight, bias, shift};
    int n_in = shift ? 4 : 3;
    if (da_needs_grad(ctx, n_in, in)) {
        da_tape_entry *e = da_record(ctx, gn_swish_backward, out, n_in, in);
        e->i[0] = N; e->i[1] = C; e->i[2] = S; e->i[3] = G; e->i[4] = drop;
        e->f[0] = scale;
        e->saved = saved;
    }
    return out;
}

/* ---- swish ----------------------------------------------------------------------------------- */

static void swish_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *x = e->in[0];
    float *dx = da_grad(ctx, x);
    const float *xd = x->data, *dy = e->out->grad;
    int64_t n = x->numel;
    #pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float sig = sigmoid_approx(xd[i]);
        dx[i] += dy[i] * sig * (1.0f + xd[i] * (1.0f - sig));
    }
}

da_tensor *da_swish(da_ctx *ctx, da_tensor *x) {
    da_tensor *out = da_new_like(ctx, x);
    const float *xd = x->data;
    float *y = out->data;
    int64_t n = x->numel;
    #pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = xd[i] * sigmoid_approx(xd[i]);
    if (da_needs_grad(ctx, 1, &x)) da_record(ctx, swish_backward, out, 1, &x);
    return out;
}
