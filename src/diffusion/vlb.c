/* vlb.c — one variational-bound term L_t for learned-variance models (forward and its gradient
 * with respect to the variance channels), and the hybrid training loss built on it. Formulas in
 * vlb.h. */
#include "diffusion/vlb.h"

#include <math.h>
#include <string.h>

/* Per-sample constants of q(x_{t-1}|x_t,x0) and of p's variance range, in float64. */
typedef struct {
    double c1, c2;            /* posterior mean coefficients of x0 and x_t */
    double ra, rm1;           /* sqrt(1/ā_t), sqrt(1/ā_t - 1): x̂0 from ε */
    double min_log, max_log;  /* log β̃_t (clipped at t = 0), log β_t */
    int t;
} vlb_coef;

static double post_var(const da_schedule *s, int t) {
    return s->beta[t] * (1.0 - da_schedule_abar(s, t - 1)) / (1.0 - da_schedule_abar(s, t));
}

static vlb_coef coef_at(const da_schedule *s, int t) {
    vlb_coef c;
    double a = da_schedule_abar(s, t), ap = da_schedule_abar(s, t - 1), b = s->beta[t];
    c.c1 = b * sqrt(ap) / (1.0 - a);
    c.c2 = (1.0 - ap) * sqrt(1.0 - b) / (1.0 - a);
    c.ra = sqrt(1.0 / a);
    c.rm1 = sqrt(1.0 / a - 1.0);
    /* β̃_0 = 0, so the reference takes β̃_1 there */
    c.min_log = log(post_var(s, t == 0 ? 1 : t));
    c.max_log = log(b);
    c.t = t;
    return c;
}

/* Φ(x) ≈ ½(1 + tanh(sqrt(2/π)(x + 0.044715x³))) and its derivative, as the reference. */
#define CDF_K 0.7978845608028654   /* sqrt(2/pi) */
static double cdf(double x, double *deriv) {
    double th = tanh(CDF_K * (x + 0.044715 * x * x * x));
    *deriv = 0.5 * (1.0 - th * th) * CDF_K * (1.0 + 3.0 * 0.044715 * x * x);
    return 0.5 * (1.0 + th);
}

/* log max(p, 1e-12) and its derivative factor 1/p (0 where the clamp holds). */
static double clamped_log(double p, double *inv) {
    if (p >= 1e-12) { *inv = 1.0 / p; return log(p); }
    *inv = 0.0;
    return log(1e-12);
}

/* The term of one element and d term / d log Σ. x0 the data, mq the true posterior mean, mp the
 * model mean, lv the model's log variance. */
static double elem_term(const vlb_coef *c, double x0, double mq, double mp, double lv, double *dlv) {
    if (c->t > 0) {
        double d = mq - mp, r = exp(c->min_log - lv), q = d * d * exp(-lv);
        *dlv = 0.5 * (1.0 - r - q);
        return 0.5 * (-1.0 + lv - c->min_log + r + q);
    }
    /* decoder: log scale s = lv/2; plus/minus = (x0 - mp ± 1/255)·e^{-s}, d(·)/ds = -(·) */
    double inv_std = exp(-0.5 * lv), cen = x0 - mp;
    double pin = inv_std * (cen + 1.0 / 255.0), min = inv_std * (cen - 1.0 / 255.0);
    double dp, dm, inv, lp, dlp_ds;
    double cp = cdf(pin, &dp), cm = cdf(min, &dm);
    if (x0 < -0.999) {
        lp = clamped_log(cp, &inv);
        dlp_ds = inv * dp * (-pin);
    } else if (x0 > 0.999) {
        lp = clamped_log(1.0 - cm, &inv);
        dlp_ds = -inv * dm * (-min);
    } else {
        lp = clamped_log(cp - cm, &inv);
        dlp_ds = inv * (dp * (-pin) - dm * (-min));
    }
    *dlv = -0.5 * dlp_ds;   /* term = -log P, ds/dlv = 1/2 */
    return -lp;
}

typedef struct {
    const float *eps, *x0, *xt;   /* (N,C,H,W) arena copies */
    vlb_coef *coef;               /* (N) */
} vlb_saved;

/* Walks sample n: the term sum (returned) and, when dv is given, dv[i] += g · d term_i / d v_i. */
static double sample_pass(const vlb_saved *sv, const float *v, int64_t n, int64_t per, float *dv, double g) {
    const vlb_coef *c = &sv->coef[n];
    double half_range = 0.5 * (c->max_log - c->min_log);   /* d log Σ / d v */
    double sum = 0;
    for (int64_t i = n * per; i < (n + 1) * per; i++) {
        double xt = sv->xt[i], x0 = sv->x0[i];
        double x0hat = c->ra * xt - c->rm1 * (double)sv->eps[i];
        double mq = c->c1 * x0 + c->c2 * xt, mp = c->c1 * x0hat + c->c2 * xt;
        double f = 0.5 * ((double)v[i] + 1.0), lv = f * c->max_log + (1.0 - f) * c->min_log, dlv;
        sum += elem_term(c, x0, mq, mp, lv, &dlv);
        if (dv) dv[i] += (float)(g * dlv * half_range);
    }
    return sum;
}

