/* test_ops_elementwise.c — broadcasting binary ops, scalar ops, activations and dropout:
 * finite-difference gradients, PyTorch goldens, large (parallel) cases and dropout determinism. */
#include <omp.h>

#include "ops_golden.h"

typedef da_tensor *(*bin_fn)(da_ctx *, da_tensor *, da_tensor *);
typedef da_tensor *(*un_fn)(da_ctx *, da_tensor *);

static da_tensor *build_bin(da_ctx *ctx, da_tensor **in, void *u) { return ((bin_fn)u)(ctx, in[0], in[1]); }
static da_tensor *build_un(da_ctx *ctx, da_tensor **in, void *u) { return ((un_fn)u)(ctx, in[0]); }

typedef struct { int kind; float s; } scalar_args;   /* 0 scale, 1 add_scalar, 2 pow */
static da_tensor *build_scalar(da_ctx *ctx, da_tensor **in, void *u) {
    scalar_args *a = u;
    if (a->kind == 0) return da_scale(ctx, in[0], a->s);
    if (a->kind == 1) return da_add_scalar(ctx, in[0], a->s);
    return da_pow_scalar(ctx, in[0], a->s);
}

static const char *bin_names[4] = {"add", "sub", "mul", "div"};
static bin_fn bin_fns[4] = {da_add, da_sub, da_mul, da_div};

/* Moves values into [lo, ...) by |x| + lo: positive inputs (log, sqrt, divisors). */
static void make_positive(da_tensor *t, float lo) {
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = fabsf(t->data[i]) + lo;
}

/* Pushes values out of (-gap, gap), so a kink at 0 stays farther than the FD step. */
static void away_from_zero(da_tensor *t, float gap) {
    for (int64_t i = 0; i < t->numel; i++)
        if (fabsf(t->data[i]) < gap) t->data[i] += t->data[i] < 0 ? -gap : gap;
}

