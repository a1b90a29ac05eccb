/* finetune.c — da_finetune_text: DiffusionCLIP fine-tuning through diffusion/finetune.h, the
 * loop of cmd_finetune.c without its checkpoints, logs and caches. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "data/dataset.h"
#include "diffusion/ddim.h"
#include "diffusion/finetune.h"
#include "nn/clip_loss.h"
#include "tensor/rng.h"

void da_finetune_defaults(da_finetune_settings *s) {
    *s = (da_finetune_settings){.t0 = 500, .inv_steps = 40, .train_steps = 6, .epochs = 1, .batch = 1, .images = 0,
                                .lr = 8e-6f, .lr_gamma = 1.3f, .clip_weight = 3.0f, .l1_weight = 1.0f,
                                .per_step = 0, .seed = 0};
}

/* The DDIM latents of n images (n,C,H,W) with the frozen model, 8 at a time. */
static int invert_all(const da_unet *m, const da_ft_config *cfg, const float *images, float *lat, int64_t n,
                      da_progress_fn progress, void *user, char *err, size_t errlen) {
    da_schedule s;
    if (da_schedule_linear(&s, m->cfg.num_timesteps, m->cfg.beta_start, m->cfg.beta_end, err, errlen)) return -1;
    int64_t C = m->cfg.in_channels, R = m->cfg.resolution, per = C * R * R;
    memcpy(lat, images, sizeof(float) * (size_t)(n * per));
    for (int64_t b0 = 0; b0 < n; b0 += 8) {
        int64_t nb = n - b0 < 8 ? n - b0 : 8;
        int64_t shape[4] = {nb, C, R, R};
        if (da_ddim_invert(&s, da_unet_eps, (void *)m, lat + b0 * per, shape, cfg->inv_steps, cfg->t0, NULL, NULL, err,
                           errlen))
            return -1;
        if (progress) progress(user, "invert", b0 + nb, n);
    }
    return 0;
}

int da_finetune_text(da_model *model, const da_clip_model *clip, const char *src_text, const char *tgt_text,
                     const char *data_spec, const da_finetune_settings *s, da_progress_fn progress, void *user,
                     char *err, size_t errlen) {
    if (!model || !clip || !src_text || !tgt_text || !data_spec || !s)
        return da_api_fail(err, errlen, "da_finetune_text: an argument is missing");
    if (s->epochs < 1 || s->batch < 1 || s->images < 0 || !(s->lr > 0) || !(s->lr_gamma > 0))
        return da_api_fail(err, errlen, "epochs and batch must be at least 1, images not negative, lr and lr_gamma "
                           "positive");
    da_unet *m = &model->unet;
    da_clip *c = (da_clip *)&clip->clip;   /* da_ft_init marks it frozen, which it already is: read only */
    da_ft_config cfg;
    da_ft_config_default(&cfg);
    cfg.t0 = s->t0;
    cfg.inv_steps = s->inv_steps;
    cfg.train_steps = s->train_steps;
    cfg.clip_weight = s->clip_weight;
    cfg.l1_weight = s->l1_weight;
    cfg.mode = s->per_step ? DA_FT_PER_STEP : DA_FT_CHAIN;
    int rc = -1;
    bool have_ft = false, have_opt = false;
    da_dataset d = {0};
    float *lat = NULL, *dir = malloc(sizeof(float) * (size_t)c->cfg.embed_dim);
    da_finetuner f;
    da_adam opt;
    da_ctx ctx;
    da_ctx_init(&ctx);
    if (!dir) {
        da_api_fail(err, errlen, "out of memory");
        goto done;
    }
    if (da_clip_text_direction(c, clip->bpe, src_text, tgt_text, NULL, 0, dir, err, errlen) ||
        da_ft_init(&f, &cfg, m, c, dir, NULL, err, errlen))
        goto done;
    have_ft = true;
    if (da_dataset_load(data_spec, NULL, &d, err, errlen)) goto done;
    if (d.c != m->cfg.in_channels || d.h != m->cfg.resolution || d.w != m->cfg.resolution) {
        da_api_fail(err, errlen, "%s: the images are %lldx%lldx%lld (HxWxC) but the model takes %dx%dx%d", data_spec,
                    (long long)d.h, (long long)d.w, (long long)d.c, m->cfg.resolution, m->cfg.resolution,
                    m->cfg.in_channels);
        goto done;
    }
    int64_t n = s->images > 0 && s->images < d.n ? s->images : d.n, per = d.c * d.h * d.w;
    if (n == 0) {
        da_api_fail(err, errlen, "%s holds no images", data_spec);
        goto done;
    }
    lat = malloc(sizeof(float) * (size_t)(n * per));
    if (!lat) {
        da_api_fail(err, errlen, "out of memory");
        goto done;
    }
    if (invert_all(m, &cfg, d.images, lat, n, progress, user, err, errlen)) goto done;
    da_adam_config ac = da_adam_defaults(DA_ADAM);
    ac.lr = s->lr;
    ac.weight_decay = 0;
    if (da_adam_init(&opt, &ac, f.params, f.n_params, err, errlen)) goto done;
    have_opt = true;
    int64_t total = (int64_t)s->epochs * n;
    for (int e = 0; e < s->epochs; e++) {
        opt.cfg.lr = (double)s->lr * pow((double)s->lr_gamma, (double)e);
        for (int64_t b0 = 0; b0 < n; b0 += s->batch) {
            int64_t nb = n - b0 < s->batch ? n - b0 : s->batch;
            uint64_t bseed = da_rng_at(s->seed, (uint64_t)e * (uint64_t)n + (uint64_t)b0);
            da_ft_terms t;
            if (da_ft_train_batch(&f, &opt, &ctx, d.images + b0 * per, lat + b0 * per, nb, bseed, NULL, &t, err, errlen))
                goto done;
            if (progress) progress(user, "finetune", (int64_t)e * n + b0 + nb, total);
        }
    }
    rc = 0;
done:
    if (have_opt) da_adam_free(&opt);
    if (have_ft) da_ft_free(&f);
    da_ctx_free(&ctx);
    da_dataset_free(&d);
    free(lat);
    free(dir);
    return rc;
}
