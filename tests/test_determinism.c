/* test_determinism.c — reproducibility: the same seed gives bit-identical UNet training steps, CLIP
 * forwards and RNG streams on reruns; across thread counts (1 vs 2) it reports how far results move. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/clip.h"
#include "nn/unet.h"
#include "tensor/ops.h"
#include "tensor/optim.h"
#include "tensor/rng.h"
#include "test_util.h"

/* Differences between runs at 1 and 2 threads must stay within float32 rounding of sums whose
 * order changed: max |a - b| <= REL_BOUND * max |b| for every compared tensor. */
#define REL_BOUND 1e-4

/* ---- collected results ------------------------------------------------------------------- */

#define MAX_PARTS 8
typedef struct {
    const char *name[MAX_PARTS];
    float *data[MAX_PARTS];
    int64_t n[MAX_PARTS];
    /* -1, or: this part is reported but not bounded across thread counts, and the part with
     * this index holds its gradient (printed at the worst element) */
    int grad_of[MAX_PARTS];
    int parts;
} result;

static void result_add(result *r, const char *name, const float *src, int64_t n) {
    r->name[r->parts] = name;
    r->data[r->parts] = malloc(sizeof(float) * (size_t)(n ? n : 1));
    memcpy(r->data[r->parts], src, sizeof(float) * (size_t)n);
    r->grad_of[r->parts] = -1;
    r->n[r->parts++] = n;
}

static void result_free(result *r) {
    for (int i = 0; i < r->parts; i++) free(r->data[i]);
    memset(r, 0, sizeof *r);
}

/* Every part bit for bit (memcmp: -0 vs 0 and NaN payloads count as differences). */
static void check_identical(const char *what, const result *a, const result *b) {
    CHECK(a->parts == b->parts, "%s: %d vs %d parts", what, a->parts, b->parts);
    for (int i = 0; i < a->parts && i < b->parts; i++) {
        int64_t first = -1;
        for (int64_t j = 0; j < a->n[i] && first < 0; j++)
            if (memcmp(&a->data[i][j], &b->data[i][j], sizeof(float))) first = j;
        CHECK(a->n[i] == b->n[i] && first < 0, "%s, %s: rerun differs at element %lld (%.9g vs %.9g)", what,
              a->name[i], (long long)first, first >= 0 ? a->data[i][first] : 0.0, first >= 0 ? b->data[i][first] : 0.0);
    }
}

/* Prints max |a-b|, max |b|, their ratio and how many elements differ; checks the bound. */
static void report_threads(const char *what, const result *a, const result *b) {
    for (int i = 0; i < a->parts; i++) {
        double max_diff = 0, max_ref = 0;
        int64_t differ = 0, worst = 0;
        for (int64_t j = 0; j < a->n[i]; j++) {
            double d = fabs((double)a->data[i][j] - (double)b->data[i][j]);
            if (d > max_diff || isnan(d)) max_diff = d, worst = j;
            if (fabs((double)b->data[i][j]) > max_ref) max_ref = fabs((double)b->data[i][j]);
            if (memcmp(&a->data[i][j], &b->data[i][j], sizeof(float))) differ++;
        }
        double rel = max_ref > 0 ? max_diff / max_ref : max_diff;
        printf("  %-10s %-22s %9lld values: %s max|1t-2t| %.3g, max|2t| %.3g, ratio %.3g, %lld differ\n", what,
               a->name[i], (long long)a->n[i], differ ? "DIFFER   " : "IDENTICAL", max_diff, max_ref, rel,
               (long long)differ);
        int gi = a->grad_of[i];
        if (gi >= 0) {
            printf("  %-10s %-22s (not bounded: at its worst element the gradient was %.3g at 1 thread and %.3g at 2)\n",
                   "", "", a->data[gi][worst], b->data[gi][worst]);
            continue;
        }
        CHECK(rel <= REL_BOUND, "%s, %s: 1 vs 2 threads differ by %.3g of the largest value (bound %g)", what,
              a->name[i], rel, REL_BOUND);
    }
}

/* ---- the runs ---------------------------------------------------------------------------- */

