/* test_ddim_set.c — the set loop (diffusion/ddim_set.h): a job over n images in batches equals
 * the DDIM loops called batch by batch; a batch range or a want_batch hook touches only its
 * batches; the progress hook ends at its totals, in order; NaN outputs, a failing on_batch hook
 * and bad ranges stop the job with a message. */
#include <math.h>

#include "diffusion/ddim.h"
#include "diffusion/ddim_set.h"
#include "tensor/ops.h"
#include "tensor/rng.h"
#include "test_util.h"

#define N 7
#define PER 12   /* (C,H,W) = (3,2,2) */

static da_schedule S;

/* ε = x·k(t), a different factor per step; with `poison` ≥ 0 the image of that index in the
 * batch (by its first value's tag) turns NaN. */
typedef struct {
    int calls;
    float poison_tag;   /* images whose first value equals this come out NaN (NAN: none) */
} toy;

static da_tensor *toy_eps(da_ctx *ctx, da_tensor *x, int t, void *user) {
    toy *d = user;
    d->calls++;
    da_tensor *e = da_scale(ctx, x, (float)(0.3 + 0.5 * sqrt(1.0 - da_schedule_abar(&S, t))));
    for (int64_t b = 0; b < x->shape[0]; b++)
        if (x->data[b * PER] == d->poison_tag) e->data[b * PER] = NAN;
    return e;
}

static void fill(float *x) {
    da_rng r;
    da_rng_init(&r, 3);
    for (int i = 0; i < N * PER; i++) x[i] = da_rng_uniform1(&r) * 2 - 1;
}

typedef struct {
    int64_t last_calls, last_images, total_calls, total_images;
    int reports, backwards;
} progress_log;

static void on_progress(void *user, const da_set_progress *p) {
    progress_log *l = user;
    l->backwards += p->calls_done < l->last_calls || p->images_done < l->last_images;
    l->last_calls = p->calls_done;
    l->last_images = p->images_done;
    l->total_calls = p->calls_total;
    l->total_images = p->images_total;
    l->reports++;
}

typedef struct {
    int batches;
    int64_t firsts[8];
    int fail_at;   /* the batch index at which on_batch fails (-1: never) */
} batch_log;

static bool skip_second(void *user, int64_t first, int64_t n) {
    (void)user;
    (void)n;
    return first != 3;   /* the batch of images 3..5 is "already done" */
}

static int on_batch(void *user, int64_t first, int64_t n, const float *x, char *err, size_t errlen) {
    (void)n;
    (void)x;
    batch_log *l = user;
    if (l->batches == l->fail_at) {
        snprintf(err, errlen, "disk full (test)");
        return -1;
    }
    l->firsts[l->batches++ % 8] = first;
    return 0;
}

