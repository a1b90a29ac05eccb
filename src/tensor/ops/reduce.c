/* reduce.c — sum and mean over any set of axes (keepdim or not), forward + backward.
 * Both go through the broadcast-reduction kernel of strided.h; backward broadcasts back. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/ops.h"
#include "tensor/ops/strided.h"

/* saved = keepdim shape (x->ndim entries), f[0] = scale (1 or 1/count) */
static void reduce_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *x = e->in[0], *out = e->out;
    const int64_t *kshape = e->saved;
    float *dx = da_grad(ctx, x);
    float scale = e->f[0];
    const float *g = out->grad;
    float *scaled = NULL;
    if (scale != 1.0f) {
        scaled = da_scratch(out->numel);
        for (int64_t i = 0; i < out->numel; i++) scaled[i] = g[i] * scale;
        g = scaled;
    }
    /* dx = dx + broadcast(g): in place, dx has the full shape */
    da_bcast_binary(DA_BIN_ADD, x->ndim, x->shape, dx, x->ndim, x->shape, g, x->ndim, kshape, dx, false);
    free(scaled);
}

static da_tensor *reduce(da_ctx *ctx, da_tensor *x, int n_axes, const int *axes, bool keepdim, bool mean,
                         const char *name) {
    bool reduced[DA_MAX_DIMS] = {false};
    if (n_axes == 0) {
        for (int d = 0; d < x->ndim; d++) reduced[d] = true;
    } else {
        for (int k = 0; k < n_axes; k++) {
            int a = axes[k] < 0 ? axes[k] + x->ndim : axes[k];
            da_check(a >= 0 && a < x->ndim, name, "axis %d out of range for %d dims", axes[k], x->ndim);
            da_check(!reduced[a], name, "axis %d listed twice", axes[k]);
            reduced[a] = true;
        }
    }
    int64_t *kshape = da_arena_alloc(&ctx->arena, sizeof(int64_t) * DA_MAX_DIMS);
    int64_t oshape[DA_MAX_DIMS], count = 1;
    int ond = 0;
    for (int d = 0; d < x->ndim; d++) {
        kshape[d] = reduced[d] ? 1 : x->shape[d];
        if (reduced[d]) count *= x->shape[d];
        if (!reduced[d] || keepdim) oshape[ond++] = kshape[d];
    }
    da_tensor *out = da_zeros(ctx, ond, oshape);
    float scale = mean ? (count ? 1.0f / (float)count : NAN) : 1.0f;
    da_bcast_reduce_add(x->ndim, x->shape, x->data, NULL, x->ndim, kshape, out->data, scale);
    if (mean && count == 0)
        for (int64_t i = 0; i < out->numel; i++) out->data[i] = NAN;   /* mean of nothing, like torch */
    if (da_needs_grad(ctx, 1, &x)) {
        da_tape_entry *e = da_record(ctx, reduce_backward, out, 1, &x);
        e->saved = kshape;
        e->f[0] = scale;
    }
    return out;
}

da_tensor *da_sum(da_ctx *ctx, da_tensor *x, int n_axes, const int *axes, bool keepdim) {
    return reduce(ctx, x, n_axes, axes, keepdim, false, "sum");
}

da_tensor *da_mean(da_ctx *ctx, da_tensor *x, int n_axes, const int *axes, bool keepdim) {
    return reduce(ctx, x, n_axes, axes, keepdim, true, "mean");
}