/* ch 32, ch_mult (1,2), one res block, attention at 8, 16x16x1, dropout 0.1 */
static void tiny_unet_config(da_unet_config *c) {
    da_unet_config_default(c);
    c->ch = 32; c->n_levels = 2; c->ch_mult[0] = 1; c->ch_mult[1] = 2;
    c->num_res_blocks = 1; c->n_attn = 1; c->attn_resolutions[0] = 8;
    c->resolution = 16; c->dropout = 0.1f;
}

/* `steps` Adam steps of the ε-prediction MSE loss (dropout on), batches drawn from a seeded
 * stream. Keeps the last step's loss, output, input gradient and parameter gradients, and the
 * parameters after the last update. */
static void unet_train(int threads, int steps, result *r) {
    da_set_threads(threads);
    da_unet_config c;
    tiny_unet_config(&c);
    da_unet m;
    char err[512];
    if (da_unet_init(&m, &c, 3, err, sizeof err)) { fprintf(stderr, "%s\n", err); exit(1); }
    int n = m.params.n;
    da_tensor **pl = malloc(sizeof(da_tensor *) * (size_t)n);
    int64_t total = 0;
    for (int i = 0; i < n; i++) pl[i] = m.params.items[i].t, total += pl[i]->numel;
    da_adam_config ac = da_adam_defaults(DA_ADAM);
    da_adam opt;
    if (da_adam_init(&opt, &ac, pl, n, err, sizeof err)) { fprintf(stderr, "%s\n", err); exit(1); }
    da_ctx ctx;
    da_ctx_init(&ctx);
    ctx.training = true;
    ctx.seed = 1234;
    const int64_t B = 4, R = c.resolution, per = R * R;
    float *x = malloc(sizeof(float) * (size_t)(B * per)), *noise = malloc(sizeof(float) * (size_t)(B * per));
    float t[4];
    float *flat = malloc(sizeof(float) * (size_t)total);
    da_rng rng;
    da_rng_init(&rng, 42);
    memset(r, 0, sizeof *r);
    for (int s = 0; s < steps; s++) {
        da_rng_uniform(&rng, x, B * per, -1.0f, 1.0f);
        da_rng_normal(&rng, noise, B * per, 0.0f, 1.0f);
        for (int b = 0; b < B; b++) t[b] = (float)da_rng_int(&rng, 1000);
        da_ctx_reset(&ctx);
        da_unet_zero_grad(&m);
        da_tensor *xt = da_from_data(&ctx, DA_SHAPE(B, 1, R, R), x);
        da_require_grad(xt);
        da_tensor *eps = da_unet_forward(&ctx, &m, xt, t);
        da_tensor *loss = da_mse_loss(&ctx, eps, da_from_data(&ctx, DA_SHAPE(B, 1, R, R), noise));
        da_backward(&ctx, loss);
        if (s == steps - 1) {
            result_add(r, "loss", loss->data, 1);
            result_add(r, "output", eps->data, eps->numel);
            result_add(r, "input gradient", xt->grad, xt->numel);
            for (int i = 0, o = 0; i < n; o += (int)pl[i]->numel, i++)
                memcpy(flat + o, pl[i]->grad, sizeof(float) * (size_t)pl[i]->numel);
            result_add(r, "parameter gradients", flat, total);
        }
        da_adam_step(&opt);
    }
    for (int i = 0, o = 0; i < n; o += (int)pl[i]->numel, i++)
        memcpy(flat + o, pl[i]->data, sizeof(float) * (size_t)pl[i]->numel);
    /* Adam's first update is lr * g / (|g| + eps): where |g| is near eps (1e-8) it turns
     * rounding-level gradient differences into visible parameter differences */
    result_add(r, "parameters after", flat, total);
    r->grad_of[r->parts - 1] = r->parts - 2;
    free(flat); free(x); free(noise); free(pl);
    da_ctx_free(&ctx);
    da_adam_free(&opt);
    da_unet_free(&m);
}

/* A small CLIP (3 channels, 64 px, patch 16, width 96, 3 layers of 3 heads): image embeddings of a
 * seeded batch and their gradient with respect to the pixels; text embeddings of fixed ids. */
