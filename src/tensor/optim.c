/* optim.c — Adam/AdamW with torch.optim's update order (scalars in double, tensors in float),
 * clip_grad_norm_, gradient zeroing, parameter EMA and the warm-up + step lr schedule. */
#include "tensor/optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Elementwise loops run on OpenMP threads only when a tensor is large enough to pay for it. */
#define DA_OPTIM_PAR_MIN 32768

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "error: out of memory allocating optimiser state (%zu bytes)\n", n * size);
        exit(3);
    }
    return p;
}

static bool has_grad(const da_tensor *p) { return p->requires_grad && p->grad; }

/* ---- gradients -------------------------------------------------------------------------- */

void da_zero_grads(da_tensor **params, int n) {
    for (int i = 0; i < n; i++)
        if (params[i]->grad) memset(params[i]->grad, 0, sizeof(float) * (size_t)params[i]->numel);
}

/* Sum of squares in double over fixed chunks added in order: the same result for any thread count. */
static double sum_squares(const float *g, int64_t n) {
    const int64_t CH = 1 << 15;
    int64_t nch = (n + CH - 1) / CH;
    double *part = xcalloc((size_t)nch, sizeof(double));   /* (chunks) */
    #pragma omp parallel for schedule(static) if (nch > 1)
    for (int64_t c = 0; c < nch; c++) {
        int64_t end = (c + 1) * CH < n ? (c + 1) * CH : n;
        double s = 0;
        for (int64_t j = c * CH; j < end; j++) s += (double)g[j] * g[j];
        part[c] = s;
    }
    double total = 0;
    for (int64_t c = 0; c < nch; c++) total += part[c];
    free(part);
    return total;
}

float da_clip_grad_norm(da_tensor **params, int n, float max_norm) {
    /* torch takes the norm of the per-parameter norms, each rounded to float */
    double ss = 0;
    for (int i = 0; i < n; i++) {
        if (!params[i]->grad) continue;
        float ni = (float)sqrt(sum_squares(params[i]->grad, params[i]->numel));
        ss += (double)ni * ni;
    }
    float norm = (float)sqrt(ss);
    if (!isfinite(norm)) return norm;
    /* torch: clip_coef = max_norm / (total_norm + 1e-6), clamped to at most 1, in float32 */
    float coef = max_norm / (norm + 1e-6f);
    if (coef < 1.0f) {
        for (int i = 0; i < n; i++) {
            float *g = params[i]->grad;
            if (!g) continue;
            int64_t m = params[i]->numel;
            #pragma omp parallel for schedule(static) if (m > DA_OPTIM_PAR_MIN)
            for (int64_t j = 0; j < m; j++) g[j] *= coef;
        }
    }
    return norm;
}

/* ---- Adam / AdamW ----------------------------------------------------------------------- */

da_adam_config da_adam_defaults(da_adam_kind kind) {
    da_adam_config c = {kind, 1e-3, 0.9, 0.999, 1e-8, kind == DA_ADAMW ? 1e-2 : 0.0};
    return c;
}

