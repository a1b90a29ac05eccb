/* finetune.c — DiffusionCLIP fine-tuning steps (see finetune.h): the loss (directional CLIP +
 * L1 + optional identity), chain mode (with optional per-step recomputation) and per-step mode. */
#include "diffusion/finetune.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffusion/ddim.h"
#include "nn/clip_loss.h"
#include "nn/clip_views.h"

const char *const DA_FT_IDENTITY_NAMES[] = {"pixels", "edges", "coarse-edges", NULL};
const char *const DA_FT_MODE_NAMES[] = {"chain", "per-step", NULL};

void da_ft_config_default(da_ft_config *c) {
    memset(c, 0, sizeof *c);
    c->src_text = "photo";
    c->tgt_text = "sketch";
    c->tgt_weight = 1.0f;
    c->t0 = 500;
    c->inv_steps = 40;
    c->train_steps = 6;
    c->gen_steps = 6;
    c->model_ratio = 1.0f;
    c->ddim_batch = 8;
    c->images = 50;
    c->epochs = 5;
    c->batch = 1;
    c->lr = 8e-6f;
    c->lr_gamma = 1.3f;
    c->seed = 0;
    c->clip_weight = 3.0f;
    c->l1_weight = 1.0f;
    c->id_weight = 0.0f;
    c->mode = DA_FT_CHAIN;
    c->recompute = false;
    c->identity = DA_FT_ID_PIXELS;
    c->views = 0;
    c->view_min_scale = 0.6f;
}

int da_ft_identity_parse(const char *name, da_ft_identity *out) {
    for (int i = 0; name && DA_FT_IDENTITY_NAMES[i]; i++)
        if (strcmp(name, DA_FT_IDENTITY_NAMES[i]) == 0) {
            *out = (da_ft_identity)i;
            return 0;
        }
    return -1;
}

int da_ft_run_config_validate(const da_ft_config *c, char *err, size_t errlen) {
    if (c->images < 1 || c->epochs < 1 || c->batch < 1 || c->ddim_batch < 1 || c->seed < 0) {
        snprintf(err, errlen, "the fine-tuning images, epochs, batch and DDIM batch must be at least 1 and the seed not "
                 "negative (got %d, %d, %d, %d, %d)", c->images, c->epochs, c->batch, c->ddim_batch, c->seed);
        return -1;
    }
    if (!(c->lr > 0) || !(c->lr_gamma > 0) || !isfinite(c->lr) || !isfinite(c->lr_gamma)) {
        snprintf(err, errlen, "the learning rate and its factor per epoch must be positive (got %g, %g)", (double)c->lr,
                 (double)c->lr_gamma);
        return -1;
    }
    if (!(c->tgt_weight >= 0.0f && c->tgt_weight <= 1.0f)) {
        snprintf(err, errlen, "the weight of the image direction must lie in [0,1] (got %g)", (double)c->tgt_weight);
        return -1;
    }
    if (da_eps_mix_check_ratio(c->model_ratio, err, errlen)) return -1;
    const char *s = c->src_text, *t = c->tgt_text;
    if (!s || !t || !s[strspn(s, " \t\n")] || !t[strspn(t, " \t\n")] || strcmp(s, t) == 0) {
        /* an empty or repeated text gives no direction to move along */
        snprintf(err, errlen, "the source and target texts must be two different, non-empty texts, got \"%s\" and \"%s\"",
                 s ? s : "", t ? t : "");
        return -1;
    }
    return 0;
}

