/* shape.c — reshape, permute, concat, slice, index-select and embedding lookup.
 * Reshape shares the input's data (no copy); its backward adds the gradient back. */
#include <string.h>

#include "tensor/ops.h"

static void reshape_backward(da_ctx *ctx, da_tape_entry *e) {
    float *dx = da_grad(ctx, e->in[0]);
    const float *dy = e->out->grad;
    for (int64_t i = 0; i < e->out->numel; i++) dx[i] += dy[i];
}

da_tensor *da_reshape(da_ctx *ctx, da_tensor *x, int ndim, const int64_t *shape) {
    int64_t resolved[DA_MAX_DIMS], known = 1;
    int infer = -1;
    da_check(ndim <= DA_MAX_DIMS, "reshape", "too many dims");
    for (int i = 0; i < ndim; i++) {
        resolved[i] = shape[i];
        if (shape[i] == -1) {
            da_check(infer < 0, "reshape", "more than one -1");
            infer = i;
        } else {
            known *= shape[i];
        }
    }
    if (infer >= 0) resolved[infer] = known ? x->numel / known : 0;
    da_check(da_shape_numel(ndim, resolved) == x->numel, "reshape", "element count changes");
    da_tensor *out = da_arena_calloc(&ctx->arena, sizeof *out);
    out->ndim = ndim;
    memcpy(out->shape, resolved, sizeof(int64_t) * (size_t)ndim);
    out->numel = x->numel;
    out->data = x->data;   /* a view: same elements, new shape */
    if (da_needs_grad(ctx, 1, &x)) da_record(ctx, reshape_backward, out, 1, &x);
    return out;
}
