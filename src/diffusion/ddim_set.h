/* ddim_set.h — DDIM over a whole set of images, batch by batch: inversion, generation, and
 * translation (inversion with one model, generation with another). The one loop that every
 * command, the experiment and the library use, with one progress hook. */
#ifndef DA_DDIM_SET_H
#define DA_DDIM_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diffusion/ddim.h"
#include "diffusion/schedule.h"

/* How far a set job has come; reported after every model call. */
typedef struct {
    int64_t images_done, images_total;   /* images_done counts a batch in proportion to its calls */
    int64_t calls_done, calls_total;     /* model calls: one per batch and step */
} da_set_progress;
typedef void (*da_set_progress_fn)(void *user, const da_set_progress *p);

/* A denoiser as DDIM sees it: its ε function (a model, or a da_eps_mix of two) and its schedule. */
typedef struct {
    da_eps_fn eps;
    void *user;
    const da_schedule *sched;
} da_denoiser;

/* One job over a set: each batch is inverted with `inv` (inv_steps - 1 calls, η = 0, from 0 up to
 * t0) and then generated with `gen` (gen_steps calls from t0 down to -1). inv_steps = 0 skips the
 * inversion (the inputs are latents), gen_steps = 0 the generation (the outputs are latents). */
typedef struct {
    da_denoiser inv, gen;
    int t0;
    int inv_steps, gen_steps;
    float eta;               /* generation noise; the batch starting at image i draws from da_rng_at(seed, i) */
    uint64_t seed;
    bool clip_x0;            /* generation clips x0_t to [-1,1] at every step (da_ddim_generate_ex) */
    int batch;               /* images per model call; also the partition that first/end_batch count in */
    int64_t first_batch, end_batch;   /* the batches [first, end) of the partition; 0, 0 = all */
    /* Optional: false skips a batch (it is neither computed nor counted); must not change during the run. */
    bool (*want_batch)(void *user, int64_t first_image, int64_t n);
    /* Optional: receives each finished batch x (n,C,H,W); a non-zero return stops the job with err set. */
    int (*on_batch)(void *user, int64_t first_image, int64_t n, const float *x, char *err, size_t errlen);
    void *user;                    /* for want_batch and on_batch */
    da_set_progress_fn progress;   /* optional */
    void *progress_user;
} da_set_job;

/* The job over src (n,C,H,W) = shape. Outputs go to dst (n,C,H,W) when it is not NULL (it may be
 * src: in place), and always to on_batch. Checks the steps first, and stops with an error naming
 * the images when a batch comes out with NaN or infinite values (on_batch does not see it). */
int da_set_run(const da_set_job *job, const float *src, float *dst, const int64_t shape[4], char *err, size_t errlen);

/* A job with both denoisers set to `model` (ε = da_unet-style callback and its schedule), no
 * callbacks, batch 8, η = 0, all batches: callers fill in the steps. */
da_set_job da_set_job_plain(da_eps_fn eps, void *user, const da_schedule *sched);

#endif