static void vlb_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *v = e->in[0];
    if (!v->requires_grad) return;
    const vlb_saved *sv = e->saved;
    int64_t N = v->shape[0], per = v->numel / N;
    float *dv = da_grad(ctx, v);
    const float *go = e->out->grad;
#pragma omp parallel for schedule(static) if (N > 1 && per * N > 32768)
    for (int64_t n = 0; n < N; n++) sample_pass(sv, v->data, n, per, dv, (double)go[n] / ((double)per * M_LN2));
}

da_tensor *da_vlb_bpd(da_ctx *ctx, const da_schedule *s, da_tensor *v, const da_tensor *eps, const da_tensor *x0,
                      const da_tensor *xt, const int *t) {
    da_check(v->ndim == 4 && da_same_shape(v, eps) && da_same_shape(v, x0) && da_same_shape(v, xt), "vlb_bpd",
             "v, eps, x0 and x_t must be (N,C,H,W) of one shape");
    da_check(s->T >= 2, "vlb_bpd", "the schedule needs T >= 2 (β̃ at t = 0 is taken from t = 1)");
    int64_t N = v->shape[0], per = v->numel / N;
    vlb_saved *sv = da_arena_alloc(&ctx->arena, sizeof *sv);
    vlb_coef *coef = da_arena_alloc(&ctx->arena, sizeof(vlb_coef) * (size_t)N);
    for (int64_t n = 0; n < N; n++) {
        da_check(t[n] >= 0 && t[n] < s->T, "vlb_bpd", "timestep %d outside 0..%d", t[n], s->T - 1);
        coef[n] = coef_at(s, t[n]);
    }
    /* copies, so the backward pass does not depend on the caller's buffers */
    sv->eps = da_from_data(ctx, 4, v->shape, eps->data)->data;
    sv->x0 = da_from_data(ctx, 4, v->shape, x0->data)->data;
    sv->xt = da_from_data(ctx, 4, v->shape, xt->data)->data;
    sv->coef = coef;
    da_tensor *out = da_new(ctx, 1, &N);   /* (N) */
#pragma omp parallel for schedule(static) if (N > 1 && per * N > 32768)
    for (int64_t n = 0; n < N; n++) out->data[n] = (float)(sample_pass(sv, v->data, n, per, NULL, 0) / ((double)per * M_LN2));
    if (da_needs_grad(ctx, 1, &v)) {
        da_tape_entry *e = da_record(ctx, vlb_backward, out, 1, &v);
        e->saved = sv;
    }
    return out;
}

/* ---- the hybrid loss ----------------------------------------------------------------------- */

/* da_diffusion_loss builds x_t and the (P2-weighted) ε-MSE; this wrapper hands it the ε half of
 * the model's output and keeps x_t and the v half for the bound term. */
typedef struct {
    da_eps_batch_fn fn;
    void *user;
    da_tensor *xt, *eps, *v;
} split_call;

static da_tensor *eps_half(da_ctx *ctx, da_tensor *x, const int *t, void *user) {
    split_call *sc = user;
    da_tensor *y = sc->fn(ctx, x, t, sc->user);   /* (N,2C,H,W) */
    int64_t C = x->shape[1];
    da_check(y->ndim == 4 && y->shape[0] == x->shape[0] && y->shape[1] == 2 * C && y->shape[2] == x->shape[2] &&
             y->shape[3] == x->shape[3], "hybrid_loss", "a learned-variance model must output 2·C channels");
    sc->xt = x;
    sc->eps = da_slice(ctx, y, 1, 0, C);
    sc->v = da_slice(ctx, y, 1, C, 2 * C);
    return sc->eps;
}

da_tensor *da_hybrid_loss(da_ctx *ctx, const da_schedule *s, da_eps_batch_fn out_fn, void *user, const float *x0,
                          const float *noise, const int *t, const int64_t shape[4], float p2_k, float p2_gamma,
                          float *vb_out) {
    split_call sc = {.fn = out_fn, .user = user};
    da_tensor *mse = da_diffusion_loss(ctx, s, eps_half, &sc, x0, noise, t, shape, p2_k, p2_gamma);
    da_tensor *x0t = da_from_data(ctx, 4, shape, x0);                 /* (N,C,H,W) */
    da_tensor *vb = da_vlb_bpd(ctx, s, sc.v, sc.eps, x0t, sc.xt, t);  /* (N) bits/dim */
    da_tensor *vb_mean = da_mean(ctx, vb, 0, NULL, false);
    if (vb_out) *vb_out = vb_mean->data[0];
    return da_add(ctx, mse, da_scale(ctx, vb_mean, (float)((double)s->T / 1000.0)));
}
