/* ddim_set.c — DDIM over a set of images in batches (see ddim_set.h). */
#include "diffusion/ddim_set.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/tensor.h"

da_set_job da_set_job_plain(da_eps_fn eps, void *user, const da_schedule *sched) {
    da_set_job j;
    memset(&j, 0, sizeof j);
    j.inv = (da_denoiser){eps, user, sched};
    j.gen = j.inv;
    j.batch = 8;
    return j;
}

/* The state behind the per-call hook of da_ddim_invert/generate. */
typedef struct {
    const da_set_job *job;
    da_set_progress p;
    int64_t batch_images;    /* images in the running batch */
    int calls_per_batch;
    int64_t images_before;   /* images of the finished batches */
    int64_t calls_before;    /* calls before the running phase */
    int64_t batch_start;     /* calls before the running batch */
} progress_state;

static void on_call(void *user, int done, int total) {
    (void)total;
    progress_state *s = user;
    s->p.calls_done = s->calls_before + done;
    s->p.images_done = s->images_before + s->batch_images * (s->p.calls_done - s->batch_start) / s->calls_per_batch;
    s->job->progress(s->job->progress_user, &s->p);
}

int da_set_run(const da_set_job *job, const float *src, float *dst, const int64_t shape[4], char *err, size_t errlen) {
    const int64_t n = shape[0], per = shape[1] * shape[2] * shape[3];
    if (job->batch < 1) {
        snprintf(err, errlen, "the batch must be at least 1 image (got %d)", job->batch);
        return -1;
    }
    if ((job->inv_steps && da_ddim_check_steps(job->inv.sched, job->inv_steps, job->t0, err, errlen)) ||
        (job->gen_steps && da_ddim_check_steps(job->gen.sched, job->gen_steps, job->t0, err, errlen)))
        return -1;
    const int64_t n_batches = (n + job->batch - 1) / job->batch;
    int64_t b_first = job->first_batch, b_end = job->end_batch ? job->end_batch : n_batches;
    if (b_first < 0 || b_end > n_batches || b_first > b_end) {
        snprintf(err, errlen, "batches %lld..%lld lie outside the %lld batches of %lld images", (long long)b_first,
                 (long long)b_end, (long long)n_batches, (long long)n);
        return -1;
    }
    const int inv_calls = job->inv_steps ? job->inv_steps - 1 : 0, calls = inv_calls + job->gen_steps;
    progress_state ps = {.job = job, .calls_per_batch = calls > 0 ? calls : 1};
    for (int64_t b = b_first; b < b_end; b++) {
        int64_t i0 = b * job->batch, nb = n - i0 < job->batch ? n - i0 : job->batch;
        if (job->want_batch && !job->want_batch(job->user, i0, nb)) continue;
        ps.p.images_total += nb;
        ps.p.calls_total += calls;
    }
    float *scratch = NULL;
    if (!dst) {
        scratch = malloc(sizeof(float) * (size_t)((n < job->batch ? n : job->batch) * per));
        if (!scratch && n > 0) {
            snprintf(err, errlen, "out of memory for a batch of %d images", job->batch);
            return -1;
        }
    }
    da_ddim_progress_fn hook = job->progress ? on_call : NULL;
    int rc = -1;
    for (int64_t b = b_first; b < b_end; b++) {
        int64_t i0 = b * job->batch, nb = n - i0 < job->batch ? n - i0 : job->batch;
        if (job->want_batch && !job->want_batch(job->user, i0, nb)) continue;
        float *x = dst ? dst + i0 * per : scratch;
        if (x != src + i0 * per) memcpy(x, src + i0 * per, sizeof(float) * (size_t)(nb * per));
        const int64_t bshape[4] = {nb, shape[1], shape[2], shape[3]};
        ps.batch_images = nb;
        ps.calls_before = ps.batch_start = ps.p.calls_done;
        if (job->inv_steps &&
            da_ddim_invert(job->inv.sched, job->inv.eps, job->inv.user, x, bshape, job->inv_steps, job->t0, hook, &ps,
                           err, errlen))
            goto done;
        ps.calls_before += inv_calls;
        if (job->gen_steps &&
            da_ddim_generate_ex(job->gen.sched, job->gen.eps, job->gen.user, x, bshape, job->gen_steps, job->t0,
                                job->eta, da_rng_at(job->seed, (uint64_t)i0), job->clip_x0, hook, &ps, err, errlen))
            goto done;
        ps.calls_before += job->gen_steps;
        ps.p.calls_done = ps.calls_before;
        /* NaN would pass on as black pixels or NaN latents without a word: stop instead */
        int64_t bad = da_count_nonfinite(x, nb * per);
        if (bad) {
            snprintf(err, errlen, "images %lld..%lld came out with %lld NaN or infinite values (check the models and "
                     "the settings)", (long long)i0, (long long)(i0 + nb - 1), (long long)bad);
            goto done;
        }
        if (job->on_batch && job->on_batch(job->user, i0, nb, x, err, errlen)) goto done;
        ps.images_before += nb;
        ps.p.images_done = ps.images_before;
    }
    rc = 0;
done:
    free(scratch);
    return rc;
}
