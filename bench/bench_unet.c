/* bench_unet.c — diffadapt side of the UNet benchmark (bench/run_unet_bench.sh runs the PyTorch
 * side on the same shapes): Adam training step, forward throughput, CelebA-HQ 256 forward. */
#include <cblas.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "nn/unet.h"
#include "tensor/ops.h"
#include "tensor/optim.h"
#include "tensor/rng.h"
#include "util/progress.h"

/* Process CPU seconds: on a shared machine wall time also counts other people's work. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void small_config(da_unet_config *c) {
    da_unet_config_default(c);   /* ch 64, ch_mult 1,2,2, 2 res blocks, attention at 16, 32x32x1 */
    c->dropout = 0.1f;
}

static void celeba_config(da_unet_config *c) {
    da_unet_config_default(c);
    c->in_channels = c->out_ch = 3;
    c->ch = 128;
    c->n_levels = 6;
    int mult[6] = {1, 1, 2, 2, 4, 4};
    memcpy(c->ch_mult, mult, sizeof mult);
    c->num_res_blocks = 2;
    c->n_attn = 1;
    c->attn_resolutions[0] = 16;
    c->resolution = 256;
    c->dropout = 0.0f;
}

static double bench_train(int batch, int iters, int warmup) {
    da_unet_config c;
    small_config(&c);
    da_unet m;
    char err[256];
    if (da_unet_init(&m, &c, 0, err, sizeof err)) { fprintf(stderr, "%s\n", err); exit(1); }
    da_tensor **pl = malloc(sizeof(da_tensor *) * (size_t)m.params.n);
    for (int i = 0; i < m.params.n; i++) pl[i] = m.params.items[i].t;
    da_adam_config ac = da_adam_defaults(DA_ADAM);
    ac.lr = 2e-4;
    da_adam opt;
    da_adam_init(&opt, &ac, pl, m.params.n, err, sizeof err);
    da_ctx ctx;
    da_ctx_init(&ctx);
    ctx.training = true;
    int64_t per = 32 * 32;
    float *x = malloc(sizeof(float) * (size_t)(batch * per)), *noise = malloc(sizeof(float) * (size_t)(batch * per));
    float *t = malloc(sizeof(float) * (size_t)batch);
    da_rng rng;
    da_rng_init(&rng, 1);
    double t0 = 0, c0 = 0;
    for (int it = 0; it < warmup + iters; it++) {
        if (it == warmup) { t0 = da_now(); c0 = cpu_now(); }
        da_rng_uniform(&rng, x, batch * per, -1.0f, 1.0f);
        da_rng_normal(&rng, noise, batch * per, 0.0f, 1.0f);
        for (int b = 0; b < batch; b++) t[b] = (float)da_rng_int(&rng, 1000);
        da_ctx_reset(&ctx);
        da_unet_zero_grad(&m);
        da_tensor *xt = da_from_data(&ctx, DA_SHAPE(batch, 1, 32, 32), x);
        da_tensor *target = da_from_data(&ctx, DA_SHAPE(batch, 1, 32, 32), noise);
        da_tensor *loss = da_mse_loss(&ctx, da_unet_forward(&ctx, &m, xt, t), target);
        da_backward(&ctx, loss);
        da_adam_step(&opt);
    }
    double dt = (da_now() - t0) / iters, dc = (cpu_now() - c0) / iters;
    fprintf(stderr, "  train step: %.3f s/step (%.3f CPU s), arena peak %.0f MiB\n", dt, dc, (double)ctx.arena.peak / (1 << 20));
    da_ctx_free(&ctx);
    da_adam_free(&opt);
    free(pl); free(x); free(noise); free(t);
    da_unet_free(&m);
    return batch / dt;
}

static da_precision forward_precision = DA_PRECISION_FP32;   /* --precision */

static double bench_forward(const da_unet_config *c, int batch, int iters, int warmup) {
    da_unet m;
    char err[256];
    if (da_unet_init(&m, c, 0, err, sizeof err)) { fprintf(stderr, "%s\n", err); exit(1); }
    m.infer_precision = forward_precision;
    da_unet_requires_grad(&m, false);
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_set_grad(&ctx, false);
    int64_t per = (int64_t)c->in_channels * c->resolution * c->resolution;
    float *x = malloc(sizeof(float) * (size_t)(batch * per)), *t = malloc(sizeof(float) * (size_t)batch);
    da_rng rng;
    da_rng_init(&rng, 2);
    double t0 = 0, c0 = 0;
    for (int it = 0; it < warmup + iters; it++) {
        if (it == warmup) { t0 = da_now(); c0 = cpu_now(); }
        da_rng_normal(&rng, x, batch * per, 0.0f, 1.0f);
        for (int b = 0; b < batch; b++) t[b] = (float)da_rng_int(&rng, 1000);
        da_ctx_reset(&ctx);
        da_tensor *xt = da_from_data(&ctx, DA_SHAPE(batch, c->in_channels, c->resolution, c->resolution), x);
        da_unet_forward(&ctx, &m, xt, t);
    }
    double dt = (da_now() - t0) / iters, dc = (cpu_now() - c0) / iters;
    fprintf(stderr, "  forward (%.1f M params): %.3f s per batch of %d (%.3f CPU s), arena peak %.0f MiB\n",
            (double)da_unet_num_params(&m) / 1e6, dt, batch, dc, (double)ctx.arena.peak / (1 << 20));
    da_ctx_free(&ctx);
    free(x); free(t);
    da_unet_free(&m);
    return batch / dt;
}

int main(int argc, char **argv) {
    int threads = 2, iters = 5, warmup = 2;
    const char *rows = "train,forward,celeba";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--iters")) iters = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--warmup")) warmup = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rows")) rows = argv[i + 1];
        else if (!strcmp(argv[i], "--precision") && !strcmp(argv[i + 1], "bf16")) forward_precision = DA_PRECISION_BF16;
        else if (!strcmp(argv[i], "--precision") && !strcmp(argv[i + 1], "fp32")) forward_precision = DA_PRECISION_FP32;
        else { fprintf(stderr, "usage: bench_unet [--threads N] [--iters N] [--warmup N] [--rows train,forward,celeba] [--precision fp32|bf16]\n"); return 2; }
    }
    da_set_threads(threads);
    fprintf(stderr, "diffadapt: %d threads, OpenBLAS %s\n", da_get_threads(), openblas_get_config());
    if (strstr(rows, "train")) printf("RESULT train_b32 %.3f\n", bench_train(32, iters, warmup));
    da_unet_config c;
    small_config(&c);
    if (strstr(rows, "forward")) printf("RESULT forward_b32 %.3f\n", bench_forward(&c, 32, iters, warmup));
    celeba_config(&c);
    if (strstr(rows, "celeba")) printf("RESULT celeba256_b1 %.5f\n", bench_forward(&c, 1, iters > 2 ? 2 : iters, 1));
    return 0;
}
