/* unet_golden_weights.h — the weights of the golden UNets (test_unet.c, test_torch_ckpt.c): a
 * 32-bit mix of (parameter index, element index) that golden/gen_unet.py repeats exactly, so
 * golden files need to store no weights, or can be checked against these. */
#ifndef DA_TEST_UNET_GOLDEN_WEIGHTS_H
#define DA_TEST_UNET_GOLDEN_WEIGHTS_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "nn/unet.h"

static double hash_u01(uint64_t k, uint64_t i) {
    uint64_t h = ((i + 1) * 0x9E3779B1ULL + (k + 1) * 0x85EBCA77ULL) & 0xFFFFFFFFULL;
    h ^= h >> 15;
    h = (h * 0x2C1B3C6DULL) & 0xFFFFFFFFULL;
    h ^= h >> 12;
    return (double)h / 4294967296.0;
}

static void set_golden_weights(da_unet *m) {
    for (int k = 0; k < m->params.n; k++) {
        da_tensor *t = m->params.items[k].t;
        const char *name = m->params.items[k].name;
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

#endif
