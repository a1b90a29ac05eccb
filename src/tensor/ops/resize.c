/* resize.c — resampling of (N,C,H,W) images: nearest x2 upsampling, bilinear and bicubic resize
 * (torch.nn.functional.interpolate, align_corners=False, no antialias), crop and constant pad.
 *
 * Bilinear and bicubic are separable: each output index reads `taps` input indices with fixed
 * weights (one table per axis, built exactly as PyTorch builds them). Forward = a horizontal
 * pass into (H, OW) then a vertical pass; backward runs the transposed passes in reverse. */
#include <math.h>
#include <string.h>

#include "tensor/ops.h"
#include "tensor/ops/scratch.h"

#define PAR_MIN 32768   /* elements below which a loop runs on one thread */

static void check_image(const char *op, const da_tensor *x) {
    char xs[64];
    da_check(x->ndim == 4, op, "input %s must be (N,C,H,W)", da_shape_str(x, xs, sizeof xs));
}

/* ---- nearest x2 ------------------------------------------------------------------------- */

static void upsample_nearest2x_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *x = e->in[0];
    const int64_t W = x->shape[3], rows = W ? x->numel / W : 0;
    const float *dy = e->out->grad;   /* (N,C,2H,2W) */
    float *dx = da_grad(ctx, x);
#pragma omp parallel for schedule(static) if (x->numel >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *a = dy + r * 4 * W, *b = a + 2 * W;   /* output rows 2h and 2h+1 */
        float *d = dx + r * W;
        for (int64_t j = 0; j < W; j++) d[j] += (a[2 * j] + a[2 * j + 1]) + (b[2 * j] + b[2 * j + 1]);
    }
}

da_tensor *da_upsample_nearest2x(da_ctx *ctx, da_tensor *x) {
    check_image("upsample_nearest2x", x);
    const int64_t W = x->shape[3], rows = W ? x->numel / W : 0;
    da_tensor *y = da_new(ctx, DA_SHAPE(x->shape[0], x->shape[1], 2 * x->shape[2], 2 * W));
#pragma omp parallel for schedule(static) if (x->numel >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *s = x->data + r * W;
        float *a = y->data + r * 4 * W;   /* output rows 2h and 2h+1 */
        for (int64_t j = 0; j < W; j++) a[2 * j] = a[2 * j + 1] = s[j];
        memcpy(a + 2 * W, a, sizeof(float) * (size_t)(2 * W));
    }
    if (da_needs_grad(ctx, 1, &x)) da_record(ctx, upsample_nearest2x_backward, y, 1, &x);
    return y;
}

/* ---- separable bilinear / bicubic ------------------------------------------------------- */

#define MAX_TAPS 4

/* For each output index o: input indices idx[o*taps + j] (already clamped) and weights. */
typedef struct {
    int64_t in, out;
    int taps;
    int64_t *idx;
    float *wt;
} resample_table;

/* PyTorch: scale = in/out (float); src = scale*(o+0.5)-0.5 in double, clamped at 0;
 * i0 = (int)src, i1 = i0 + (i0 < in-1), l1 = src - i0, l0 = 1 - l1; identity when in == out. */
static void table_linear(resample_table *t) {
    const float scale = (float)t->in / (float)t->out;
    for (int64_t o = 0; o < t->out; o++) {
        int64_t i0, i1;
        float l0, l1;
        if (t->in == t->out) {
            i0 = i1 = o;
            l0 = 1.0f;
            l1 = 0.0f;
        } else {
            double src = (double)scale * ((double)o + 0.5) - 0.5;
            if (src < 0) src = 0;
            i0 = (int64_t)src;
            i1 = i0 + (i0 < t->in - 1 ? 1 : 0);
            l1 = (float)(src - (double)i0);
            l0 = 1.0f - l1;
        }
        t->idx[2 * o] = i0;
        t->idx[2 * o + 1] = i1;
        t->wt[2 * o] = l0;
        t->wt[2 * o + 1] = l1;
    }
}

