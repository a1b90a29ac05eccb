/* test_params.c — the parameter registry: registration, init bounds, save/load round trip with
 * metadata, strict-load errors (missing key, wrong shape, unexpected keys, integer dtype),
 * "module." prefixes, sub-model prefixes and the FNV-1a hash. */
#include <unistd.h>

#include "nn/params.h"
#include "test_util.h"

static char ERR[1024];

static void make_model(da_params *p, da_rng *r) {
    da_params_init(p);
    da_tensor *w = da_params_add(p, "fc1.weight", 2, (const int64_t[]){4, 3});
    da_tensor *b = da_params_add(p, "fc1.bias", 1, (const int64_t[]){4});
    da_tensor *c = da_params_add(p, "conv.weight", 4, (const int64_t[]){2, 3, 3, 3});
    da_params_add(p, "norm.weight", 1, (const int64_t[]){2});
    da_init_torch_default(w, b, 0, r);
    da_init_torch_default(c, NULL, 0, r);
    da_init_const(da_params_find(p, "norm.weight"), 1.0f);
}

static int same_values(const da_params *a, const da_params *b) {
    if (a->n != b->n) return 0;
    for (int i = 0; i < a->n; i++)
        if (a->items[i].t->numel != b->items[i].t->numel ||
            memcmp(a->items[i].t->data, b->items[i].t->data, sizeof(float) * (size_t)a->items[i].t->numel))
            return 0;
    return 1;
}