int da_ft_config_validate(const da_ft_config *c, const da_unet *model, char *err, size_t errlen) {
    da_schedule s;
    if (da_schedule_linear(&s, model->cfg.num_timesteps, model->cfg.beta_start, model->cfg.beta_end, err, errlen))
        return -1;
    char e2[DA_ERR_LEN];
    if (da_ddim_check_steps(&s, c->inv_steps, c->t0, e2, sizeof e2)) {
        snprintf(err, errlen, "t0 and the inversion steps: %s", e2);
        return -1;
    }
    if (da_ddim_check_steps(&s, c->train_steps, c->t0, e2, sizeof e2)) {
        snprintf(err, errlen, "t0 and the training generation steps: %s", e2);
        return -1;
    }
    if (!(c->clip_weight >= 0 && c->l1_weight >= 0 && c->id_weight >= 0) ||
        !isfinite(c->clip_weight) || !isfinite(c->l1_weight) || !isfinite(c->id_weight)) {
        snprintf(err, errlen, "the CLIP, L1 and identity loss weights must be finite and >= 0");
        return -1;
    }
    if (c->clip_weight == 0 && c->l1_weight == 0 && c->id_weight == 0) {
        snprintf(err, errlen, "all loss weights are 0: nothing to train (set the CLIP weight, e.g. 3)");
        return -1;
    }
    if (c->views < 0 || c->views > 64 || !(c->view_min_scale > 0.0f && c->view_min_scale <= 1.0f)) {
        snprintf(err, errlen, "views must be 0..64 and the view scale in (0, 1] (got %d, %g)", c->views,
                 (double)c->view_min_scale);
        return -1;
    }
    if (c->identity != DA_FT_ID_PIXELS && c->identity != DA_FT_ID_EDGES && c->identity != DA_FT_ID_COARSE_EDGES) {
        snprintf(err, errlen, "unknown identity term %d", (int)c->identity);
        return -1;
    }
    if (c->mode != DA_FT_CHAIN && c->mode != DA_FT_PER_STEP) {
        snprintf(err, errlen, "unknown fine-tuning mode %d", (int)c->mode);
        return -1;
    }
    return 0;
}

int da_ft_init(da_finetuner *f, const da_ft_config *cfg, da_unet *model, da_clip *clip, const float *text_dir,
               da_clip *id_model, char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    if (da_ft_config_validate(cfg, model, err, errlen)) return -1;
    if (cfg->id_weight > 0 && !id_model) {
        snprintf(err, errlen, "--id-weight %g needs an identity model (--id-model FILE)", (double)cfg->id_weight);
        return -1;
    }
    if (da_schedule_linear(&f->sched, model->cfg.num_timesteps, model->cfg.beta_start, model->cfg.beta_end, err, errlen))
        return -1;
    f->cfg = *cfg;
    f->model = model;
    f->clip = clip;
    f->id_model = id_model;
    da_clip_requires_grad(clip, false);
    if (id_model) da_clip_requires_grad(id_model, false);
    f->embed_dim = clip->cfg.embed_dim;
    f->id_dim = id_model ? id_model->cfg.embed_dim : 0;
    f->text_dir = malloc(sizeof(float) * (size_t)f->embed_dim);
    int n = cfg->train_steps;
    int *seq = malloc(sizeof(int) * (size_t)n), *next = malloc(sizeof(int) * (size_t)n);
    f->ts = malloc(sizeof(int) * (size_t)n);
    f->ts_next = malloc(sizeof(int) * (size_t)n);
    f->n_params = model->params.n;
    f->params = malloc(sizeof(da_tensor *) * (size_t)(f->n_params ? f->n_params : 1));
    da_check(f->text_dir && seq && next && f->ts && f->ts_next && f->params, "finetune", "out of memory");
    memcpy(f->text_dir, text_dir, sizeof(float) * (size_t)f->embed_dim);
    /* generation order: (t, t_next) in zip(reversed(seq), reversed(seq_next)) */
    da_ddim_timesteps(n, cfg->t0, seq, next);
    for (int i = 0; i < n; i++) {
        f->ts[i] = seq[n - 1 - i];
        f->ts_next[i] = next[n - 1 - i];
    }
    free(seq);
    free(next);
    for (int i = 0; i < f->n_params; i++) f->params[i] = model->params.items[i].t;
    da_unet_requires_grad(model, true);
    return 0;
}

void da_ft_free(da_finetuner *f) {
    free(f->text_dir);
    free(f->ts);
    free(f->ts_next);
    free(f->params);
    memset(f, 0, sizeof *f);
}

static void image_shape(const da_finetuner *f, int64_t B, int64_t shape[4]) {
    shape[0] = B;
    shape[1] = f->model->cfg.in_channels;
    shape[2] = f->model->cfg.resolution;
    shape[3] = f->model->cfg.resolution;
}

