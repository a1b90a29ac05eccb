/* test_ops_conv.c — conv2d: finite-difference gradients for every stride/padding/kernel layout,
 * forward and input/weight/bias gradients against PyTorch goldens, and large shapes (several
 * workspace tiles, bands of rows, recomputed columns) against a direct double-precision loop. */
#include "gradcheck.h"
#include "io/safetensors.h"

#define GOLDEN "golden/ops_spatial.safetensors"

typedef struct {
    int stride, pt, pb, pl, pr;
} conv_args;

/* The upstream gradient the golden generator uses: exact in float32. */
static void upstream(float *dy, int64_t n) {
    for (int64_t i = 0; i < n; i++) dy[i] = (float)((37 * i) % 101 - 50) / 64.0f;
}

static da_tensor *build_conv(da_ctx *ctx, da_tensor **in, void *u) {
    conv_args *a = u;
    return da_conv2d_ex(ctx, in[0], in[1], in[2], a->stride, a->pt, a->pb, a->pl, a->pr);
}

/* A persistent tensor with the golden values of `name` (NULL when absent). */
static da_tensor *load(const st_file *f, const char *name, bool requires_grad) {
    const st_tensor_info *ti = st_find(f, name);
    if (!ti) return NULL;
    da_tensor *t = da_persistent(ti->ndim, ti->shape, requires_grad);
    char err[256];
    if (st_read_f32(f, ti, t->data, err, sizeof err) != 0) {
        fprintf(stderr, "FAIL reading %s: %s\n", name, err);
        tu_failed++;
    }
    return t;
}

static void load_i64(const st_file *f, const char *name, int64_t *out) {
    const st_tensor_info *ti = st_find(f, name);
    char err[256];
    if (!ti || st_read_i64(f, ti, out, err, sizeof err) != 0) {
        fprintf(stderr, "FAIL: golden tensor %s missing or unreadable\n", name);
        tu_failed++;
        exit(tu_finish("test_ops_conv"));
    }
}

/* ---- direct reference ------------------------------------------------------------------- */

typedef struct {
    int64_t N, C, H, W, O, kh, kw, OH, OW;
    conv_args a;
} ref_geom;

static ref_geom ref_make(const da_tensor *x, const da_tensor *w, conv_args a) {
    ref_geom g = {x->shape[0], x->shape[1], x->shape[2], x->shape[3], w->shape[0], w->shape[2], w->shape[3], 0, 0, a};
    g.OH = (g.H + a.pt + a.pb - g.kh) / a.stride + 1;
    g.OW = (g.W + a.pl + a.pr - g.kw) / a.stride + 1;
    return g;
}

/* Visits every (output, input, weight) index triple of the convolution that reads a real pixel. */
#define FOR_TAPS(g, BODY)                                                                          \
    for (int64_t n = 0; n < g.N; n++)                                                              \
        for (int64_t o = 0; o < g.O; o++)                                                          \
            for (int64_t oh = 0; oh < g.OH; oh++)                                                  \
                for (int64_t ow = 0; ow < g.OW; ow++) {                                            \
                    int64_t yi = ((n * g.O + o) * g.OH + oh) * g.OW + ow;                          \
                    for (int64_t c = 0; c < g.C; c++)                                              \
                        for (int64_t ki = 0; ki < g.kh; ki++)                                      \
                            for (int64_t kj = 0; kj < g.kw; kj++) {                                \
                                int64_t ih = oh * g.a.stride - g.a.pt + ki, iw = ow * g.a.stride - g.a.pl + kj; \
                                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;          \
                                int64_t xi = ((n * g.C + c) * g.H + ih) * g.W + iw;                \
                                int64_t wi = ((o * g.C + c) * g.kh + ki) * g.kw + kj;              \
                                BODY;                                                              \
                            }                                                                      \
                }

/* y, dx, dw, db in double, and the sums of the absolute values of the terms of each element of
 * y, dx and dw (the size of float32 rounding errors in them, whatever the summation order). */
