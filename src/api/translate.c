/* translate.c — da_translate_images / da_translate_dataset: the method's set loop (diffusion/ddim_set.h),
 * inversion with the original model and generation with the fine-tuned one. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/api.h"
#include "data/dataset.h"
#include "data/image.h"
#include "diffusion/ddim.h"
#include "diffusion/ddim_set.h"
#include "diffusion/finetune.h"
#include "util/atomic.h"
#include "util/files.h"
#include "tensor/tensor.h"
#include "util/atomic.h"
#include "util/files.h"

void da_translate_defaults(da_translate_settings *s) {
    da_ft_config c;
    da_ft_config_default(&c);
    *s = (da_translate_settings){.t0 = c.t0, .inv_steps = c.inv_steps, .gen_steps = c.gen_steps, .batch = c.ddim_batch,
                                 .ratio = c.model_ratio};
}

typedef struct {
    da_progress_fn fn;
    void *user;
} api_progress;

/* The public hooks (an int-returning filter: the header is plain C without stdbool) carried
 * into the set loop's. */
typedef struct {
    int (*want_batch)(void *user, int64_t first, int64_t n);
    int (*on_batch)(void *user, int64_t first, int64_t n, const float *images, char *err, size_t errlen);
    void *user;
} hooks_adapter;

static bool want(void *user, int64_t first, int64_t n) {
    const hooks_adapter *h = user;
    return h->want_batch(h->user, first, n) != 0;
}

static int on_batch_adapted(void *user, int64_t first, int64_t n, const float *x, char *err, size_t errlen) {
    const hooks_adapter *h = user;
    return h->on_batch(h->user, first, n, x, err, errlen);
}

static void on_progress(void *user, const da_set_progress *p) {
    const api_progress *a = user;
    a->fn(a->user, "translate", p->images_done, p->images_total);
}

/* Checks the settings against the two models and builds their schedules (sm, sf). */
static int prepare(const da_model *original, const da_model *finetuned, const da_translate_settings *s,
                   da_schedule *sm, da_schedule *sf, char *err, size_t errlen) {
    if (!original || !finetuned || !s) return da_api_fail(err, errlen, "da_translate_check: a model or the settings are missing");
    const da_unet *m = &original->unet, *ft = &finetuned->unet;
    if (m->cfg.in_channels != ft->cfg.in_channels || m->cfg.out_ch != ft->cfg.out_ch ||
        m->cfg.resolution != ft->cfg.resolution)
        return da_api_fail(err, errlen, "the original model takes %dx%dx%d images but the fine-tuned one %dx%dx%d",
                           m->cfg.resolution, m->cfg.resolution, m->cfg.in_channels, ft->cfg.resolution,
                           ft->cfg.resolution, ft->cfg.in_channels);
    if (s->batch < 1) return da_api_fail(err, errlen, "the batch must be at least 1 image (got %d)", s->batch);
    if (da_eps_mix_check_ratio(s->ratio, err, errlen)) return -1;
    return da_schedule_linear(sm, m->cfg.num_timesteps, m->cfg.beta_start, m->cfg.beta_end, err, errlen) ||
                   da_schedule_linear(sf, ft->cfg.num_timesteps, ft->cfg.beta_start, ft->cfg.beta_end, err, errlen) ||
                   da_ddim_check_steps(sm, s->inv_steps, s->t0, err, errlen) ||
                   da_ddim_check_steps(sf, s->gen_steps, s->t0, err, errlen)
               ? -1
               : 0;
}

int da_translate_check(const da_model *original, const da_model *finetuned, const da_translate_settings *s, char *err,
                       size_t errlen) {
    da_schedule sm, sf;
    return prepare(original, finetuned, s, &sm, &sf, err, errlen);
}

