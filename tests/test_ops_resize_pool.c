/* test_ops_resize_pool.c — max/avg pooling, nearest x2, bilinear and bicubic resize (up and down,
 * against torch.nn.functional.interpolate), crop and pad: forward values and input gradients
 * against PyTorch goldens, and finite-difference gradients for every op and configuration. */
#include "gradcheck.h"
#include "io/safetensors.h"

#define GOLDEN "golden/ops_spatial.safetensors"

static void upstream(float *dy, int64_t n) {
    for (int64_t i = 0; i < n; i++) dy[i] = (float)((37 * i) % 101 - 50) / 64.0f;
}

static da_tensor *load(const st_file *f, const char *name, bool requires_grad) {
    const st_tensor_info *ti = st_find(f, name);
    if (!ti) {
        fprintf(stderr, "FAIL: golden tensor %s missing\n", name);
        tu_failed++;
        return NULL;
    }
    da_tensor *t = da_persistent(ti->ndim, ti->shape, requires_grad);
    char err[256];
    if (st_read_f32(f, ti, t->data, err, sizeof err) != 0) {
        fprintf(stderr, "FAIL reading %s: %s\n", name, err);
        tu_failed++;
    }
    return t;
}

static bool load_i64(const st_file *f, const char *name, int64_t *out) {
    const st_tensor_info *ti = st_find(f, name);
    char err[256];
    return ti && st_read_i64(f, ti, out, err, sizeof err) == 0;
}

/* ---- the ops under test, as gradcheck builders ------------------------------------------ */

typedef struct {
    int kind;           /* see OP_* */
    int64_t a, b, c, d; /* op arguments */
    float value;
} op_args;

enum { OP_MAX, OP_AVG, OP_NEAREST, OP_BILINEAR, OP_BICUBIC, OP_CROP, OP_PAD };

static da_tensor *build_op(da_ctx *ctx, da_tensor **in, void *u) {
    op_args *o = u;
    switch (o->kind) {
    case OP_MAX: return da_max_pool2d(ctx, in[0], (int)o->a, (int)o->b);
    case OP_AVG: return da_avg_pool2d(ctx, in[0], (int)o->a, (int)o->b);
    case OP_NEAREST: return da_upsample_nearest2x(ctx, in[0]);
    case OP_BILINEAR: return da_resize_bilinear(ctx, in[0], o->a, o->b);
    case OP_BICUBIC: return da_resize_bicubic(ctx, in[0], o->a, o->b);
    case OP_CROP: return da_crop(ctx, in[0], o->a, o->b, o->c, o->d);
    default: return da_pad2d(ctx, in[0], (int)o->a, (int)o->b, (int)o->c, (int)o->d, o->value);
    }
}

/* Forward + backward of `o` on the golden input; returns the output (arena of ctx). The input
 * gradient accumulates: callers zero it first. */
static da_tensor *run(da_ctx *ctx, da_tensor *x, op_args *o) {
    da_tensor *in[1] = {x};
    da_tensor *y = build_op(ctx, in, o);
    upstream(da_grad(ctx, y), y->numel);
    da_backward_from(ctx, y);
    return y;
}

/* Runs `o` forward + backward twice more on top of the gradient already in x->grad (equal to
 * `want`): backward must accumulate, giving 3 * want. */
static void check_accumulates(const char *name, da_tensor *x, op_args *o, const da_tensor *want, double tol) {
    da_ctx ctx;
    da_ctx_init(&ctx);
    run(&ctx, x, o);
    da_ctx_reset(&ctx);
    run(&ctx, x, o);
    float *w3 = malloc(sizeof(float) * (size_t)want->numel);
    for (int64_t i = 0; i < want->numel; i++) w3[i] = 3.0f * want->data[i];
    char what[160];
    snprintf(what, sizeof what, "%s: gradient accumulates over 3 backward passes", name);
    tu_close(what, x->grad, w3, (long)want->numel, 3 * tol, 3 * tol);
    free(w3);
    da_ctx_free(&ctx);
}

static void compare(const char *name, const char *part, const float *got, const da_tensor *want, int64_t n,
                    double tol) {
    char what[160];
    snprintf(what, sizeof what, "%s: %s vs torch", name, part);
    if (!want) return;
    CHECK(n == want->numel, "%s: %s has %lld elements, torch %lld", name, part, (long long)n, (long long)want->numel);
    if (n == want->numel) tu_close(what, got, want->data, (long)n, tol, tol);
}

/* Max pooling is not differentiable where two window entries tie: give gradcheck inputs whose
 * values are all at least 0.05 apart (a shuffled ramp), far more than the probe step. */
static void distinct_values(da_rng *rng, da_tensor *x) {
    int64_t *perm = malloc(sizeof(int64_t) * (size_t)x->numel);
    da_rng_permutation(rng, perm, x->numel);
    for (int64_t i = 0; i < x->numel; i++) x->data[i] = 0.05f * (float)(perm[i] - x->numel / 2);
    free(perm);
}