static void ref_conv(ref_geom g, const float *x, const float *w, const float *b, const float *dy, double *y,
                     double *dx, double *dw, double *db, double *my, double *mdx, double *mdw) {
    int64_t ny = g.N * g.O * g.OH * g.OW, nx = g.N * g.C * g.H * g.W, nw = g.O * g.C * g.kh * g.kw;
    for (int64_t i = 0; i < ny; i++) y[i] = b ? b[(i / (g.OH * g.OW)) % g.O] : 0.0;
    for (int64_t i = 0; i < ny; i++) my[i] = fabs(y[i]);
    memset(dx, 0, sizeof(double) * (size_t)nx), memset(mdx, 0, sizeof(double) * (size_t)nx);
    memset(dw, 0, sizeof(double) * (size_t)nw), memset(mdw, 0, sizeof(double) * (size_t)nw);
    memset(db, 0, sizeof(double) * (size_t)g.O);
    for (int64_t i = 0; i < ny; i++) db[(i / (g.OH * g.OW)) % g.O] += dy[i];
    FOR_TAPS(g, {
        y[yi] += (double)w[wi] * x[xi];
        dx[xi] += (double)w[wi] * dy[yi];
        dw[wi] += (double)x[xi] * dy[yi];
        my[yi] += fabs((double)w[wi] * x[xi]);
        mdx[xi] += fabs((double)w[wi] * dy[yi]);
        mdw[wi] += fabs((double)x[xi] * dy[yi]);
    });
}

/* |got - scale*ref| <= tol*(1 + |scale*ref|) + 2^-20 * scale*mag for every element. The second
 * term allows float32 rounding of a sum whose terms cancel (dW of a large image sums ~10^4
 * products of both signs to a small number): 2^-20 is 16 float32 epsilons of the sum of |terms|,
 * above what blocked summation in any order (OpenBLAS, oneDNN) loses, while a wrong index moves
 * an element by a whole term, ~1/sqrt(terms) of mag. */
static void close_to(const char *what, const float *got, const double *ref, const double *mag, double scale,
                     int64_t n, double tol) {
    int64_t bad = -1;
    for (int64_t i = 0; i < n && bad < 0; i++) {
        double r = scale * ref[i];
        if (!(fabs((double)got[i] - r) <= tol * (1 + fabs(r)) + 0x1p-20 * scale * mag[i])) bad = i;
    }
    CHECK(bad < 0, "%s: element %lld: got %.7g, expected %.7g (sum of |terms| %.3g, tol %.1g)", what,
          (long long)bad, bad < 0 ? 0.0 : got[bad], bad < 0 ? 0.0 : scale * ref[bad], bad < 0 ? 0.0 : scale * mag[bad],
          tol);
}

static float *to_float(const double *d, int64_t n, double scale) {
    float *f = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) f[i] = (float)(scale * d[i]);
    return f;
}

/* Under 1, 2 and 3 threads (the tiling depends on the thread count): runs the op forward +
 * backward twice (upstream gradient from upstream()) and compares the output and the
 * accumulated gradients (twice the reference) with the direct loop. */
