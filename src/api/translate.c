/* translate.c — da_translate_images / da_translate_dataset: DDIM inversion with the original
 * model, generation with the fine-tuned one, batch by batch (the steps of cmd_translate.c). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/api.h"
#include "data/dataset.h"
#include "data/image.h"
#include "diffusion/ddim.h"
#include "tensor/tensor.h"
#include "util/atomic.h"
#include "util/files.h"

void da_translate_defaults(da_translate_settings *s) {
    *s = (da_translate_settings){.t0 = 500, .inv_steps = 40, .gen_steps = 6, .batch = 8, .ratio = 1.0f};
}

int da_translate_images(const da_model *original, const da_model *finetuned, const da_translate_settings *s,
                        float *x, int64_t n, da_progress_fn progress, void *user, char *err, size_t errlen) {
    if (!original || !finetuned || !s || (!x && n > 0) || n < 0)
        return da_api_fail(err, errlen, "da_translate_images: a model, the settings or the images are missing");
    const da_unet *m = &original->unet, *ft = &finetuned->unet;
    if (m->cfg.in_channels != ft->cfg.in_channels || m->cfg.out_ch != ft->cfg.out_ch ||
        m->cfg.resolution != ft->cfg.resolution)
        return da_api_fail(err, errlen, "the original model takes %dx%dx%d images but the fine-tuned one %dx%dx%d",
                           m->cfg.resolution, m->cfg.resolution, m->cfg.in_channels, ft->cfg.resolution,
                           ft->cfg.resolution, ft->cfg.in_channels);
    if (s->batch < 1) return da_api_fail(err, errlen, "batch must be at least 1 (got %d)", s->batch);
    if (da_eps_mix_check_ratio(s->ratio, err, errlen)) return -1;
    da_schedule sm, sf;
    if (da_schedule_linear(&sm, m->cfg.num_timesteps, m->cfg.beta_start, m->cfg.beta_end, err, errlen) ||
        da_schedule_linear(&sf, ft->cfg.num_timesteps, ft->cfg.beta_start, ft->cfg.beta_end, err, errlen) ||
        da_ddim_check_steps(&sm, s->inv_steps, s->t0, err, errlen) ||
        da_ddim_check_steps(&sf, s->gen_steps, s->t0, err, errlen))
        return -1;
    da_eps_mix mix = {da_unet_eps, (void *)ft, da_unet_eps, (void *)m, s->ratio};
    da_eps_fn gen_fn;
    void *gen_user;
    da_eps_mix_use(&mix, &gen_fn, &gen_user);
    int64_t C = m->cfg.in_channels, R = m->cfg.resolution, per = C * R * R;
    if (progress) progress(user, "translate", 0, n);
    for (int64_t b0 = 0; b0 < n; b0 += s->batch) {
        int64_t nb = n - b0 < s->batch ? n - b0 : s->batch;
        int64_t shape[4] = {nb, C, R, R};
        float *xb = x + b0 * per;
        if (da_ddim_invert(&sm, da_unet_eps, (void *)m, xb, shape, s->inv_steps, s->t0, NULL, NULL, err, errlen) ||
            da_ddim_generate(&sf, gen_fn, gen_user, xb, shape, s->gen_steps, s->t0, 0.0f, 0, NULL, NULL, err, errlen))
            return -1;
        int64_t bad = da_count_nonfinite(xb, nb * per);
        if (bad)
            return da_api_fail(err, errlen, "images %lld..%lld came out with %lld NaN or infinite values (check the "
                               "models and settings)", (long long)b0, (long long)(b0 + nb - 1), (long long)bad);
        if (progress) progress(user, "translate", b0 + nb, n);
    }
    return 0;
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