int da_adam_init(da_adam *o, const da_adam_config *cfg, da_tensor **params, int n, char *err, size_t errlen) {
    memset(o, 0, sizeof *o);
    const char *name = cfg->kind == DA_ADAMW ? "AdamW" : "Adam";
    if (!(cfg->lr >= 0)) {
        snprintf(err, errlen, "%s: learning rate %g is invalid; use a value >= 0", name, cfg->lr);
        return -1;
    }
    if (!(cfg->eps >= 0)) {
        snprintf(err, errlen, "%s: eps %g is invalid; use a value >= 0 (e.g. 1e-8)", name, cfg->eps);
        return -1;
    }
    if (!(cfg->beta1 >= 0 && cfg->beta1 < 1) || !(cfg->beta2 >= 0 && cfg->beta2 < 1)) {
        snprintf(err, errlen, "%s: betas (%g, %g) are invalid; each must lie in [0, 1), e.g. (0.9, 0.999)",
                 name, cfg->beta1, cfg->beta2);
        return -1;
    }
    if (!(cfg->weight_decay >= 0)) {
        snprintf(err, errlen, "%s: weight decay %g is invalid; use a value >= 0", name, cfg->weight_decay);
        return -1;
    }
    if (n < 0) {
        snprintf(err, errlen, "%s: negative parameter count %d", name, n);
        return -1;
    }
    o->cfg = *cfg;
    o->n = n;
    o->params = xcalloc((size_t)n, sizeof *o->params);
    o->m = xcalloc((size_t)n, sizeof *o->m);
    o->v = xcalloc((size_t)n, sizeof *o->v);
    o->steps = xcalloc((size_t)n, sizeof *o->steps);
    for (int i = 0; i < n; i++) {
        o->params[i] = params[i];
        o->m[i] = xcalloc((size_t)params[i]->numel, sizeof(float));
        o->v[i] = xcalloc((size_t)params[i]->numel, sizeof(float));
    }
    return 0;
}

void da_adam_free(da_adam *o) {
    for (int i = 0; i < o->n; i++) {
        free(o->m[i]);
        free(o->v[i]);
    }
    free(o->m);
    free(o->v);
    free(o->steps);
    free(o->params);
    memset(o, 0, sizeof *o);
}

void da_adam_step(da_adam *o) {
    const da_adam_config *c = &o->cfg;
    bool adamw = c->kind == DA_ADAMW;
    /* torch rounds each Python scalar to float when it meets a float32 tensor */
    float b1 = (float)c->beta1, b2 = (float)c->beta2;
    float omb1 = (float)(1.0 - c->beta1), omb2 = (float)(1.0 - c->beta2);
    float eps = (float)c->eps, wd = (float)c->weight_decay;
    float decay = (float)(1.0 - c->lr * c->weight_decay);   /* AdamW: p *= 1 - lr*wd */
    for (int i = 0; i < o->n; i++) {
        da_tensor *p = o->params[i];
        if (!has_grad(p)) continue;
        o->steps[i]++;
        double t = (double)o->steps[i];
        double bc1 = 1.0 - pow(c->beta1, t), bc2 = 1.0 - pow(c->beta2, t);
        float neg_step = (float)(-(c->lr / bc1)), bc2_sqrt = (float)sqrt(bc2);
        float *x = p->data, *m = o->m[i], *v = o->v[i];
        const float *gr = p->grad;
        int64_t n = p->numel;
        #pragma omp parallel for schedule(static) if (n > DA_OPTIM_PAR_MIN)
        /* fmaf where ATen's add/addcmul kernels fuse (a + alpha*b): the small-tensor results
         * then match torch to the bit */
        for (int64_t j = 0; j < n; j++) {
            float g = gr[j];
            if (adamw) x[j] *= decay;
            else if (wd != 0.0f) g = fmaf(wd, x[j], g);   /* L2 term; p->grad itself is left as is */
            m[j] = fmaf(omb1, g, m[j] * b1);
            v[j] = fmaf(omb2 * g, g, v[j] * b2);
            float denom = sqrtf(v[j]) / bc2_sqrt + eps;   /* eps outside the square root */
            x[j] = x[j] + neg_step * m[j] / denom;
        }
    }
}

int64_t da_adam_state_size(const da_adam *o) {
    int64_t s = o->n;
    for (int i = 0; i < o->n; i++) s += 2 * o->params[i]->numel;
    return s;
}

void da_adam_export(const da_adam *o, float *out) {
    for (int i = 0; i < o->n; i++) out[i] = (float)o->steps[i];
    float *w = out + o->n;
    for (int i = 0; i < o->n; i++) {
        size_t bytes = sizeof(float) * (size_t)o->params[i]->numel;
        memcpy(w, o->m[i], bytes);
        w += o->params[i]->numel;
        memcpy(w, o->v[i], bytes);
        w += o->params[i]->numel;
    }
}