int main(void) {
    char dir[] = "/tmp/da_test_params_XXXXXX";
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    char path[512], path2[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(path2, sizeof path2, "%s/other.safetensors", dir);
    da_rng r;
    da_rng_init(&r, 3);

    /* registration */
    da_params p;
    make_model(&p, &r);
    CHECK(p.n == 4, "n %d", p.n);
    CHECK(da_params_count(&p) == 12 + 4 + 54 + 2, "count %lld", (long long)da_params_count(&p));
    CHECK(!strcmp(p.items[0].name, "fc1.weight") && !strcmp(p.items[3].name, "norm.weight"), "order");
    da_tensor *w = da_params_find(&p, "fc1.weight");
    CHECK(w && w->persistent && w->requires_grad && w->grad && !strcmp(w->name, "fc1.weight"), "tensor flags");
    CHECK(da_params_find(&p, "fc1") == NULL, "prefix is not a match");

    /* init bounds: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
    CHECK(da_fan_in(w) == 3 && da_fan_in(da_params_find(&p, "conv.weight")) == 27, "fan_in");
    float bw = 1.0f / sqrtf(3.0f), bc = 1.0f / sqrtf(27.0f), maxw = 0, maxc = 0;
    for (int i = 0; i < 12; i++) maxw = fmaxf(maxw, fabsf(w->data[i]));
    da_tensor *c = da_params_find(&p, "conv.weight");
    for (int i = 0; i < 54; i++) maxc = fmaxf(maxc, fabsf(c->data[i]));
    CHECK(maxw <= bw && maxw > 0.5f * bw, "linear init max %g bound %g", maxw, bw);
    CHECK(maxc <= bc && maxc > 0.5f * bc, "conv init max %g bound %g", maxc, bc);
    float m = 0;
    da_tensor *big = da_persistent(1, (const int64_t[]){4000}, false);
    da_init_normal(big, &r, 2.0f, 0.5f);
    for (int i = 0; i < 4000; i++) m += big->data[i];
    CHECK(fabsf(m / 4000 - 2.0f) < 0.05f, "normal mean %g", m / 4000);
    da_init_uniform(big, &r, -3.0f, -1.0f);
    float lo = 0, hi = -10;
    for (int i = 0; i < 4000; i++) { lo = fminf(lo, big->data[i]); hi = fmaxf(hi, big->data[i]); }
    CHECK(lo >= -3.0f && hi < -1.0f && lo < -2.9f && hi > -1.1f, "uniform range [%g,%g]", lo, hi);
    da_tensor_free(big);

    /* zero_grad */
    w->grad[5] = 3.0f;
    da_params_zero_grad(&p);
    CHECK(w->grad[5] == 0.0f, "zero_grad");

    /* hash: FNV-1a test vectors, then content sensitivity */
    CHECK(da_fnv1a64(DA_FNV1A64_INIT, "", 0) == 0xcbf29ce484222325ULL, "fnv empty");
    CHECK(da_fnv1a64(DA_FNV1A64_INIT, "a", 1) == 0xaf63dc4c8601ec8cULL, "fnv a");
    CHECK(da_fnv1a64(DA_FNV1A64_INIT, "foobar", 6) == 0x85944171f73967e8ULL, "fnv foobar");
    char h1[17], h2[17], h3[17];
    da_params_hash(&p, h1);
    CHECK(strlen(h1) == 16, "hash length");

    /* save with metadata, load into a fresh registry of the same shapes */
    CHECK(da_params_save(&p, path, (const char *[]){"arch", "test-mlp", "step", "7", NULL}, ERR, sizeof ERR) == 0, "%s", ERR);
    da_params q;
    da_rng r2;
    da_rng_init(&r2, 99);
    make_model(&q, &r2);
    CHECK(!same_values(&p, &q), "different seeds give the same model");
    da_params_hash(&q, h2);
    CHECK(strcmp(h1, h2) != 0, "hash ignores the values");
    CHECK(da_params_load_file(&q, path, NULL, 0, ERR, sizeof ERR) == 0, "load: %s", ERR);
    CHECK(same_values(&p, &q), "values differ after save/load");
    da_params_hash(&q, h2);
    CHECK(!strcmp(h1, h2), "hash differs for equal models: %s %s", h1, h2);
    q.items[2].t->data[10] += 1e-6f;
    da_params_hash(&q, h3);
    CHECK(strcmp(h1, h3) != 0, "hash misses a one-value change");
    st_file f;
    CHECK(st_open(path, &f, ERR, sizeof ERR) == 0, "%s", ERR);
    CHECK(st_meta_get(&f, "arch") && !strcmp(st_meta_get(&f, "arch"), "test-mlp") && st_meta_get(&f, "step"), "metadata");
    CHECK(f.n_tensors == 4 && !strcmp(f.tensors[0].name, "fc1.weight"), "file order");
    st_close(&f);
    da_params_free(&q);

    /* missing keys: the first in registration order and how many */
    da_params_init(&q);
    da_params_add(&q, "fc1.weight", 2, (const int64_t[]){4, 3});
    da_params_add(&q, "fc2.weight", 2, (const int64_t[]){4, 3});
    da_params_add(&q, "fc2.bias", 1, (const int64_t[]){4});
    CHECK(da_params_load_file(&q, path, NULL, DA_LOAD_ALLOW_EXTRA | DA_LOAD_QUIET, ERR, sizeof ERR) == -1, "missing accepted");
    CHECK(strstr(ERR, "missing key 'fc2.weight'") && strstr(ERR, "2 of 3") && strstr(ERR, path), "missing message: %s", ERR);
    CHECK(q.items[0].t->data[0] == 0.0f, "a failed load changed a parameter");
    da_params_free(&q);

    /* wrong shape: both shapes named, nothing changed */
    da_params_init(&q);
    da_params_add(&q, "fc1.weight", 2, (const int64_t[]){3, 4});
    CHECK(da_params_load_file(&q, path, NULL, DA_LOAD_ALLOW_EXTRA | DA_LOAD_QUIET, ERR, sizeof ERR) == -1, "shape accepted");
    CHECK(strstr(ERR, "shape mismatch for 'fc1.weight'") && strstr(ERR, "(4,3)") && strstr(ERR, "(3,4)"), "shape message: %s", ERR);
    CHECK(q.items[0].t->data[0] == 0.0f, "a failed load changed a parameter");
    da_params_free(&q);

    /* unexpected keys: an error by default, a count with ALLOW_EXTRA */
    da_params_init(&q);
    da_params_add(&q, "fc1.weight", 2, (const int64_t[]){4, 3});
    da_params_add(&q, "fc1.bias", 1, (const int64_t[]){4});
    CHECK(da_params_load_file(&q, path, NULL, 0, ERR, sizeof ERR) == -1, "extra keys accepted in strict mode");
    CHECK(strstr(ERR, "2 unexpected keys") && strstr(ERR, "'conv.weight'"), "extra message: %s", ERR);
    CHECK(q.items[0].t->data[0] == 0.0f, "a failed load changed a parameter");
    CHECK(st_open(path, &f, ERR, sizeof ERR) == 0, "%s", ERR);
    int n_extra = -1;
    CHECK(da_params_load(&q, &f, NULL, DA_LOAD_ALLOW_EXTRA | DA_LOAD_QUIET, &n_extra, ERR, sizeof ERR) == 0, "%s", ERR);
    CHECK(n_extra == 2, "n_extra %d", n_extra);
    CHECK(!memcmp(q.items[0].t->data, p.items[0].t->data, 12 * sizeof(float)), "values after partial load");
    /* a sub-model prefix: "fc1." selects weight and bias only, strict */
    da_params q2;
    da_params_init(&q2);
    da_params_add(&q2, "weight", 2, (const int64_t[]){4, 3});
    da_params_add(&q2, "bias", 1, (const int64_t[]){4});
    CHECK(da_params_load(&q2, &f, "fc1.", 0, &n_extra, ERR, sizeof ERR) == 0 && n_extra == 0, "prefix load: %s", ERR);
    CHECK(!memcmp(q2.items[1].t->data, p.items[1].t->data, 4 * sizeof(float)), "prefix values");
    CHECK(da_params_load(&q2, &f, "fc9.", 0, NULL, ERR, sizeof ERR) == -1 && strstr(ERR, "'fc9.weight'"), "bad prefix: %s", ERR);
    da_params_free(&q2);
    st_close(&f);
    da_params_free(&q);

    /* an integer tensor under a registered name */
    {
        st_writer *sw = st_writer_new();
        int64_t iv[2] = {1, 2};
        st_writer_add_i64(sw, "x", 1, (const int64_t[]){2}, iv);
        CHECK(st_writer_save(sw, path2, ERR, sizeof ERR) == 0, "%s", ERR);
        st_writer_free(sw);
        da_params_init(&q);
        da_params_add(&q, "x", 1, (const int64_t[]){2});
        CHECK(da_params_load_file(&q, path2, NULL, 0, ERR, sizeof ERR) == -1 && strstr(ERR, "I64"), "int dtype: %s", ERR);
        da_params_free(&q);
    }

    /* DataParallel golden file: "module." stripped, int64 position_ids ignored even when strict */
    float wref[12], bref[3];
    int have_ref = 0;
    if (st_open("golden/safetensors_dtypes.safetensors", &f, ERR, sizeof ERR) == 0) {
        const st_tensor_info *a = st_find(&f, "module_weight_ref"), *b = st_find(&f, "module_bias_ref");
        have_ref = a && b && !st_read_f32(&f, a, wref, ERR, sizeof ERR) && !st_read_f32(&f, b, bref, ERR, sizeof ERR);
        /* F16 parameters are converted on load */
        da_params_init(&q);
        da_params_add(&q, "f16", 2, (const int64_t[]){3, 5});
        CHECK(da_params_load(&q, &f, NULL, DA_LOAD_ALLOW_EXTRA | DA_LOAD_QUIET, NULL, ERR, sizeof ERR) == 0, "%s", ERR);
        float ref[15];
        CHECK(st_read_f32(&f, st_find(&f, "f16_as_f32"), ref, ERR, sizeof ERR) == 0, "%s", ERR);
        tu_close("f16 param", q.items[0].t->data, ref, 15, 0, 0);
        da_params_free(&q);
        st_close(&f);
    }
    CHECK(have_ref, "golden reference values: %s", ERR);
    da_params_init(&q);
    da_params_add(&q, "weight", 2, (const int64_t[]){3, 4});
    da_params_add(&q, "bias", 1, (const int64_t[]){3});
    CHECK(da_params_load_file(&q, "golden/safetensors_module.safetensors", NULL, 0, ERR, sizeof ERR) == 0,
          "module. file: %s", ERR);
    if (have_ref) {
        tu_close("module.weight", q.items[0].t->data, wref, 12, 0, 0);
        tu_close("module.bias", q.items[1].t->data, bref, 3, 0, 0);
    }
    da_params_free(&q);

    /* a missing file names the path */
    snprintf(path2, sizeof path2, "%s/none.safetensors", dir);
    make_model(&q, &r);
    CHECK(da_params_load_file(&q, path2, NULL, 0, ERR, sizeof ERR) == -1 && strstr(ERR, "none.safetensors"), "%s", ERR);
    da_params_free(&q);

    da_params_free(&p);
    unlink(path);
    snprintf(path2, sizeof path2, "%s/other.safetensors", dir);
    unlink(path2);
    rmdir(dir);
    return tu_finish("test_params");
}
