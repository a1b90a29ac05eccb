/* shape.c — reshape, permute, concat, slice, index-select and embedding lookup.
 * Reshape shares the input's data (no copy); the others copy, and their backward adds the
 * gradient back to where each element came from. */
#include <string.h>

#include "tensor/ops.h"
#include "tensor/ops/strided.h"

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

/* ---- permute ------------------------------------------------------------------------------ */

/* i[0..ndim) = perm */
static void permute_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *x = e->in[0], *out = e->out;
    int nd = x->ndim;
    /* dx[x index] += g[out index]: read g along x's dims; x dim perm[i] is g's dim i */
    int64_t gst[DA_MAX_DIMS], st[DA_MAX_DIMS], s = 1;
    for (int i = nd - 1; i >= 0; i--) {
        gst[i] = s;
        s *= out->shape[i];
    }
    for (int i = 0; i < nd; i++) st[e->i[i]] = gst[i];
    da_strided_copy(nd, x->shape, out->grad, st, da_grad(ctx, x), true);
}

da_tensor *da_permute(da_ctx *ctx, da_tensor *x, const int *perm) {
    int nd = x->ndim;
    bool seen[DA_MAX_DIMS] = {false};
    int64_t shape[DA_MAX_DIMS] = {0}, xst[DA_MAX_DIMS] = {0}, st[DA_MAX_DIMS] = {0}, s = 1;
    for (int i = 0; i < nd; i++) {
        da_check(perm[i] >= 0 && perm[i] < nd && !seen[perm[i]], "permute",
                 "perm entry %d (= %d) is not a permutation of 0..%d", i, perm[i], nd - 1);
        seen[perm[i]] = true;
    }
    for (int i = nd - 1; i >= 0; i--) {
        xst[i] = s;
        s *= x->shape[i];
    }
    for (int i = 0; i < nd; i++) {
        shape[i] = x->shape[perm[i]];
        st[i] = xst[perm[i]];
    }
    da_tensor *out = da_new(ctx, nd, shape);
    da_strided_copy(nd, shape, x->data, st, out->data, false);
    if (da_needs_grad(ctx, 1, &x)) {
        da_tape_entry *e = da_record(ctx, permute_backward, out, 1, &x);
        for (int i = 0; i < nd; i++) e->i[i] = perm[i];
    }
    return out;
}

/* ---- concat and slice --------------------------------------------------------------------- */

/* A tensor seen as (outer, axis, inner) around one axis. */
static void split_at_axis(const da_tensor *t, int axis, int64_t *outer, int64_t *inner) {
    *outer = da_shape_numel(axis, t->shape);
    *inner = da_shape_numel(t->ndim - axis - 1, t->shape + axis + 1);
}

/* dst rows of dst_len floats at dst_stride += / = src rows of the same length at src_stride. */
static void copy_rows(float *dst, int64_t dst_stride, const float *src, int64_t src_stride,
                      int64_t rows, int64_t len, bool accumulate) {
#pragma omp parallel for if (rows * len > DA_PAR_MIN) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        float *d = dst + r * dst_stride;
        const float *s = src + r * src_stride;
        if (accumulate) for (int64_t j = 0; j < len; j++) d[j] += s[j];
        else memcpy(d, s, sizeof(float) * (size_t)len);
    }
}

/* i[0] = axis */
static void concat_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *out = e->out;
    int axis = (int)e->i[0];
    int64_t outer, inner, off = 0;
    split_at_axis(out, axis, &outer, &inner);
    int64_t row = out->shape[axis] * inner;
    for (int k = 0; k < e->n_in; k++) {
        da_tensor *x = e->in[k];
        int64_t len = x->shape[axis] * inner;
        if (x->requires_grad) copy_rows(da_grad(ctx, x), len, out->grad + off, row, outer, len, true);
        off += len;
    }
}

