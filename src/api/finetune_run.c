/* finetune_run.c — the fine-tuning run handle (diffadapt.h): the method's run
 * (diffusion/finetune_run.h) one epoch per call, over images and latents it keeps. Saving and
 * restoring its state is in finetune_state.c. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "data/dataset.h"
#include "diffusion/finetune_run.h"
#include "nn/params.h"

/* FNV-1a over the shape and the pixels: names a set of images in the settings text (the
 * `finetune` command's data hash without labels, and the hash of a target set). */
static uint64_t images_hash(const float *images, int64_t n, int64_t C, int64_t H, int64_t W) {
    int64_t dims[4] = {n, C, H, W};
    uint64_t h = da_fnv1a64(DA_FNV1A64_INIT, dims, sizeof dims);
    return da_fnv1a64(h, images, sizeof(float) * (size_t)(n * C * H * W));
}

/* What a saved state must agree with to be resumed. Later settings are named only when used, so
 * earlier checkpoints still resume. */
static void settings_text(char *s, size_t len, const da_ft_config *cfg, const char *model_hash, uint64_t dhash,
                          const char *clip_hash, const char *id_hash, bool tgt, uint64_t tgt_hash) {
    size_t n = (size_t)snprintf(s, len,
             "mode=%s src=\"%s\" tgt=\"%s\" t0=%d inv_steps=%d train_steps=%d images=%d batch=%d lr=%.9g "
             "lr_gamma=%.9g clip_weight=%.9g l1_weight=%.9g id_weight=%.9g seed=%d model=%s data=%016" PRIx64
             " clip=%s id=%s", DA_FT_MODE_NAMES[cfg->mode], cfg->src_text, cfg->tgt_text, cfg->t0, cfg->inv_steps,
             cfg->train_steps, cfg->images, cfg->batch, (double)cfg->lr, (double)cfg->lr_gamma, (double)cfg->clip_weight,
             (double)cfg->l1_weight, (double)cfg->id_weight, cfg->seed, model_hash, dhash, clip_hash, id_hash);
    if (cfg->identity != DA_FT_ID_PIXELS && n < len)
        n += (size_t)snprintf(s + n, len - n, " identity=%s", DA_FT_IDENTITY_NAMES[cfg->identity]);
    if (cfg->views > 0 && n < len)
        n += (size_t)snprintf(s + n, len - n, " views=%d view_scale=%.9g", cfg->views, (double)cfg->view_min_scale);
    if (tgt && n < len)
        n += (size_t)snprintf(s + n, len - n, " tgt=%016" PRIx64 " tgt_weight=%.9g", tgt_hash, (double)cfg->tgt_weight);
    if (cfg->ddim_batch != 8 && n < len) snprintf(s + n, len - n, " ddim_batch=%d", cfg->ddim_batch);
}

static char *copy_text(const char *s) {
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    if (c) memcpy(c, s, n);
    return c;
}

/* The target images: data's (in memory) or the settings' data set (loaded into t), checked
 * against the model's shape. *tgt stays NULL without any. */
static int target_images(const da_finetune_data *data, const da_finetune_settings *s, const da_unet_config *mc,
                         da_dataset *t, const float **tgt, int64_t *n_tgt, char *err, size_t errlen) {
    *tgt = NULL;
    *n_tgt = 0;
    if (data->tgt_images && s->tgt_images)
        return da_api_fail(err, errlen, "target images are given twice (in memory and as settings tgt_images %s)",
                           s->tgt_images);
    if (data->tgt_images) {
        if (data->n_tgt < 1) return da_api_fail(err, errlen, "target images: n_tgt is %lld", (long long)data->n_tgt);
        *tgt = data->tgt_images;
        *n_tgt = data->n_tgt;
        return 0;
    }
    if (!s->tgt_images) return 0;
    if (da_dataset_load(s->tgt_images, NULL, t, err, errlen)) return -1;
    if (t->c != mc->in_channels || t->h != mc->resolution || t->w != mc->resolution)
        return da_api_fail(err, errlen, "the target images are %lldx%lldx%lld (CxHxW), the model's %dx%dx%d",
                           (long long)t->c, (long long)t->h, (long long)t->w, mc->in_channels, mc->resolution,
                           mc->resolution);
    if (t->n < 1) return da_api_fail(err, errlen, "%s holds no images", s->tgt_images);
    *tgt = t->images;
    *n_tgt = t->n;
    return 0;
}

