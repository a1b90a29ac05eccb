/* bench_cnn.c — how long the classifier takes here: the experiment's setting (1,200 images
 * 1x32x32, two classes, 10 epochs, batch 32, three eval sets of 300) through da_classifier_train,
 * plus one training step with the fused Winograd blocks against the generic ops.
 * usage: bench_cnn [epochs] [threads] [n_train] [size] [steps: 0 skips the step comparison] */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/classifier_train.h"
#include "tensor/ops.h"
#include "tensor/optim.h"
#include "tensor/rng.h"

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

/* Mean seconds of one Adam step at batch 32 with the fused or the generic forward. */
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
        double t0 = now_s();
        da_tensor *logits = fused ? da_cnn_forward(&ctx, &m, x) : da_cnn_forward_reference(&ctx, &m, x);
        da_tensor *loss = da_cnn_loss(&ctx, &m, logits, y);
        da_cnn_zero_grad(&m);
        da_backward(&ctx, loss);
        da_adam_step(&opt);
        if (k >= 2) t += now_s() - t0;   /* the first steps size the arena */
    }
    da_ctx_free(&ctx);
    da_adam_free(&opt);
    da_cnn_free(&m);
    return t / reps;
}

int main(int argc, char **argv) {
    int epochs = argc > 1 ? atoi(argv[1]) : 10, threads = argc > 2 ? atoi(argv[2]) : 0;
    int64_t n = argc > 3 ? atoll(argv[3]) : 1200;
    int size = argc > 4 ? atoi(argv[4]) : 32;
    da_set_threads(threads);
    printf("OpenBLAS: %s; threads %d\n", openblas_get_config(), da_get_threads());
    int steps = argc > 5 ? atoi(argv[5]) : 10;
    if (steps > 0) {
    double fused = step_time(true, size, steps), generic = step_time(false, size, steps);
    printf("one training step, batch 32, 1x%dx%d: fused %.1f ms, generic ops %.1f ms (%.2fx)\n", size, size,
           1e3 * fused, 1e3 * generic, generic / fused);
    }

    da_dataset tr, ev[3];
    fake_set(&tr, n, size, 1);
    for (int k = 0; k < 3; k++) fake_set(&ev[k], 300, size, 10 + (uint64_t)k);
    da_eval_set sets[3] = {{"source", &ev[0]}, {"target-heldout", &ev[1]}, {"target-self", &ev[2]}};
    da_clf_opts o = da_clf_defaults();
    o.epochs = epochs;
    o.verbose = false;
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