int da_adam_import(da_adam *o, const float *in, int64_t size, char *err, size_t errlen) {
    int64_t want = da_adam_state_size(o);
    if (size != want) {
        snprintf(err, errlen, "optimiser state holds %lld values but these %d parameters need %lld; "
                 "was the checkpoint written for another model configuration?",
                 (long long)size, o->n, (long long)want);
        return -1;
    }
    for (int i = 0; i < o->n; i++) {
        float s = in[i];
        if (!(s >= 0 && s <= 16777216.0f && s == floorf(s))) {
            snprintf(err, errlen, "optimiser state: step count %g of parameter %d is not a valid count; "
                     "the checkpoint is damaged", (double)s, i);
            return -1;
        }
    }
    for (int i = 0; i < o->n; i++) o->steps[i] = (int64_t)in[i];
    const float *r = in + o->n;
    for (int i = 0; i < o->n; i++) {
        size_t bytes = sizeof(float) * (size_t)o->params[i]->numel;
        memcpy(o->m[i], r, bytes);
        r += o->params[i]->numel;
        memcpy(o->v[i], r, bytes);
        r += o->params[i]->numel;
    }
    return 0;
}

/* ---- EMA -------------------------------------------------------------------------------- */

int da_ema_init(da_ema *e, da_tensor **params, int n, float decay, char *err, size_t errlen) {
    memset(e, 0, sizeof *e);
    if (!(decay >= 0.0f && decay <= 1.0f)) {
        snprintf(err, errlen, "EMA decay %g is invalid; use a value in [0, 1], e.g. 0.9999", (double)decay);
        return -1;
    }
    if (n < 0) {
        snprintf(err, errlen, "EMA: negative parameter count %d", n);
        return -1;
    }
    e->n = n;
    e->decay = decay;
    e->params = xcalloc((size_t)n, sizeof *e->params);
    e->shadow = xcalloc((size_t)n, sizeof *e->shadow);
    for (int i = 0; i < n; i++) {
        e->params[i] = params[i];
        e->shadow[i] = da_persistent(params[i]->ndim, params[i]->shape, false);
        e->shadow[i]->name = params[i]->name;
        memcpy(e->shadow[i]->data, params[i]->data, sizeof(float) * (size_t)params[i]->numel);
    }
    return 0;
}

void da_ema_update(da_ema *e) {
    float mu = e->decay, omu = (float)(1.0 - (double)e->decay);
    for (int i = 0; i < e->n; i++) {
        const float *p = e->params[i]->data;
        float *s = e->shadow[i]->data;
        int64_t n = e->params[i]->numel;
        #pragma omp parallel for schedule(static) if (n > DA_OPTIM_PAR_MIN)
        for (int64_t j = 0; j < n; j++) s[j] = omu * p[j] + mu * s[j];
    }
}

void da_ema_copy_to_params(const da_ema *e) {
    for (int i = 0; i < e->n; i++)
        memcpy(e->params[i]->data, e->shadow[i]->data, sizeof(float) * (size_t)e->params[i]->numel);
}

void da_ema_free(da_ema *e) {
    for (int i = 0; i < e->n; i++) da_tensor_free(e->shadow[i]);
    free(e->shadow);
    free(e->params);
    memset(e, 0, sizeof *e);
}

/* ---- schedule --------------------------------------------------------------------------- */

double da_lr_at(const da_lr_schedule *s, int64_t step) {
    da_check(step >= 0, "lr_at", "negative step %lld", (long long)step);
    double lr = s->base_lr;
    if (s->warmup_steps > 0 && step < s->warmup_steps) lr *= (double)(step + 1) / (double)s->warmup_steps;
    if (s->decay_every > 0) lr *= pow(s->gamma, (double)(step / s->decay_every));
    return lr;
}
