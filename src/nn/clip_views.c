/* clip_views.c — random views for the directional CLIP loss (see clip_views.h): each is a chain
 * of differentiable ops (crop, bilinear resize, average pooling, index select). */
#include "nn/clip_views.h"

#include <math.h>
#include <stdlib.h>

#include "tensor/ops.h"

void da_clip_view_draw(da_rng *r, int64_t H, int64_t W, float min_scale, da_clip_view *v) {
    da_check(H > 0 && W > 0 && min_scale > 0.0f && min_scale <= 1.0f, "clip_view", "bad view request (%lld×%lld, %g)",
             (long long)H, (long long)W, (double)min_scale);
    float s = min_scale + (1.0f - min_scale) * da_rng_uniform1(r);
    v->h = (int64_t)lrintf(s * (float)H);
    v->w = (int64_t)lrintf(s * (float)W);
    if (v->h < 1) v->h = 1;
    if (v->w < 1) v->w = 1;
    v->top = da_rng_int(r, H - v->h + 1);
    v->left = da_rng_int(r, W - v->w + 1);
    v->lowpass = da_rng_uniform1(r) < 0.5f && H >= 4 && W >= 4;
    v->mirror = da_rng_uniform1(r) < 0.5f;
}

da_tensor *da_clip_view_apply(da_ctx *ctx, da_tensor *x, const da_clip_view *v) {
    da_check(x->ndim == 4, "clip_view", "expects (B,C,H,W)");
    int64_t H = x->shape[2], W = x->shape[3];
    da_tensor *y = x;
    if (v->h != H || v->w != W) {
        y = da_crop(ctx, y, v->top, v->left, v->h, v->w);
        y = da_resize_bilinear(ctx, y, H, W);
    }
    if (v->lowpass) y = da_resize_bilinear(ctx, da_avg_pool2d(ctx, y, 2, 2), H, W);
    if (v->mirror) {
        int64_t *idx = malloc(sizeof(int64_t) * (size_t)W);
        da_check(idx != NULL, "clip_view", "out of memory");
        for (int64_t i = 0; i < W; i++) idx[i] = W - 1 - i;
        y = da_index_select(ctx, y, 3, W, idx);
        free(idx);
    }
    return y;
}
