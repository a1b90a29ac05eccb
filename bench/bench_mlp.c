/* bench_mlp.c — diffadapt side of the MLP benchmark (bench/run_mlp_bench.sh runs the PyTorch side,
 * bench/bench_mlp_torch.py, on the same shapes and thread count): one Adam training step and one
 * forward pass of a 784-512-512-10 ReLU MLP with cross-entropy at batch 256.
 * Prints `RESULT name ms_per_step gflop_per_step` (median step time).
 * Usage: bench_mlp [--threads N] [--iters N] [--warmup N] [--batch N] */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tensor/ops.h"
#include "tensor/optim.h"
#include "tensor/rng.h"

#define N_LAYERS 3
static const int64_t WIDTHS[N_LAYERS + 1] = {784, 512, 512, 10};
#define N_BATCHES 4   /* a few fixed batches, cycled: the loss must fall, a cheap sanity check */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    da_tensor *w[N_LAYERS], *b[N_LAYERS];   /* w (out,in), b (out) */
    da_tensor *all[2 * N_LAYERS];
} mlp;

/* torch.nn.Linear's default initialisation: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias. */
static void mlp_init(mlp *m, da_rng *rng) {
    for (int l = 0; l < N_LAYERS; l++) {
        int64_t in = WIDTHS[l], out = WIDTHS[l + 1];
        float bound = 1.0f / sqrtf((float)in);
        m->w[l] = da_persistent(DA_SHAPE(out, in), true);
        m->b[l] = da_persistent(DA_SHAPE(out), true);
        da_rng_uniform(rng, m->w[l]->data, m->w[l]->numel, -bound, bound);
        da_rng_uniform(rng, m->b[l]->data, m->b[l]->numel, -bound, bound);
        m->all[2 * l] = m->w[l];
        m->all[2 * l + 1] = m->b[l];
    }
}

/* x (B,784) -> logits (B,10) */
static da_tensor *mlp_forward(da_ctx *ctx, const mlp *m, da_tensor *x) {
    for (int l = 0; l < N_LAYERS; l++) {
        x = da_linear(ctx, x, m->w[l], m->b[l]);
        if (l + 1 < N_LAYERS) x = da_relu(ctx, x);
    }
    return x;
}

/* Median seconds of the timed iterations; *loss_first / *loss_last get the losses (train only). */
static double run(const mlp *m, da_adam *opt, int64_t B, const float *images, const int64_t *labels, bool train,
                  int iters, int warmup, float *loss_first, float *loss_last) {
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_set_grad(&ctx, train);
    double *times = malloc(sizeof(double) * (size_t)iters);
    for (int it = -warmup; it < iters; it++) {
        int k = (it + warmup) % N_BATCHES;
        double t0 = now();
        da_ctx_reset(&ctx);
        da_tensor *x = da_from_data(&ctx, DA_SHAPE(B, WIDTHS[0]), images + k * B * WIDTHS[0]);
        da_tensor *logits = mlp_forward(&ctx, m, x);
        if (train) {
            da_zero_grads(opt->params, opt->n);
            da_tensor *loss = da_cross_entropy(&ctx, logits, labels + k * B);
            da_backward(&ctx, loss);
            da_adam_step(opt);
            if (it == -warmup) *loss_first = loss->data[0];
            *loss_last = loss->data[0];
        }
        double t1 = now();
        if (it >= 0) times[it] = t1 - t0;
    }
    qsort(times, (size_t)iters, sizeof(double), cmp_double);
    double med = times[iters / 2];
    free(times);
    da_ctx_free(&ctx);
    return med;
}

int main(int argc, char **argv) {
    int threads = 2, iters = 100, warmup = 10;
    int64_t B = 256;
    for (int i = 1; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v && !strcmp(argv[i], "--threads")) threads = atoi(v);
        else if (v && !strcmp(argv[i], "--iters")) iters = atoi(v);
        else if (v && !strcmp(argv[i], "--warmup")) warmup = atoi(v);
        else if (v && !strcmp(argv[i], "--batch")) B = atoll(v);
        else {
            fprintf(stderr, "usage: bench_mlp [--threads N] [--iters N] [--warmup N] [--batch N]\n");
            return 2;
        }
    }
    if (iters < 1 || warmup < 0 || B < 1) {
        fprintf(stderr, "bench_mlp: need --iters >= 1, --warmup >= 0 and --batch >= 1\n");
        return 2;
    }
    da_set_threads(threads);
    printf("diffadapt MLP benchmark: %d threads, batch %lld, 784-512-512-10\n", da_get_threads(), (long long)B);
    printf("OpenBLAS: %s (core %s)\n", openblas_get_config(), openblas_get_corename());

    da_rng rng;
    da_rng_init(&rng, 7);
    mlp m;
    mlp_init(&m, &rng);
    float *images = malloc(sizeof(float) * (size_t)(N_BATCHES * B * WIDTHS[0]));   /* (N_BATCHES*B,784) */
    int64_t *labels = malloc(sizeof(int64_t) * (size_t)(N_BATCHES * B));
    da_rng_uniform(&rng, images, N_BATCHES * B * WIDTHS[0], 0.0f, 1.0f);
    for (int64_t i = 0; i < N_BATCHES * B; i++) labels[i] = da_rng_int(&rng, WIDTHS[N_LAYERS]);

    /* matmul flops: forward 2*B*sum(in*out); backward dW of every layer (same again) and dX of
     * every layer but the first (the input needs no gradient) */
    double fwd = 0, dx = 0;
    for (int l = 0; l < N_LAYERS; l++) {
        double f = 2.0 * (double)B * (double)(WIDTHS[l] * WIDTHS[l + 1]);
        fwd += f;
        if (l > 0) dx += f;
    }
    double gf_fwd = fwd * 1e-9, gf_train = (2 * fwd + dx) * 1e-9;

    char err[256];
    da_adam_config ac = da_adam_defaults(DA_ADAM);
    da_adam opt;
    if (da_adam_init(&opt, &ac, m.all, 2 * N_LAYERS, err, sizeof err)) {
        fprintf(stderr, "bench_mlp: %s\n", err);
        return 1;
    }
    float l0 = 0, l1 = 0;
    double t_fwd = run(&m, &opt, B, images, labels, false, iters, warmup, &l0, &l1);
    double t_train = run(&m, &opt, B, images, labels, true, iters, warmup, &l0, &l1);
    printf("forward    %8.3f ms %7.1f GFLOP/s\n", 1e3 * t_fwd, gf_fwd / t_fwd);
    printf("train step %8.3f ms %7.1f GFLOP/s (loss %.4f -> %.4f over %d steps)\n", 1e3 * t_train,
           gf_train / t_train, l0, l1, iters + warmup);
    printf("RESULT mlp_forward_b%lld %.4f %.6f\n", (long long)B, 1e3 * t_fwd, gf_fwd);
    printf("RESULT mlp_train_b%lld %.4f %.6f\n", (long long)B, 1e3 * t_train, gf_train);
    printf("LOSS %.6f %.6f\n", l0, l1);
    da_adam_free(&opt);
    for (int l = 0; l < N_LAYERS; l++) da_tensor_free(m.w[l]), da_tensor_free(m.b[l]);
    free(images);
    free(labels);
    return 0;
}
