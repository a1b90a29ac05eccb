/* finetune.c — da_finetune_text: the method's one fine-tuning run (diffusion/finetune_run.h)
 * over a data set, without the command's checkpoints, logs and caches. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "data/dataset.h"
#include "diffusion/finetune_run.h"

void da_finetune_defaults(da_finetune_settings *s) {
    da_ft_config c;
    da_ft_config_default(&c);
    *s = (da_finetune_settings){.t0 = c.t0, .inv_steps = c.inv_steps, .train_steps = c.train_steps, .epochs = 1,
                                .batch = c.batch, .images = 0, .lr = c.lr, .lr_gamma = c.lr_gamma,
                                .clip_weight = c.clip_weight, .l1_weight = c.l1_weight,
                                .per_step = c.mode == DA_FT_PER_STEP, .seed = (uint64_t)c.seed, .tgt_images = NULL,
                                .tgt_weight = c.tgt_weight};
}

/* The method's settings from the public ones, for n images. */
static int method_config(const da_finetune_settings *s, const char *src_text, const char *tgt_text, int64_t n,
                         da_ft_config *c, char *err, size_t errlen) {
    da_ft_config_default(c);
    c->src_text = src_text;
    c->tgt_text = tgt_text;
    c->t0 = s->t0;
    c->inv_steps = s->inv_steps;
    c->train_steps = s->train_steps;
    c->epochs = s->epochs;
    c->batch = s->batch;
    c->images = (int)n;
    c->lr = s->lr;
    c->lr_gamma = s->lr_gamma;
    c->clip_weight = s->clip_weight;
    c->l1_weight = s->l1_weight;
    c->mode = s->per_step ? DA_FT_PER_STEP : DA_FT_CHAIN;
    if (s->seed > 0x7fffffff) return da_api_fail(err, errlen, "seed %llu is too large (at most 2^31-1)", (unsigned long long)s->seed);
    c->seed = (int)s->seed;
    c->tgt_weight = s->tgt_weight;
    return da_ft_run_config_validate(c, err, errlen);
}

typedef struct {
    da_progress_fn fn;
    void *user;
    int64_t n;
} api_progress;

static void on_invert(void *user, const da_set_progress *p) {
    const api_progress *a = user;
    a->fn(a->user, "invert", p->images_done, p->images_total);
}

static void on_batch(void *user, const da_ft_batch_report *r) {
    const api_progress *a = user;
    a->fn(a->user, "finetune", (int64_t)(r->epoch - 1) * r->images + r->first + r->n, (int64_t)r->epochs * r->images);
}

int da_finetune_text(da_model *model, const da_clip_model *clip, const char *src_text, const char *tgt_text,
                     const char *data_spec, const da_finetune_settings *s, da_progress_fn progress, void *user,
                     char *err, size_t errlen) {
    if (!model || !clip || !src_text || !tgt_text || !data_spec || !s)
        return da_api_fail(err, errlen, "da_finetune_text: an argument is missing");
    if (s->images < 0) return da_api_fail(err, errlen, "images must not be negative (0 = all)");
    da_unet *m = &model->unet;
    da_clip *c = (da_clip *)&clip->clip;   /* da_ft_init marks it frozen, which it already is: read only */
    int rc = -1;
    bool have_ft = false, have_opt = false;
    da_dataset d = {0}, t = {0};
    float *lat = NULL, *dir = malloc(sizeof(float) * (size_t)c->cfg.embed_dim);
    da_finetuner f;
    da_adam opt;
    if (!dir) {
        da_api_fail(err, errlen, "out of memory");
        goto done;
    }
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
    da_ft_config cfg;
    if (method_config(s, src_text, tgt_text, n, &cfg, err, errlen)) goto done;
    if (s->tgt_images) {
        if (da_dataset_load(s->tgt_images, NULL, &t, err, errlen)) goto done;
        if (t.c != d.c || t.h != d.h || t.w != d.w) {
            da_api_fail(err, errlen, "the target images are %lldx%lldx%lld (CxHxW), the data %lldx%lldx%lld",
                        (long long)t.c, (long long)t.h, (long long)t.w, (long long)d.c, (long long)d.h, (long long)d.w);
            goto done;
        }
    }
    if (da_ft_direction(c, clip->bpe, &cfg, d.images, n, s->tgt_images ? t.images : NULL, t.n, d.c, d.h, d.w, dir, NULL,
                        err, errlen))
        goto done;
    lat = malloc(sizeof(float) * (size_t)(n * per));
    if (!lat) {
        da_api_fail(err, errlen, "out of memory");
        goto done;
    }
    api_progress ap = {progress, user, n};
    const int64_t shape[4] = {n, d.c, d.h, d.w};
    if (da_ft_latents(m, &cfg, d.images, shape, lat, progress ? on_invert : NULL, &ap, err, errlen) ||
        da_ft_init(&f, &cfg, m, c, dir, NULL, err, errlen))
        goto done;
    have_ft = true;
    if (da_ft_optimizer_init(&f, &opt, err, errlen)) goto done;
    have_opt = true;
    da_ft_hooks hooks = {progress ? on_batch : NULL, NULL, &ap};
    if (da_ft_run(&f, &opt, d.images, lat, n, 0, &hooks, err, errlen)) goto done;
    rc = 0;
done:
    if (have_opt) da_adam_free(&opt);
    if (have_ft) da_ft_free(&f);
    da_dataset_free(&d);
    da_dataset_free(&t);
    free(lat);
    free(dir);
    return rc;
}
