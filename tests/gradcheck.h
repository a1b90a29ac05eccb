/* gradcheck.h — finite-difference gradient checks for ops and small models.
 * The op under test maps persistent inputs to an output; the checked scalar is
 * L = sum(out * R) with a fixed random R, so every output element takes part. Central
 * differences of L (accumulated in double) are compared with the tape's gradients. */
#ifndef DA_GRADCHECK_H
#define DA_GRADCHECK_H

#include "tensor/ops.h"
#include "tensor/rng.h"
#include "test_util.h"

typedef da_tensor *(*gc_build_fn)(da_ctx *ctx, da_tensor **inputs, void *user);

static double gc_loss(da_ctx *ctx, gc_build_fn f, da_tensor **inputs, void *user, const float *R, long *n_out) {
    da_ctx_reset(ctx);
    bool old = da_set_grad(ctx, false);
    da_tensor *out = f(ctx, inputs, user);
    da_set_grad(ctx, old);
    double s = 0;
    for (int64_t i = 0; i < out->numel; i++) s += (double)out->data[i] * R[i];
    *n_out = (long)out->numel;
    return s;
}

/* Checks d L / d inputs[k] for every k with requires_grad. At most `max_elems` elements per
 * input are probed (spread over the tensor). Returns 1 when all agree. */
static int gradcheck(const char *name, gc_build_fn f, int n_inputs, da_tensor **inputs, void *user,
                     float eps, double atol, double rtol, long max_elems) {
    da_ctx ctx;
    da_ctx_init(&ctx);
    ctx.training = false;
    for (int k = 0; k < n_inputs; k++)
        if (inputs[k]->grad) memset(inputs[k]->grad, 0, sizeof(float) * (size_t)inputs[k]->numel);

    /* analytic */
    da_tensor *out = f(&ctx, inputs, user);
    long n_out = (long)out->numel;
    float *R = malloc(sizeof(float) * (size_t)(n_out ? n_out : 1));
    da_rng rng;
    da_rng_init(&rng, 1234);
    da_rng_normal(&rng, R, n_out, 0.0f, 1.0f);
    if (!out->requires_grad) {
        fprintf(stderr, "FAIL %s: output does not require grad\n", name);
        tu_failed++;
        free(R); da_ctx_free(&ctx);
        return 0;
    }
    float *g = da_grad(&ctx, out);
    memcpy(g, R, sizeof(float) * (size_t)n_out);
    da_backward_from(&ctx, out);

    int ok = 1;
    for (int k = 0; k < n_inputs; k++) {
        da_tensor *x = inputs[k];
        if (!x->requires_grad) continue;
        long n = (long)x->numel, step = n > max_elems ? n / max_elems : 1;
        float *analytic = malloc(sizeof(float) * (size_t)n), *numeric = malloc(sizeof(float) * (size_t)n);
        long m = 0;
        for (long j = 0; j < n; j += step, m++) {
            float keep = x->data[j];
            long dummy;
            x->data[j] = keep + eps;
            double lp = gc_loss(&ctx, f, inputs, user, R, &dummy);
            x->data[j] = keep - eps;
            double lm = gc_loss(&ctx, f, inputs, user, R, &dummy);
            x->data[j] = keep;
            numeric[m] = (float)((lp - lm) / (2.0 * eps));
            analytic[m] = x->grad ? x->grad[j] : 0.0f;
        }
        char what[256];
        snprintf(what, sizeof what, "%s: d/d input %d (%ld probed)", name, k, m);
        ok &= tu_close(what, analytic, numeric, m, atol, rtol);
        free(analytic);
        free(numeric);
    }
    free(R);
    da_ctx_free(&ctx);
    return ok;
}

/* A persistent tensor filled with N(0, scale^2) values that wants a gradient. */
static da_tensor *gc_input(da_rng *rng, int ndim, const int64_t *shape, float scale) {
    da_tensor *t = da_persistent(ndim, shape, true);
    da_rng_normal(rng, t->data, t->numel, 0.0f, scale);
    return t;
}

#endif