void da_ft_source_features(const da_finetuner *f, const float *x0, int64_t B, float *src_clip, float *src_id) {
    int64_t shape[4];
    image_shape(f, B, shape);
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_set_grad(&ctx, false);
    ctx.training = false;
    da_tensor *x = da_from_data(&ctx, 4, shape, x0);
    if (f->cfg.clip_weight > 0) {
        da_tensor *e = da_clip_image_features(&ctx, f->clip, x);   /* (B,E) */
        memcpy(src_clip, e->data, sizeof(float) * (size_t)e->numel);
    } else {
        memset(src_clip, 0, sizeof(float) * (size_t)(B * f->embed_dim));
    }
    if (f->id_model && src_id) {
        da_ctx_reset(&ctx);
        x = da_from_data(&ctx, 4, shape, x0);
        da_tensor *e = da_clip_image_features(&ctx, f->id_model, x);   /* (B,id_dim) */
        memcpy(src_id, e->data, sizeof(float) * (size_t)e->numel);
    }
    da_ctx_free(&ctx);
}

/* |d| for a tensor of neighbour differences, smooth at 0 so that its gradient is defined. */
static da_tensor *soft_abs(da_ctx *ctx, da_tensor *d) {
    return da_sqrt(ctx, da_add_scalar(ctx, da_mul(ctx, d, d), 1e-6f));
}

/* Horizontal and vertical neighbour differences of x (B,C,H,W): (B,C,H,W-1) and (B,C,H-1,W). */
static void neighbour_differences(da_ctx *ctx, da_tensor *x, da_tensor **dx, da_tensor **dy) {
    int64_t H = x->shape[2], W = x->shape[3];
    *dx = da_sub(ctx, da_slice(ctx, x, 3, 1, W), da_slice(ctx, x, 3, 0, W - 1));
    *dy = da_sub(ctx, da_slice(ctx, x, 2, 1, H), da_slice(ctx, x, 2, 0, H - 1));
}

/* The identity term of cfg.identity between x (on the tape) and x0 (constant): a 0-d tensor. */
static da_tensor *identity_loss(da_ctx *ctx, const da_finetuner *f, da_tensor *x, da_tensor *x0) {
    if (f->cfg.identity == DA_FT_ID_PIXELS) return da_l1_loss(ctx, x, x0);
    da_tensor *gx, *gy, *sx, *sy;
    neighbour_differences(ctx, x, &gx, &gy);
    bool old = da_set_grad(ctx, false);
    neighbour_differences(ctx, x0, &sx, &sy);
    sx = soft_abs(ctx, sx);
    sy = soft_abs(ctx, sy);
    int block = f->cfg.identity == DA_FT_ID_COARSE_EDGES ? 4 : 1;
    if (block > 1) {
        sx = da_max_pool2d(ctx, sx, block, block);
        sy = da_max_pool2d(ctx, sy, block, block);
    }
    da_set_grad(ctx, old);
    gx = soft_abs(ctx, gx);
    gy = soft_abs(ctx, gy);
    if (block > 1) {
        gx = da_max_pool2d(ctx, gx, block, block);
        gy = da_max_pool2d(ctx, gy, block, block);
    }
    da_tensor *lx = da_l1_loss(ctx, gx, sx), *ly = da_l1_loss(ctx, gy, sy);
    return da_scale(ctx, da_add(ctx, lx, ly), 0.5f);
}

/* The directional CLIP loss averaged over the image itself and cfg.views random views, the same
 * view for x̂0 and x0. Views are drawn from ctx->seed (the generation step's seed), so a
 * recomputation sees the same ones. */
static da_tensor *clip_loss_views(da_ctx *ctx, const da_finetuner *f, da_tensor *x0, da_tensor *src_clip, da_tensor *x,
                                  float *l_dir) {
    float d = 0;
    da_tensor *sum = da_clip_directional_loss(ctx, f->clip, src_clip, x, f->text_dir, &d);
    double dir_sum = d;
    for (int v = 0; v < f->cfg.views; v++) {
        da_rng r;
        da_rng_init(&r, da_rng_at(ctx->seed ^ 0x636c697076696577ULL, (uint64_t)v));
        da_clip_view view;
        da_clip_view_draw(&r, x->shape[2], x->shape[3], f->cfg.view_min_scale, &view);
        bool old = da_set_grad(ctx, false);
        da_tensor *src = da_clip_image_features(ctx, f->clip, da_clip_view_apply(ctx, x0, &view));   /* (B,E) */
        da_set_grad(ctx, old);
        da_tensor *lc = da_clip_directional_loss(ctx, f->clip, src, da_clip_view_apply(ctx, x, &view), f->text_dir, &d);
        dir_sum += d;
        sum = da_add(ctx, sum, lc);
    }
    *l_dir = (float)(dir_sum / (f->cfg.views + 1));
    return f->cfg.views > 0 ? da_scale(ctx, sum, 1.0f / (float)(f->cfg.views + 1)) : sum;
}

