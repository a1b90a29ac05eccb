/* bench_clip.c — diffadapt side of the CLIP image-tower benchmark (bench/run_clip_bench.sh runs the
 * plain-PyTorch side, bench/bench_clip_torch.py, on the same configs and thread count): image
 * embeddings of ViT-B/32 (random weights of the real shapes) and of the mini-CLIP config, forward
 * only and forward + gradient with respect to the input image (what the directional loss needs;
 * weights frozen). Inputs are model-size pixels (B,C,S,S): the resize/normalise step is left out.
 * Prints `RESULT name img_per_s gflop_per_img` (median batch time).
 * Usage: bench_clip [--threads N] [--iters N] [--warmup N] [--rows vitb32,mini]
 *                   [--batch-vit N] [--batch-mini N]
 *        bench_clip --dump PATH   writes a small model, an input, its embeddings and input
 *                                 gradient for bench_clip_torch.py --check PATH. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/safetensors.h"
#include "nn/clip.h"
#include "tensor/ops.h"
#include "tensor/rng.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The mini-CLIP of src/train/miniclip_train.h (da_miniclip_defaults + da_miniclip_config): 32x32
 * one-channel images, patch 4 (65 tokens), width 128, 4 layers, 4 heads, MLP 512, embed 128. The
 * text tower is irrelevant here and kept small. */
static void mini_config(da_clip_config *c) {
    da_clip_config_default(c);
    c->image_size = 32; c->patch_size = 4; c->channels = 1;
    c->vision_width = 128; c->vision_layers = 4; c->vision_heads = 4; c->vision_mlp = 512;
    c->text_width = 128; c->text_layers = 4; c->text_heads = 4; c->text_mlp = 512;
    c->vocab_size = 1000; c->context_length = 32; c->embed_dim = 128;
    for (int i = 0; i < 3; i++) { c->mean[i] = 0.5f; c->std[i] = 0.5f; }
}

/* A small three-channel, three-head config for the --dump cross-check against PyTorch. */
static void check_config(da_clip_config *c) {
    da_clip_config_default(c);
    c->image_size = 64; c->patch_size = 16; c->channels = 3;
    c->vision_width = 96; c->vision_layers = 3; c->vision_heads = 3; c->vision_mlp = 384;
    c->text_width = 64; c->text_layers = 1; c->text_heads = 1; c->text_mlp = 128;
    c->vocab_size = 300; c->context_length = 16; c->embed_dim = 48;
}

/* Matmul flops per image: forward, and forward + input gradient with frozen weights (linear
 * layers and the patch conv: dX only, as much again; attention scores and A·V: both operands
 * are activations, twice again). */
static void flops(const da_clip_config *c, double *fwd, double *grad) {
    double g = (double)(c->image_size / c->patch_size), N = g * g, T = N + 1, W = c->vision_width;
    double lin = 2 * N * W * c->channels * c->patch_size * c->patch_size + 2 * W * c->embed_dim;
    double att = 0;
    lin += c->vision_layers * (2 * T * W * 4 * W + 2 * T * W * c->vision_mlp * 2);
    att += c->vision_layers * (2 * T * T * W * 2);
    *fwd = lin + att;
    *grad = 2 * lin + 3 * att;
}

/* Median seconds per batch of B images. */
static double run(const da_clip *m, int64_t B, bool grad, int iters, int warmup) {
    const da_clip_config *c = &m->cfg;
    int64_t S = c->image_size, per = c->channels * S * S;
    da_rng rng;
    da_rng_init(&rng, 11);
    float *px = malloc(sizeof(float) * (size_t)(B * per));        /* (B,C,S,S) */
    float *up = malloc(sizeof(float) * (size_t)(B * c->embed_dim)); /* (B,E) upstream gradient */
    da_rng_normal(&rng, px, B * per, 0.0f, 1.0f);
    da_rng_normal(&rng, up, B * c->embed_dim, 0.0f, 1.0f);
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_set_grad(&ctx, grad);
    double *times = malloc(sizeof(double) * (size_t)iters);
    for (int it = -warmup; it < iters; it++) {
        double t0 = now();
        da_ctx_reset(&ctx);
        da_tensor *x = da_from_data(&ctx, DA_SHAPE(B, c->channels, S, S), px);
        if (grad) da_require_grad(x);
        da_tensor *e = da_clip_encode_image(&ctx, m, x);
        if (grad) {
            memcpy(da_grad(&ctx, e), up, sizeof(float) * (size_t)e->numel);
            da_backward_from(&ctx, e);
        }
        double t1 = now();
        if (it >= 0) times[it] = t1 - t0;
    }
    qsort(times, (size_t)iters, sizeof(double), cmp_double);
    double med = times[iters / 2];
    free(times); free(px); free(up);
    da_ctx_free(&ctx);
    return med;
}

