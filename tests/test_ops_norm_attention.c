/* test_ops_norm_attention.c — group/layer norm, L2 normalisation, softmax and fused attention:
 * finite-difference gradient checks, and forward + backward values against PyTorch goldens. */
#include "gradcheck.h"
#include "io/safetensors.h"

/* ---- finite-difference checks ------------------------------------------------------------ */

typedef struct { int groups; float eps; bool affine; } gn_args;
static da_tensor *build_gn(da_ctx *ctx, da_tensor **in, void *u) {
    gn_args *a = u;
    return da_group_norm(ctx, in[0], a->affine ? in[1] : NULL, a->affine ? in[2] : NULL, a->groups, a->eps);
}

static da_tensor *build_ln(da_ctx *ctx, da_tensor **in, void *u) {
    bool affine = u != NULL;
    return da_layer_norm(ctx, in[0], affine ? in[1] : NULL, affine ? in[2] : NULL, 1e-5f);
}

static da_tensor *build_l2n(da_ctx *ctx, da_tensor **in, void *u) { return da_l2_normalize(ctx, in[0], 1e-12f); }

static da_tensor *build_softmax(da_ctx *ctx, da_tensor **in, void *u) { return da_softmax(ctx, in[0], u != NULL); }

typedef struct { bool causal; float scale; } att_args;
static da_tensor *build_att(da_ctx *ctx, da_tensor **in, void *u) {
    att_args *a = u;
    return da_attention(ctx, in[0], in[1], in[2], a->causal, a->scale);
}

static void free_all(da_tensor **t, int n) {
    for (int i = 0; i < n; i++) da_tensor_free(t[i]);
}

static void gradchecks(void) {
    da_rng rng;
    da_rng_init(&rng, 11);
    const float eps = 1e-2f;
    const double tol = 1e-3;

    /* group norm: C=8 in 4 groups with weight/bias; C=4 in 1 group without; 3-D input */
    {
        da_tensor *in[3] = {gc_input(&rng, DA_SHAPE(2, 8, 3, 3), 1.0f), gc_input(&rng, DA_SHAPE(8), 1.0f),
                            gc_input(&rng, DA_SHAPE(8), 1.0f)};
        for (int i = 0; i < in[0]->numel; i++) in[0]->data[i] += 0.5f;
        gn_args a = {4, 1e-6f, true};
        gradcheck("group_norm C=8 G=4 affine", build_gn, 3, in, &a, eps, tol, tol, 1000);
        free_all(in, 3);
    }
    {
        da_tensor *in[3] = {gc_input(&rng, DA_SHAPE(2, 4, 5), 1.0f), gc_input(&rng, DA_SHAPE(4), 1.0f),
                            gc_input(&rng, DA_SHAPE(4), 1.0f)};
        gn_args a = {1, 1e-5f, false};
        gradcheck("group_norm C=4 G=1", build_gn, 1, in, &a, eps, tol, tol, 1000);
        a.affine = true;
        gradcheck("group_norm C=4 G=1 affine", build_gn, 3, in, &a, eps, tol, tol, 1000);
        free_all(in, 3);
    }
    /* layer norm over the last dim, with and without weight/bias */
    {
        da_tensor *in[3] = {gc_input(&rng, DA_SHAPE(3, 2, 10), 1.0f), gc_input(&rng, DA_SHAPE(10), 1.0f),
                            gc_input(&rng, DA_SHAPE(10), 1.0f)};
        gradcheck("layer_norm affine", build_ln, 3, in, in, eps, tol, tol, 1000);
        gradcheck("layer_norm", build_ln, 1, in, NULL, eps, tol, tol, 1000);
        free_all(in, 3);
    }
    {
        da_tensor *x = gc_input(&rng, DA_SHAPE(4, 6), 1.0f);
        gradcheck("l2_normalize", build_l2n, 1, &x, NULL, eps, tol, tol, 1000);
        da_tensor_free(x);
    }
    /* softmax, plain and causal */
    {
        da_tensor *x = gc_input(&rng, DA_SHAPE(2, 3, 6), 1.5f);
        gradcheck("softmax", build_softmax, 1, &x, NULL, eps, tol, tol, 1000);
        da_tensor_free(x);
        x = gc_input(&rng, DA_SHAPE(2, 5, 5), 1.5f);
        gradcheck("softmax causal", build_softmax, 1, &x, x, eps, tol, tol, 1000);
        da_tensor_free(x);
    }
    /* attention: several heads, Tq != Tk, Dv != D, default scale */
    {
        da_tensor *in[3] = {gc_input(&rng, DA_SHAPE(2, 3, 4, 5), 0.7f), gc_input(&rng, DA_SHAPE(2, 3, 6, 5), 0.7f),
                            gc_input(&rng, DA_SHAPE(2, 3, 6, 3), 1.0f)};
        att_args a = {false, 0.0f};
        gradcheck("attention Tq!=Tk Dv!=D heads=3", build_att, 3, in, &a, eps, tol, tol, 1000);
        free_all(in, 3);
    }
    /* causal, custom scale, one (b,h) (the sequential path) and several (the per-head path) */
    {
        da_tensor *in[3] = {gc_input(&rng, DA_SHAPE(1, 1, 6, 4), 1.0f), gc_input(&rng, DA_SHAPE(1, 1, 6, 4), 1.0f),
                            gc_input(&rng, DA_SHAPE(1, 1, 6, 5), 1.0f)};
        att_args a = {true, 0.4f};
        gradcheck("attention causal scale=0.4", build_att, 3, in, &a, eps, tol, tol, 1000);
        free_all(in, 3);
    }
    {
        da_tensor *in[3] = {gc_input(&rng, DA_SHAPE(2, 4, 5, 4), 1.0f), gc_input(&rng, DA_SHAPE(2, 4, 5, 4), 1.0f),
                            gc_input(&rng, DA_SHAPE(2, 4, 5, 4), 1.0f)};
        att_args a = {true, 0.0f};
        gradcheck("attention causal heads=4", build_att, 3, in, &a, eps, tol, tol, 1000);
        a.causal = false;
        gradcheck("attention heads=4", build_att, 3, in, &a, eps, tol, tol, 1000);
        free_all(in, 3);
    }
    /* one long causal head: split into blocks of query rows / key columns across threads */
    {
        da_tensor *in[3] = {gc_input(&rng, DA_SHAPE(1, 1, 40, 6), 0.7f), gc_input(&rng, DA_SHAPE(1, 1, 40, 6), 0.7f),
                            gc_input(&rng, DA_SHAPE(1, 1, 40, 5), 1.0f)};
        att_args a = {true, 0.0f};
        gradcheck("attention causal T=40 one head", build_att, 3, in, &a, eps, tol, tol, 1000);
        free_all(in, 3);
    }
    /* self-attention with q = k = v one tensor: the three gradients must add up */
    {
        da_tensor *x = gc_input(&rng, DA_SHAPE(1, 2, 5, 4), 1.0f);
        da_tensor *in[3] = {x, x, x};
        att_args a = {false, 0.0f};
        gradcheck("attention q=k=v", build_att, 1, in, &a, eps, tol, tol, 1000);
        da_tensor_free(x);
    }
}