da_tensor *da_ft_loss(da_ctx *ctx, const da_finetuner *f, da_tensor *x0, da_tensor *src_clip, da_tensor *src_id,
                      da_tensor *x, da_ft_terms *terms) {
    da_ft_terms t = {0};
    da_tensor *loss = NULL;
    if (f->cfg.clip_weight > 0) {
        float l_dir = 0;
        da_tensor *lc = clip_loss_views(ctx, f, x0, src_clip, x, &l_dir);
        t.clip = lc->data[0];
        t.dir = l_dir;
        loss = da_scale(ctx, lc, f->cfg.clip_weight);
    }
    if (f->cfg.l1_weight > 0 || !loss) {
        da_tensor *l1 = identity_loss(ctx, f, x, x0);
        t.l1 = l1->data[0];
        da_tensor *w = da_scale(ctx, l1, f->cfg.l1_weight);
        loss = loss ? da_add(ctx, loss, w) : w;
    }
    if (f->id_model && f->cfg.id_weight > 0) {
        /* 1 - cos between the identity embeddings of x̂0 and x0, averaged over the batch */
        da_tensor *g = da_clip_image_features(ctx, f->id_model, x);              /* (B,id_dim) */
        da_tensor *cos = da_cosine_similarity(ctx, g, src_id, 1e-8f);            /* (B) */
        da_tensor *lid = da_add_scalar(ctx, da_scale(ctx, da_mean(ctx, cos, 0, NULL, false), -1.0f), 1.0f);
        t.id = lid->data[0];
        loss = da_add(ctx, loss, da_scale(ctx, lid, f->cfg.id_weight));
    }
    t.loss = loss->data[0];
    if (terms) *terms = t;
    return loss;
}

/* The source images and features as (non-differentiated) tensors on ctx. */
static void source_tensors(da_ctx *ctx, const da_finetuner *f, const float *x0, const float *src_clip,
                           const float *src_id, int64_t B, da_tensor **tx0, da_tensor **tsrc, da_tensor **tid) {
    int64_t shape[4];
    image_shape(f, B, shape);
    *tx0 = da_from_data(ctx, 4, shape, x0);
    *tsrc = da_from_data(ctx, DA_SHAPE(B, f->embed_dim), src_clip);
    *tid = f->id_model && src_id ? da_from_data(ctx, DA_SHAPE(B, f->id_dim), src_id) : NULL;
}

/* One generation step k on ctx (taped when grad is on and the model requires grad). */
static da_tensor *gen_step(da_ctx *ctx, const da_finetuner *f, da_tensor *x, int k, uint64_t seed, da_tensor **x0t) {
    ctx->seed = da_rng_at(seed, (uint64_t)k);
    ctx->dropout_calls = 0;
    da_tensor *eps = da_unet_eps(ctx, x, f->ts[k], f->model);
    return da_ddim_step(ctx, &f->sched, x, eps, f->ts[k], f->ts_next[k], 0.0f, NULL, x0t);
}