int da_translate_batches(const da_model *original, const da_model *finetuned, const da_translate_settings *s,
                         const float *src, float *dst, int64_t n, const da_translate_hooks *hooks,
                         da_progress_fn progress, void *user, char *err, size_t errlen) {
    if (!original || !finetuned || !s || (!src && n > 0) || n < 0)
        return da_api_fail(err, errlen, "da_translate_batches: a model, the settings or the images are missing");
    da_schedule sm, sf;
    if (prepare(original, finetuned, s, &sm, &sf, err, errlen)) return -1;
    const da_unet *m = &original->unet, *ft = &finetuned->unet;
    da_set_job job = da_set_job_plain(da_unet_eps, (void *)m, &sm);
    da_eps_mix mix = {da_unet_eps, (void *)ft, da_unet_eps, (void *)m, s->ratio};
    da_eps_mix_use(&mix, &job.gen.eps, &job.gen.user);
    job.gen.sched = &sf;
    job.t0 = s->t0;
    job.inv_steps = s->inv_steps;
    job.gen_steps = s->gen_steps;
    job.batch = s->batch;
    hooks_adapter ha = {0};
    if (hooks) {
        ha = (hooks_adapter){hooks->want_batch, hooks->on_batch, hooks->user};
        job.first_batch = hooks->first_batch;
        job.end_batch = hooks->end_batch;
        job.want_batch = hooks->want_batch ? want : NULL;
        job.on_batch = hooks->on_batch ? on_batch_adapted : NULL;
        job.user = &ha;
    }
    api_progress ap = {progress, user};
    job.progress = progress ? on_progress : NULL;
    job.progress_user = &ap;
    const int64_t shape[4] = {n, m->cfg.in_channels, m->cfg.resolution, m->cfg.resolution};
    return da_set_run(&job, src, dst, shape, err, errlen);
}

int da_translate_images(const da_model *original, const da_model *finetuned, const da_translate_settings *s,
                        float *x, int64_t n, da_progress_fn progress, void *user, char *err, size_t errlen) {
    if (!original || !finetuned || !s || (!x && n > 0) || n < 0)
        return da_api_fail(err, errlen, "da_translate_images: a model, the settings or the images are missing");
    if (progress) progress(user, "translate", 0, n);
    return da_translate_batches(original, finetuned, s, x, x, n, NULL, progress, user, err, errlen);
}

int da_translate_dataset(const da_model *original, const da_model *finetuned, const da_translate_settings *s,
                         const char *data_spec, const char *out_dir, da_progress_fn progress, void *user, char *err,
                         size_t errlen) {
    if (!original || !data_spec || !out_dir)
        return da_api_fail(err, errlen, "da_translate_dataset: a model, the data or the output folder is missing");
    da_dataset d = {0};
    if (da_dataset_load(data_spec, NULL, &d, err, errlen)) return -1;
    int rc = -1;
    const da_unet *m = &original->unet;
    if (d.c != m->cfg.in_channels || d.h != m->cfg.resolution || d.w != m->cfg.resolution) {
        da_api_fail(err, errlen, "%s: the images are %lldx%lldx%lld (HxWxC) but the model takes %dx%dx%d", data_spec,
                    (long long)d.h, (long long)d.w, (long long)d.c, m->cfg.resolution, m->cfg.resolution,
                    m->cfg.in_channels);
        goto done;
    }
    if (da_translate_images(original, finetuned, s, d.images, d.n, progress, user, err, errlen) ||
        da_mkdirs(out_dir, err, errlen))
        goto done;
    char path[4400];
    int64_t per = d.c * d.h * d.w;
    for (int64_t i = 0; i < d.n; i++) {
        snprintf(path, sizeof path, "%s/%06lld.png", out_dir, (long long)i);
        if (da_image_write_png(path, d.images + i * per, (int)d.c, (int)d.h, (int)d.w, err, errlen)) goto done;
    }
    if (d.labels) {
        snprintf(path, sizeof path, "%s/labels.csv", out_dir);
        da_atomic_file af;
        if (da_atomic_open(&af, path, err, errlen)) goto done;
        fprintf(af.f, "file,label\n");
        for (int64_t i = 0; i < d.n; i++) fprintf(af.f, "%06lld.png,%lld\n", (long long)i, (long long)d.labels[i]);
        if (da_atomic_commit(&af, err, errlen)) goto done;
    }
    rc = 0;
done:
    da_dataset_free(&d);
    return rc;
}