/* The direction, the fine-tuner and the optimiser of a run whose cfg, texts and images are set. */
static int build(da_finetune_run *r, const da_clip_model *clip, const da_clip_model *id_model,
                 const da_finetune_data *data, const da_finetune_settings *s, char *err, size_t errlen) {
    const da_unet_config *mc = &r->model->unet.cfg;
    da_clip *c = (da_clip *)&clip->clip;   /* da_ft_init marks it frozen, which it already is: read only */
    da_clip *idm = id_model ? (da_clip *)&id_model->clip : NULL;
    da_dataset t = {0};
    const float *tgt;
    int64_t n_tgt;
    float *dir = malloc(sizeof(float) * (size_t)c->cfg.embed_dim);   /* (E) */
    int rc = -1;
    if (!dir) {
        da_api_fail(err, errlen, "out of memory");
        goto done;
    }
    if (target_images(data, s, mc, &t, &tgt, &n_tgt, err, errlen) ||
        da_ft_direction(c, clip->bpe, &r->cfg, r->images, r->n, tgt, n_tgt, mc->in_channels, mc->resolution,
                        mc->resolution, dir, NULL, err, errlen) ||
        da_ft_init(&r->f, &r->cfg, &r->model->unet, c, dir, idm, err, errlen))
        goto done;
    r->have_ft = true;
    if (da_ft_optimizer_init(&r->f, &r->opt, err, errlen)) goto done;
    r->have_opt = true;
    char clip_hash[17], id_hash[17] = "none";
    da_params_hash(&c->params, clip_hash);
    if (idm) da_params_hash(&idm->params, id_hash);
    uint64_t dhash = data->data_id ? data->data_id : images_hash(r->images, r->n, mc->in_channels, mc->resolution,
                                                                 mc->resolution);
    uint64_t thash = tgt ? images_hash(tgt, n_tgt, mc->in_channels, mc->resolution, mc->resolution) : 0;
    settings_text(r->settings, sizeof r->settings, &r->cfg, r->model_hash, dhash, clip_hash, id_hash, tgt != NULL,
                  thash);
    rc = 0;
done:
    da_dataset_free(&t);
    free(dir);
    return rc;
}

int da_finetune_run_create(da_model *model, const da_clip_model *clip, const da_clip_model *id_model,
                           const char *src_text, const char *tgt_text, const da_finetune_data *data,
                           const da_finetune_settings *s, da_finetune_run **out, char *err, size_t errlen) {
    if (!out) return da_api_fail(err, errlen, "da_finetune_run_create: no place for the run (out is NULL)");
    *out = NULL;
    if (!model || !clip || !src_text || !tgt_text || !data || !s)
        return da_api_fail(err, errlen, "da_finetune_run_create: an argument is missing");
    if (!data->images || data->n < 1)
        return da_api_fail(err, errlen, "da_finetune_run_create: no images (n is %lld)", (long long)data->n);
    if (s->images < 0) return da_api_fail(err, errlen, "images must not be negative (0 = all)");
    if (!clip->bpe)
        return da_api_fail(err, errlen, "the CLIP model was loaded without a tokenizer; the text direction needs one");
    if (s->id_weight > 0 && !id_model)
        return da_api_fail(err, errlen, "id_weight %g needs an identity model", (double)s->id_weight);
    da_finetune_run *r = calloc(1, sizeof *r);
    if (!r) return da_api_fail(err, errlen, "out of memory");
    r->model = model;
    da_ctx_init(&r->ctx);
    const da_unet_config *mc = &model->unet.cfg;
    r->n = s->images > 0 && s->images < data->n ? s->images : data->n;
    r->per = (int64_t)mc->in_channels * mc->resolution * mc->resolution;
    r->src_text = copy_text(src_text);
    r->tgt_text = copy_text(tgt_text);
    r->images = malloc(sizeof(float) * (size_t)(r->n * r->per));
    if (!r->src_text || !r->tgt_text || !r->images) {
        da_api_fail(err, errlen, "out of memory");
        goto fail;
    }
    memcpy(r->images, data->images, sizeof(float) * (size_t)(r->n * r->per));
    da_params_hash(&model->unet.params, r->model_hash);
    if (da_api_ft_config(s, r->src_text, r->tgt_text, r->n, &r->cfg, err, errlen) ||
        build(r, clip, id_model, data, s, err, errlen))
        goto fail;
    *out = r;
    return 0;
fail:
    da_finetune_run_free(r);
    return -1;
}

/* The latents must come from the original model, so they are fixed before any training. */
static int latents_allowed(const da_finetune_run *r, const char *fn, char *err, size_t errlen) {
    if (r->started)
        return da_api_fail(err, errlen, "%s: the model has already been trained or restored; the latents must come "
                           "from the original model (set them before the first epoch and before load_state)", fn);
    return 0;
}

static int ensure_latent_buffer(da_finetune_run *r, char *err, size_t errlen) {
    if (!r->lat) r->lat = malloc(sizeof(float) * (size_t)(r->n * r->per));
    return r->lat ? 0 : da_api_fail(err, errlen, "out of memory");
}

typedef struct {
    da_progress_fn fn;
    void *user;
} invert_progress;

static void on_invert(void *user, const da_set_progress *p) {
    const invert_progress *a = user;
    a->fn(a->user, "invert", p->images_done, p->images_total);
}

