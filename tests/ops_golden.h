/* ops_golden.h — helpers for tests that compare ops with golden/ops_basic.safetensors: load a
 * case's inputs, run the op, compare y, back-propagate gy and compare each input gradient. */
#ifndef DA_OPS_GOLDEN_H
#define DA_OPS_GOLDEN_H

#include "gradcheck.h"
#include "io/safetensors.h"

static st_file og_file;
static bool og_ok;

/* Opens the golden file once; a failure counts as a failed check. */
static inline bool og_open(void) {
    char err[256];
    og_ok = st_open("golden/ops_basic.safetensors", &og_file, err, sizeof err) == 0;
    CHECK(og_ok, "cannot open the golden file: %s (run from tests/; regenerate with gen_ops_basic.py)", err);
    return og_ok;
}

static inline void og_close(void) {
    if (og_ok) st_close(&og_file);
    og_ok = false;
}

/* A persistent float copy of golden tensor `cs.key`, or NULL after a failed check. */
static inline da_tensor *og_load(const char *cs, const char *key, bool requires_grad) {
    char name[128], err[256];
    snprintf(name, sizeof name, "%s.%s", cs, key);
    const st_tensor_info *ti = og_ok ? st_find(&og_file, name) : NULL;
    CHECK(ti != NULL, "golden tensor %s missing", name);
    if (!ti) return NULL;
    da_tensor *t = da_persistent(ti->ndim, ti->shape, requires_grad);
    int rc = st_read_f32(&og_file, ti, t->data, err, sizeof err);
    CHECK(rc == 0, "reading %s: %s", name, err);
    if (rc != 0) { da_tensor_free(t); return NULL; }
    return t;
}

/* Golden integer tensor `name` into a malloc'd array (numel in *n), or NULL after a failed check. */
static inline int64_t *og_load_i64(const char *name, int64_t *n) {
    char err[256];
    const st_tensor_info *ti = og_ok ? st_find(&og_file, name) : NULL;
    CHECK(ti != NULL, "golden tensor %s missing", name);
    if (!ti) return NULL;
    int64_t *v = malloc(sizeof(int64_t) * (size_t)(ti->numel ? ti->numel : 1));
    int rc = st_read_i64(&og_file, ti, v, err, sizeof err);
    CHECK(rc == 0, "reading %s: %s", name, err);
    if (rc != 0) { free(v); return NULL; }
    *n = ti->numel;
    return v;
}

/* Compares values (numel n, shape of t) with golden `cs.key`: shape and numbers. */
static inline void og_compare(const char *cs, const char *key, const da_tensor *shape_of, const float *vals,
                       double atol, double rtol) {
    da_tensor *ref = og_load(cs, key, false);
    if (!ref) return;
    char what[160], s1[96], s2[96];
    snprintf(what, sizeof what, "%s.%s", cs, key);
    bool same = da_same_shape(ref, shape_of);
    CHECK(same, "%s: shape %s, golden %s", what, da_shape_str(shape_of, s1, sizeof s1), da_shape_str(ref, s2, sizeof s2));
    if (same) {
        if (vals) tu_close(what, vals, ref->data, (long)ref->numel, atol, rtol);
        else CHECK(vals != NULL, "%s: no gradient reached the input", what);
    }
    da_tensor_free(ref);
}

/* Runs one golden case: inputs cs.<keys[i]> (those in grad_mask want gradients), build(), then
 * compares cs.y, back-propagates cs.gy and compares cs.d<key> for each input that wants one. */
static inline void og_case(const char *cs, gc_build_fn build, void *user, int n_in, const char *const *keys,
                    unsigned grad_mask, double atol, double rtol) {
    da_tensor *in[4] = {NULL, NULL, NULL, NULL};
    bool ok = true;
    for (int i = 0; i < n_in; i++) ok &= (in[i] = og_load(cs, keys[i], (grad_mask >> i) & 1)) != NULL;
    da_tensor *gy = ok ? og_load(cs, "gy", false) : NULL;
    if (ok && gy) {
        da_ctx ctx;
        da_ctx_init(&ctx);
        da_tensor *y = build(&ctx, in, user);
        og_compare(cs, "y", y, y->data, atol, rtol);
        CHECK(y->numel == gy->numel, "%s: output has %lld elements, gy %lld", cs, (long long)y->numel,
              (long long)gy->numel);
        if (y->numel == gy->numel && y->requires_grad) {
            memcpy(da_grad(&ctx, y), gy->data, sizeof(float) * (size_t)gy->numel);
            da_backward_from(&ctx, y);
            for (int i = 0; i < n_in; i++) {
                if (!((grad_mask >> i) & 1)) continue;
                char key[64];
                snprintf(key, sizeof key, "d%s", keys[i]);
                og_compare(cs, key, in[i], in[i]->grad, atol, rtol);
            }
        }
        da_ctx_free(&ctx);
    }
    da_tensor_free(gy);
    for (int i = 0; i < n_in; i++) da_tensor_free(in[i]);
}

#endif
