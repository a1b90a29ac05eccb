/* test_conv_backends.c — the three conv2d backends (im2col + gemm, oneDNN, Winograd) agree on
 * the output and on the input, weight and bias gradients, on shapes chosen to be awkward for
 * blocked kernels: batch 1, channel counts that are not multiples of 8 or 16, stride 2, padding
 * 0 / 1 / 2 / asymmetric, 1x1, non-square kernels, images that are not multiples of the 4x4
 * Winograd tile. Each backend is forced with DIFFADAPT_CONV (Winograd on the 3x3 stride-1
 * shapes it takes), the tape entry is checked to have run on the backend asked for, and
 * DIFFADAPT_CONV=auto must give one of them bit for bit. Without oneDNN built in, only BLAS and
 * Winograd are compared.
 *
 * Tolerance: both backends sum the same float32 products in different orders. Each result is
 * within a few float32 epsilons (2^-24) of the sum of the absolute values of its terms ("mag",
 * computed here in double), so two results differ by at most twice that. The check allows
 * 1e-5*(1 + |blas|) + 2^-20 * mag (16 epsilons of mag): generous for reordering, yet a wrong
 * index, tap or padding changes an element by a whole term, which is far larger.
 *
 * Winograd. oneDNN's "auto" algorithm (conv_dnnl.c) runs its Winograd F(4x4,3x3) kernels on
 * AVX-512 for batch-16+ 3x3 stride-1 shapes; their transforms lose more bits (forward: up to
 * 2^-19.8 * mag measured, against 2^-22 for direct convolution), yet on the last case, such a
 * shape, they meet the same bound as everything else. There oneDNN forced to direct convolution
 * (DIFFADAPT_CONV_ALGO=direct) is checked as well, and on AVX-512 the two must differ (Winograd
 * really ran). Our own Winograd (conv_winograd.c, the same F(4x4,3x3)) is held to the same bound
 * on every shape it takes. check_rule pins the auto rule's choice on the shapes it was measured
 * on (AVX-512 here, AVX2 in the _dnnl_avx2 variant). */
#include <stdlib.h>

#include "tensor/ops.h"
#include "tensor/ops/conv_backend.h"
#include "tensor/rng.h"
#include "test_util.h"