static void golden_pools(const st_file *f, da_rng *rng) {
    for (int k = 0;; k++) {
        char key[64], name[96];
        int64_t cfg[3];
        snprintf(key, sizeof key, "pool%d.cfg", k);
        if (!load_i64(f, key, cfg)) {
            CHECK(k >= 6, "expected 6 pooling goldens, found %d", k);
            break;
        }
        op_args o = {cfg[0] ? OP_MAX : OP_AVG, cfg[1], cfg[2], 0, 0, 0};
        snprintf(name, sizeof name, "%s_pool2d k%lld s%lld", cfg[0] ? "max" : "avg", (long long)cfg[1],
                 (long long)cfg[2]);
#define LOAD(var, suffix, rg) snprintf(key, sizeof key, "pool%d." suffix, k); da_tensor *var = load(f, key, rg)
        LOAD(x, "x", true);
        LOAD(gy, "y", false);
        LOAD(gdx, "dx", false);
#undef LOAD
        if (!x || !gy || !gdx) continue;
        da_ctx ctx;
        da_ctx_init(&ctx);
        da_tensor *y = run(&ctx, x, &o);
        CHECK(da_same_shape(y, gy), "%s: output shape", name);
        compare(name, "forward", y->data, gy, y->numel, 1e-6);
        compare(name, "d input", x->grad, gdx, x->numel, 1e-6);
        da_ctx_free(&ctx);
        check_accumulates(name, x, &o, gdx, 1e-6);
        if (o.kind == OP_MAX) distinct_values(rng, x);
        da_tensor *in[1] = {x};
        gradcheck(name, build_op, 1, in, &o, 1e-2f, 1e-3, 1e-3, 1000);
        da_tensor_free(x), da_tensor_free(gy), da_tensor_free(gdx);
    }
}

static void golden_resizes(const st_file *f) {
    static const char *modes[] = {"upsample_nearest2x", "resize_bilinear", "resize_bicubic"};
    for (int k = 0;; k++) {
        char key[64], name[128];
        int64_t cfg[3];
        snprintf(key, sizeof key, "resize%d.cfg", k);
        if (!load_i64(f, key, cfg)) {
            CHECK(k >= 8, "expected 8 resize goldens, found %d", k);
            break;
        }
        op_args o = {cfg[0] == 0 ? OP_NEAREST : cfg[0] == 1 ? OP_BILINEAR : OP_BICUBIC, cfg[1], cfg[2], 0, 0, 0};
        snprintf(key, sizeof key, "resize%d.x", k);
        da_tensor *x = load(f, key, true);
        snprintf(key, sizeof key, "resize%d.dx", k);
        da_tensor *gdx = load(f, key, false);
        if (!x || !gdx) continue;
        snprintf(name, sizeof name, "%s %lldx%lld -> %lldx%lld", modes[cfg[0]], (long long)x->shape[2],
                 (long long)x->shape[3], (long long)cfg[1], (long long)cfg[2]);
        da_ctx ctx;
        da_ctx_init(&ctx);
        da_tensor *y = run(&ctx, x, &o);
        CHECK(y->ndim == 4 && y->shape[2] == cfg[1] && y->shape[3] == cfg[2], "%s: output shape", name);
        snprintf(key, sizeof key, "resize%d.idx", k);
        int64_t idx[64];
        const st_tensor_info *ti = st_find(f, key);
        if (!ti) {
            snprintf(key, sizeof key, "resize%d.y", k);
            da_tensor *gy = load(f, key, false);
            compare(name, "forward", y->data, gy, y->numel, 1e-5);
            da_tensor_free(gy);
        } else if (ti->numel <= 64 && load_i64(f, key, idx)) {
            /* big outputs: the stored rows (full width) and columns (full height) */
            int64_t planes = y->shape[0] * y->shape[1], OH = y->shape[2], OW = y->shape[3], m = ti->numel;
            float *rows = malloc(sizeof(float) * (size_t)(planes * m * OW));
            float *cols = malloc(sizeof(float) * (size_t)(planes * OH * m));
            for (int64_t p = 0; p < planes; p++)
                for (int64_t i = 0; i < m; i++) {
                    memcpy(rows + (p * m + i) * OW, y->data + (p * OH + idx[i]) * OW, sizeof(float) * (size_t)OW);
                    for (int64_t r = 0; r < OH; r++) cols[(p * OH + r) * m + i] = y->data[(p * OH + r) * OW + idx[i]];
                }
            snprintf(key, sizeof key, "resize%d.y_rows", k);
            da_tensor *gr = load(f, key, false);
            snprintf(key, sizeof key, "resize%d.y_cols", k);
            da_tensor *gc = load(f, key, false);
            compare(name, "forward rows", rows, gr, planes * m * OW, 1e-5);
            compare(name, "forward columns", cols, gc, planes * OH * m, 1e-5);
            free(rows), free(cols);
            da_tensor_free(gr), da_tensor_free(gc);
        } else {
            CHECK(0, "%s: unreadable index list", name);
        }
        compare(name, "d input", x->grad, gdx, x->numel, 1e-5);
        da_ctx_free(&ctx);
        check_accumulates(name, x, &o, gdx, 1e-5);
        /* finite differences, skipped for the big 224x224 output (covered by the golden) */
        if (cfg[1] * cfg[2] <= 4096) {
            da_tensor *in[1] = {x};
            gradcheck(name, build_op, 1, in, &o, 1e-2f, 1e-3, 1e-3, 1000);
        }
        da_tensor_free(x), da_tensor_free(gdx);
    }
}