da_tensor *da_concat(da_ctx *ctx, int n, da_tensor *const *xs, int axis) {
    da_check(n >= 1 && n <= DA_TAPE_MAX_IN, "concat", "%d inputs (1..%d supported)", n, DA_TAPE_MAX_IN);
    int nd = xs[0]->ndim;
    if (axis < 0) axis += nd;
    da_check(axis >= 0 && axis < nd, "concat", "axis out of range for %d dims", nd);
    int64_t shape[DA_MAX_DIMS];
    memcpy(shape, xs[0]->shape, sizeof(int64_t) * (size_t)nd);
    shape[axis] = 0;
    for (int k = 0; k < n; k++) {
        char s0[96], sk[96];
        da_check(xs[k]->ndim == nd, "concat", "input %d has %d dims, input 0 has %d", k, xs[k]->ndim, nd);
        for (int d = 0; d < nd; d++)
            da_check(d == axis || xs[k]->shape[d] == xs[0]->shape[d], "concat",
                     "input %d %s and input 0 %s differ outside axis %d", k,
                     da_shape_str(xs[k], sk, sizeof sk), da_shape_str(xs[0], s0, sizeof s0), axis);
        shape[axis] += xs[k]->shape[axis];
    }
    da_tensor *out = da_new(ctx, nd, shape);
    int64_t outer, inner, off = 0;
    split_at_axis(out, axis, &outer, &inner);
    int64_t row = shape[axis] * inner;
    for (int k = 0; k < n; k++) {
        int64_t len = xs[k]->shape[axis] * inner;
        copy_rows(out->data + off, row, xs[k]->data, len, outer, len, false);
        off += len;
    }
    if (da_needs_grad(ctx, n, xs)) {
        da_tape_entry *e = da_record(ctx, concat_backward, out, n, xs);
        e->i[0] = axis;
    }
    return out;
}

/* i[0] = axis, i[1] = start */
static void slice_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *x = e->in[0], *out = e->out;
    int axis = (int)e->i[0];
    int64_t outer, inner;
    split_at_axis(x, axis, &outer, &inner);
    int64_t len = out->shape[axis] * inner;
    copy_rows(da_grad(ctx, x) + e->i[1] * inner, x->shape[axis] * inner, out->grad, len, outer, len, true);
}

da_tensor *da_slice(da_ctx *ctx, da_tensor *x, int axis, int64_t start, int64_t end) {
    if (axis < 0) axis += x->ndim;
    da_check(axis >= 0 && axis < x->ndim, "slice", "axis out of range for %d dims", x->ndim);
    da_check(start >= 0 && start <= end && end <= x->shape[axis], "slice",
             "range [%lld,%lld) outside [0,%lld) of axis %d", (long long)start, (long long)end,
             (long long)x->shape[axis], axis);
    int64_t shape[DA_MAX_DIMS], outer, inner;
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    shape[axis] = end - start;
    da_tensor *out = da_new(ctx, x->ndim, shape);
    split_at_axis(x, axis, &outer, &inner);
    int64_t len = (end - start) * inner;
    copy_rows(out->data, len, x->data + start * inner, x->shape[axis] * inner, outer, len, false);
    if (da_needs_grad(ctx, 1, &x)) {
        da_tape_entry *e = da_record(ctx, slice_backward, out, 1, &x);
        e->i[0] = axis;
        e->i[1] = start;
    }
    return out;
}

/* ---- index select and embedding ----------------------------------------------------------- */

/* saved = indices (i[1] of them), i[0] = axis */
static void index_select_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *x = e->in[0], *out = e->out;
    int axis = (int)e->i[0];
    int64_t n = e->i[1], outer, inner, size = x->shape[axis];
    const int64_t *idx = e->saved;
    split_at_axis(x, axis, &outer, &inner);
    float *dx = da_grad(ctx, x);
    /* Outer rows are disjoint; within a row, repeated indices add up in order. */
