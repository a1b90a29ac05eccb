/* test_ops_loss.c — MSE, L1, BCE with logits, cross-entropy and cosine similarity:
 * finite-difference gradients, PyTorch goldens (including torch's clamped-norm cosine
 * gradient), 0-d outputs, and thread-count independence of large losses. */
#include <omp.h>

#include "ops_golden.h"

typedef da_tensor *(*pair_fn)(da_ctx *, da_tensor *, da_tensor *);
static da_tensor *build_pair(da_ctx *ctx, da_tensor **in, void *u) { return ((pair_fn)u)(ctx, in[0], in[1]); }
static da_tensor *build_bce_fn(da_ctx *ctx, da_tensor *x, da_tensor *t) { return da_bce_with_logits(ctx, x, t); }
static da_tensor *build_ce(da_ctx *ctx, da_tensor **in, void *u) { return da_cross_entropy(ctx, in[0], u); }
static da_tensor *build_cos(da_ctx *ctx, da_tensor **in, void *u) {
    return da_cosine_similarity(ctx, in[0], in[1], *(float *)u);
}

/* The CLIP direction loss shape: 1 - cos(l2n(a) - l2n(b), l2n(d)), through several ops. */
static da_tensor *build_direction(da_ctx *ctx, da_tensor **in, void *u) {
    da_tensor *di = da_sub(ctx, da_l2_normalize(ctx, in[0], 1e-12f), da_l2_normalize(ctx, in[1], 1e-12f));
    da_tensor *c = da_cosine_similarity(ctx, di, in[2], 1e-8f);
    return da_mean(ctx, da_add_scalar(ctx, da_scale(ctx, c, -1.0f), 1.0f), 0, NULL, false);
}

static void gradchecks(void) {
    da_rng rng;
    da_rng_init(&rng, 41);
    const float eps = 1e-2f;
    const double tol = 2e-3;
    da_tensor *p[2] = {gc_input(&rng, DA_SHAPE(3, 7), 1.0f), gc_input(&rng, DA_SHAPE(3, 7), 1.0f)};
    gradcheck("mse_loss", build_pair, 2, p, (void *)da_mse_loss, eps, tol, tol, 1000);
    /* L1: keep |a-b| > 0.05 so the FD step never crosses the kink */
    for (int64_t i = 0; i < p[0]->numel; i++) {
        float d = p[0]->data[i] - p[1]->data[i];
        if (fabsf(d) < 0.05f) p[0]->data[i] += d < 0 ? -0.05f : 0.05f;
    }
    gradcheck("l1_loss", build_pair, 2, p, (void *)da_l1_loss, eps, tol, tol, 1000);
    da_tensor_free(p[0]);
    da_tensor_free(p[1]);

    /* BCE: targets in [0,1] do not want a gradient */
    da_tensor *b[2] = {gc_input(&rng, DA_SHAPE(4, 5), 3.0f), da_persistent(DA_SHAPE(4, 5), false)};
    da_rng_uniform(&rng, b[1]->data, b[1]->numel, 0.0f, 1.0f);
    gradcheck("bce_with_logits", build_pair, 2, b, (void *)build_bce_fn, eps, tol, tol, 1000);
    da_tensor_free(b[0]);
    da_tensor_free(b[1]);

    da_tensor *lg = gc_input(&rng, DA_SHAPE(5, 4), 2.0f);
    int64_t labels[5] = {0, 3, 3, 1, 2};
    gradcheck("cross_entropy", build_ce, 1, &lg, labels, eps, tol, tol, 1000);
    da_tensor_free(lg);

    float ceps = 1e-8f;
    da_tensor *c[2] = {gc_input(&rng, DA_SHAPE(2, 3, 6), 1.0f), gc_input(&rng, DA_SHAPE(2, 3, 6), 1.0f)};
    gradcheck("cosine_similarity same shape", build_cos, 2, c, &ceps, eps, tol, tol, 1000);
    da_tensor *s[2] = {gc_input(&rng, DA_SHAPE(4, 6), 1.0f), gc_input(&rng, DA_SHAPE(6), 1.0f)};
    gradcheck("cosine_similarity shared row b", build_cos, 2, s, &ceps, eps, tol, tol, 1000);
    da_tensor *s2[2] = {s[1], s[0]};
    gradcheck("cosine_similarity shared row a", build_cos, 2, s2, &ceps, eps, tol, tol, 1000);
    for (int k = 0; k < 2; k++) { da_tensor_free(c[k]); da_tensor_free(s[k]); }

    da_tensor *d[3] = {gc_input(&rng, DA_SHAPE(2, 8), 1.0f), gc_input(&rng, DA_SHAPE(2, 8), 1.0f),
                       gc_input(&rng, DA_SHAPE(1, 8), 1.0f)};
    gradcheck("direction loss chain", build_direction, 3, d, NULL, eps, tol, tol, 1000);
    for (int k = 0; k < 3; k++) da_tensor_free(d[k]);
}