/* What da_conv_wino_fits asks of the CPU, asked here independently of it. */
static bool cpu_runs_wino(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

static da_tensor *random_param(da_rng *rng, int ndim, const int64_t *shape, float scale) {
    da_tensor *t = da_persistent(ndim, shape, true);
    da_rng_normal(rng, t->data, t->numel, 0.0f, scale);
    return t;
}

typedef struct {
    const char *name;
    int64_t N, C, H, W, O, kh, kw;
    int stride, pt, pb, pl, pr;
    bool bias;
    bool winograd;   /* a shape oneDNN's Winograd kernels take (AVX-512): direct is checked too */
} conv_case;

static const conv_case CASES[] = {
    {"batch 1, 3->5 ch, 17x17, 3x3 pad 1", 1, 3, 17, 17, 5, 3, 3, 1, 1, 1, 1, 1, true, false},
    {"20->12 ch, 15x15, 3x3 stride 2 pad 0", 2, 20, 15, 15, 12, 3, 3, 2, 0, 0, 0, 0, false, false},
    {"17->19 ch, 9x11, 3x3 stride 2 pad (0,1,0,1)", 3, 17, 9, 11, 19, 3, 3, 2, 0, 1, 0, 1, true, false},
    {"1x1 24->7 ch, 10x10", 2, 24, 10, 10, 7, 1, 1, 1, 0, 0, 0, 0, true, false},
    {"1x1 stride 2, 8->16 ch, 9x9", 2, 8, 9, 9, 16, 1, 1, 2, 0, 0, 0, 0, false, false},
    {"5x3 kernel, pad (2,2,1,1), 5->6 ch", 2, 5, 12, 10, 6, 5, 3, 1, 2, 2, 1, 1, true, false},
    {"batch 1, 33->40 ch, 20x20, 3x3 pad 1", 1, 33, 20, 20, 40, 3, 3, 1, 1, 1, 1, 1, true, false},
    {"4 images 64->48 ch, 16x16, 3x3 pad 1", 4, 64, 16, 16, 48, 3, 3, 1, 1, 1, 1, 1, false, false},
    {"Winograd: 16 images 64->64 ch, 16x16, 3x3 pad 1", 16, 64, 16, 16, 64, 3, 3, 1, 1, 1, 1, 1, true, true},
    {"3x3 pad (0,2,2,1), 9->10 ch, 13x11", 3, 9, 13, 11, 10, 3, 3, 1, 0, 2, 2, 1, true, false},
    {"3x3 pad 0, 16->24 ch, 7x6", 2, 16, 7, 6, 24, 3, 3, 1, 0, 0, 0, 0, false, false},
};

typedef struct {
    float *y, *dx, *dw, *db;
    int64_t ny, backend;
} result;

/* Forward + backward on the backend DIFFADAPT_CONV=`mode` picks; the upstream gradient is fixed. */
static result run(const conv_case *c, const char *mode, da_tensor *x, da_tensor *w, da_tensor *b) {
    setenv("DIFFADAPT_CONV", mode, 1);
    memset(x->grad, 0, sizeof(float) * (size_t)x->numel);
    memset(w->grad, 0, sizeof(float) * (size_t)w->numel);
    if (b) memset(b->grad, 0, sizeof(float) * (size_t)b->numel);
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_tensor *y = da_conv2d_ex(&ctx, x, w, b, c->stride, c->pt, c->pb, c->pl, c->pr);
    result r = {0};
    r.backend = ctx.tape[ctx.tape_len - 1].i[6];   /* conv.c records the backend in i[6] */
    r.ny = y->numel;
    float *dy = da_grad(&ctx, y);
    for (int64_t i = 0; i < y->numel; i++) dy[i] = (float)((37 * i) % 101 - 50) / 64.0f;
    da_backward_from(&ctx, y);
    r.y = malloc(sizeof(float) * (size_t)y->numel);
    memcpy(r.y, y->data, sizeof(float) * (size_t)y->numel);
    r.dx = malloc(sizeof(float) * (size_t)x->numel);
    memcpy(r.dx, x->grad, sizeof(float) * (size_t)x->numel);
    r.dw = malloc(sizeof(float) * (size_t)w->numel);
    memcpy(r.dw, w->grad, sizeof(float) * (size_t)w->numel);
    r.db = b ? malloc(sizeof(float) * (size_t)b->numel) : NULL;
    if (b) memcpy(r.db, b->grad, sizeof(float) * (size_t)b->numel);
    da_ctx_free(&ctx);
    return r;
}

static void result_free(result *r) { free(r->y), free(r->dx), free(r->dw), free(r->db); }

/* The sums of |terms| of every element of y, dx, dw and db (see the top of the file). */
static void magnitudes(const conv_case *c, const da_tensor *x, const da_tensor *w, const da_tensor *b, int64_t OH,
                       int64_t OW, double *my, double *mdx, double *mdw, double *mdb) {
    int64_t ny = c->N * c->O * OH * OW;
    memset(mdx, 0, sizeof(double) * (size_t)x->numel);
    memset(mdw, 0, sizeof(double) * (size_t)w->numel);
    memset(mdb, 0, sizeof(double) * (size_t)c->O);
    for (int64_t i = 0; i < ny; i++) {
        int64_t o = (i / (OH * OW)) % c->O;
        my[i] = b ? fabs(b->data[o]) : 0.0;
        mdb[o] += fabs((double)((37 * i) % 101 - 50) / 64.0);
    }
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t o = 0; o < c->O; o++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    int64_t yi = ((n * c->O + o) * OH + oh) * OW + ow;
                    double dy = fabs((double)((37 * yi) % 101 - 50) / 64.0);
                    for (int64_t ch = 0; ch < c->C; ch++)
                        for (int64_t ki = 0; ki < c->kh; ki++)
                            for (int64_t kj = 0; kj < c->kw; kj++) {
                                int64_t ih = oh * c->stride - c->pt + ki, iw = ow * c->stride - c->pl + kj;
                                if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W) continue;
                                int64_t xi = ((n * c->C + ch) * c->H + ih) * c->W + iw;
                                int64_t wi = ((o * c->C + ch) * c->kh + ki) * c->kw + kj;
                                my[yi] += fabs((double)x->data[xi] * w->data[wi]);
                                mdx[xi] += fabs((double)w->data[wi]) * dy;
                                mdw[wi] += fabs((double)x->data[xi]) * dy;
                            }
                }
}

