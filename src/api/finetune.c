/* finetune.c — the public fine-tuning settings (defaults, and their mapping onto the method's
 * da_ft_config) and da_finetune_text: one whole run over a data set through the run handle
 * (finetune_run.c), without checkpoints. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "data/dataset.h"
#include "diffusion/finetune_run.h"

/* settings.identity takes the method's values as they are */
_Static_assert(DA_FINETUNE_ID_PIXELS == (int)DA_FT_ID_PIXELS && DA_FINETUNE_ID_EDGES == (int)DA_FT_ID_EDGES &&
                   DA_FINETUNE_ID_COARSE_EDGES == (int)DA_FT_ID_COARSE_EDGES,
               "the public identity values follow da_ft_identity");

void da_finetune_defaults(da_finetune_settings *s) {
    da_ft_config c;
    da_ft_config_default(&c);
    *s = (da_finetune_settings){.t0 = c.t0, .inv_steps = c.inv_steps, .train_steps = c.train_steps, .epochs = 1,
                                .batch = c.batch, .images = 0, .lr = c.lr, .lr_gamma = c.lr_gamma,
                                .clip_weight = c.clip_weight, .l1_weight = c.l1_weight,
                                .per_step = c.mode == DA_FT_PER_STEP, .seed = (uint64_t)c.seed, .tgt_images = NULL,
                                .tgt_weight = c.tgt_weight, .ddim_batch = c.ddim_batch, .identity = (int)c.identity,
                                .id_weight = c.id_weight, .recompute = c.recompute, .views = c.views,
                                .view_min_scale = c.view_min_scale};
}

int da_api_ft_config(const da_finetune_settings *s, const char *src_text, const char *tgt_text, int64_t n,
                     da_ft_config *c, char *err, size_t errlen) {
    da_ft_config_default(c);
    if (n > 0x7fffffff) return da_api_fail(err, errlen, "%lld images are too many for one run", (long long)n);
    if (s->seed > 0x7fffffff) return da_api_fail(err, errlen, "seed %llu is too large (at most 2^31-1)", (unsigned long long)s->seed);
    if (s->identity < DA_FINETUNE_ID_PIXELS || s->identity > DA_FINETUNE_ID_COARSE_EDGES)
        return da_api_fail(err, errlen, "identity %d is not a DA_FINETUNE_ID_ value (0 pixels, 1 edges, 2 coarse edges)",
                           s->identity);
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
    c->seed = (int)s->seed;
    c->tgt_weight = s->tgt_weight;
    c->ddim_batch = s->ddim_batch;
    c->identity = (da_ft_identity)s->identity;
    c->id_weight = s->id_weight;
    c->recompute = s->recompute != 0;
    c->views = s->views;
    c->view_min_scale = s->view_min_scale;
    return da_ft_run_config_validate(c, err, errlen);
}

typedef struct {
    da_progress_fn fn;
    void *user;
} api_progress;

static void on_batch(void *user, const da_finetune_batch_report *r) {
    const api_progress *a = user;
    a->fn(a->user, "finetune", (int64_t)(r->epoch - 1) * r->images + r->first + r->n, (int64_t)r->epochs * r->images);
}

int da_finetune_text(da_model *model, const da_clip_model *clip, const char *src_text, const char *tgt_text,
                     const char *data_spec, const da_finetune_settings *s, da_progress_fn progress, void *user,
                     char *err, size_t errlen) {
    if (!model || !clip || !src_text || !tgt_text || !data_spec || !s)
        return da_api_fail(err, errlen, "da_finetune_text: an argument is missing");
    if (s->images < 0) return da_api_fail(err, errlen, "images must not be negative (0 = all)");
    da_dataset d = {0};
    if (da_dataset_load(data_spec, NULL, &d, err, errlen)) return -1;
    int rc = -1;
    da_finetune_run *run = NULL;
    const da_unet_config *mc = &model->unet.cfg;
    if (d.c != mc->in_channels || d.h != mc->resolution || d.w != mc->resolution) {
        da_api_fail(err, errlen, "%s: the images are %lldx%lldx%lld (HxWxC) but the model takes %dx%dx%d", data_spec,
                    (long long)d.h, (long long)d.w, (long long)d.c, mc->resolution, mc->resolution, mc->in_channels);
        goto done;
    }
    if (d.n == 0) {
        da_api_fail(err, errlen, "%s holds no images", data_spec);
        goto done;
    }
    const da_finetune_data data = {.images = d.images, .n = d.n};
    if (da_finetune_run_create(model, clip, NULL, src_text, tgt_text, &data, s, &run, err, errlen) ||
        da_finetune_run_invert(run, progress, user, err, errlen))
        goto done;
    api_progress ap = {progress, user};
    while (da_finetune_run_epochs_done(run) < s->epochs)
        if (da_finetune_run_epoch(run, progress ? on_batch : NULL, &ap, NULL, err, errlen)) goto done;
    rc = 0;
done:
    da_finetune_run_free(run);
    da_dataset_free(&d);
    return rc;
}
