/* ddim.c — the DDIM step as differentiable tensor ops, the inversion/generation loops and the
 * (P2-weighted) ε-MSE training loss. Formulas: design.md §2 and ddim.h. */
#include "diffusion/ddim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

da_tensor *da_ddim_step(da_ctx *ctx, const da_schedule *s, da_tensor *x, da_tensor *eps, int t, int t_next,
                        float eta, da_tensor *z, da_tensor **x0_out) {
    da_check(da_same_shape(x, eps), "ddim_step", "x and eps differ in shape");
    da_check(t >= 0 && t < s->T && t_next >= -1 && t_next < s->T, "ddim_step", "timestep %d -> %d out of range", t, t_next);
    double at = da_schedule_abar(s, t), an = da_schedule_abar(s, t_next);
    /* x0_t = (x - sqrt(1-at) eps) / sqrt(at) */
    da_tensor *x0 = da_scale(ctx, da_sub(ctx, x, da_scale(ctx, eps, (float)sqrt(1.0 - at))), (float)(1.0 / sqrt(at)));
    if (x0_out) *x0_out = x0;
    double c1 = 0.0, c2 = sqrt(1.0 - an);
    if (eta > 0) {
        c1 = eta * sqrt((1.0 - at / an) * (1.0 - an) / (1.0 - at));
        double r = 1.0 - an - c1 * c1;
        c2 = sqrt(r > 0 ? r : 0.0);
    }
    da_tensor *xn = da_add(ctx, da_scale(ctx, x0, (float)sqrt(an)), da_scale(ctx, eps, (float)c2));
    if (c1 > 0) {
        da_check(z && da_same_shape(z, x), "ddim_step", "eta > 0 needs noise z of x's shape");
        xn = da_add(ctx, xn, da_scale(ctx, z, (float)c1));
    }
    return xn;
}

da_tensor *da_ddim_run(da_ctx *ctx, const da_schedule *s, da_eps_fn eps_fn, void *user, da_tensor *x,
                       const int *ts, const int *ts_next, int n_calls, float eta, da_rng *rng) {
    for (int i = 0; i < n_calls; i++) {
        da_tensor *eps = eps_fn(ctx, x, ts[i], user);
        da_tensor *z = NULL;
        if (eta > 0) {
            da_check(rng != NULL, "ddim_run", "eta > 0 needs an rng");
            z = da_new_like(ctx, x);
            da_rng_normal(rng, z->data, z->numel, 0.0f, 1.0f);
        }
        x = da_ddim_step(ctx, s, x, eps, ts[i], ts_next[i], eta, z, NULL);
    }
    return x;
}

da_tensor *da_eps_mixed(da_ctx *ctx, da_tensor *x, int t, void *user) {
    const da_eps_mix *m = user;
    if (m->r == 1.0f) return m->a(ctx, x, t, m->a_user);
    if (m->r == 0.0f) return m->b(ctx, x, t, m->b_user);
    da_tensor *ea = m->a(ctx, x, t, m->a_user), *eb = m->b(ctx, x, t, m->b_user);
    da_check(da_same_shape(ea, eb), "eps_mixed", "the two models predict eps of different shapes");
    return da_add(ctx, da_scale(ctx, ea, m->r), da_scale(ctx, eb, 1.0f - m->r));
}

void da_eps_mix_use(da_eps_mix *mix, da_eps_fn *fn, void **user) {
    if (mix->r == 1.0f || !mix->b) {
        *fn = mix->a;
        *user = mix->a_user;
    } else {
        *fn = da_eps_mixed;
        *user = mix;
    }
}

int da_eps_mix_check_ratio(float r, char *err, size_t errlen) {
    if (r >= 0.0f && r <= 1.0f) return 0;
    snprintf(err, errlen, "--model-ratio %g is out of range: it must lie in [0,1] (1 = the fine-tuned model "
             "alone, 0 = the original model alone)", (double)r);
    return -1;
}

/* An ε function wrapped so that x0 is clipped to [-1,1]: eps' = (x - sqrt(ā)·clip(x0)) / sqrt(1-ā)
 * with x0 = (x - sqrt(1-ā)·eps) / sqrt(ā). */
typedef struct {
    const da_schedule *s;
    da_eps_fn eps_fn;
    void *user;
} clip_x0_eps;

static da_tensor *clipped_eps(da_ctx *ctx, da_tensor *x, int t, void *user) {
    const clip_x0_eps *c = user;
    da_tensor *eps = c->eps_fn(ctx, x, t, c->user);
    double a = da_schedule_abar(c->s, t);
    float sa = (float)sqrt(a), s1 = (float)sqrt(1.0 - a);
    da_tensor *out = da_new_like(ctx, x);
    for (int64_t i = 0; i < x->numel; i++) {
        float x0 = (x->data[i] - s1 * eps->data[i]) / sa;
        x0 = x0 > 1.0f ? 1.0f : (x0 < -1.0f ? -1.0f : x0);
        out->data[i] = (x->data[i] - sa * x0) / s1;
    }
    return out;
}