static void agree(const char *what, const float *got, const float *want, const double *mag, int64_t n) {
    int64_t bad = -1;
    for (int64_t i = 0; i < n && bad < 0; i++)
        if (!(fabs((double)got[i] - want[i]) <= 1e-5 * (1 + fabs((double)want[i])) + 0x1p-20 * mag[i])) bad = i;
    CHECK(bad < 0, "%s: element %lld: got %.8g, blas %.8g (sum of |terms| %.3g)", what, (long long)bad,
          bad < 0 ? 0.0 : got[bad], bad < 0 ? 0.0 : want[bad], bad < 0 ? 0.0 : mag[bad]);
}

/* The sums of |terms| behind each result (see magnitudes). */
typedef struct {
    const double *y, *dx, *dw, *db;
} mags;

/* Every output of `got` (oneDNN or Winograd, labelled `label`) against `want` (BLAS): y, dx, dw and, when
 * with_db, db. */
static void agree_all(const conv_case *c, const char *label, const result *got, const result *want, const mags *m,
                      int64_t nx, int64_t nw, bool with_db) {
    char what[192];
    snprintf(what, sizeof what, "%s%s: forward", c->name, label);
    agree(what, got->y, want->y, m->y, want->ny);
    snprintf(what, sizeof what, "%s%s: d input", c->name, label);
    agree(what, got->dx, want->dx, m->dx, nx);
    snprintf(what, sizeof what, "%s%s: d weight", c->name, label);
    agree(what, got->dw, want->dw, m->dw, nw);
    if (with_db) {
        snprintf(what, sizeof what, "%s%s: d bias", c->name, label);
        agree(what, got->db, want->db, m->db, c->O);
    }
}

static bool same(const float *a, const float *b, int64_t n) { return memcmp(a, b, sizeof(float) * (size_t)n) == 0; }

static void check_case(const conv_case *c, da_rng *rng) {
    da_tensor *x = random_param(rng, DA_SHAPE(c->N, c->C, c->H, c->W), 1.0f);
    da_tensor *w = random_param(rng, DA_SHAPE(c->O, c->C, c->kh, c->kw), 1.0f / sqrtf((float)(c->C * c->kh * c->kw)));
    da_tensor *b = c->bias ? random_param(rng, DA_SHAPE(c->O), 0.5f) : NULL;
    bool dnnl = da_conv_dnnl_available();
    bool wino = c->kh == 3 && c->kw == 3 && c->stride == 1 && cpu_runs_wino();
    result rb = run(c, "blas", x, w, b), ra = run(c, "auto", x, w, b);
    result rd = dnnl ? run(c, "dnnl", x, w, b) : (result){0};
    result rw = wino ? run(c, "wino", x, w, b) : (result){0};
    char what[160];
    snprintf(what, sizeof what, "%s: DIFFADAPT_CONV=blas ran BLAS", c->name);
    CHECK(rb.backend == DA_CONV_BLAS, "%s", what);

    int64_t OH = (c->H + c->pt + c->pb - c->kh) / c->stride + 1, OW = (c->W + c->pl + c->pr - c->kw) / c->stride + 1;
    double *my = malloc(sizeof(double) * (size_t)rb.ny), *mdx = malloc(sizeof(double) * (size_t)x->numel);
    double *mdw = malloc(sizeof(double) * (size_t)w->numel), *mdb = malloc(sizeof(double) * (size_t)c->O);
    magnitudes(c, x, w, b, OH, OW, my, mdx, mdw, mdb);
    const mags m = {my, mdx, mdw, mdb};
    if (dnnl) {
        snprintf(what, sizeof what, "%s: DIFFADAPT_CONV=dnnl ran oneDNN", c->name);
        CHECK(rd.backend == DA_CONV_DNNL, "%s", what);
        agree_all(c, "", &rd, &rb, &m, x->numel, w->numel, b != NULL);
    }
    if (wino) {
        snprintf(what, sizeof what, "%s: DIFFADAPT_CONV=wino ran Winograd", c->name);
        CHECK(rw.backend == DA_CONV_WINO, "%s", what);
        agree_all(c, ", wino", &rw, &rb, &m, x->numel, w->numel, b != NULL);
    }
    if (dnnl && c->winograd) {
        /* oneDNN held to direct convolution meets the ordinary bound */
        setenv("DIFFADAPT_CONV_ALGO", "direct", 1);
        result rdd = run(c, "dnnl", x, w, b);
        unsetenv("DIFFADAPT_CONV_ALGO");
        agree_all(c, ", direct", &rdd, &rb, &m, x->numel, w->numel, false);
        if (da_conv_dnnl_has_avx512())
            CHECK(!same(rdd.y, rd.y, rb.ny) && !same(rdd.dw, rd.dw, w->numel),
                  "%s: the auto algorithm gave direct convolution's bits on AVX-512: Winograd did not run", c->name);
        result_free(&rdd);
    }
    /* auto runs one of them: bit for bit the same as forcing that one */
    static const char *const NAMES[] = {"blas", "dnnl", "wino"};
    const result *forced = ra.backend == DA_CONV_DNNL ? &rd : ra.backend == DA_CONV_WINO ? &rw : &rb;
    snprintf(what, sizeof what, "%s: DIFFADAPT_CONV=auto (%s) matches that backend forced", c->name,
             NAMES[ra.backend]);
    CHECK(forced->y && same(ra.y, forced->y, rb.ny) && same(ra.dx, forced->dx, x->numel) &&
              same(ra.dw, forced->dw, w->numel),
          "%s", what);
    free(my), free(mdx), free(mdw), free(mdb);
    result_free(&rb), result_free(&ra);
    if (dnnl) result_free(&rd);
    if (wino) result_free(&rw);
    da_tensor_free(x), da_tensor_free(w), da_tensor_free(b);
}

