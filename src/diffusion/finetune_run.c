/* finetune_run.c — a whole DiffusionCLIP fine-tuning run (see finetune_run.h). */
#include "diffusion/finetune_run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "nn/clip_loss.h"
#include "tensor/rng.h"

int da_ft_direction(const da_clip *clip, da_bpe *bpe, const da_ft_config *cfg, const float *src, int64_t n_src,
                    const float *tgt, int64_t n_tgt, int64_t C, int64_t H, int64_t W, float *dir,
                    double *cos_text_image, char *err, size_t errlen) {
    if (da_clip_text_direction(clip, bpe, cfg->src_text, cfg->tgt_text, NULL, 0, dir, err, errlen)) return -1;
    if (cos_text_image) *cos_text_image = NAN;
    if (!tgt) return 0;
    const int64_t E = clip->cfg.embed_dim;
    float *img_dir = malloc(sizeof(float) * (size_t)E);
    if (!img_dir) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = da_clip_image_direction(clip, src, n_src, tgt, n_tgt, C, H, W, img_dir, err, errlen);
    double cos = 0;
    for (int64_t k = 0; rc == 0 && k < E; k++) cos += (double)dir[k] * img_dir[k];
    if (rc == 0 && da_clip_mix_directions(dir, img_dir, cfg->tgt_weight, E, dir) != 0) {
        snprintf(err, errlen, "the text and image directions cancel at an image weight of %g", (double)cfg->tgt_weight);
        rc = -1;
    }
    if (rc == 0 && cos_text_image) *cos_text_image = cos;
    free(img_dir);
    return rc;
}

int da_ft_latents(const da_unet *model, const da_ft_config *cfg, const float *images, const int64_t shape[4],
                  float *lat, da_set_progress_fn progress, void *user, char *err, size_t errlen) {
    da_schedule s;
    if (da_schedule_linear(&s, model->cfg.num_timesteps, model->cfg.beta_start, model->cfg.beta_end, err, errlen))
        return -1;
    da_set_job job = da_set_job_plain(da_unet_eps, (void *)model, &s);
    job.t0 = cfg->t0;
    job.inv_steps = cfg->inv_steps;
    job.batch = cfg->ddim_batch;
    job.progress = progress;
    job.progress_user = user;
    return da_set_run(&job, images, lat, shape, err, errlen);
}

int da_ft_optimizer_init(const da_finetuner *f, da_adam *opt, char *err, size_t errlen) {
    da_adam_config ac = da_adam_defaults(DA_ADAM);
    ac.lr = f->cfg.lr;
    ac.weight_decay = 0;
    return da_adam_init(opt, &ac, f->params, f->n_params, err, errlen);
}

double da_ft_epoch_lr(const da_ft_config *cfg, int epoch) {
    return (double)cfg->lr * pow((double)cfg->lr_gamma, (double)epoch);
}

uint64_t da_ft_batch_seed(const da_ft_config *cfg, int epoch, int64_t n, int64_t b0) {
    return da_rng_at((uint64_t)cfg->seed, (uint64_t)epoch * (uint64_t)n + (uint64_t)b0);
}

/* acc += t · w, term by term */
static void add_terms(da_ft_terms *acc, const da_ft_terms *t, double w) {
    acc->loss += t->loss * w;
    acc->clip += t->clip * w;
    acc->dir += t->dir * w;
    acc->l1 += t->l1 * w;
    acc->id += t->id * w;
}

int da_ft_run_epoch(da_finetuner *f, da_adam *opt, da_ctx *ctx, const float *x0, const float *lat, int64_t n, int epoch,
                    const da_ft_hooks *hooks, da_ft_epoch_report *report, char *err, size_t errlen) {
    const da_ft_config *c = &f->cfg;
    if (n < 1 || epoch < 0) {
        snprintf(err, errlen, "a fine-tuning run needs at least one image (got %lld)", (long long)n);
        return -1;
    }
    const int64_t per = f->model->cfg.in_channels * (int64_t)f->model->cfg.resolution * f->model->cfg.resolution;
    static const da_ft_hooks none = {0};
    if (!hooks) hooks = &none;
    opt->cfg.lr = da_ft_epoch_lr(c, epoch);
    da_ft_terms sum = {0};
    double t_epoch = da_now();
    for (int64_t b0 = 0; b0 < n; b0 += c->batch) {
        int64_t nb = n - b0 < c->batch ? n - b0 : c->batch;
        double t_batch = da_now();
        da_ft_terms t;
        char e2[DA_ERR_LEN];
        if (da_ft_train_batch(f, opt, ctx, x0 + b0 * per, lat + b0 * per, nb, da_ft_batch_seed(c, epoch, n, b0), NULL, &t,
                              e2, sizeof e2)) {
            snprintf(err, errlen, "epoch %d, image %lld: %s", epoch + 1, (long long)b0 + 1, e2);
            return -1;
        }
        add_terms(&sum, &t, (double)nb);
        if (hooks->on_batch) {
            da_ft_batch_report r = {epoch + 1, c->epochs, b0, nb, n, t, opt->cfg.lr, da_now() - t_batch};
            hooks->on_batch(hooks->user, &r);
        }
    }
    const double dn = (double)n;
    da_ft_terms mean = {sum.loss / dn, sum.clip / dn, sum.dir / dn, sum.l1 / dn, sum.id / dn};
    *report = (da_ft_epoch_report){epoch + 1, c->epochs, mean, opt->cfg.lr, da_now() - t_epoch, ctx->arena.peak};
    return 0;
}

int da_ft_run(da_finetuner *f, da_adam *opt, const float *x0, const float *lat, int64_t n, int start_epoch,
              const da_ft_hooks *hooks, char *err, size_t errlen) {
    if (n < 1 || start_epoch < 0) {
        snprintf(err, errlen, "a fine-tuning run needs at least one image (got %lld)", (long long)n);
        return -1;
    }
    static const da_ft_hooks none = {0};
    if (!hooks) hooks = &none;
    da_ctx ctx;
    da_ctx_init(&ctx);
    int rc = -1;
    for (int e = start_epoch; e < f->cfg.epochs; e++) {
        da_ft_epoch_report r;
        if (da_ft_run_epoch(f, opt, &ctx, x0, lat, n, e, hooks, &r, err, errlen)) goto done;
        if (hooks->on_epoch && hooks->on_epoch(hooks->user, &r, err, errlen)) goto done;
    }
    rc = 0;
done:
    da_ctx_free(&ctx);
    return rc;
}