static void check_against_reference(const char *name, da_tensor *x, da_tensor *w, da_tensor *b, conv_args a,
                                     double tol) {
    ref_geom g = ref_make(x, w, a);
    int64_t ny = g.N * g.O * g.OH * g.OW;
    float *dy = malloc(sizeof(float) * (size_t)ny);
    upstream(dy, ny);
    double *ry = malloc(sizeof(double) * (size_t)ny), *rdx = malloc(sizeof(double) * (size_t)x->numel);
    double *rdw = malloc(sizeof(double) * (size_t)w->numel), *rdb = malloc(sizeof(double) * (size_t)g.O);
    double *my = malloc(sizeof(double) * (size_t)ny), *mdx = malloc(sizeof(double) * (size_t)x->numel);
    double *mdw = malloc(sizeof(double) * (size_t)w->numel);
    ref_conv(g, x->data, w->data, b ? b->data : NULL, dy, ry, rdx, rdw, rdb, my, mdx, mdw);
    float *fdb = to_float(rdb, g.O, 2);
    for (int th = 1; th <= 3; th++) {
        da_set_threads(th);
        da_ctx ctx;
        da_ctx_init(&ctx);
        if (x->grad) memset(x->grad, 0, sizeof(float) * (size_t)x->numel);
        if (w->grad) memset(w->grad, 0, sizeof(float) * (size_t)w->numel);
        if (b && b->grad) memset(b->grad, 0, sizeof(float) * (size_t)b->numel);
        da_tensor *y = NULL;
        for (int rep = 0; rep < 2; rep++) {
            da_ctx_reset(&ctx);
            y = da_conv2d_ex(&ctx, x, w, b, a.stride, a.pt, a.pb, a.pl, a.pr);
            memcpy(da_grad(&ctx, y), dy, sizeof(float) * (size_t)ny);
            da_backward_from(&ctx, y);
        }
        char what[200];
        snprintf(what, sizeof what, "%s, %d threads: output shape", name, th);
        CHECK(y->ndim == 4 && y->shape[0] == g.N && y->shape[1] == g.O && y->shape[2] == g.OH &&
              y->shape[3] == g.OW, "%s", what);
        snprintf(what, sizeof what, "%s, %d threads: forward", name, th);
        close_to(what, y->data, ry, my, 1, ny, tol);
        if (x->requires_grad) {
            snprintf(what, sizeof what, "%s, %d threads: d input (2 passes)", name, th);
            close_to(what, x->grad, rdx, mdx, 2, x->numel, tol);
        }
        if (w->requires_grad) {
            snprintf(what, sizeof what, "%s, %d threads: d weight (2 passes)", name, th);
            close_to(what, w->grad, rdw, mdw, 2, w->numel, tol);
        }
        if (b && b->requires_grad) {
            snprintf(what, sizeof what, "%s, %d threads: d bias (2 passes)", name, th);
            tu_close(what, b->grad, fdb, (long)g.O, tol, tol);
        }
        da_ctx_free(&ctx);
    }
    da_set_threads(0);
    free(dy), free(ry), free(rdx), free(rdw), free(rdb), free(my), free(mdx), free(mdw), free(fdb);
}

/* ---- goldens ---------------------------------------------------------------------------- */

static void golden_convs(const st_file *f, da_rng *rng) {
    for (int k = 0;; k++) {
        char key[64];
        snprintf(key, sizeof key, "conv%d.cfg", k);
        if (!st_find(f, key)) {
            CHECK(k >= 7, "expected 7 conv goldens, found %d", k);
            break;
        }
        int64_t cfg[6];
        load_i64(f, key, cfg);
        conv_args a = {(int)cfg[0], (int)cfg[1], (int)cfg[2], (int)cfg[3], (int)cfg[4]};
#define LOAD(var, suffix, rg) snprintf(key, sizeof key, "conv%d." suffix, k); da_tensor *var = load(f, key, rg)
        LOAD(x, "x", true);
        LOAD(w, "w", true);
        LOAD(b, "b", true);
        LOAD(gy, "y", false);
        LOAD(gdx, "dx", false);
        LOAD(gdw, "dw", false);
        LOAD(gdb, "db", false);
#undef LOAD
        CHECK(x && w && gy && gdx && gdw && (cfg[5] == 0 || (b && gdb)), "conv%d: golden tensors present", k);
        if (!(x && w && gy && gdx && gdw)) continue;

        char name[96];
        snprintf(name, sizeof name, "conv%d (s%d pads %d,%d,%d,%d, kernel %lldx%lld, %s bias)", k, a.stride, a.pt,
                 a.pb, a.pl, a.pr, (long long)w->shape[2], (long long)w->shape[3], b ? "with" : "no");
        da_ctx ctx;
        da_ctx_init(&ctx);
        da_tensor *y = da_conv2d_ex(&ctx, x, w, b, a.stride, a.pt, a.pb, a.pl, a.pr);
        CHECK(da_same_shape(y, gy), "%s: output shape", name);
        if (da_same_shape(y, gy)) {
            char what[160];
            snprintf(what, sizeof what, "%s: forward vs torch", name);
            tu_close(what, y->data, gy->data, (long)y->numel, 1e-5, 1e-5);
            upstream(da_grad(&ctx, y), y->numel);
            da_backward_from(&ctx, y);
            snprintf(what, sizeof what, "%s: d input vs torch", name);
            tu_close(what, x->grad, gdx->data, (long)x->numel, 1e-5, 1e-5);
            snprintf(what, sizeof what, "%s: d weight vs torch", name);
            tu_close(what, w->grad, gdw->data, (long)w->numel, 1e-5, 1e-5);
            if (b) {
                snprintf(what, sizeof what, "%s: d bias vs torch", name);
                tu_close(what, b->grad, gdb->data, (long)b->numel, 1e-5, 1e-5);
            }
            /* a second forward + backward must add to the gradients, not overwrite them */
            da_ctx_reset(&ctx);
            y = da_conv2d_ex(&ctx, x, w, b, a.stride, a.pt, a.pb, a.pl, a.pr);
            upstream(da_grad(&ctx, y), y->numel);
            da_backward_from(&ctx, y);
            da_tensor *pairs[3][2] = {{x, gdx}, {w, gdw}, {b, gdb}};
            for (int j = 0; j < (b ? 3 : 2); j++) {
                float *twice = malloc(sizeof(float) * (size_t)pairs[j][1]->numel);
                for (int64_t i = 0; i < pairs[j][1]->numel; i++) twice[i] = 2.0f * pairs[j][1]->data[i];
                snprintf(what, sizeof what, "%s: gradient %d accumulates", name, j);
                tu_close(what, pairs[j][0]->grad, twice, (long)pairs[j][1]->numel, 2e-5, 2e-5);
                free(twice);
            }
        }
        da_ctx_free(&ctx);

        /* finite differences, on the golden inputs */
        da_tensor *in[3] = {x, w, b};
        gradcheck(name, build_conv, b ? 3 : 2, in, &a, 1e-2f, 1e-3, 1e-3, 150);
        /* the reference loop must agree too (it checks the large shapes below) */
        check_against_reference(name, x, w, b, a, 1e-5);
        /* only one side wanting a gradient: weights frozen (no columns kept), or input frozen */
        w->requires_grad = false;
        gradcheck(name, build_conv, 2, in, &a, 1e-2f, 1e-3, 1e-3, 60);
        w->requires_grad = true;
        x->requires_grad = false;
        gradcheck(name, build_conv, 2, in, &a, 1e-2f, 1e-3, 1e-3, 60);
        x->requires_grad = true;
        (void)rng;
        da_tensor_free(x), da_tensor_free(w), da_tensor_free(b), da_tensor_free(gy);
        da_tensor_free(gdx), da_tensor_free(gdw), da_tensor_free(gdb);
    }
}