/* The auto rule (conv_dispatch.c) on the shapes it was measured on: which backend each gets on
 * this CPU, and that DIFFADAPT_CONV_ALGO=direct keeps every one off Winograd. */
static da_conv_shape shape3x3(int64_t N, int64_t C, int64_t HW) {
    da_conv_shape s = {N, C, HW, HW, C, 3, 3, HW, HW, 1, 1, 1, 1, 1};
    return s;
}

static void check_rule(void) {
    if (!da_conv_dnnl_available() || !cpu_runs_wino()) return;
    setenv("DIFFADAPT_CONV", "auto", 1);
    bool avx512 = da_conv_dnnl_has_avx512();
    struct {
        da_conv_shape s;
        da_conv_backend avx2, avx512;   /* what the rule gives below AVX-512 and with it */
    } rows[] = {
        {shape3x3(1, 128, 256), DA_CONV_WINO, DA_CONV_WINO},   /* 4096 tiles, batch 1 */
        {shape3x3(1, 128, 128), DA_CONV_WINO, DA_CONV_WINO},   /* 1024 tiles */
        {shape3x3(1, 256, 64), DA_CONV_WINO, DA_CONV_WINO},    /* 256 tiles */
        {shape3x3(1, 256, 32), DA_CONV_DNNL, DA_CONV_DNNL},    /* 64 tiles */
        {shape3x3(1, 512, 16), DA_CONV_DNNL, DA_CONV_DNNL},    /* 16 tiles: the filter transform dominates */
        {shape3x3(32, 64, 32), DA_CONV_WINO, DA_CONV_DNNL},    /* oneDNN's own Winograd on AVX-512 */
        {shape3x3(32, 128, 8), DA_CONV_WINO, DA_CONV_DNNL},    /* 128 tiles */
        {shape3x3(16, 128, 8), DA_CONV_DNNL, DA_CONV_DNNL},    /* 64 tiles */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const da_conv_shape *s = &rows[i].s;
        da_conv_backend want = avx512 ? rows[i].avx512 : rows[i].avx2, got = da_conv_choose(s);
        CHECK(got == want, "auto rule, batch %lld, %lld ch, %lldx%lld: backend %d, expected %d (%s)", (long long)s->N,
              (long long)s->C, (long long)s->H, (long long)s->W, (int)got, (int)want, avx512 ? "AVX-512" : "AVX2");
        setenv("DIFFADAPT_CONV_ALGO", "direct", 1);
        CHECK(da_conv_choose(s) != DA_CONV_WINO, "auto rule with DIFFADAPT_CONV_ALGO=direct: batch %lld, %lld ch, "
              "%lldx%lld still runs Winograd", (long long)s->N, (long long)s->C, (long long)s->H, (long long)s->W);
        unsetenv("DIFFADAPT_CONV_ALGO");
    }
}

int main(void) {
    if (!da_conv_dnnl_available()) printf("built without oneDNN (DA_DNNL=OFF): BLAS and Winograd only\n");
    printf("%s\n", da_conv_backend_describe());
    check_rule();
    da_rng rng;
    da_rng_init(&rng, 15);
    for (int th = 1; th <= 2; th++) {   /* one thread, and the benchmark's two */
        da_set_threads(th);
        for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) check_case(&CASES[i], &rng);
    }
    da_set_threads(0);
    return tu_finish("test_conv_backends");
}
