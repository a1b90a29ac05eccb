/* bench_conv.c — diffadapt side of the convolution benchmark (bench/run_conv_bench.sh runs the
 * PyTorch side, bench/bench_conv_torch.py, on the same shapes and thread count): conv2d forward
 * and backward (dX, dW, db) at UNet-like shapes. Prints `RESULT name fwd_ms bwd_ms gflop` (medians)
 * and `MIN name fwd_ms bwd_ms` (fastest passes).
 * Usage: bench_conv [threads] [min_seconds_per_shape] [shape name | N,C,H,W,O]   (threads <= 0: all cores)
 *        bench_conv --list   (the shape names)
 * N,C,H,W,O times one more shape, a 3x3 stride-1 convolution with padding 1 (the rule in
 * conv_dispatch.c was set on such shapes). */
#include <cblas.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tensor/ops.h"
#include "tensor/ops/conv_backend.h"
#include "tensor/rng.h"

typedef struct {
    const char *name;
    int64_t N, C, H, W, O, k;
    int stride, pt, pb, pl, pr;
} shape;

static shape SHAPES[] = {
    {"b32_64ch_32x32_3x3", 32, 64, 32, 32, 64, 3, 1, 1, 1, 1, 1},
    {"b32_128ch_16x16_3x3", 32, 128, 16, 16, 128, 3, 1, 1, 1, 1, 1},
    {"b32_128ch_8x8_3x3", 32, 128, 8, 8, 128, 3, 1, 1, 1, 1, 1},
    {"b32_1x1_128to64_32x32", 32, 128, 32, 32, 64, 1, 1, 0, 0, 0, 0},
    {"b32_64ch_32x32_down_s2", 32, 64, 32, 32, 64, 3, 2, 0, 1, 0, 1},
    {"b1_128ch_256x256_3x3", 1, 128, 256, 256, 128, 3, 1, 1, 1, 1, 1},
    {NULL, 0, 0, 0, 0, 0, 3, 1, 1, 1, 1, 1},   /* N,C,H,W,O from the command line */
};
#define N_SHAPES (sizeof SHAPES / sizeof SHAPES[0])

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define MAX_ITERS 200

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (size_t s = 0; s + 1 < N_SHAPES; s++) printf("%s\n", SHAPES[s].name);
        return 0;
    }
    const char *only = argc > 3 ? argv[3] : NULL;
    static char custom[64];
    shape *own = &SHAPES[N_SHAPES - 1];
    if (only && sscanf(only, "%" SCNd64 ",%" SCNd64 ",%" SCNd64 ",%" SCNd64 ",%" SCNd64, &own->N, &own->C, &own->H, &own->W, &own->O) == 5) {
        snprintf(custom, sizeof custom, "b%" PRId64 "_%" PRId64 "ch_%" PRId64 "x%" PRId64 "_to%" PRId64, own->N, own->C, own->H, own->W, own->O);
        own->name = only = custom;
    }
    int threads = argc > 1 ? atoi(argv[1]) : 0;
    double min_s = argc > 2 ? atof(argv[2]) : 2.0;
    da_set_threads(threads);
    printf("diffadapt conv2d benchmark: %d threads, %s\n", da_get_threads(), da_conv_backend_describe());
    printf("OpenBLAS: %s (core %s)\n", openblas_get_config(), openblas_get_corename());
    da_rng rng;
    da_rng_init(&rng, 3);
    for (size_t s = 0; s < N_SHAPES; s++) {
        const shape *sh = &SHAPES[s];
        if (!sh->name || (only && strcmp(only, sh->name) != 0)) continue;
        da_tensor *x = da_persistent(DA_SHAPE(sh->N, sh->C, sh->H, sh->W), true);
        da_tensor *w = da_persistent(DA_SHAPE(sh->O, sh->C, sh->k, sh->k), true);
        da_tensor *b = da_persistent(DA_SHAPE(sh->O), true);
        da_rng_normal(&rng, x->data, x->numel, 0.0f, 1.0f);
        da_rng_normal(&rng, w->data, w->numel, 0.0f, 0.05f);
        da_rng_normal(&rng, b->data, b->numel, 0.0f, 0.1f);
        da_ctx ctx;
        da_ctx_init(&ctx);
        double fwd[MAX_ITERS], bwd[MAX_ITERS], start = now();
        int iters = 0;
        int64_t OH = 0, OW = 0;
        /* one untimed warm-up pass (arena growth, thread start-up), then at least 3 timed */
        for (int it = -1; it < MAX_ITERS; it++) {
            da_ctx_reset(&ctx);
            /* x->grad is arena-like scratch here: reset it so it does not grow without bound */
            memset(x->grad, 0, sizeof(float) * (size_t)x->numel);
            double t0 = now();
            da_tensor *y = da_conv2d_ex(&ctx, x, w, b, sh->stride, sh->pt, sh->pb, sh->pl, sh->pr);
            double t1 = now();
            float *g = da_grad(&ctx, y);
            for (int64_t i = 0; i < y->numel; i++) g[i] = 1e-3f * (float)(i % 7);
            double t2 = now();
            da_backward_from(&ctx, y);
            double t3 = now();
            OH = y->shape[2];
            OW = y->shape[3];
            if (it < 0) continue;
            fwd[iters] = t1 - t0;
            bwd[iters] = t3 - t2;
            iters++;
            if (iters >= 3 && now() - start > min_s) break;
        }
        qsort(fwd, (size_t)iters, sizeof(double), cmp_double);
        qsort(bwd, (size_t)iters, sizeof(double), cmp_double);
        double f = fwd[iters / 2], bw = bwd[iters / 2];
        /* forward 2*N*O*K*P flops; backward twice that (dX and dW) */
        double gflop = 2.0 * (double)(sh->N * sh->O * sh->C * sh->k * sh->k * OH * OW) * 1e-9;
        printf("%-24s fwd %8.2f ms %6.1f GFLOP/s | bwd %8.2f ms %6.1f GFLOP/s | %d iters (median)\n", sh->name,
               1e3 * f, gflop / f, 1e3 * bw, 2 * gflop / bw, iters);
        printf("RESULT %s %.4f %.4f %.4f\n", sh->name, 1e3 * f, 1e3 * bw, gflop);
        /* the fastest pass: on a shared machine, the one least disturbed by other work */
        printf("MIN %s %.4f %.4f\n", sh->name, 1e3 * fwd[0], 1e3 * bwd[0]);
        fflush(stdout);
        da_ctx_free(&ctx);
        da_tensor_free(x), da_tensor_free(w), da_tensor_free(b);
    }
    return 0;
}