static void goldens(void) {
    if (!og_open()) return;
    const char *ab[2] = {"a", "b"}, *x[1] = {"x"};
    og_case("mse", build_pair, (void *)da_mse_loss, 2, ab, 3, 1e-6, 1e-5);
    og_case("l1", build_pair, (void *)da_l1_loss, 2, ab, 3, 1e-6, 1e-5);
    /* bce: targets from the file, logits differentiated */
    da_tensor *t = og_load("bce", "t", false), *lx = og_load("bce", "x", true);
    if (t && lx) {
        da_ctx ctx;
        da_ctx_init(&ctx);
        da_tensor *l = da_bce_with_logits(&ctx, lx, t);
        og_compare("bce", "y", l, l->data, 1e-6, 1e-5);
        da_backward(&ctx, l);
        og_compare("bce", "dx", lx, lx->grad, 1e-6, 1e-5);
        da_ctx_free(&ctx);
    }
    da_tensor_free(t);
    da_tensor_free(lx);
    int64_t n_labels = 0;
    int64_t *labels = og_load_i64("ce.labels", &n_labels);
    if (labels) og_case("ce", build_ce, labels, 1, x, 1, 1e-6, 1e-5);
    free(labels);
    float e8 = 1e-8f, e05 = 0.5f;
    og_case("cos", build_cos, &e8, 2, ab, 3, 1e-6, 1e-5);
    og_case("cos_shared", build_cos, &e8, 2, ab, 3, 1e-6, 1e-5);
    /* |a| < eps = 0.5 in every row: torch's clamped forward and its particular backward */
    og_case("cos_clamped", build_cos, &e05, 2, ab, 3, 1e-6, 1e-5);
    og_close();
}

/* Losses are 0-d; large losses give the same bits with 1 and 2 threads and match double sums. */
static void scalar_and_threads(void) {
    da_rng rng;
    da_rng_init(&rng, 2);
    const int64_t n = 150000;
    da_tensor *a = gc_input(&rng, DA_SHAPE(n), 1.0f), *b = gc_input(&rng, DA_SHAPE(n), 1.0f);
    double smse = 0, sl1 = 0, sbce = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a->data[i] - b->data[i], x = a->data[i], t = fabs(b->data[i]) > 1 ? 1 : fabs(b->data[i]);
        smse += d * d;
        sl1 += fabs(d);
        sbce += (x > 0 ? x : 0) - x * t + log1p(exp(-fabs(x)));
    }
    da_tensor *tg = da_persistent(DA_SHAPE(n), false);
    for (int64_t i = 0; i < n; i++) tg->data[i] = fminf(fabsf(b->data[i]), 1.0f);
    float first[3] = {0, 0, 0};
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        da_ctx ctx;
        da_ctx_init(&ctx);
        da_tensor *l[3] = {da_mse_loss(&ctx, a, b), da_l1_loss(&ctx, a, b), da_bce_with_logits(&ctx, a, tg)};
        float ref[3] = {(float)(smse / n), (float)(sl1 / n), (float)(sbce / n)};
        for (int k = 0; k < 3; k++) {
            CHECK(l[k]->ndim == 0 && l[k]->numel == 1, "loss %d is not 0-d (ndim %d)", k, l[k]->ndim);
            tu_close("large loss vs double sum", l[k]->data, &ref[k], 1, 0, 1e-6);
            if (threads == 1) first[k] = l[k]->data[0];
            else CHECK(first[k] == l[k]->data[0], "loss %d: %.9g with 1 thread, %.9g with 2", k, first[k], l[k]->data[0]);
        }
        da_ctx_free(&ctx);
    }
    da_set_threads(0);
    da_tensor_free(a);
    da_tensor_free(b);
    da_tensor_free(tg);
}

int main(void) {
    gradchecks();
    goldens();
    scalar_and_threads();
    return tu_finish("test_ops_loss");
}