static void golden_crop_pad(const st_file *f) {
    for (int k = 0; k < 2; k++) {
        const char *op = k ? "pad" : "crop";
        char key[64], name[64];
        int64_t cfg[4];
        snprintf(key, sizeof key, "%s.cfg", op);
        if (!load_i64(f, key, cfg)) {
            CHECK(0, "golden %s missing", key);
            continue;
        }
        op_args o = {k ? OP_PAD : OP_CROP, cfg[0], cfg[1], cfg[2], cfg[3], 0.5f};
        snprintf(name, sizeof name, "%s %lld,%lld,%lld,%lld", op, (long long)cfg[0], (long long)cfg[1],
                 (long long)cfg[2], (long long)cfg[3]);
        snprintf(key, sizeof key, "%s.x", op);
        da_tensor *x = load(f, key, true);
        snprintf(key, sizeof key, "%s.y", op);
        da_tensor *gy = load(f, key, false);
        snprintf(key, sizeof key, "%s.dx", op);
        da_tensor *gdx = load(f, key, false);
        if (!x || !gy || !gdx) continue;
        da_ctx ctx;
        da_ctx_init(&ctx);
        da_tensor *y = run(&ctx, x, &o);
        CHECK(da_same_shape(y, gy), "%s: output shape", name);
        compare(name, "forward", y->data, gy, y->numel, 0);
        compare(name, "d input", x->grad, gdx, x->numel, 0);
        da_ctx_free(&ctx);
        check_accumulates(name, x, &o, gdx, 0);
        da_tensor *in[1] = {x};
        gradcheck(name, build_op, 1, in, &o, 1e-2f, 1e-3, 1e-3, 1000);
        da_tensor_free(x), da_tensor_free(gy), da_tensor_free(gdx);
    }
}

/* Extra finite-difference configurations beyond the goldens: batch > 1 and odd sizes. */
static void extra_gradchecks(da_rng *rng) {
    struct {
        const char *name;
        int64_t shape[4];
        op_args o;
    } cases[] = {
        {"bicubic 3x2 batch, 7x5 -> 4x9", {3, 2, 7, 5}, {OP_BICUBIC, 4, 9, 0, 0, 0}},
        {"bicubic 1x1 -> 3x2", {1, 1, 1, 1}, {OP_BICUBIC, 3, 2, 0, 0, 0}},
        {"bilinear batch, 6x4 -> 3x7", {2, 3, 6, 4}, {OP_BILINEAR, 3, 7, 0, 0, 0}},
        {"nearest x2 batch, 3x5", {3, 2, 3, 5}, {OP_NEAREST, 0, 0, 0, 0, 0}},
        {"avg_pool k2 s1 batch", {3, 2, 5, 4}, {OP_AVG, 2, 1, 0, 0, 0}},
        {"crop full width", {2, 2, 5, 4}, {OP_CROP, 1, 0, 3, 4, 0}},
        {"pad right/bottom", {2, 2, 3, 4}, {OP_PAD, 0, 1, 0, 1, 0}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        da_tensor *in[1] = {gc_input(rng, 4, cases[i].shape, 1.0f)};
        gradcheck(cases[i].name, build_op, 1, in, &cases[i].o, 1e-2f, 1e-3, 1e-3, 1000);
        da_tensor_free(in[0]);
    }
    /* max pooling with overlapping windows (stride < kernel) and batch > 1 */
    da_tensor *x = da_persistent(DA_SHAPE(2, 3, 7, 6), true);
    distinct_values(rng, x);
    op_args o = {OP_MAX, 3, 1, 0, 0, 0};
    gradcheck("max_pool k3 s1 overlapping", build_op, 1, &x, &o, 1e-2f, 1e-3, 1e-3, 1000);
    da_tensor_free(x);
}

int main(void) {
    da_rng rng;
    da_rng_init(&rng, 5);
    st_file f;
    char err[512];
    if (st_open(GOLDEN, &f, err, sizeof err) != 0) {
        fprintf(stderr, "FAIL: %s (regenerate with /usr/bin/python3 tests/golden/gen_ops_spatial.py)\n", err);
        return 1;
    }
    golden_pools(&f, &rng);
    golden_resizes(&f);
    golden_crop_pad(&f);
    st_close(&f);
    extra_gradchecks(&rng);
    return tu_finish("test_ops_resize_pool");
}