static void clip_run(int threads, result *r) {
    da_set_threads(threads);
    da_clip_config c;
    da_clip_config_default(&c);
    c.image_size = 64; c.patch_size = 16; c.channels = 3;
    c.vision_width = 96; c.vision_layers = 3; c.vision_heads = 3; c.vision_mlp = 384;
    c.text_width = 64; c.text_layers = 2; c.text_heads = 2; c.text_mlp = 256;
    c.vocab_size = 300; c.context_length = 16; c.embed_dim = 48;
    da_clip m;
    char err[512];
    if (da_clip_init(&m, &c, 9, err, sizeof err)) { fprintf(stderr, "%s\n", err); exit(1); }
    da_clip_requires_grad(&m, false);
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_rng rng;
    da_rng_init(&rng, 10);
    const int64_t B = 4, L = 8;
    da_tensor *x = da_new(&ctx, DA_SHAPE(B, 3, 64, 64));
    da_rng_normal(&rng, x->data, x->numel, 0.0f, 1.0f);
    da_require_grad(x);
    da_tensor *e = da_clip_encode_image(&ctx, &m, x);
    da_backward(&ctx, da_sum(&ctx, da_l2_normalize(&ctx, e, 1e-12f), 0, NULL, false));
    int64_t ids[4 * 8];
    for (int64_t i = 0; i < B * L; i++) ids[i] = 1 + da_rng_int(&rng, 250);
    for (int64_t b = 0; b < B; b++) ids[b * L + L - 1] = 299;   /* the end token: the largest id */
    da_tensor *te = da_clip_encode_text(&ctx, &m, ids, B, L);
    memset(r, 0, sizeof *r);
    result_add(r, "image embeddings", e->data, e->numel);
    result_add(r, "pixel gradient", x->grad, x->numel);
    result_add(r, "text embeddings", te->data, te->numel);
    da_ctx_free(&ctx);
    da_clip_free(&m);
}

/* Single ops at sizes where both OpenBLAS and the OpenMP loops split work, to show where
 * differences between thread counts come from. */
static void ops_run(int threads, result *r) {
    da_set_threads(threads);
    da_rng rng;
    da_rng_init(&rng, 77);
    da_ctx ctx;
    da_ctx_init(&ctx);
    memset(r, 0, sizeof *r);
    /* sgemm through da_matmul: (256,512) x (512,384) */
    da_tensor *a = da_new(&ctx, DA_SHAPE(256, 512)), *b = da_new(&ctx, DA_SHAPE(512, 384));
    da_rng_normal(&rng, a->data, a->numel, 0, 1);
    da_rng_normal(&rng, b->data, b->numel, 0, 1);
    da_require_grad(a), da_require_grad(b);
    da_tensor *y = da_matmul(&ctx, a, b, false, false);
    da_rng_normal(&rng, da_grad(&ctx, y), y->numel, 0, 1);
    da_backward_from(&ctx, y);
    result_add(r, "matmul y", y->data, y->numel);
    result_add(r, "matmul dA", a->grad, a->numel);
    result_add(r, "matmul dB", b->grad, b->numel);
    /* conv2d 3x3, (8,32,16,16) -> 64 channels */
    da_ctx_reset(&ctx);
    da_tensor *x = da_new(&ctx, DA_SHAPE(8, 32, 16, 16)), *w = da_new(&ctx, DA_SHAPE(64, 32, 3, 3));
    da_rng_normal(&rng, x->data, x->numel, 0, 1);
    da_rng_normal(&rng, w->data, w->numel, 0, 0.1f);
    da_require_grad(x), da_require_grad(w);
    da_tensor *z = da_conv2d(&ctx, x, w, NULL, 1, 1);
    da_rng_normal(&rng, da_grad(&ctx, z), z->numel, 0, 1);
    da_backward_from(&ctx, z);
    result_add(r, "conv2d y", z->data, z->numel);
    result_add(r, "conv2d dX", x->grad, x->numel);
    result_add(r, "conv2d dW", w->grad, w->numel);
    /* group norm, 32 groups over (8,64,16,16), with affine gradients */
    da_ctx_reset(&ctx);
    da_tensor *g = da_new(&ctx, DA_SHAPE(8, 64, 16, 16)), *gw = da_new(&ctx, DA_SHAPE(64));
    da_rng_normal(&rng, g->data, g->numel, 0, 1);
    da_rng_normal(&rng, gw->data, gw->numel, 1, 0.1f);
    da_require_grad(g), da_require_grad(gw);
    da_tensor *gn = da_group_norm(&ctx, g, gw, NULL, 32, 1e-6f);
    da_rng_normal(&rng, da_grad(&ctx, gn), gn->numel, 0, 1);
    da_backward_from(&ctx, gn);
    result_add(r, "group_norm dW", gw->grad, gw->numel);
    da_ctx_free(&ctx);
}