static void gradchecks(void) {
    da_rng rng;
    da_rng_init(&rng, 21);
    const float eps = 1e-2f;
    const double tol = 2e-3;
    /* a shape, b shape: same, (3,1), per-channel, trailing vector, both sides, b scalar, a broadcast */
    struct { int an, bn; int64_t as[4], bs[4]; const char *what; } cases[] = {
        {3, 3, {2, 3, 4}, {2, 3, 4}, "same shape"},
        {3, 2, {2, 3, 4}, {3, 1}, "(2,3,4) . (3,1)"},
        {4, 4, {2, 3, 4, 5}, {1, 3, 1, 1}, "(2,3,4,5) . (1,3,1,1)"},
        {4, 3, {2, 3, 2, 2}, {3, 1, 1}, "(2,3,2,2) . (3,1,1)"},
        {3, 1, {2, 3, 4}, {4}, "(2,3,4) . (4)"},
        {3, 2, {2, 1, 4}, {3, 1}, "(2,1,4) . (3,1)"},
        {2, 1, {3, 4}, {1}, "(3,4) . (1)"},
        {2, 3, {3, 1}, {2, 3, 4}, "(3,1) . (2,3,4)"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int op = 0; op < 4; op++) {
            da_tensor *in[2] = {gc_input(&rng, cases[c].an, cases[c].as, 1.0f), gc_input(&rng, cases[c].bn, cases[c].bs, 1.0f)};
            if (op == 3) make_positive(in[1], 0.5f);
            char name[96];
            snprintf(name, sizeof name, "%s %s", bin_names[op], cases[c].what);
            gradcheck(name, build_bin, 2, in, (void *)bin_fns[op], eps, tol, tol, 1000);
            da_tensor_free(in[0]);
            da_tensor_free(in[1]);
        }

    struct { const char *name; un_fn f; int domain; } un[] = {   /* domain: 0 any, 1 positive, 2 away from 0 */
        {"relu", da_relu, 2}, {"silu", da_silu, 0}, {"gelu", da_gelu, 0}, {"quick_gelu", da_quick_gelu, 0},
        {"sigmoid", da_sigmoid, 0}, {"tanh", da_tanh, 0}, {"exp", da_exp, 0}, {"log", da_log, 1},
        {"sqrt", da_sqrt, 1},
    };
    for (size_t k = 0; k < sizeof un / sizeof un[0]; k++) {
        da_tensor *x = gc_input(&rng, DA_SHAPE(3, 17), 1.5f);
        if (un[k].domain == 1) make_positive(x, 0.3f);
        if (un[k].domain == 2) away_from_zero(x, 0.05f);
        gradcheck(un[k].name, build_un, 1, &x, (void *)un[k].f, eps, tol, tol, 1000);
        da_tensor_free(x);
    }
    scalar_args sc[] = {{0, -1.5f}, {1, 0.75f}, {2, 2.0f}, {2, 3.0f}, {2, 1.7f}, {2, -0.5f}};
    for (size_t k = 0; k < sizeof sc / sizeof sc[0]; k++) {
        da_tensor *x = gc_input(&rng, DA_SHAPE(2, 9), 1.0f);
        if (sc[k].kind == 2 && sc[k].s != 2.0f && sc[k].s != 3.0f) make_positive(x, 0.5f);
        char name[64];
        snprintf(name, sizeof name, "%s %g", sc[k].kind == 0 ? "scale" : sc[k].kind == 1 ? "add_scalar" : "pow_scalar",
                 (double)sc[k].s);
        gradcheck(name, build_scalar, 1, &x, &sc[k], eps, tol, tol, 1000);
        da_tensor_free(x);
    }
}

static void goldens(void) {
    if (!og_open()) return;
    const char *ab[2] = {"a", "b"}, *x[1] = {"x"};
    const char *layouts[4] = {"b31", "chan", "vec", "both"};
    for (int op = 0; op < 4; op++)
        for (int l = 0; l < 4; l++) {
            char cs[32];
            snprintf(cs, sizeof cs, "%s_%s", bin_names[op], layouts[l]);
            og_case(cs, build_bin, (void *)bin_fns[op], 2, ab, 3, 1e-6, 1e-5);
        }
    struct { const char *cs; un_fn f; } un[] = {
        {"relu", da_relu}, {"silu", da_silu}, {"gelu", da_gelu}, {"quick_gelu", da_quick_gelu},
        {"sigmoid", da_sigmoid}, {"tanh", da_tanh}, {"exp", da_exp}, {"log", da_log}, {"sqrt", da_sqrt},
    };
    for (size_t k = 0; k < sizeof un / sizeof un[0]; k++) og_case(un[k].cs, build_un, (void *)un[k].f, 1, x, 1, 1e-6, 1e-5);
    scalar_args s_scale = {0, -1.5f}, s_add = {1, 0.75f}, s_p2 = {2, 2.0f}, s_p17 = {2, 1.7f}, s_pm05 = {2, -0.5f};
    og_case("scale", build_scalar, &s_scale, 1, x, 1, 1e-6, 1e-5);
    og_case("add_scalar", build_scalar, &s_add, 1, x, 1, 1e-6, 1e-5);
    og_case("pow2", build_scalar, &s_p2, 1, x, 1, 1e-6, 1e-5);
    og_case("pow1_7", build_scalar, &s_p17, 1, x, 1, 1e-6, 1e-5);
    og_case("pow_m0_5", build_scalar, &s_pm05, 1, x, 1, 1e-6, 1e-5);
    og_close();
}

/* Large tensors take the parallel paths; compare with direct loops (double sums for the
 * reduced gradients) and check that 1 and 2 threads give identical bits. */
static void large_cases(void) {
    da_rng rng;
    da_rng_init(&rng, 5);
    const int64_t N = 4, C = 16, H = 32, W = 32, n = N * C * H * W;
    da_tensor *x = gc_input(&rng, DA_SHAPE(N, C, H, W), 1.0f), *c = gc_input(&rng, DA_SHAPE(1, C, 1, 1), 1.0f),
              *v = gc_input(&rng, DA_SHAPE(W), 1.0f);
    make_positive(c, 0.5f);
    float *ref = malloc(sizeof(float) * (size_t)n), *first = malloc(sizeof(float) * (size_t)n);
    float dc_first[16], dv_first[32];
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        memset(x->grad, 0, sizeof(float) * (size_t)n);
        memset(c->grad, 0, sizeof(float) * (size_t)C);
        memset(v->grad, 0, sizeof(float) * (size_t)W);
        da_ctx ctx;
        da_ctx_init(&ctx);
        /* y = (x / c) * v : per-channel then trailing-vector broadcast */
        da_tensor *q = da_div(&ctx, x, c), *y = da_mul(&ctx, q, v);
        for (int64_t i = 0; i < n; i++) {
            int64_t ch = (i / (H * W)) % C, w = i % W;
            ref[i] = x->data[i] / c->data[ch] * v->data[w];
        }
        tu_close("large (x/c)*v forward", y->data, ref, (long)n, 1e-6, 1e-6);
        float *g = da_grad(&ctx, y);
        for (int64_t i = 0; i < n; i++) g[i] = (float)((i % 7) - 3) * 0.25f;
        da_backward_from(&ctx, y);
        /* dc[ch] = sum -g x v / c^2 ; dv[w] = sum g x / c */
        double dc[16] = {0}, dv[32] = {0};
        float dcf[16], dvf[32];
        for (int64_t i = 0; i < n; i++) {
            int64_t ch = (i / (H * W)) % C, w = i % W;
            dc[ch] += -(double)g[i] * x->data[i] * v->data[w] / ((double)c->data[ch] * c->data[ch]);
            dv[w] += (double)g[i] * x->data[i] / c->data[ch];
            ref[i] = g[i] * v->data[w] / c->data[ch];
        }
        for (int k = 0; k < C; k++) dcf[k] = (float)dc[k];
        for (int k = 0; k < W; k++) dvf[k] = (float)dv[k];
        tu_close("large (x/c)*v dx", x->grad, ref, (long)n, 1e-6, 1e-5);
        tu_close("large (x/c)*v dc", c->grad, dcf, C, 1e-3, 1e-4);
        tu_close("large (x/c)*v dv", v->grad, dvf, W, 1e-3, 1e-4);
        if (threads == 1) {
            memcpy(first, y->data, sizeof(float) * (size_t)n);
            memcpy(dc_first, c->grad, sizeof dc_first);
            memcpy(dv_first, v->grad, sizeof dv_first);
        } else {
            CHECK(memcmp(first, y->data, sizeof(float) * (size_t)n) == 0, "forward differs between 1 and 2 threads");
            CHECK(memcmp(dc_first, c->grad, sizeof dc_first) == 0, "dc differs between 1 and 2 threads");
            CHECK(memcmp(dv_first, v->grad, sizeof dv_first) == 0, "dv differs between 1 and 2 threads");
        }
        /* a large unary op on the parallel path */
        da_tensor *s = da_silu(&ctx, x);
        for (int64_t i = 0; i < n; i++) ref[i] = x->data[i] / (1.0f + expf(-x->data[i]));
        tu_close("large silu", s->data, ref, (long)n, 1e-6, 1e-5);
        da_ctx_free(&ctx);
    }
    da_set_threads(0);
    free(ref);
    free(first);
    da_tensor_free(x);
    da_tensor_free(c);
    da_tensor_free(v);
}