int main(void) {
    char err[512];
    CHECK(da_schedule_linear(&S, 1000, 1e-4, 0.02, err, sizeof err) == 0, "%s", err);
    const int64_t shape[4] = {N, 3, 2, 2};
    float src[N * PER], ref[N * PER], out[N * PER];
    fill(src);
    toy d = {0, NAN};

    /* the reference: the loops themselves, batch by batch (3, 3, 1) */
    memcpy(ref, src, sizeof ref);
    for (int b0 = 0; b0 < N; b0 += 3) {
        int nb = N - b0 < 3 ? N - b0 : 3;
        int64_t bs[4] = {nb, 3, 2, 2};
        CHECK(da_ddim_invert(&S, toy_eps, &d, ref + b0 * PER, bs, 5, 400, NULL, NULL, err, sizeof err) == 0, "%s", err);
        CHECK(da_ddim_generate(&S, toy_eps, &d, ref + b0 * PER, bs, 3, 400, 0.0f, 0, NULL, NULL, err, sizeof err) == 0,
              "%s", err);
    }
    da_set_job job = da_set_job_plain(toy_eps, &d, &S);
    job.t0 = 400;
    job.inv_steps = 5;
    job.gen_steps = 3;
    job.batch = 3;
    progress_log pl = {0};
    job.progress = on_progress;
    job.progress_user = &pl;
    d.calls = 0;
    CHECK(da_set_run(&job, src, out, shape, err, sizeof err) == 0, "%s", err);
    CHECK(memcmp(out, ref, sizeof out) == 0, "the set job differs from the loops called batch by batch");
    CHECK(d.calls == 3 * (4 + 3), "model calls: %d, expected 21", d.calls);
    CHECK(pl.reports == 21 && pl.backwards == 0 && pl.last_calls == 21 && pl.total_calls == 21 &&
              pl.last_images == N && pl.total_images == N,
          "progress: %d reports, %d backwards, calls %lld/%lld, images %lld/%lld", pl.reports, pl.backwards,
          (long long)pl.last_calls, (long long)pl.total_calls, (long long)pl.last_images, (long long)pl.total_images);

    /* in place and into a scratch buffer (dst NULL, outputs only through on_batch) */
    float inplace[N * PER];
    memcpy(inplace, src, sizeof inplace);
    job.progress = NULL;
    CHECK(da_set_run(&job, inplace, inplace, shape, err, sizeof err) == 0 && memcmp(inplace, ref, sizeof ref) == 0,
          "in place: %s", err);
    batch_log bl = {.fail_at = -1};
    job.on_batch = on_batch;
    job.user = &bl;
    CHECK(da_set_run(&job, src, NULL, shape, err, sizeof err) == 0 && bl.batches == 3 && bl.firsts[2] == 6,
          "dst NULL: %d batches", bl.batches);

    /* a range of batches [1, 3) and a skipped batch: the other images are not touched */
    float part[N * PER];
    memset(part, 0, sizeof part);
    job.on_batch = NULL;
    job.first_batch = 1;
    job.end_batch = 3;
    CHECK(da_set_run(&job, src, part, shape, err, sizeof err) == 0, "%s", err);
    bool untouched = true;
    for (int i = 0; i < 3 * PER; i++) untouched &= part[i] == 0.0f;
    CHECK(untouched && memcmp(part + 3 * PER, ref + 3 * PER, sizeof(float) * 4 * PER) == 0, "batches 1..2 of 3");
    memset(part, 0, sizeof part);
    job.first_batch = job.end_batch = 0;
    job.want_batch = skip_second;
    pl = (progress_log){0};
    job.progress = on_progress;
    CHECK(da_set_run(&job, src, part, shape, err, sizeof err) == 0, "%s", err);
    untouched = true;
    for (int i = 3 * PER; i < 6 * PER; i++) untouched &= part[i] == 0.0f;
    CHECK(untouched && memcmp(part, ref, sizeof(float) * 3 * PER) == 0 && memcmp(part + 6 * PER, ref + 6 * PER, sizeof(float) * PER) == 0,
          "the skipped batch was computed, or another one was not");
    CHECK(pl.total_images == 4 && pl.last_images == 4 && pl.total_calls == 14, "progress with a skipped batch: %lld images, %lld calls",
          (long long)pl.total_images, (long long)pl.total_calls);
    job.want_batch = NULL;
    job.progress = NULL;

    /* errors: NaN in the fifth image, a failing hook, a bad range, a bad batch, bad steps */
    d.poison_tag = src[4 * PER];
    CHECK(da_set_run(&job, src, out, shape, err, sizeof err) != 0 && strstr(err, "images 3..5") && strstr(err, "NaN"),
          "NaN output: %s", err);
    d.poison_tag = NAN;
    bl = (batch_log){.fail_at = 1};
    job.on_batch = on_batch;
    job.user = &bl;
    CHECK(da_set_run(&job, src, out, shape, err, sizeof err) != 0 && strstr(err, "disk full"), "failing hook: %s", err);
    job.on_batch = NULL;
    job.first_batch = 2;
    job.end_batch = 4;
    CHECK(da_set_run(&job, src, out, shape, err, sizeof err) != 0 && strstr(err, "outside"), "range 2..4 of 3: %s", err);
    job.first_batch = job.end_batch = 0;
    job.batch = 0;
    CHECK(da_set_run(&job, src, out, shape, err, sizeof err) != 0 && strstr(err, "batch"), "batch 0: %s", err);
    job.batch = 3;
    job.t0 = 2000;
    CHECK(da_set_run(&job, src, out, shape, err, sizeof err) != 0 && strstr(err, "--t0"), "t0 2000: %s", err);
    return tu_finish("test_ddim_set");
}