/* ---- RNG streams ------------------------------------------------------------------------- */

static void check_rng(void) {
    da_rng a, b;
    da_rng_init(&a, 2024);
    da_rng_init(&b, 2024);
    int same = 1;
    for (uint64_t i = 0; i < 1000; i++) {
        uint64_t u = da_rng_u64(&a);
        same &= u == da_rng_u64(&b) && u == da_rng_at(2024, i);
    }
    CHECK(same, "two streams of one seed and the stateless da_rng_at disagree");
    /* the float draws, at 1 and 2 threads (they must not depend on the thread count) */
    enum { N = 100003 };
    float *v[2][3];
    int64_t *perm[2];
    for (int th = 0; th < 2; th++) {
        da_set_threads(th + 1);
        da_rng_init(&a, 99);
        for (int k = 0; k < 3; k++) v[th][k] = malloc(sizeof(float) * N);
        perm[th] = malloc(sizeof(int64_t) * N);
        da_rng_normal(&a, v[th][0], N, 0.5f, 2.0f);
        da_rng_uniform(&a, v[th][1], N, -1.0f, 3.0f);
        for (int i = 0; i < N; i++) v[th][2][i] = (float)da_rng_int(&a, 1000);
        da_rng_permutation(&a, perm[th], N);
    }
    CHECK(!memcmp(v[0][0], v[1][0], sizeof(float) * N) && !memcmp(v[0][1], v[1][1], sizeof(float) * N) &&
          !memcmp(v[0][2], v[1][2], sizeof(float) * N) && !memcmp(perm[0], perm[1], sizeof(int64_t) * N),
          "RNG draws differ between 1 and 2 threads");
    da_rng_init(&b, 100);
    float other[16];
    da_rng_normal(&b, other, 16, 0.5f, 2.0f);
    CHECK(memcmp(other, v[0][0], sizeof other), "seeds 99 and 100 gave the same normals");
    for (int th = 0; th < 2; th++) {
        for (int k = 0; k < 3; k++) free(v[th][k]);
        free(perm[th]);
    }
}

int main(void) {
    check_rng();

    /* (a) reruns at a fixed thread count are bit-identical */
    result r1, r2;
    for (int th = 1; th <= 2; th++) {
        unet_train(th, 2, &r1);
        unet_train(th, 2, &r2);
        char what[64];
        snprintf(what, sizeof what, "UNet 2 training steps, %d thread(s)", th);
        check_identical(what, &r1, &r2);
        result_free(&r1), result_free(&r2);
        clip_run(th, &r1);
        clip_run(th, &r2);
        snprintf(what, sizeof what, "CLIP, %d thread(s)", th);
        check_identical(what, &r1, &r2);
        result_free(&r1), result_free(&r2);
        ops_run(th, &r1);
        ops_run(th, &r2);
        snprintf(what, sizeof what, "ops, %d thread(s)", th);
        check_identical(what, &r1, &r2);
        result_free(&r1), result_free(&r2);
    }

    /* (b) 1 vs 2 threads: report, and bound by float32 rounding */
    da_set_threads(2);
    CHECK(da_get_threads() == 2, "da_set_threads(2) left %d threads", da_get_threads());
    printf("1 vs 2 threads (OpenMP + OpenBLAS):\n");
    unet_train(1, 1, &r1);
    unet_train(2, 1, &r2);
    report_threads("UNet step", &r1, &r2);
    result_free(&r1), result_free(&r2);
    clip_run(1, &r1);
    clip_run(2, &r2);
    report_threads("CLIP", &r1, &r2);
    result_free(&r1), result_free(&r2);
    ops_run(1, &r1);
    ops_run(2, &r2);
    report_threads("op", &r1, &r2);
    result_free(&r1), result_free(&r2);
    return tu_finish("test_determinism");
}