/* Runs dropout once on x with the given seed / thread count; copies output and dx. */
static void run_dropout(da_tensor *x, uint64_t seed, int threads, float p, float *y_out, float *dx_out) {
    omp_set_num_threads(threads);
    memset(x->grad, 0, sizeof(float) * (size_t)x->numel);
    da_ctx ctx;
    da_ctx_init(&ctx);
    ctx.training = true;
    ctx.seed = seed;
    da_tensor *y = da_dropout(&ctx, x, p);
    memcpy(y_out, y->data, sizeof(float) * (size_t)x->numel);
    da_tensor *l = da_sum(&ctx, y, 0, NULL, false);
    da_backward(&ctx, l);
    memcpy(dx_out, x->grad, sizeof(float) * (size_t)x->numel);
    da_ctx_free(&ctx);
}

static void dropout_checks(void) {
    da_rng rng;
    da_rng_init(&rng, 9);
    const int64_t n = 100000;   /* above the parallel threshold */
    const float p = 0.3f;
    da_tensor *x = da_persistent(DA_SHAPE(n), true);
    da_rng_uniform(&rng, x->data, n, 0.5f, 1.5f);   /* never 0, so kept elements are visible */
    float *y1 = malloc(sizeof(float) * n), *y2 = malloc(sizeof(float) * n), *y3 = malloc(sizeof(float) * n);
    float *d1 = malloc(sizeof(float) * n), *d2 = malloc(sizeof(float) * n), *d3 = malloc(sizeof(float) * n);
    run_dropout(x, 42, 1, p, y1, d1);
    run_dropout(x, 42, 2, p, y2, d2);
    run_dropout(x, 43, 2, p, y3, d3);
    CHECK(memcmp(y1, y2, sizeof(float) * n) == 0, "dropout output differs between 1 and 2 threads");
    CHECK(memcmp(d1, d2, sizeof(float) * n) == 0, "dropout gradient differs between 1 and 2 threads");
    CHECK(memcmp(y1, y3, sizeof(float) * n) != 0, "seeds 42 and 43 gave the same mask");
    long kept = 0, bad = 0;
    for (int64_t i = 0; i < n; i++) {
        bool k = y1[i] != 0.0f;
        kept += k;
        /* kept: x / (1-p) with gradient 1/(1-p); dropped: 0 and 0 */
        if (k && (fabsf(y1[i] - x->data[i] / (1.0f - p)) > 1e-6f || fabsf(d1[i] - 1.0f / (1.0f - p)) > 1e-6f)) bad++;
        if (!k && d1[i] != 0.0f) bad++;
    }
    CHECK(bad == 0, "%ld elements break y = mask*x/(1-p), dx = mask/(1-p)", bad);
    double frac = (double)kept / n;   /* binomial std is 0.0015 here */
    CHECK(fabs(frac - (1.0 - p)) < 0.01, "kept fraction %.4f, expected %.2f", frac, 1.0 - p);

    /* two calls in one step draw different masks; eval mode and p = 0 are the identity */
    da_ctx ctx;
    da_ctx_init(&ctx);
    ctx.training = true;
    da_tensor *a = da_dropout(&ctx, x, p), *b = da_dropout(&ctx, x, p);
    CHECK(memcmp(a->data, b->data, sizeof(float) * n) != 0, "two dropout calls drew the same mask");
    CHECK(da_dropout(&ctx, x, 0.0f) == x, "p = 0 should return the input");
    ctx.training = false;
    CHECK(da_dropout(&ctx, x, p) == x, "eval mode should return the input");
    ctx.training = true;
    da_tensor *z = da_dropout(&ctx, x, 1.0f);
    long nz = 0;
    for (int64_t i = 0; i < n; i++) nz += z->data[i] != 0.0f;
    CHECK(nz == 0, "p = 1 kept %ld elements", nz);
    da_ctx_free(&ctx);
    da_set_threads(0);
    free(y1); free(y2); free(y3); free(d1); free(d2); free(d3);
    da_tensor_free(x);
}

int main(void) {
    gradchecks();
    goldens();
    large_cases();
    dropout_checks();
    return tu_finish("test_ops_elementwise");
}