static int bench_config(const char *name, const da_clip_config *c, int64_t B, int iters, int warmup) {
    char err[256], desc[256];
    da_clip m;
    if (da_clip_init(&m, c, 1, err, sizeof err)) {
        fprintf(stderr, "bench_clip: %s\n", err);
        return -1;
    }
    da_clip_requires_grad(&m, false);
    double f, g;
    flops(c, &f, &g);
    printf("%s: %s, batch %lld, %.3f GFLOP/img forward\n", name, da_clip_config_str(c, desc, sizeof desc),
           (long long)B, f * 1e-9);
    for (int mode = 0; mode < 2; mode++) {
        double t = run(&m, B, mode == 1, iters, warmup);
        double fl = mode ? g : f;
        printf("  %-13s %9.2f ms/batch %8.2f img/s %7.1f GFLOP/s\n", mode ? "fwd+input grad" : "forward",
               1e3 * t, (double)B / t, fl * (double)B * 1e-9 / t);
        printf("RESULT %s_%s_b%lld %.4f %.6f\n", name, mode ? "grad" : "fwd", (long long)B, (double)B / t, fl * 1e-9);
        fflush(stdout);
    }
    da_clip_free(&m);
    return 0;
}

/* The vision tower's parameters, an input x (2,C,S,S), an upstream gradient g (2,E), the
 * embeddings e(x) and d(sum(e*g))/dx, in one file, with the config as metadata. */
static int dump(const char *path) {
    da_clip_config c;
    check_config(&c);
    char err[256];
    da_clip m;
    if (da_clip_init(&m, &c, 5, err, sizeof err)) {
        fprintf(stderr, "bench_clip: %s\n", err);
        return 1;
    }
    /* the init leaves norms at 1/0 and biases at 0: perturb them so they are checked too */
    da_rng rng;
    da_rng_init(&rng, 6);
    for (int i = 0; i < m.params.n; i++) {
        da_tensor *t = m.params.items[i].t;
        if (t->ndim == 1 && strstr(m.params.items[i].name, "vision_model"))
            for (int64_t j = 0; j < t->numel; j++) t->data[j] += 0.1f * (da_rng_uniform1(&rng) - 0.5f);
    }
    da_clip_requires_grad(&m, false);
    int64_t B = 2, S = c.image_size;
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_tensor *x = da_new(&ctx, DA_SHAPE(B, c.channels, S, S));
    da_rng_normal(&rng, x->data, x->numel, 0.0f, 1.0f);
    da_require_grad(x);
    da_tensor *e = da_clip_encode_image(&ctx, &m, x);
    float *g = da_grad(&ctx, e);
    da_rng_normal(&rng, g, e->numel, 0.0f, 1.0f);
    float *g_copy = malloc(sizeof(float) * (size_t)e->numel);
    memcpy(g_copy, g, sizeof(float) * (size_t)e->numel);
    da_backward_from(&ctx, e);

    st_writer *w = st_writer_new();
    for (int i = 0; i < m.params.n; i++) {
        const da_param *p = &m.params.items[i];
        if (strncmp(p->name, "vision_model.", 13) && strcmp(p->name, "visual_projection.weight")) continue;
        st_writer_add_f32(w, p->name, p->t->ndim, p->t->shape, p->t->data);
    }
    st_writer_add_f32(w, "check.x", x->ndim, x->shape, x->data);
    st_writer_add_f32(w, "check.g", e->ndim, e->shape, g_copy);
    st_writer_add_f32(w, "check.embeds", e->ndim, e->shape, e->data);
    st_writer_add_f32(w, "check.x_grad", x->ndim, x->shape, x->grad);
    char *json = da_clip_config_to_json(&c);
    st_writer_set_meta(w, "clip_config", json);
    int rc = st_writer_save(w, path, err, sizeof err);
    if (rc) fprintf(stderr, "bench_clip: %s\n", err);
    st_writer_free(w);
    free(json);
    free(g_copy);
    da_ctx_free(&ctx);
    da_clip_free(&m);
    return rc ? 1 : 0;
}

int main(int argc, char **argv) {
    int threads = 2, iters = 10, warmup = 2;
    int64_t batch_vit = 8, batch_mini = 32;
    const char *rows = "vitb32,mini";
    for (int i = 1; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v && !strcmp(argv[i], "--threads")) threads = atoi(v);
        else if (v && !strcmp(argv[i], "--iters")) iters = atoi(v);
        else if (v && !strcmp(argv[i], "--warmup")) warmup = atoi(v);
        else if (v && !strcmp(argv[i], "--rows")) rows = v;
        else if (v && !strcmp(argv[i], "--batch-vit")) batch_vit = atoll(v);
        else if (v && !strcmp(argv[i], "--batch-mini")) batch_mini = atoll(v);
        else if (v && !strcmp(argv[i], "--dump")) return dump(v);
        else {
            fprintf(stderr, "usage: bench_clip [--threads N] [--iters N] [--warmup N] [--rows vitb32,mini] "
                    "[--batch-vit N] [--batch-mini N] | --dump PATH\n");
            return 2;
        }
    }
    if (iters < 1 || warmup < 0 || batch_vit < 1 || batch_mini < 1) {
        fprintf(stderr, "bench_clip: need --iters >= 1, --warmup >= 0 and batches >= 1\n");
        return 2;
    }
    da_set_threads(threads);
    printf("diffadapt CLIP image-tower benchmark: %d threads\n", da_get_threads());
    printf("OpenBLAS: %s (core %s)\n", openblas_get_config(), openblas_get_corename());
    da_clip_config c;
    if (strstr(rows, "vitb32")) {
        da_clip_config_default(&c);
        if (bench_config("vitb32", &c, batch_vit, iters, warmup)) return 1;
    }
    if (strstr(rows, "mini")) {
        mini_config(&c);
        if (bench_config("mini", &c, batch_mini, iters, warmup)) return 1;
    }
    return 0;
}