int da_finetune_run_invert(da_finetune_run *run, da_progress_fn progress, void *user, char *err, size_t errlen) {
    if (!run) return da_api_fail(err, errlen, "da_finetune_run_invert: no run");
    if (latents_allowed(run, "da_finetune_run_invert", err, errlen) || ensure_latent_buffer(run, err, errlen)) return -1;
    const da_unet_config *mc = &run->model->unet.cfg;
    const int64_t shape[4] = {run->n, mc->in_channels, mc->resolution, mc->resolution};
    invert_progress ip = {progress, user};
    if (da_ft_latents(&run->model->unet, &run->cfg, run->images, shape, run->lat, progress ? on_invert : NULL, &ip, err,
                      errlen)) {
        free(run->lat);   /* half-inverted latents must not be trained on */
        run->lat = NULL;
        return -1;
    }
    return 0;
}

int da_finetune_run_set_latents(da_finetune_run *run, const float *latents, char *err, size_t errlen) {
    if (!run || !latents) return da_api_fail(err, errlen, "da_finetune_run_set_latents: an argument is missing");
    if (latents_allowed(run, "da_finetune_run_set_latents", err, errlen) || ensure_latent_buffer(run, err, errlen))
        return -1;
    memcpy(run->lat, latents, sizeof(float) * (size_t)(run->n * run->per));
    return 0;
}

const float *da_finetune_run_latents(const da_finetune_run *run) { return run ? run->lat : NULL; }

int64_t da_finetune_run_images(const da_finetune_run *run) { return run ? run->n : 0; }

typedef struct {
    da_finetune_batch_fn fn;
    void *user;
} batch_relay;

static void on_batch(void *user, const da_ft_batch_report *r) {
    const batch_relay *b = user;
    const da_ft_terms *t = &r->terms;
    const da_finetune_batch_report out = {r->epoch, r->epochs, r->first, r->n, r->images, t->loss, t->clip, t->dir,
                                          t->l1, t->id, r->lr, r->seconds};
    b->fn(b->user, &out);
}

int da_finetune_run_epoch(da_finetune_run *run, da_finetune_batch_fn on_batch_fn, void *user,
                          da_finetune_epoch_report *report, char *err, size_t errlen) {
    if (!run) return da_api_fail(err, errlen, "da_finetune_run_epoch: no run");
    if (run->failed)
        return da_api_fail(err, errlen, "an earlier epoch of this run stopped half way; load a saved state to continue");
    if (run->epochs_done >= run->cfg.epochs)
        return da_api_fail(err, errlen, "all %d epochs of the run are done", run->cfg.epochs);
    if (!run->lat && da_finetune_run_invert(run, NULL, NULL, err, errlen)) return -1;
    batch_relay relay = {on_batch_fn, user};
    const da_ft_hooks hooks = {on_batch_fn ? on_batch : NULL, NULL, &relay};
    da_ft_epoch_report r;
    run->started = true;
    if (da_ft_run_epoch(&run->f, &run->opt, &run->ctx, run->images, run->lat, run->n, run->epochs_done, &hooks, &r, err,
                        errlen)) {
        run->failed = true;
        return -1;
    }
    run->epochs_done++;
    if (report) {
        const da_ft_terms *m = &r.mean;
        *report = (da_finetune_epoch_report){r.epoch, r.epochs, m->loss, m->clip, m->dir, m->l1, m->id, r.lr, r.seconds,
                                             r.arena_peak, da_ft_model_bytes(&run->f), da_ft_frozen_bytes(&run->f)};
    }
    return 0;
}

int da_finetune_run_epochs_done(const da_finetune_run *run) { return run ? run->epochs_done : 0; }

double da_finetune_run_learning_rate(const da_finetune_run *run) {
    return run ? da_ft_epoch_lr(&run->cfg, run->epochs_done) : 0.0;
}

int da_finetune_run_direction(const da_finetune_run *run, float *dir, int len) {
    if (!run) return 0;
    int dim = (int)run->f.embed_dim;
    for (int k = 0; dir && k < len && k < dim; k++) dir[k] = run->f.text_dir[k];
    return dim;
}

const char *da_finetune_run_settings_text(const da_finetune_run *run) { return run ? run->settings : ""; }

int da_finetune_run_generate(const da_finetune_run *run, float *x, int64_t n, char *err, size_t errlen) {
    if (!run || (!x && n > 0) || n < 0) return da_api_fail(err, errlen, "da_finetune_run_generate: bad arguments");
    if (n > 0) da_ft_generate(&run->f, x, n);
    return 0;
}

void da_finetune_run_free(da_finetune_run *run) {
    if (!run) return;
    if (run->have_opt) da_adam_free(&run->opt);
    if (run->have_ft) da_ft_free(&run->f);
    da_ctx_free(&run->ctx);
    free(run->images);
    free(run->lat);
    free(run->src_text);
    free(run->tgt_text);
    free(run);
}
