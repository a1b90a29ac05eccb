/* ddim.c — da_invert_images / da_generate_images: the method's set loop (diffusion/ddim_set.h)
 * with one model (or a fine-tuned one mixed with its original) in one direction. */
#include <stdio.h>

#include "api/api.h"
#include "diffusion/ddim.h"
#include "diffusion/ddim_set.h"
#include "diffusion/finetune.h"

void da_ddim_defaults(da_ddim_settings *s) {
    da_ft_config c;
    da_ft_config_default(&c);
    *s = (da_ddim_settings){.t0 = c.t0, .steps = c.inv_steps, .batch = c.ddim_batch, .eta = 0.0f, .seed = 0, .clip_x0 = 0};
}

int da_model_timesteps(const da_model *m) { return m->unet.cfg.num_timesteps; }

typedef struct {
    da_progress_fn fn;
    void *user;
    const char *stage;
} api_progress;

static void on_progress(void *user, const da_set_progress *p) {
    const api_progress *a = user;
    a->fn(a->user, a->stage, p->images_done, p->images_total);
}

/* The job for model m (and its original mixed in below ratio 1), without steps. */
static int ddim_job(const da_model *m, const da_model *original, float ratio, const da_ddim_settings *s,
                    da_schedule *sched, da_eps_mix *mix, da_set_job *job, char *err, size_t errlen) {
    const da_unet_config *c = &m->unet.cfg;
    if (c->out_ch != c->in_channels)
        return da_api_fail(err, errlen, "the model predicts %d channels for %d input channels; DDIM needs an epsilon "
                           "model with out_ch == in_channels", c->out_ch, c->in_channels);
    if (da_eps_mix_check_ratio(ratio, err, errlen)) return -1;
    if (ratio < 1 && !original)
        return da_api_fail(err, errlen, "a ratio below 1 mixes in the original model, but none was given");
    if (original && (original->unet.cfg.in_channels != c->in_channels || original->unet.cfg.resolution != c->resolution))
        return da_api_fail(err, errlen, "the original model takes %dx%dx%d images but the model %dx%dx%d",
                           original->unet.cfg.resolution, original->unet.cfg.resolution, original->unet.cfg.in_channels,
                           c->resolution, c->resolution, c->in_channels);
    if (da_schedule_linear(sched, c->num_timesteps, c->beta_start, c->beta_end, err, errlen)) return -1;
    *job = da_set_job_plain(da_unet_eps, (void *)&m->unet, sched);
    *mix = (da_eps_mix){da_unet_eps, (void *)&m->unet, da_unet_eps, original ? (void *)&original->unet : NULL, ratio};
    da_eps_mix_use(mix, &job->gen.eps, &job->gen.user);
    job->t0 = s->t0;
    job->batch = s->batch;
    job->eta = s->eta;
    job->seed = s->seed;
    job->clip_x0 = s->clip_x0 != 0;
    return 0;
}

static int run(const da_model *m, const da_model *original, float ratio, const da_ddim_settings *s, bool invert,
               float *x, int64_t n, da_progress_fn progress, void *user, char *err, size_t errlen) {
    if (!m || !s || (!x && n > 0) || n < 0)
        return da_api_fail(err, errlen, "DDIM: the model, the settings or the images are missing");
    da_schedule sched;
    da_eps_mix mix;
    da_set_job job;
    if (ddim_job(m, original, ratio, s, &sched, &mix, &job, err, errlen)) return -1;
    if (invert) job.inv_steps = s->steps;
    else job.gen_steps = s->steps;
    api_progress ap = {progress, user, invert ? "invert" : "generate"};
    job.progress = progress ? on_progress : NULL;
    job.progress_user = &ap;
    const int64_t shape[4] = {n, m->unet.cfg.in_channels, m->unet.cfg.resolution, m->unet.cfg.resolution};
    return da_set_run(&job, x, x, shape, err, errlen);
}

int da_invert_images(const da_model *m, const da_ddim_settings *s, float *x, int64_t n, da_progress_fn progress,
                     void *user, char *err, size_t errlen) {
    return run(m, NULL, 1.0f, s, true, x, n, progress, user, err, errlen);
}

int da_generate_images(const da_model *m, const da_model *original, float ratio, const da_ddim_settings *s, float *x,
                       int64_t n, da_progress_fn progress, void *user, char *err, size_t errlen) {
    return run(m, original, ratio, s, false, x, n, progress, user, err, errlen);
}
