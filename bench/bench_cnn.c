/* bench_cnn.c — how long the classifier takes here: the experiment's setting (1,200 images
 * 1x32x32, two classes, 10 epochs, batch 32, three eval sets of 300) through da_classifier_train,
 * plus one training step with the fused Winograd blocks against the generic ops.
 * usage: bench_cnn [epochs] [threads] [n_train] [size] [steps: 0 skips the step comparison] [jobs]
 * With jobs > 0, that many trainings (seeds 0..jobs-1) run through da_classifier_train_jobs,
 * `threads` of them at a time, one thread each. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tensor/fused_ops.h"
#include "tensor/ops.h"
#include "tensor/optim.h"
#include "tensor/rng.h"
#include "train/classifier_train.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_s(void) { return (double)clock() / CLOCKS_PER_SEC; }

static void fake_set(da_dataset *d, int64_t n, int size, uint64_t seed) {
    memset(d, 0, sizeof *d);
    d->n = n; d->c = 1; d->h = size; d->w = size;
    d->images = malloc(sizeof(float) * (size_t)(n * size * size));
    d->labels = malloc(sizeof(int64_t) * (size_t)n);
    da_rng r;
    da_rng_init(&r, seed);
    da_rng_uniform(&r, d->images, n * size * size, -1, 1);
    for (int64_t i = 0; i < n; i++) {
        d->labels[i] = i % 2;
        d->images[i * size * size] = d->labels[i] ? 1.0f : -1.0f;   /* something to learn */
    }
}

/* Mean CPU seconds (all threads) of one Adam step at batch 32, fused or generic forward. CPU time
 * rather than wall time, so that a loaded machine does not distort the comparison. */
static double step_time(bool fused, int size, int reps) {
    da_cnn_config cfg = {1, size, size, 2, 0, 0, 0, 0};
    da_cnn m;
    char err[256];
    if (da_cnn_init(&m, &cfg, 1, err, sizeof err)) { fprintf(stderr, "%s\n", err); exit(1); }
    da_adam opt;
    da_adam_config ac = da_adam_defaults(DA_ADAM);
    da_adam_init(&opt, &ac, m.params, DA_CNN_N_PARAMS, err, sizeof err);
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_rng r;
    da_rng_init(&r, 2);
    int64_t y[32];
    for (int i = 0; i < 32; i++) y[i] = i % 2;
    double t = 0;
    for (int k = 0; k < reps + 2; k++) {
        da_ctx_reset(&ctx);
        da_tensor *x = da_new(&ctx, DA_SHAPE(32, 1, size, size));
        da_rng_uniform(&r, x->data, x->numel, -1, 1);
        double t0 = cpu_s();
        da_tensor *logits = fused ? da_cnn_forward(&ctx, &m, x) : da_cnn_forward_reference(&ctx, &m, x);
        da_tensor *loss = da_cnn_loss(&ctx, &m, logits, y);
        da_cnn_zero_grad(&m);
        da_backward(&ctx, loss);
        da_adam_step(&opt);
        if (k >= 2) t += cpu_s() - t0;   /* the first steps size the arena */
    }
    da_ctx_free(&ctx);
    da_adam_free(&opt);
    da_cnn_free(&m);
    return t / reps;
}

/* Mean CPU milliseconds (all threads) of one fused block, forward and backward, at batch 32. */
static void block_time(int64_t C, int64_t HW, int64_t O, int reps) {
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_rng r;
    da_rng_init(&r, 3);
    da_tensor *w = da_persistent(DA_SHAPE(O, C, 3, 3), true), *b = da_persistent(DA_SHAPE(O), true);
    da_rng_uniform(&r, w->data, w->numel, -0.3f, 0.3f);
    double tf = 0, tb = 0;
    for (int k = 0; k < reps + 2; k++) {
        da_ctx_reset(&ctx);
        da_tensor *x = da_new(&ctx, DA_SHAPE(32, C, HW, HW));
        da_rng_uniform(&r, x->data, x->numel, -1, 1);
        if (C > 1) da_require_grad(x);
        double t0 = cpu_s();
        da_tensor *y = da_conv3x3_relu_pool(&ctx, x, w, b);
        double t1 = cpu_s();
        float *g = da_grad(&ctx, y);
        for (int64_t i = 0; i < y->numel; i++) g[i] = 1.0f;
        da_backward_from(&ctx, y);
        double t2 = cpu_s();
        if (k >= 2) { tf += t1 - t0; tb += t2 - t1; }
    }
    printf("  block %lldx%lldx%lld -> %lld: forward %.2f ms, backward %.2f ms%s\n", (long long)C, (long long)HW,
           (long long)HW, (long long)O, 1e3 * tf / reps, 1e3 * tb / reps, C > 1 ? "" : " (no dx)");
    da_tensor_free(w);
    da_tensor_free(b);
    da_ctx_free(&ctx);
}