/* ---- goldens ------------------------------------------------------------------------------ */

static st_file gf;

/* A persistent copy of golden tensor `case.key` (requires grad), or NULL with a failure. */
static da_tensor *golden(const char *cs, const char *key) {
    char name[128], err[256];
    snprintf(name, sizeof name, "%s.%s", cs, key);
    const st_tensor_info *ti = st_find(&gf, name);
    if (!ti) {
        CHECK(ti != NULL, "golden tensor %s missing", name);
        return NULL;
    }
    da_tensor *t = da_persistent(ti->ndim, ti->shape, true);
    if (st_read_f32(&gf, ti, t->data, err, sizeof err) != 0) {
        CHECK(0, "%s", err);
        da_tensor_free(t);
        return NULL;
    }
    t->name = ti->name;
    return t;
}

/* Compares a computed tensor (data or gradient) with golden `case.key`. */
static void expect(const char *cs, const char *key, const float *got, int64_t n, double atol, double rtol) {
    da_tensor *ref = golden(cs, key);
    if (!ref) return;
    char what[128];
    snprintf(what, sizeof what, "%s.%s", cs, key);
    if (ref->numel != n) CHECK(ref->numel == n, "%s has %lld elements, computed %lld", what, (long long)ref->numel, (long long)n);
    else if (!got) CHECK(got != NULL, "%s: no gradient was computed", what);
    else tu_close(what, got, ref->data, (long)n, atol, rtol);
    da_tensor_free(ref);
}

typedef enum { OP_GN, OP_LN, OP_L2N, OP_SM, OP_ATT } golden_op;