static float cubic1(float x, float A) { return ((A + 2) * x - (A + 3)) * x * x + 1; }
static float cubic2(float x, float A) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; }

/* PyTorch: scale = in/out (float); src = scale*(o+0.5)-0.5 (no clamping), i = floor(src),
 * t = src - i; taps i-1..i+2 clamped to [0, in-1] with Keys' cubic weights, A = -0.75.
 * PyTorch 1.13 computes src in double in the forward kernel but in float in the backward one;
 * both are mirrored (`src_in_float`), since for 40 -> 224 the two differ by ~2e-5. */
static void table_cubic(resample_table *t, bool src_in_float) {
    const float scale = (float)t->in / (float)t->out, A = -0.75f;
    for (int64_t o = 0; o < t->out; o++) {
        double src = src_in_float ? (double)(scale * ((float)o + 0.5f) - 0.5f)
                                  : (double)scale * ((double)o + 0.5) - 0.5;
        int64_t i = (int64_t)floor(src);
        if (i > t->in - 1) i = t->in - 1;
        float f = (float)(src - (double)i);
        f = f < 0 ? 0 : (f > 1 ? 1 : f);
        float w[4] = {cubic2(f + 1.0f, A), cubic1(f, A), cubic1(1.0f - f, A), cubic2(2.0f - f, A)};
        for (int j = 0; j < 4; j++) {
            int64_t k = i - 1 + j;
            k = k < 0 ? 0 : (k > t->in - 1 ? t->in - 1 : k);
            t->idx[4 * o + j] = k;
            t->wt[4 * o + j] = w[j];
        }
    }
}

static void table_init(da_ctx *ctx, resample_table *t, int64_t in, int64_t out, int taps, bool for_backward) {
    t->in = in;
    t->out = out;
    t->taps = taps;
    t->idx = da_arena_alloc(&ctx->arena, sizeof(int64_t) * (size_t)(out * taps + 1));
    t->wt = da_arena_alloc(&ctx->arena, sizeof(float) * (size_t)(out * taps + 1));
    if (taps == 2) table_linear(t);
    else table_cubic(t, for_backward);
}

/* saved = two tables {rows, cols} of the forward pass */
static void resample_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *x = e->in[0];
    const resample_table *tr = e->saved, *tc = tr + 1;
    const float *dy = e->out->grad;   /* (planes,OH,OW) */
    float *dx = da_grad(ctx, x);      /* (planes,H,W) */
    if (tr->taps == 4) {
        /* bicubic: PyTorch's backward builds its weights slightly differently (see table_cubic) */
        resample_table *bt = da_arena_alloc(&ctx->arena, 2 * sizeof(resample_table));
        table_init(ctx, &bt[0], tr->in, tr->out, 4, true);
        table_init(ctx, &bt[1], tc->in, tc->out, 4, true);
        tr = &bt[0];
        tc = &bt[1];
    }
    const int64_t planes = x->shape[0] * x->shape[1], H = tr->in, W = tc->in, OH = tr->out, OW = tc->out;
    da_scratch_mark mark;
    float *tmp = da_scratch_take(ctx, planes * H * OW, &mark);   /* (planes,H,OW) */
    memset(tmp, 0, sizeof(float) * (size_t)(planes * H * OW));
    /* Vertical pass transposed: tmp[idx] += w * dy row. Threads own column blocks of a plane. */
    const int64_t CB = 64, nblk = (OW + CB - 1) / CB;
#pragma omp parallel for schedule(static) if (planes * OH * OW >= PAR_MIN)
    for (int64_t pb = 0; pb < planes * nblk; pb++) {
        int64_t p = pb / nblk, c0 = (pb % nblk) * CB, c1 = c0 + CB < OW ? c0 + CB : OW;
        for (int64_t oh = 0; oh < OH; oh++) {
            const float *g = dy + (p * OH + oh) * OW;
            for (int j = 0; j < tr->taps; j++) {
                float w = tr->wt[oh * tr->taps + j];
                float *d = tmp + (p * H + tr->idx[oh * tr->taps + j]) * OW;
                for (int64_t c = c0; c < c1; c++) d[c] += w * g[c];
            }
        }
    }
    /* Horizontal pass transposed, row by row. */