int main(int argc, char **argv) {
    int epochs = argc > 1 ? atoi(argv[1]) : 10, threads = argc > 2 ? atoi(argv[2]) : 0;
    int64_t n = argc > 3 ? atoll(argv[3]) : 1200;
    int size = argc > 4 ? atoi(argv[4]) : 32;
    da_set_threads(threads);
    printf("OpenBLAS: %s; threads %d\n", openblas_get_config(), da_get_threads());
    int steps = argc > 5 ? atoi(argv[5]) : 10;
    if (steps > 0) {
        block_time(1, size, 32, steps);
        block_time(32, size / 2, 64, steps);
        block_time(64, size / 4, 128, steps);
    }
    if (steps > 0) {
    double fused = step_time(true, size, steps), generic = step_time(false, size, steps);
    printf("one training step, batch 32, 1x%dx%d (CPU time): fused %.1f ms, generic ops %.1f ms (%.2fx)\n", size, size,
           1e3 * fused, 1e3 * generic, generic / fused);
    }

    da_dataset tr, ev[3];
    fake_set(&tr, n, size, 1);
    for (int k = 0; k < 3; k++) fake_set(&ev[k], 300, size, 10 + (uint64_t)k);
    da_eval_set sets[3] = {{"source", &ev[0]}, {"target-heldout", &ev[1]}, {"target-self", &ev[2]}};
    da_clf_opts o = da_clf_defaults();
    o.epochs = epochs;
    o.verbose = false;
    int n_jobs = argc > 6 ? atoi(argv[6]) : 0;
    if (n_jobs > 0) {
        da_clf_job *jobs = calloc((size_t)n_jobs, sizeof *jobs);
        for (int i = 0; i < n_jobs; i++) {
            jobs[i].train = &tr;
            jobs[i].n_eval = 3;
            jobs[i].evals = sets;
            jobs[i].opts = o;
            jobs[i].opts.seed = (uint64_t)i;
        }
        double w0 = now_s(), c0 = cpu_s();
        int failed = da_classifier_train_jobs(n_jobs, jobs, threads);
        double wall = now_s() - w0, cpu = cpu_s() - c0;
        printf("%d trainings (%lld images 1x%dx%d, %d epochs, eval 3x300 per epoch), %d at a time: %.2f s wall "
               "(%.2f s per training), %.2f s CPU, %d failed\n", n_jobs, (long long)n, size, size, epochs,
               threads > 0 ? threads : da_get_threads(), wall, wall / n_jobs, cpu, failed);
        for (int i = 0; i < n_jobs; i++) da_clf_result_free(&jobs[i].res);
        free(jobs);
        return failed != 0;
    }
    da_clf_result res;
    char err[512];
    double w0 = now_s(), c0 = cpu_s();
    if (da_classifier_train(&tr, 3, sets, &o, NULL, &res, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }
    double wall = now_s() - w0, cpu = cpu_s() - c0;
    printf("train %lld images 1x%dx%d for %d epochs + eval 3x300 per epoch: %.2f s wall, %.2f s CPU "
           "(%.2f s per epoch)\n", (long long)n, size, size, epochs, wall, cpu, wall / epochs);
    da_clf_result_free(&res);
    free(tr.images); free(tr.labels);
    for (int k = 0; k < 3; k++) { free(ev[k].images); free(ev[k].labels); }
    return 0;
}