/* Runs one golden case: loads the inputs, compares y, back-propagates gy and compares d<input>. */
static void golden_case(const char *cs, golden_op op, int n_in, const char *const *keys, int groups,
                        float eps, bool causal, float scale) {
    da_tensor *in[3] = {NULL, NULL, NULL};
    for (int i = 0; i < n_in; i++)
        if (!(in[i] = golden(cs, keys[i]))) { free_all(in, 3); return; }
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_tensor *y = NULL;
    switch (op) {
    case OP_GN: y = da_group_norm(&ctx, in[0], in[1], in[2], groups, eps); break;
    case OP_LN: y = da_layer_norm(&ctx, in[0], in[1], in[2], eps); break;
    case OP_L2N: y = da_l2_normalize(&ctx, in[0], eps); break;
    case OP_SM: y = da_softmax(&ctx, in[0], causal); break;
    case OP_ATT: y = da_attention(&ctx, in[0], in[1], in[2], causal, scale); break;
    }
    /* float32 against a float64 reference */
    expect(cs, "y", y->data, y->numel, 2e-5, 2e-5);
    da_tensor *gy = golden(cs, "gy");
    if (gy && gy->numel == y->numel) {
        memcpy(da_grad(&ctx, y), gy->data, sizeof(float) * (size_t)y->numel);
        da_backward_from(&ctx, y);
        for (int i = 0; i < n_in; i++) {
            char key[16];
            snprintf(key, sizeof key, "d%s", keys[i]);
            expect(cs, key, in[i]->grad, in[i]->numel, 5e-5, 5e-5);
        }
    } else {
        CHECK(gy && gy->numel == y->numel, "%s.gy missing or of the wrong size", cs);
    }
    da_tensor_free(gy);
    da_ctx_free(&ctx);
    free_all(in, 3);
}

static void goldens(void) {
    char err[256];
    if (st_open("golden/ops_norm_attention.safetensors", &gf, err, sizeof err) != 0) {
        CHECK(0, "cannot open the golden file: %s (run from tests/)", err);
        return;
    }
    const char *xwb[3] = {"x", "w", "b"}, *qkv[3] = {"q", "k", "v"};
    golden_case("gn32", OP_GN, 3, xwb, 32, 1e-6f, false, 0);
    golden_case("gn4", OP_GN, 3, xwb, 4, 1e-5f, false, 0);
    golden_case("gn3d", OP_GN, 1, xwb, 2, 1e-6f, false, 0);
    golden_case("ln", OP_LN, 3, xwb, 0, 1e-5f, false, 0);
    golden_case("ln_plain", OP_LN, 1, xwb, 0, 1e-5f, false, 0);
    golden_case("l2n", OP_L2N, 1, xwb, 0, 1e-12f, false, 0);
    golden_case("sm", OP_SM, 1, xwb, 0, 0, false, 0);
    golden_case("sm_causal", OP_SM, 1, xwb, 0, 0, true, 0);
    golden_case("att", OP_ATT, 3, qkv, 0, 0, false, 0.0f);
    golden_case("att_causal", OP_ATT, 3, qkv, 0, 0, true, 0.3f);
    golden_case("att_causal_rect", OP_ATT, 3, qkv, 0, 0, true, 0.0f);
    golden_case("att_big", OP_ATT, 3, qkv, 0, 0, false, 0.0f);
    golden_case("att_heads", OP_ATT, 3, qkv, 0, 0, true, -1.0f);
    st_close(&gf);
}

/* Without a tape, attention keeps one probability scratch per thread instead of (B,H,Tq,Tk):
 * the output must be the same either way, and no tape entry is recorded. */
static void inference_path(void) {
    da_rng rng;
    da_rng_init(&rng, 5);
    da_tensor *q = gc_input(&rng, DA_SHAPE(2, 3, 9, 8), 1.0f), *k = gc_input(&rng, DA_SHAPE(2, 3, 9, 8), 1.0f),
              *v = gc_input(&rng, DA_SHAPE(2, 3, 9, 8), 1.0f);
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_tensor *y1 = da_attention(&ctx, q, k, v, true, 0.0f);
    int tape = ctx.tape_len;
    da_set_grad(&ctx, false);
    da_tensor *y2 = da_attention(&ctx, q, k, v, true, 0.0f);
    CHECK(ctx.tape_len == tape && tape == 1, "tape length %d then %d", tape, ctx.tape_len);
    CHECK(memcmp(y1->data, y2->data, sizeof(float) * (size_t)y1->numel) == 0, "inference output differs");
    /* rows of probabilities sum to one: the output of v = 1 is 1 */
    for (int64_t i = 0; i < v->numel; i++) v->data[i] = 1.0f;
    da_tensor *ones = da_attention(&ctx, q, k, v, true, 0.0f);
    float expect1[2 * 3 * 9 * 8];
    for (int i = 0; i < 2 * 3 * 9 * 8; i++) expect1[i] = 1.0f;
    tu_close("attention of v = 1", ones->data, expect1, (long)ones->numel, 1e-6, 1e-6);
    da_ctx_free(&ctx);
    da_tensor_free(q);
    da_tensor_free(k);
    da_tensor_free(v);
}

int main(void) {
    gradchecks();
    goldens();
    inference_path();
    return tu_finish("test_ops_norm_attention");
}