#pragma omp parallel for schedule(static) if (planes * H * OW >= PAR_MIN)
    for (int64_t r = 0; r < planes * H; r++) {
        const float *g = tmp + r * OW;
        float *d = dx + r * W;
        for (int64_t ow = 0; ow < OW; ow++)
            for (int j = 0; j < tc->taps; j++) d[tc->idx[ow * tc->taps + j]] += tc->wt[ow * tc->taps + j] * g[ow];
    }
    da_scratch_give_back(ctx, &mark);
}

static da_tensor *resample(da_ctx *ctx, const char *op, da_tensor *x, int64_t OH, int64_t OW, int taps) {
    check_image(op, x);
    da_check(OH >= 1 && OW >= 1 && x->shape[2] >= 1 && x->shape[3] >= 1, op,
             "sizes must be positive (input %lldx%lld, output %lldx%lld)", (long long)x->shape[2],
             (long long)x->shape[3], (long long)OH, (long long)OW);
    const int64_t planes = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
    da_tensor *y = da_new(ctx, DA_SHAPE(x->shape[0], x->shape[1], OH, OW));
    bool record = da_needs_grad(ctx, 1, &x);
    /* The tables outlive the op when backward needs them. */
    resample_table *tab = da_arena_alloc(&ctx->arena, 2 * sizeof(resample_table));
    table_init(ctx, &tab[0], H, OH, taps, false);
    table_init(ctx, &tab[1], W, OW, taps, false);
    const resample_table *tr = &tab[0], *tc = &tab[1];

    da_scratch_mark mark;
    float *tmp = da_scratch_take(ctx, planes * H * OW, &mark);   /* (planes,H,OW) */
    /* Horizontal pass: tmp row = sum_j w_j x[idx_j]. */
#pragma omp parallel for schedule(static) if (planes * H * OW >= PAR_MIN)
    for (int64_t r = 0; r < planes * H; r++) {
        const float *s = x->data + r * W;
        float *d = tmp + r * OW;
        for (int64_t ow = 0; ow < OW; ow++) {
            const int64_t *ix = tc->idx + ow * taps;
            const float *w = tc->wt + ow * taps;
            float v = s[ix[0]] * w[0];
            for (int j = 1; j < taps; j++) v += s[ix[j]] * w[j];
            d[ow] = v;
        }
    }
    /* Vertical pass: output row = sum_j w_j tmp row idx_j. */
#pragma omp parallel for schedule(static) if (planes * OH * OW >= PAR_MIN)
    for (int64_t r = 0; r < planes * OH; r++) {
        int64_t p = r / OH, oh = r % OH;
        const int64_t *ix = tr->idx + oh * taps;
        const float *w = tr->wt + oh * taps;
        float *d = y->data + r * OW;
        const float *s0 = tmp + (p * H + ix[0]) * OW;
        for (int64_t c = 0; c < OW; c++) d[c] = s0[c] * w[0];
        for (int j = 1; j < taps; j++) {
            const float *s = tmp + (p * H + ix[j]) * OW;
            for (int64_t c = 0; c < OW; c++) d[c] += s[c] * w[j];
        }
    }
    da_scratch_give_back(ctx, &mark);
    if (record) {
        da_tape_entry *e = da_record(ctx, resample_backward, y, 1, &x);
        e->saved = tab;
    }
    return y;
}

da_tensor *da_resize_bilinear(da_ctx *ctx, da_tensor *x, int64_t out_h, int64_t out_w) {
    return resample(ctx, "resize_bilinear", x, out_h, out_w, 2);
}

da_tensor *da_resize_bicubic(da_ctx *ctx, da_tensor *x, int64_t out_h, int64_t out_w) {
    return resample(ctx, "resize_bicubic", x, out_h, out_w, 4);
}

