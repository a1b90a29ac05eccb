/* params.c — the named-parameter registry: registration, strict safetensors loading (missing,
 * shape and unexpected keys reported clearly), saving with metadata, init helpers and hashing. */
#include "nn/params.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/errf.h"

void da_params_init(da_params *p) {
    memset(p, 0, sizeof *p);
}

void da_params_free(da_params *p) {
    for (int i = 0; i < p->n; i++) {
        da_tensor_free(p->items[i].t);
        free(p->items[i].name);
    }
    free(p->items);
    memset(p, 0, sizeof *p);
}

da_tensor *da_params_add(da_params *p, const char *name, int ndim, const int64_t *shape) {
    da_check(name && name[0], "params_add", "empty parameter name");
    da_check(ndim >= 0 && ndim <= DA_MAX_DIMS, "params_add", "'%s': ndim %d out of range", name, ndim);
    da_check(da_params_find(p, name) == NULL, "params_add", "duplicate parameter name '%s'", name);
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 32;
        da_param *items = realloc(p->items, sizeof *items * (size_t)cap);
        da_check(items != NULL, "params_add", "out of memory");
        p->items = items;
        p->cap = cap;
    }
    da_tensor *t = da_persistent(ndim, shape, true);
    char *nm = strdup(name);
    da_check(nm != NULL, "params_add", "out of memory");
    t->name = nm;
    p->items[p->n++] = (da_param){nm, t};
    return t;
}

da_tensor *da_params_find(const da_params *p, const char *name) {
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->items[i].name, name)) return p->items[i].t;
    return NULL;
}

int64_t da_params_count(const da_params *p) {
    int64_t n = 0;
    for (int i = 0; i < p->n; i++) n += p->items[i].t->numel;
    return n;
}

void da_params_zero_grad(da_params *p) {
    for (int i = 0; i < p->n; i++) {
        da_tensor *t = p->items[i].t;
        if (t->grad) memset(t->grad, 0, sizeof(float) * (size_t)t->numel);
    }
}

/* ---- loading ----------------------------------------------------------------------------- */

static void shape_str(int ndim, const int64_t *shape, char *buf, size_t len) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, len - o, "(");
    for (int i = 0; i < ndim && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%" PRId64, i ? "," : "", shape[i]);
    if (o < len) snprintf(buf + o, len - o, ")");
}

static bool is_float_dtype(st_dtype d) {
    return d == ST_F32 || d == ST_F16 || d == ST_BF16 || d == ST_F64;
}

/* The name under which the registry would know file key s: "module." stripped, then prefix;
 * NULL when s lies outside the prefix. */
static const char *registry_name(const char *s, const char *prefix) {
    if (!strncmp(s, "module.", 7)) s += 7;
    size_t pl = prefix ? strlen(prefix) : 0;
    if (pl && strncmp(s, prefix, pl)) return NULL;
    return s + pl;
}

int da_params_load(da_params *p, const st_file *f, const char *prefix, int flags, int *n_extra,
                   char *err, size_t errlen) {
    const char *pre = prefix ? prefix : "";
    const st_tensor_info **found = calloc((size_t)(p->n ? p->n : 1), sizeof *found);
    char *full = NULL;
    float *scratch = NULL;
    size_t full_cap = 0;
    int rc = -1, missing = 0, first_missing = -1, extra = 0, first_extra = -1;
    if (n_extra) *n_extra = 0;
    if (!found) { da_errf(err, errlen, "out of memory"); return -1; }

    /* 1. every registered name present, with a float dtype and the same shape */
    for (int i = 0; i < p->n; i++) {
        size_t need = strlen(pre) + strlen(p->items[i].name) + 1;
        if (need > full_cap) {
            char *nf = realloc(full, need);
            if (!nf) { da_errf(err, errlen, "out of memory"); goto done; }
            full = nf;
            full_cap = need;
        }
        snprintf(full, full_cap, "%s%s", pre, p->items[i].name);
        found[i] = st_find(f, full);
        if (!found[i] && missing++ == 0) first_missing = i;
    }
    if (missing) {
        da_errf(err, errlen, "missing key '%s%s' (%d of %d expected keys are missing; the file has %d "
                "tensors) — is this the right checkpoint for this model%s?", pre, p->items[first_missing].name,
                missing, p->n, f->n_tensors, prefix && prefix[0] ? " and key prefix" : "");
        goto done;
    }
    for (int i = 0; i < p->n; i++) {
        const st_tensor_info *ti = found[i];
        da_tensor *t = p->items[i].t;
        if (!is_float_dtype(ti->dtype)) {
            da_errf(err, errlen, "'%s' has dtype %s in the file; a float tensor (F32/F16/BF16/F64) was expected",
                    ti->name, st_dtype_name(ti->dtype));
            goto done;
        }
        bool same = ti->ndim == t->ndim;
        for (int d = 0; same && d < t->ndim; d++) same = ti->shape[d] == t->shape[d];
        if (!same) {
            char fs[160], ms[160];
            shape_str(ti->ndim, ti->shape, fs, sizeof fs);
            shape_str(t->ndim, t->shape, ms, sizeof ms);
            da_errf(err, errlen, "shape mismatch for '%s': the file has %s, the model expects %s "
                    "(does the model config match the checkpoint?)", p->items[i].name, fs, ms);
            goto done;
        }
    }
    /* 2. unexpected float tensors (integer buffers such as position_ids are ignored) */
    for (int j = 0; j < f->n_tensors; j++) {
        const st_tensor_info *ti = &f->tensors[j];
        if (!is_float_dtype(ti->dtype)) continue;
        const char *rn = registry_name(ti->name, prefix);
        if (!rn || da_params_find(p, rn)) continue;
        if (extra++ == 0) first_extra = j;
    }
    if (n_extra) *n_extra = extra;
    if (extra && !(flags & DA_LOAD_ALLOW_EXTRA)) {
        da_errf(err, errlen, "%d unexpected key%s in the file, the first is '%s' (the model has %d "
                "parameters; wrong model config, or load with extra keys allowed)", extra, extra > 1 ? "s" : "",
                f->tensors[first_extra].name, p->n);
        goto done;
    }
    if (extra && !(flags & DA_LOAD_QUIET)) {
        fprintf(stderr, "warning: %d unexpected key%s in the file ignored:", extra, extra > 1 ? "s" : "");
        int shown = 0;
        for (int j = first_extra; j < f->n_tensors && shown < 5; j++) {
            const st_tensor_info *ti = &f->tensors[j];
            const char *rn = registry_name(ti->name, prefix);
            if (!is_float_dtype(ti->dtype) || !rn || da_params_find(p, rn)) continue;
            fprintf(stderr, " %s", ti->name);
            shown++;
        }
        fprintf(stderr, "%s\n", extra > shown ? " ..." : "");
    }
    /* 3. every value finite: one NaN weight turns every output into NaN (black images, NaN
     * latents), so refuse it here, before anything is changed */
    int64_t most = 1;
    for (int i = 0; i < p->n; i++)
        if (p->items[i].t->numel > most) most = p->items[i].t->numel;
    scratch = malloc(sizeof(float) * (size_t)most);
    if (!scratch) { da_errf(err, errlen, "out of memory"); goto done; }
    for (int i = 0; i < p->n; i++) {
        if (st_read_f32(f, found[i], scratch, err, errlen)) goto done;
        int64_t bad = da_count_nonfinite(scratch, p->items[i].t->numel);
        if (bad) {
            da_errf(err, errlen, "'%s' holds %" PRId64 " non-finite value%s (NaN or infinity) of %" PRId64
                    "; the file is damaged or was saved from a diverged run — use an earlier checkpoint",
                    found[i]->name, bad, bad > 1 ? "s" : "", p->items[i].t->numel);
            rc = -2;
            goto done;
        }
    }
    /* 4. all checks passed: copy */
    for (int i = 0; i < p->n; i++)
        if (st_read_f32(f, found[i], p->items[i].t->data, err, errlen)) goto done;
    rc = 0;
done:
    free(scratch);
    free(found);
    free(full);
    return rc;
}

