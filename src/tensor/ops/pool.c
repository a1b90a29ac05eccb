/* pool.c — 2-D max and average pooling (square kernel, stride, no padding, floor mode as in
 * PyTorch's defaults), forward + backward. Max pooling saves the argmax of each window. */
#include <math.h>
#include <string.h>

#include "tensor/ops.h"

#define PAR_MIN 32768   /* elements below which a loop runs on one thread */

typedef struct {
    int64_t planes, H, W, OH, OW, k, s;   /* planes = N*C */
} pool_geom;

static pool_geom pool_setup(const char *op, const da_tensor *x, int kernel, int stride) {
    char xs[64];
    da_check(x->ndim == 4, op, "input %s must be (N,C,H,W)", da_shape_str(x, xs, sizeof xs));
    da_check(kernel >= 1 && stride >= 1, op, "kernel %d and stride %d must be >= 1", kernel, stride);
    da_check(x->shape[2] >= kernel && x->shape[3] >= kernel, op, "input %s is smaller than the kernel %d",
             da_shape_str(x, xs, sizeof xs), kernel);
    pool_geom g;
    g.planes = x->shape[0] * x->shape[1];
    g.H = x->shape[2];
    g.W = x->shape[3];
    g.k = kernel;
    g.s = stride;
    g.OH = (g.H - kernel) / stride + 1;
    g.OW = (g.W - kernel) / stride + 1;
    return g;
}

/* ---- max pooling ------------------------------------------------------------------------ */

/* i[0..1] = kernel, stride; saved = argmax (N,C,OH,OW) as int32 offsets inside the input plane */
static void max_pool_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *x = e->in[0];
    pool_geom g = pool_setup("max_pool2d", x, (int)e->i[0], (int)e->i[1]);
    const int32_t *arg = e->saved;
    const float *dy = e->out->grad;
    float *dx = da_grad(ctx, x);
    const int64_t op = g.OH * g.OW, ip = g.H * g.W;
    /* Windows of one plane may overlap (stride < kernel): one thread per plane avoids races. */
#pragma omp parallel for schedule(static) if (x->numel >= PAR_MIN)
    for (int64_t pl = 0; pl < g.planes; pl++) {
        float *d = dx + pl * ip;
        for (int64_t j = 0; j < op; j++) d[arg[pl * op + j]] += dy[pl * op + j];
    }
}

da_tensor *da_max_pool2d(da_ctx *ctx, da_tensor *x, int kernel, int stride) {
    pool_geom g = pool_setup("max_pool2d", x, kernel, stride);
    da_tensor *y = da_new(ctx, DA_SHAPE(x->shape[0], x->shape[1], g.OH, g.OW));
    bool record = da_needs_grad(ctx, 1, &x);
    int32_t *arg = record ? da_arena_alloc(&ctx->arena, sizeof(int32_t) * (size_t)(y->numel ? y->numel : 1)) : NULL;
    da_check(g.H * g.W <= INT32_MAX, "max_pool2d", "plane too large for int32 indices");
#pragma omp parallel for schedule(static) if (x->numel >= PAR_MIN)
    for (int64_t r = 0; r < g.planes * g.OH; r++) {
        int64_t pl = r / g.OH, oh = r % g.OH;
        const float *xp = x->data + pl * g.H * g.W;   /* (H,W) */
        float *yr = y->data + r * g.OW;
        for (int64_t ow = 0; ow < g.OW; ow++) {
            int64_t h0 = oh * g.s, w0 = ow * g.s, best = h0 * g.W + w0;
            float m = -INFINITY;
            /* First maximum in row-major order wins; NaN propagates (as PyTorch does). */
            for (int64_t a = 0; a < g.k; a++)
                for (int64_t b = 0; b < g.k; b++) {
                    int64_t idx = (h0 + a) * g.W + w0 + b;
                    float v = xp[idx];
                    if (v > m || isnan(v)) {
                        m = v;
                        best = idx;
                        if (isnan(v)) goto done;
                    }
                }
        done:
            yr[ow] = m;
            if (arg) arg[r * g.OW + ow] = (int32_t)best;
        }
    }
    if (record) {
        da_tape_entry *e = da_record(ctx, max_pool_backward, y, 1, &x);
        e->i[0] = kernel;
        e->i[1] = stride;
        e->saved = arg;
    }
    return y;
}

/* ---- average pooling -------------------------------------------------------------------- */

/* i[0..1] = kernel, stride */
static void avg_pool_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *x = e->in[0];
    pool_geom g = pool_setup("avg_pool2d", x, (int)e->i[0], (int)e->i[1]);
    const float *dy = e->out->grad;
    float *dx = da_grad(ctx, x);
    const float inv = 1.0f / (float)(g.k * g.k);
    const int64_t op = g.OH * g.OW, ip = g.H * g.W;
#pragma omp parallel for schedule(static) if (x->numel >= PAR_MIN)
    for (int64_t pl = 0; pl < g.planes; pl++) {
        float *d = dx + pl * ip;
        for (int64_t oh = 0; oh < g.OH; oh++)
            for (int64_t ow = 0; ow < g.OW; ow++) {
                float v = dy[pl * op + oh * g.OW + ow] * inv;
                for (int64_t a = 0; a < g.k; a++) {
                    float *r = d + (oh * g.s + a) * g.W + ow * g.s;
                    for (int64_t b = 0; b < g.k; b++) r[b] += v;
                }
            }
    }
}

da_tensor *da_avg_pool2d(da_ctx *ctx, da_tensor *x, int kernel, int stride) {
    pool_geom g = pool_setup("avg_pool2d", x, kernel, stride);
    da_tensor *y = da_new(ctx, DA_SHAPE(x->shape[0], x->shape[1], g.OH, g.OW));
    const float area = (float)(g.k * g.k);
#pragma omp parallel for schedule(static) if (x->numel >= PAR_MIN)
    for (int64_t r = 0; r < g.planes * g.OH; r++) {
        int64_t pl = r / g.OH, oh = r % g.OH;
        const float *xp = x->data + pl * g.H * g.W;   /* (H,W) */
        float *yr = y->data + r * g.OW;
        for (int64_t ow = 0; ow < g.OW; ow++) {
            float s = 0.0f;
            for (int64_t a = 0; a < g.k; a++) {
                const float *xr = xp + (oh * g.s + a) * g.W + ow * g.s;
                for (int64_t b = 0; b < g.k; b++) s += xr[b];
            }
            yr[ow] = s / area;
        }
    }
    if (da_needs_grad(ctx, 1, &x)) {
        da_tape_entry *e = da_record(ctx, avg_pool_backward, y, 1, &x);
        e->i[0] = kernel;
        e->i[1] = stride;
    }
    return y;
}