/* The shared inference loop: each pair runs in a scratch context that is reset afterwards. */
static int ddim_loop(const da_schedule *s, da_eps_fn eps_fn, void *user, float *x, const int64_t shape[4],
                     const int *ts, const int *ts_next, int n_calls, float eta, uint64_t seed, bool clip_x0,
                     da_ddim_progress_fn progress, void *progress_user) {
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_set_grad(&ctx, false);
    ctx.training = false;
    da_rng rng;
    da_rng_init(&rng, seed);
    clip_x0_eps clip = {s, eps_fn, user};
    if (clip_x0) {
        eps_fn = clipped_eps;
        user = &clip;
    }
    int64_t numel = shape[0] * shape[1] * shape[2] * shape[3];
    for (int i = 0; i < n_calls; i++) {
        da_ctx_reset(&ctx);
        da_tensor *xt = da_from_data(&ctx, 4, shape, x);
        da_tensor *xn = da_ddim_run(&ctx, s, eps_fn, user, xt, ts + i, ts_next + i, 1, eta, &rng);
        memcpy(x, xn->data, sizeof(float) * (size_t)numel);
        if (progress) progress(progress_user, i + 1, n_calls);
    }
    da_ctx_free(&ctx);
    return 0;
}

int da_ddim_invert(const da_schedule *s, da_eps_fn eps_fn, void *user, float *x, const int64_t shape[4],
                   int n, int t0, da_ddim_progress_fn progress, void *progress_user, char *err, size_t errlen) {
    if (da_ddim_check_steps(s, n, t0, err, errlen)) return -1;
    int *seq = malloc(sizeof(int) * (size_t)n);
    da_ddim_timesteps(n, t0, seq, NULL);
    /* (t, t_next) = (seq[i], seq[i+1]) */
    int rc = ddim_loop(s, eps_fn, user, x, shape, seq, seq + 1, n - 1, 0.0f, 0, false, progress, progress_user);
    free(seq);
    return rc;
}

int da_ddim_generate(const da_schedule *s, da_eps_fn eps_fn, void *user, float *x, const int64_t shape[4],
                     int n, int t0, float eta, uint64_t seed, da_ddim_progress_fn progress, void *progress_user,
                     char *err, size_t errlen) {
    return da_ddim_generate_ex(s, eps_fn, user, x, shape, n, t0, eta, seed, false, progress, progress_user, err, errlen);
}

int da_ddim_generate_ex(const da_schedule *s, da_eps_fn eps_fn, void *user, float *x, const int64_t shape[4],
                        int n, int t0, float eta, uint64_t seed, bool clip_x0, da_ddim_progress_fn progress,
                        void *progress_user, char *err, size_t errlen) {
    if (da_ddim_check_steps(s, n, t0, err, errlen)) return -1;
    if (!(eta >= 0 && eta <= 1)) {
        snprintf(err, errlen, "--eta %g is out of range: it must lie in [0,1]", (double)eta);
        return -1;
    }
    int *seq = malloc(sizeof(int) * (size_t)n), *next = malloc(sizeof(int) * (size_t)n);
    int *ts = malloc(sizeof(int) * (size_t)n), *tn = malloc(sizeof(int) * (size_t)n);
    da_ddim_timesteps(n, t0, seq, next);
    for (int i = 0; i < n; i++) {
        ts[i] = seq[n - 1 - i];
        tn[i] = next[n - 1 - i];
    }
    int rc = ddim_loop(s, eps_fn, user, x, shape, ts, tn, n, eta, seed, clip_x0, progress, progress_user);
    free(seq); free(next); free(ts); free(tn);
    return rc;
}

da_tensor *da_diffusion_loss(da_ctx *ctx, const da_schedule *s, da_eps_batch_fn eps_fn, void *user,
                             const float *x0, const float *noise, const int *t, const int64_t shape[4],
                             float p2_k, float p2_gamma) {
    int64_t N = shape[0], per = shape[1] * shape[2] * shape[3];
    da_tensor *xt = da_new(ctx, 4, shape);                  /* (N,C,H,W) */
    da_tensor *target = da_from_data(ctx, 4, shape, noise); /* (N,C,H,W) */
    for (int64_t n = 0; n < N; n++) {
        double a = da_schedule_abar(s, t[n]);
        float ca = (float)sqrt(a), cn = (float)sqrt(1.0 - a);
        const float *xs = x0 + n * per, *ns = noise + n * per;
        float *o = xt->data + n * per;
        for (int64_t i = 0; i < per; i++) o[i] = ca * xs[i] + cn * ns[i];
    }
    da_tensor *pred = eps_fn(ctx, xt, t, user);
    da_check(da_same_shape(pred, xt), "diffusion_loss", "denoiser output shape differs from its input");
    if (p2_gamma == 0) return da_mse_loss(ctx, pred, target);
    /* per-sample mean of the squared error, weighted by λ_t, then averaged over the batch */
    da_tensor *d = da_sub(ctx, pred, target);
    int axes[3] = {1, 2, 3};
    da_tensor *per_sample = da_mean(ctx, da_mul(ctx, d, d), 3, axes, false);   /* (N) */
    da_tensor *w = da_new(ctx, 1, &N);                                          /* (N) */
    for (int64_t n = 0; n < N; n++) w->data[n] = (float)da_schedule_p2_weight(s, t[n], p2_k, p2_gamma);
    return da_mean(ctx, da_mul(ctx, per_sample, w), 0, NULL, false);
}
