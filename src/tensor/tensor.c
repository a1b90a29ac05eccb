/* tensor.c — tensor creation, the step context and the autograd tape (see tensor.h).
 * Backward replays the tape in reverse; each op's backward accumulates into its inputs. */
#include "tensor/tensor.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- context ---------------------------------------------------------------------------- */

void da_ctx_init(da_ctx *ctx) {
    memset(ctx, 0, sizeof *ctx);
    da_arena_init(&ctx->arena, 0);
    ctx->grad_enabled = true;
    ctx->seed = 0x5eed;
}

void da_ctx_free(da_ctx *ctx) {
    da_arena_free(&ctx->arena);
    free(ctx->tape);
    memset(ctx, 0, sizeof *ctx);
}

void da_ctx_reset(da_ctx *ctx) {
    da_arena_reset(&ctx->arena);
    ctx->tape_len = 0;
}

bool da_set_grad(da_ctx *ctx, bool enabled) {
    bool old = ctx->grad_enabled;
    ctx->grad_enabled = enabled;
    return old;
}

/* ---- creation --------------------------------------------------------------------------- */

int64_t da_shape_numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

static void set_shape(da_tensor *t, int ndim, const int64_t *shape) {
    da_check(ndim >= 0 && ndim <= DA_MAX_DIMS, "tensor", "ndim %d out of range", ndim);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        da_check(shape[i] >= 0, "tensor", "negative dimension %lld", (long long)shape[i]);
        t->shape[i] = shape[i];
    }
    t->numel = da_shape_numel(ndim, shape);
}

da_tensor *da_new(da_ctx *ctx, int ndim, const int64_t *shape) {
    da_tensor *t = da_arena_calloc(&ctx->arena, sizeof *t);
    set_shape(t, ndim, shape);
    t->data = da_arena_alloc(&ctx->arena, (size_t)t->numel * sizeof(float));
    return t;
}

da_tensor *da_zeros(da_ctx *ctx, int ndim, const int64_t *shape) {
    da_tensor *t = da_new(ctx, ndim, shape);
    memset(t->data, 0, (size_t)t->numel * sizeof(float));
    return t;
}

da_tensor *da_full(da_ctx *ctx, int ndim, const int64_t *shape, float value) {
    da_tensor *t = da_new(ctx, ndim, shape);
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = value;
    return t;
}

da_tensor *da_from_data(da_ctx *ctx, int ndim, const int64_t *shape, const float *src) {
    da_tensor *t = da_new(ctx, ndim, shape);
    memcpy(t->data, src, (size_t)t->numel * sizeof(float));
    return t;
}

da_tensor *da_new_like(da_ctx *ctx, const da_tensor *t) { return da_new(ctx, t->ndim, t->shape); }

da_tensor *da_persistent(int ndim, const int64_t *shape, bool requires_grad) {
    da_tensor *t = calloc(1, sizeof *t);
    if (!t) { fprintf(stderr, "error: out of memory\n"); exit(3); }
    set_shape(t, ndim, shape);
    size_t bytes = (size_t)(t->numel ? t->numel : 1) * sizeof(float);
    t->data = calloc(1, bytes);
    if (!t->data) {
        fprintf(stderr, "error: out of memory allocating a %.1f MiB parameter\n", (double)bytes / (1 << 20));
        exit(3);
    }
    t->persistent = true;
    t->requires_grad = requires_grad;
    if (requires_grad) {
        t->grad = calloc(1, bytes);
        if (!t->grad) { fprintf(stderr, "error: out of memory\n"); exit(3); }
    }
    return t;
}

void da_tensor_free(da_tensor *t) {
    if (!t) return;
    if (t->persistent) {
        free(t->data);
        free(t->grad);
        free(t);
    }
}

/* ---- shape utilities -------------------------------------------------------------------- */