#pragma omp parallel for if (out->numel > DA_PAR_MIN) schedule(static)
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < n; k++) {
            float *d = dx + (o * size + idx[k]) * inner;
            const float *g = out->grad + (o * n + k) * inner;
            for (int64_t j = 0; j < inner; j++) d[j] += g[j];
        }
}

da_tensor *da_index_select(da_ctx *ctx, da_tensor *x, int axis, int64_t n, const int64_t *idx) {
    if (axis < 0) axis += x->ndim;
    da_check(axis >= 0 && axis < x->ndim, "index_select", "axis out of range for %d dims", x->ndim);
    int64_t size = x->shape[axis], shape[DA_MAX_DIMS], outer, inner;
    for (int64_t k = 0; k < n; k++)
        da_check(idx[k] >= 0 && idx[k] < size, "index_select", "index %lld at position %lld outside [0,%lld)",
                 (long long)idx[k], (long long)k, (long long)size);
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    shape[axis] = n;
    da_tensor *out = da_new(ctx, x->ndim, shape);
    split_at_axis(x, axis, &outer, &inner);
#pragma omp parallel for if (out->numel > DA_PAR_MIN) schedule(static)
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < n; k++)
            memcpy(out->data + (o * n + k) * inner, x->data + (o * size + idx[k]) * inner, sizeof(float) * (size_t)inner);
    if (da_needs_grad(ctx, 1, &x)) {
        int64_t *saved = da_arena_alloc(&ctx->arena, sizeof(int64_t) * (size_t)(n ? n : 1));
        memcpy(saved, idx, sizeof(int64_t) * (size_t)n);
        da_tape_entry *e = da_record(ctx, index_select_backward, out, 1, &x);
        e->saved = saved;
        e->i[0] = axis;
        e->i[1] = n;
    }
    return out;
}

/* saved = ids (out->numel / D of them) */
static void embedding_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *w = e->in[0], *out = e->out;
    int64_t D = w->shape[1], n = out->numel / D;
    const int64_t *ids = e->saved;
    float *dw = da_grad(ctx, w);
    /* Serial over tokens: repeated ids add up in a fixed order. */
    for (int64_t t = 0; t < n; t++) {
        float *d = dw + ids[t] * D;
        const float *g = out->grad + t * D;
        for (int64_t j = 0; j < D; j++) d[j] += g[j];
    }
}

da_tensor *da_embedding(da_ctx *ctx, da_tensor *weight, int ndim, const int64_t *shape, const int64_t *ids) {
    da_check(weight->ndim == 2, "embedding", "weight must be (V,D), it has %d dims", weight->ndim);
    da_check(ndim >= 0 && ndim < DA_MAX_DIMS, "embedding", "ids have %d dims (at most %d)", ndim, DA_MAX_DIMS - 1);
    int64_t V = weight->shape[0], D = weight->shape[1], n = da_shape_numel(ndim, shape);
    for (int64_t t = 0; t < n; t++)
        da_check(ids[t] >= 0 && ids[t] < V, "embedding", "id %lld at position %lld outside the vocabulary [0,%lld)",
                 (long long)ids[t], (long long)t, (long long)V);
    int64_t oshape[DA_MAX_DIMS];
    memcpy(oshape, shape, sizeof(int64_t) * (size_t)ndim);
    oshape[ndim] = D;
    da_tensor *out = da_new(ctx, ndim + 1, oshape);
#pragma omp parallel for if (n * D > DA_PAR_MIN) schedule(static)
    for (int64_t t = 0; t < n; t++)
        memcpy(out->data + t * D, weight->data + ids[t] * D, sizeof(float) * (size_t)D);
    if (da_needs_grad(ctx, 1, &weight)) {
        int64_t *saved = da_arena_alloc(&ctx->arena, sizeof(int64_t) * (size_t)(n ? n : 1));
        memcpy(saved, ids, sizeof(int64_t) * (size_t)n);
        da_tape_entry *e = da_record(ctx, embedding_backward, out, 1, &weight);
        e->saved = saved;
    }
    return out;
}
