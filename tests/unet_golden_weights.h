/* unet_golden_weights.h — the weights of the golden UNets (test_unet.c, test_torch_ckpt.c,
 * test_adm_unet.c): a 32-bit mix of (parameter index, element index) that golden/gen_unet.py
 * repeats exactly, so golden files need to store no weights, or can be checked against these. */
#ifndef DA_TEST_UNET_GOLDEN_WEIGHTS_H
#define DA_TEST_UNET_GOLDEN_WEIGHTS_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "io/safetensors.h"
#include "nn/unet.h"
#include "test_util.h"

static inline double hash_u01(uint64_t k, uint64_t i) {
    uint64_t h = ((i + 1) * 0x9E3779B1ULL + (k + 1) * 0x85EBCA77ULL) & 0xFFFFFFFFULL;
    h ^= h >> 15;
    h = (h * 0x2C1B3C6DULL) & 0xFFFFFFFFULL;
    h ^= h >> 12;
    return (double)h / 4294967296.0;
}

static inline void set_golden_params(da_params *p) {
    for (int k = 0; k < p->n; k++) {
        da_tensor *t = p->items[k].t;
        const char *name = p->items[k].name;
        char dotted[400];
        snprintf(dotted, sizeof dotted, ".%s", name);
        size_t len = strlen(name);
        bool norm_w = t->ndim == 1 && strstr(dotted, ".norm") && len >= 6 && !strcmp(name + len - 6, "weight");
        for (int64_t i = 0; i < t->numel; i++) {
            double u = hash_u01((uint64_t)k, (uint64_t)i) * 2 - 1;
            double v = t->ndim == 1 ? (norm_w ? 1 + 0.1 * u : 0.1 * u) : u / sqrt((double)(t->numel / t->shape[0]));
            t->data[i] = (float)v;
        }
    }
}

static inline void set_golden_weights(da_unet *m) { set_golden_params(&m->params); }

/* A golden tensor as float32 (exits when it is missing: the golden file is wrong). */
static inline float *golden_f32(const st_file *f, const char *name, int64_t *numel) {
    const st_tensor_info *ti = st_find(f, name);
    if (!ti) { fprintf(stderr, "golden tensor %s missing\n", name); exit(1); }
    float *buf = malloc(sizeof(float) * (size_t)ti->numel);
    char err[256];
    if (st_read_f32(f, ti, buf, err, sizeof err)) { fprintf(stderr, "%s\n", err); exit(1); }
    if (numel) *numel = ti->numel;
    return buf;
}

/* Compares the gradient of every listed parameter with "<cfg>.grad.<name>" where the golden file
 * has it (tolerance scaled with the gradient's size: sums over many positions); returns how many
 * were compared. */
static inline int golden_check_grads(const st_file *g, const char *cfg, const da_params *p, const char *const *names,
                                     int n_names) {
    int n_checked = 0;
    char key[200], what[240];
    for (int i = 0; i < n_names; i++) {
        snprintf(key, sizeof key, "%s.grad.%s", cfg, names[i]);
        if (!st_find(g, key)) continue;
        int64_t n;
        float *ref = golden_f32(g, key, &n);
        da_tensor *t = da_params_find(p, names[i]);
        CHECK(t && t->numel == n, "config %s: parameter %s", cfg, names[i]);
        if (t && t->numel == n) {
            double mx = 0;
            for (int64_t j = 0; j < n; j++) mx = fmax(mx, fabs(ref[j]));
            snprintf(what, sizeof what, "config %s d/d %s", cfg, names[i]);
            tu_close(what, t->grad, ref, (long)n, 1e-4 * fmax(mx, 1.0), 1e-3);
            n_checked++;
        }
        free(ref);
    }
    return n_checked;
}

#endif