int da_params_load_file(da_params *p, const char *path, const char *prefix, int flags,
                        char *err, size_t errlen) {
    st_file f;
    if (st_open(path, &f, err, errlen)) return -1;
    char inner[DA_ERR_LEN];
    int rc = da_params_load(p, &f, prefix, flags, NULL, inner, sizeof inner);
    if (rc) da_errf(err, errlen, "%s: %s", path, inner);
    st_close(&f);
    return rc;
}

int da_params_save(const da_params *p, const char *path, const char *const *meta, char *err, size_t errlen) {
    st_writer *w = st_writer_new();
    for (int i = 0; i < p->n; i++) {
        const da_tensor *t = p->items[i].t;
        st_writer_add_f32(w, p->items[i].name, t->ndim, t->shape, t->data);
    }
    for (int i = 0; meta && meta[i]; i += 2) {
        da_check(meta[i + 1] != NULL, "params_save", "metadata key '%s' has no value", meta[i]);
        st_writer_set_meta(w, meta[i], meta[i + 1]);
    }
    int rc = st_writer_save(w, path, err, errlen);
    st_writer_free(w);
    return rc;
}

/* ---- initialisation ---------------------------------------------------------------------- */

void da_init_uniform(da_tensor *t, da_rng *r, float lo, float hi) {
    da_rng_uniform(r, t->data, t->numel, lo, hi);
}

void da_init_normal(da_tensor *t, da_rng *r, float mean, float std) {
    da_rng_normal(r, t->data, t->numel, mean, std);
}

void da_init_const(da_tensor *t, float value) {
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = value;
}

int64_t da_fan_in(const da_tensor *w) {
    da_check(w->ndim >= 2, "fan_in", "weight '%s' needs at least 2 dims", w->name ? w->name : "?");
    int64_t fan = w->shape[1];
    for (int d = 2; d < w->ndim; d++) fan *= w->shape[d];
    return fan;
}

void da_init_torch_default(da_tensor *weight, da_tensor *bias, int64_t fan_in, da_rng *r) {
    if (fan_in <= 0) fan_in = da_fan_in(weight);
    /* gain sqrt(2/(1+5)) times sqrt(3/fan_in) = 1/sqrt(fan_in), the same bound as the bias */
    float bound = fan_in > 0 ? (float)(1.0 / sqrt((double)fan_in)) : 0.0f;
    da_init_uniform(weight, r, -bound, bound);
    if (bias) da_init_uniform(bias, r, -bound, bound);
}

/* ---- hashing ----------------------------------------------------------------------------- */

uint64_t da_fnv1a64(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

char *da_params_hash(const da_params *p, char *out) {
    uint64_t h = DA_FNV1A64_INIT;
    for (int i = 0; i < p->n; i++) {
        const da_tensor *t = p->items[i].t;
        h = da_fnv1a64(h, p->items[i].name, strlen(p->items[i].name) + 1);   /* with its NUL */
        int64_t nd = t->ndim;
        h = da_fnv1a64(h, &nd, sizeof nd);
        h = da_fnv1a64(h, t->shape, sizeof(int64_t) * (size_t)t->ndim);
        h = da_fnv1a64(h, t->data, sizeof(float) * (size_t)t->numel);
    }
    snprintf(out, 17, "%016" PRIx64, h);
    return out;
}