void da_ft_chain(da_ctx *ctx, const da_finetuner *f, const float *x0, const float *src_clip, const float *src_id,
                 const float *latent, int64_t B, uint64_t seed, bool backward, float *x_out, da_ft_terms *terms) {
    int K = f->cfg.train_steps;
    int64_t shape[4];
    image_shape(f, B, shape);
    int64_t numel = shape[0] * shape[1] * shape[2] * shape[3];
    bool old_grad = ctx->grad_enabled;
    ctx->training = true;
    da_ctx_reset(ctx);

    if (!f->cfg.recompute || !backward) {
        /* the whole chain on one tape */
        da_set_grad(ctx, backward);
        da_tensor *tx0, *tsrc, *tid;
        source_tensors(ctx, f, x0, src_clip, src_id, B, &tx0, &tsrc, &tid);
        da_tensor *x = da_from_data(ctx, 4, shape, latent);
        for (int k = 0; k < K; k++) x = gen_step(ctx, f, x, k, seed, NULL);
        da_tensor *loss = da_ft_loss(ctx, f, tx0, tsrc, tid, x, terms);
        if (x_out) memcpy(x_out, x->data, sizeof(float) * (size_t)numel);
        if (backward) da_backward(ctx, loss);
        da_set_grad(ctx, old_grad);
        return;
    }

    /* recompute: forward without a tape keeping every step's input xs[k] (K+1 samples) */
    float *xs = malloc(sizeof(float) * (size_t)(numel * (K + 1)));   /* (K+1,B,C,H,W) */
    float *g = malloc(sizeof(float) * (size_t)numel);                /* dL/dx of the current step's output */
    da_check(xs && g, "finetune", "out of memory");
    memcpy(xs, latent, sizeof(float) * (size_t)numel);
    da_set_grad(ctx, false);
    for (int k = 0; k < K; k++) {
        da_ctx_reset(ctx);
        da_tensor *x = da_from_data(ctx, 4, shape, xs + k * numel);
        x = gen_step(ctx, f, x, k, seed, NULL);
        memcpy(xs + (k + 1) * numel, x->data, sizeof(float) * (size_t)numel);
    }
    /* the loss of x̂0 = xs[K] and its gradient with respect to x̂0 */
    da_set_grad(ctx, true);
    da_ctx_reset(ctx);
    da_tensor *tx0, *tsrc, *tid;
    source_tensors(ctx, f, x0, src_clip, src_id, B, &tx0, &tsrc, &tid);
    da_tensor *xk = da_from_data(ctx, 4, shape, xs + K * numel);
    da_require_grad(xk);
    da_tensor *loss = da_ft_loss(ctx, f, tx0, tsrc, tid, xk, terms);
    da_backward(ctx, loss);
    memcpy(g, da_grad(ctx, xk), sizeof(float) * (size_t)numel);
    if (x_out) memcpy(x_out, xs + K * numel, sizeof(float) * (size_t)numel);
    /* each step again, last first, on its own tape: the same dropout masks (seed, k) */
    for (int k = K - 1; k >= 0; k--) {
        da_ctx_reset(ctx);
        da_tensor *x = da_from_data(ctx, 4, shape, xs + k * numel);
        if (k > 0) da_require_grad(x);
        da_tensor *xn = gen_step(ctx, f, x, k, seed, NULL);
        memcpy(da_grad(ctx, xn), g, sizeof(float) * (size_t)numel);
        da_backward_from(ctx, xn);
        if (k > 0) memcpy(g, da_grad(ctx, x), sizeof(float) * (size_t)numel);
    }
    da_set_grad(ctx, old_grad);
    free(xs);
    free(g);
}

void da_ft_per_step(da_ctx *ctx, const da_finetuner *f, const float *x0, const float *src_clip, const float *src_id,
                    float *x, int k, int64_t B, uint64_t seed, float *x0_out, da_ft_terms *terms) {
    da_check(k >= 0 && k < f->cfg.train_steps, "finetune", "step %d out of range", k);
    int64_t shape[4];
    image_shape(f, B, shape);
    int64_t numel = shape[0] * shape[1] * shape[2] * shape[3];
    bool old_grad = da_set_grad(ctx, true);
    ctx->training = true;
    da_ctx_reset(ctx);
    da_tensor *tx0, *tsrc, *tid;
    source_tensors(ctx, f, x0, src_clip, src_id, B, &tx0, &tsrc, &tid);
    da_tensor *xt = da_from_data(ctx, 4, shape, x);   /* detached: the gradient stops here */
    da_tensor *x0t = NULL;
    da_tensor *xn = gen_step(ctx, f, xt, k, seed, &x0t);
    da_tensor *loss = da_ft_loss(ctx, f, tx0, tsrc, tid, x0t, terms);
    da_backward(ctx, loss);
    memcpy(x, xn->data, sizeof(float) * (size_t)numel);
    if (x0_out) memcpy(x0_out, x0t->data, sizeof(float) * (size_t)numel);
    da_set_grad(ctx, old_grad);
}