bool da_same_shape(const da_tensor *a, const da_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

const char *da_shape_str(const da_tensor *t, char *buf, size_t len) {
    size_t n = 0;
    n += (size_t)snprintf(buf + n, len - n, "(");
    for (int i = 0; i < t->ndim && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, i ? ",%lld" : "%lld", (long long)t->shape[i]);
    if (n < len) snprintf(buf + n, len - n, ")");
    return buf;
}

void da_check(bool cond, const char *op, const char *fmt, ...) {
    if (cond) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "internal error in %s: ", op);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

/* ---- autograd --------------------------------------------------------------------------- */

bool da_needs_grad(const da_ctx *ctx, int n, da_tensor *const *in) {
    if (!ctx->grad_enabled) return false;
    for (int i = 0; i < n; i++)
        if (in[i] && in[i]->requires_grad) return true;
    return false;
}

da_tape_entry *da_record(da_ctx *ctx, da_backward_fn fn, da_tensor *out, int n_in, da_tensor *const *in) {
    da_check(n_in <= DA_TAPE_MAX_IN, "da_record", "too many inputs (%d)", n_in);
    if (ctx->tape_len == ctx->tape_cap) {
        int cap = ctx->tape_cap ? ctx->tape_cap * 2 : 256;
        da_tape_entry *t = realloc(ctx->tape, (size_t)cap * sizeof *t);
        if (!t) { fprintf(stderr, "error: out of memory growing the autograd tape\n"); exit(3); }
        ctx->tape = t;
        ctx->tape_cap = cap;
    }
    da_tape_entry *e = &ctx->tape[ctx->tape_len++];
    memset(e, 0, sizeof *e);
    e->backward = fn;
    e->out = out;
    e->n_in = n_in;
    for (int i = 0; i < n_in; i++) e->in[i] = in[i];
    out->requires_grad = true;
    return e;
}

float *da_grad(da_ctx *ctx, da_tensor *t) {
    if (!t->grad) {
        size_t bytes = (size_t)t->numel * sizeof(float);
        if (t->persistent) {
            t->grad = calloc(1, bytes ? bytes : 1);
            if (!t->grad) { fprintf(stderr, "error: out of memory\n"); exit(3); }
        } else {
            t->grad = da_arena_calloc(&ctx->arena, bytes);
        }
    }
    return t->grad;
}

void da_backward_from(da_ctx *ctx, da_tensor *out) {
    da_check(out->grad != NULL, "backward", "output has no upstream gradient");
    /* Entries recorded after `out` cannot influence it; start from its own entry. */
    int start = ctx->tape_len - 1;
    while (start >= 0 && ctx->tape[start].out != out) start--;
    for (int k = start; k >= 0; k--) {
        da_tape_entry *e = &ctx->tape[k];
        if (!e->out->grad) continue;   /* nothing flowed into this op's output */
        e->backward(ctx, e);
    }
}

void da_backward(da_ctx *ctx, da_tensor *loss) {
    float *g = da_grad(ctx, loss);
    for (int64_t i = 0; i < loss->numel; i++) g[i] = 1.0f;
    da_backward_from(ctx, loss);
}

void da_require_grad(da_tensor *t) { t->requires_grad = true; }

da_tensor *da_detach(da_ctx *ctx, da_tensor *t) {
    return da_from_data(ctx, t->ndim, t->shape, t->data);
}

int64_t da_count_nonfinite(const float *x, int64_t n) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += !isfinite(x[i]);
    return bad;
}

double da_memory_limit_bytes(void) {
    const char *e = getenv("DIFFADAPT_MAX_GIB");
    double gib = 16;
    if (e && *e) {
        char *end;
        double v = strtod(e, &end);
        if (end != e && !*end && v > 0 && isfinite(v)) gib = v;
        else fprintf(stderr, "warning: DIFFADAPT_MAX_GIB='%s' is not a positive number; using %g\n", e, gib);
    }
    return gib * 1073741824.0;
}

/* ---- threads ---------------------------------------------------------------------------- */

void da_set_threads(int n) {
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
    /* One thread pool: every op parallelises its sgemm calls with OpenMP (matmul.c, conv.c,
     * attention.c), so OpenBLAS's own threads would only compete with OpenMP's. */
    openblas_set_num_threads(1);
}

int da_get_threads(void) { return omp_get_max_threads(); }