/* ---- large shapes: several tiles, bands, recomputed columns ----------------------------- */

static void large_case(da_rng *rng, const char *name, int64_t N, int64_t C, int64_t H, int64_t W, int64_t O,
                       int64_t kh, int64_t kw, conv_args a, bool bias) {
    da_tensor *x = gc_input(rng, DA_SHAPE(N, C, H, W), 1.0f);
    da_tensor *w = gc_input(rng, DA_SHAPE(O, C, kh, kw), 1.0f / sqrtf((float)(C * kh * kw)));
    da_tensor *b = bias ? gc_input(rng, DA_SHAPE(O), 1.0f) : NULL;
    /* float32 sums over up to ~10^4 terms against double: 1e-4 is ~100x the expected error,
     * while any indexing mistake is O(1). */
    check_against_reference(name, x, w, b, a, 1e-4);
    da_tensor_free(x), da_tensor_free(w), da_tensor_free(b);
}

/* Reruns at 2 threads give bit-identical gradients (dW is a sum of per-thread partial sums). */
static void reruns_are_identical(da_rng *rng) {
    da_tensor *x = gc_input(rng, DA_SHAPE(6, 16, 24, 24), 1.0f);
    da_tensor *w = gc_input(rng, DA_SHAPE(16, 16, 3, 3), 0.1f);
    da_set_threads(2);
    float *first_dw = malloc(sizeof(float) * (size_t)w->numel), *first_dx = malloc(sizeof(float) * (size_t)x->numel);
    for (int rep = 0; rep < 8; rep++) {
        da_ctx ctx;
        da_ctx_init(&ctx);
        memset(x->grad, 0, sizeof(float) * (size_t)x->numel);
        memset(w->grad, 0, sizeof(float) * (size_t)w->numel);
        da_tensor *y = da_conv2d(&ctx, x, w, NULL, 1, 1);
        upstream(da_grad(&ctx, y), y->numel);
        da_backward_from(&ctx, y);
        if (rep == 0) {
            memcpy(first_dw, w->grad, sizeof(float) * (size_t)w->numel);
            memcpy(first_dx, x->grad, sizeof(float) * (size_t)x->numel);
        } else {
            CHECK(memcmp(first_dw, w->grad, sizeof(float) * (size_t)w->numel) == 0, "rerun %d: dW differs", rep);
            CHECK(memcmp(first_dx, x->grad, sizeof(float) * (size_t)x->numel) == 0, "rerun %d: dX differs", rep);
        }
        da_ctx_free(&ctx);
    }
    da_set_threads(0);
    free(first_dw), free(first_dx);
    da_tensor_free(x), da_tensor_free(w);
}