void da_ft_check_frozen(const da_finetuner *f) {
    const da_clip *nets[2] = {f->clip, f->id_model};
    for (int j = 0; j < 2; j++) {
        if (!nets[j]) continue;
        for (int i = 0; i < nets[j]->params.n; i++) {
            const da_tensor *t = nets[j]->params.items[i].t;
            da_check(t->grad == NULL && !t->requires_grad, "finetune", "frozen weight %s holds a gradient",
                     nets[j]->params.items[i].name);
        }
    }
}

/* Returns 0 when the loss and every gradient are finite, else -1 with a message. */
static int check_finite(const da_finetuner *f, const da_ft_terms *t, char *err, size_t errlen) {
    if (!isfinite(t->loss)) {
        snprintf(err, errlen, "the loss is not finite (clip %g, dir %g, l1 %g, id %g)", t->clip, t->dir, t->l1, t->id);
        return -1;
    }
    for (int i = 0; i < f->n_params; i++) {
        const da_tensor *p = f->params[i];
        if (!p->grad) continue;
        for (int64_t j = 0; j < p->numel; j++)
            if (!isfinite(p->grad[j])) {
                snprintf(err, errlen, "the gradient of %s is not finite (loss %g)", p->name ? p->name : "?", t->loss);
                return -1;
            }
    }
    return 0;
}

int da_ft_train_batch(da_finetuner *f, da_adam *opt, da_ctx *ctx, const float *x0, const float *latent, int64_t B,
                      uint64_t seed, float *x_out, da_ft_terms *terms, char *err, size_t errlen) {
    int64_t shape[4];
    image_shape(f, B, shape);
    int64_t numel = shape[0] * shape[1] * shape[2] * shape[3];
    float *src = malloc(sizeof(float) * (size_t)(B * f->embed_dim));
    float *sid = f->id_model ? malloc(sizeof(float) * (size_t)(B * f->id_dim)) : NULL;
    da_check(src && (sid || !f->id_model), "finetune", "out of memory");
    da_ft_source_features(f, x0, B, src, sid);
    da_ft_terms t = {0};
    int rc = 0;
    if (f->cfg.mode == DA_FT_CHAIN) {
        da_zero_grads(f->params, f->n_params);
        da_ft_chain(ctx, f, x0, src, sid, latent, B, seed, true, x_out, &t);
        rc = check_finite(f, &t, err, errlen);
        if (!rc) da_adam_step(opt);
    } else {
        float *x = malloc(sizeof(float) * (size_t)numel);
        da_check(x != NULL, "finetune", "out of memory");
        memcpy(x, latent, sizeof(float) * (size_t)numel);
        for (int k = 0; k < f->cfg.train_steps && !rc; k++) {
            da_zero_grads(f->params, f->n_params);
            da_ft_per_step(ctx, f, x0, src, sid, x, k, B, seed, x_out, &t);
            rc = check_finite(f, &t, err, errlen);
            if (!rc) da_adam_step(opt);
        }
        free(x);
    }
    da_ft_check_frozen(f);
    if (terms) *terms = t;
    free(src);
    free(sid);
    return rc;
}

void da_ft_generate(const da_finetuner *f, float *x, int64_t B) {
    int64_t shape[4];
    image_shape(f, B, shape);
    char err[DA_ERR_LEN];
    int rc = da_ddim_generate(&f->sched, da_unet_eps, f->model, x, shape, f->cfg.train_steps, f->cfg.t0, 0.0f, 0,
                              NULL, NULL, err, sizeof err);
    da_check(rc == 0, "finetune", "generation failed: %s", err);   /* settings were validated in init */
}

static int64_t params_bytes(const da_params *p) { return da_params_count(p) * (int64_t)sizeof(float); }

int64_t da_ft_model_bytes(const da_finetuner *f) { return 4 * params_bytes(&f->model->params); }

int64_t da_ft_frozen_bytes(const da_finetuner *f) {
    return params_bytes(&f->clip->params) + (f->id_model ? params_bytes(&f->id_model->params) : 0);
}