/* ---- crop and pad ----------------------------------------------------------------------- */

/* Copies (or adds, for backward) an (h,w) window from planes (sH,sW) at (s_top,s_left) to planes
 * (dH,dW) at (d_top,d_left). */
static void copy_window(int64_t planes, int64_t h, int64_t w, const float *src, int64_t sH, int64_t sW,
                        int64_t s_top, int64_t s_left, float *dst, int64_t dH, int64_t dW, int64_t d_top,
                        int64_t d_left, bool add) {
#pragma omp parallel for schedule(static) if (planes * h * w >= PAR_MIN)
    for (int64_t r = 0; r < planes * h; r++) {
        int64_t p = r / h, i = r % h;
        const float *s = src + (p * sH + s_top + i) * sW + s_left;
        float *d = dst + (p * dH + d_top + i) * dW + d_left;
        if (add) {
            for (int64_t j = 0; j < w; j++) d[j] += s[j];
        } else {
            memcpy(d, s, sizeof(float) * (size_t)w);
        }
    }
}

/* i[0..1] = top, left */
static void crop_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *x = e->in[0], *y = e->out;
    float *dx = da_grad(ctx, x);
    copy_window(x->shape[0] * x->shape[1], y->shape[2], y->shape[3], y->grad, y->shape[2], y->shape[3], 0, 0,
                dx, x->shape[2], x->shape[3], e->i[0], e->i[1], true);
}

da_tensor *da_crop(da_ctx *ctx, da_tensor *x, int64_t top, int64_t left, int64_t h, int64_t w) {
    check_image("crop", x);
    da_check(top >= 0 && left >= 0 && h >= 0 && w >= 0 && top + h <= x->shape[2] && left + w <= x->shape[3],
             "crop", "window top %lld left %lld size %lldx%lld does not fit in a %lldx%lld image",
             (long long)top, (long long)left, (long long)h, (long long)w, (long long)x->shape[2],
             (long long)x->shape[3]);
    da_tensor *y = da_new(ctx, DA_SHAPE(x->shape[0], x->shape[1], h, w));
    copy_window(x->shape[0] * x->shape[1], h, w, x->data, x->shape[2], x->shape[3], top, left, y->data, h, w,
                0, 0, false);
    if (da_needs_grad(ctx, 1, &x)) {
        da_tape_entry *e = da_record(ctx, crop_backward, y, 1, &x);
        e->i[0] = top;
        e->i[1] = left;
    }
    return y;
}

/* i[0..1] = top, left */
static void pad_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *x = e->in[0], *y = e->out;
    float *dx = da_grad(ctx, x);
    copy_window(x->shape[0] * x->shape[1], x->shape[2], x->shape[3], y->grad, y->shape[2], y->shape[3], e->i[0],
                e->i[1], dx, x->shape[2], x->shape[3], 0, 0, true);
}

da_tensor *da_pad2d(da_ctx *ctx, da_tensor *x, int top, int bottom, int left, int right, float value) {
    check_image("pad2d", x);
    da_check(top >= 0 && bottom >= 0 && left >= 0 && right >= 0, "pad2d", "pads (%d,%d,%d,%d) must be >= 0",
             top, bottom, left, right);
    const int64_t H = x->shape[2], W = x->shape[3], OH = H + top + bottom, OW = W + left + right;
    da_tensor *y = da_new(ctx, DA_SHAPE(x->shape[0], x->shape[1], OH, OW));
#pragma omp parallel for schedule(static) if (y->numel >= PAR_MIN)
    for (int64_t i = 0; i < y->numel; i++) y->data[i] = value;
    copy_window(x->shape[0] * x->shape[1], H, W, x->data, H, W, 0, 0, y->data, OH, OW, top, left, false);
    if (da_needs_grad(ctx, 1, &x)) {
        da_tape_entry *e = da_record(ctx, pad_backward, y, 1, &x);
        e->i[0] = top;
        e->i[1] = left;
    }
    return y;
}