/* A conv without gradients must hand its workspace back: the arena grows by the output only. */
static void workspace_is_returned(da_rng *rng) {
    da_tensor *x = gc_input(rng, DA_SHAPE(1, 32, 40, 40), 1.0f);
    da_tensor *w = gc_input(rng, DA_SHAPE(8, 32, 3, 3), 0.1f);
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_set_grad(&ctx, false);
    da_tensor *warm = da_zeros(&ctx, DA_SHAPE(16));   /* opens the first arena block */
    (void)warm;
    size_t before = ctx.arena.in_use;
    da_tensor *y = da_conv2d(&ctx, x, w, NULL, 1, 1);
    size_t grown = ctx.arena.in_use - before;
    size_t out_bytes = (size_t)y->numel * sizeof(float);
    CHECK(grown >= out_bytes && grown <= out_bytes + 1024, "arena grew by %zu bytes for a %zu-byte output", grown,
          out_bytes);
    CHECK(ctx.arena.peak >= before + out_bytes + (size_t)(32 * 9 * 40) * sizeof(float),
          "the column workspace should have been used (peak %zu)", ctx.arena.peak);
    da_ctx_free(&ctx);
    da_tensor_free(x), da_tensor_free(w);
}

int main(void) {
    da_rng rng;
    da_rng_init(&rng, 11);
    st_file f;
    char err[512];
    if (st_open(GOLDEN, &f, err, sizeof err) != 0) {
        fprintf(stderr, "FAIL: %s (regenerate with /usr/bin/python3 tests/golden/gen_ops_spatial.py)\n", err);
        return 1;
    }
    golden_convs(&f, &rng);
    st_close(&f);

    /* Large shapes (layouts for 2 threads; "recomputed" = over 2^20 column entries, so the
     * forward's columns are not kept for backward): */
    conv_args same = {1, 1, 1, 1, 1}, down = {2, 0, 1, 0, 1}, none = {1, 0, 0, 0, 0};
    /* one whole image per tile, recomputed */
    large_case(&rng, "5 images 16ch 40x40 3x3", 5, 16, 40, 40, 8, 3, 3, same, true);
    /* ten 8x8 images per tile, recomputed */
    large_case(&rng, "40 images 64ch 8x8 3x3", 40, 64, 8, 8, 8, 3, 3, same, true);
    /* three images per tile, columns kept from the forward pass */
    large_case(&rng, "12 images 16ch 10x10 3x3", 12, 16, 10, 10, 8, 3, 3, same, false);
    /* bands of rows of one image (dX in two phases), recomputed */
    large_case(&rng, "1 image 32ch 80x72 3x3 (bands)", 1, 32, 80, 72, 4, 3, 3, same, true);
    /* strided, asymmetric padding, bands */
    large_case(&rng, "64ch 121x101 downsample (bands)", 1, 64, 121, 101, 4, 3, 3, down, false);
    /* bands with kept columns */
    large_case(&rng, "1 image 8ch 64x64 3x3 (kept bands)", 1, 8, 64, 64, 6, 3, 3, same, true);
    /* 1x1: ten 8x8 images gathered per tile; bands of large images read in place */
    large_case(&rng, "1x1 40 images 512ch 8x8", 40, 512, 8, 8, 4, 1, 1, none, true);
    large_case(&rng, "1x1 2 images 128ch 96x96 (direct)", 2, 128, 96, 96, 4, 1, 1, none, false);
    workspace_is_returned(&rng);
    reruns_are_identical(&rng);
    return tu_finish("test_ops_conv");
}
