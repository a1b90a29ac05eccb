/* transforms.c — centre crop, bilinear resize (PyTorch's align_corners=False maths), padding,
 * channel conversion, and the seeded choice of images by class, take and skip. */
#include "data/transforms.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/rng.h"
#include "tensor/tensor.h"

/* One output coordinate's two source taps and weights, as PyTorch computes them in float. */
typedef struct {
    int i0, i1;
    float l0, l1;
} taps;

static void compute_taps(int in, int out, taps *t) {
    float scale = (float)in / (float)out;
    for (int d = 0; d < out; d++) {
        float src = scale * ((float)d + 0.5f) - 0.5f;
        if (src < 0.0f) src = 0.0f;
        int i0 = (int)src;
        if (i0 > in - 1) i0 = in - 1;
        float l1 = src - (float)i0;
        if (l1 > 1.0f) l1 = 1.0f;
        t[d].i0 = i0;
        t[d].i1 = i0 < in - 1 ? i0 + 1 : i0;
        t[d].l1 = l1;
        t[d].l0 = 1.0f - l1;
    }
}

void da_image_resize_bilinear(const float *in, int c, int ih, int iw, float *out, int oh, int ow) {
    da_check(c > 0 && ih > 0 && iw > 0 && oh > 0 && ow > 0, "resize", "bad sizes %d,%d,%d → %d,%d", c, ih, iw, oh, ow);
    taps *ty = malloc(sizeof(taps) * (size_t)oh), *tx = malloc(sizeof(taps) * (size_t)ow);
    da_check(ty && tx, "resize", "out of memory");
    compute_taps(ih, oh, ty);
    compute_taps(iw, ow, tx);
    for (int k = 0; k < c; k++) {
        const float *p = in + (size_t)k * (size_t)ih * (size_t)iw;          /* (ih,iw) */
        float *q = out + (size_t)k * (size_t)oh * (size_t)ow;               /* (oh,ow) */
        for (int y = 0; y < oh; y++) {
            const float *r0 = p + (size_t)ty[y].i0 * (size_t)iw, *r1 = p + (size_t)ty[y].i1 * (size_t)iw;
            float h0 = ty[y].l0, h1 = ty[y].l1;
            for (int x = 0; x < ow; x++) {
                int a = tx[x].i0, b = tx[x].i1;
                float w0 = tx[x].l0, w1 = tx[x].l1;
                q[(size_t)y * (size_t)ow + (size_t)x] = h0 * (w0 * r0[a] + w1 * r0[b]) + h1 * (w0 * r1[a] + w1 * r1[b]);
            }
        }
    }
    free(ty);
    free(tx);
}

void da_center_crop_square(const float *in, int c, int h, int w, float *out) {
    int side = h < w ? h : w;
    int top = (h - side) / 2, left = (w - side) / 2;
    for (int k = 0; k < c; k++)
        for (int y = 0; y < side; y++)
            memcpy(out + ((size_t)k * (size_t)side + (size_t)y) * (size_t)side,
                   in + ((size_t)k * (size_t)h + (size_t)(top + y)) * (size_t)w + (size_t)left, sizeof(float) * (size_t)side);
}

void da_pad_image(const float *in, int c, int h, int w, int pad, float value, float *out) {
    int oh = h + 2 * pad, ow = w + 2 * pad;
    for (size_t i = 0; i < (size_t)c * (size_t)oh * (size_t)ow; i++) out[i] = value;
    for (int k = 0; k < c; k++)
        for (int y = 0; y < h; y++)
            memcpy(out + ((size_t)k * (size_t)oh + (size_t)(y + pad)) * (size_t)ow + (size_t)pad,
                   in + ((size_t)k * (size_t)h + (size_t)y) * (size_t)w, sizeof(float) * (size_t)w);
}

void da_convert_channels(const float *in, int c_in, int h, int w, float *out, int c_out) {
    da_check((c_in == 1 || c_in == 3) && (c_out == 1 || c_out == 3), "convert_channels", "%d → %d", c_in, c_out);
    size_t plane = (size_t)h * (size_t)w;
    if (c_in == c_out) {
        memcpy(out, in, sizeof(float) * plane * (size_t)c_in);
    } else if (c_out == 1) {
        for (size_t p = 0; p < plane; p++) out[p] = 0.299f * in[p] + 0.587f * in[plane + p] + 0.114f * in[2 * plane + p];
    } else {
        for (int k = 0; k < 3; k++) memcpy(out + (size_t)k * plane, in, sizeof(float) * plane);
    }
}

int da_parse_classes(const char *spec, int64_t **classes, int *n, char *err, size_t errlen) {
    *classes = NULL;
    *n = 0;
    int cap = 1;
    for (const char *p = spec; *p; p++) cap += *p == ',';
    int64_t *out = malloc(sizeof(int64_t) * (size_t)cap);
    da_check(out != NULL, "data", "out of memory");
    int count = 0;
    const char *p = spec;
    for (;;) {
        while (*p == ' ') p++;
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno) {
            snprintf(err, errlen, "--classes \"%s\": expected a comma-separated list of class numbers, e.g. \"5,7\"", spec);
            free(out);
            return -1;
        }
        if (v < 0) {
            snprintf(err, errlen, "--classes \"%s\": class %lld is negative; class labels are 0, 1, 2, ...", spec, v);
            free(out);
            return -1;
        }
        for (int i = 0; i < count; i++)
            if (out[i] == v) {
                snprintf(err, errlen, "--classes \"%s\": class %lld is listed twice", spec, v);
                free(out);
                return -1;
            }
        out[count++] = v;
        p = end;
        while (*p == ' ') p++;
        if (*p == '\0') break;
        if (*p != ',') {
            snprintf(err, errlen, "--classes \"%s\": unexpected '%c'; expected a comma-separated list such as \"5,7\"", spec, *p);
            free(out);
            return -1;
        }
        p++;
    }
    *classes = out;
    *n = count;
    return 0;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int da_select(int64_t n, const int64_t *labels, const da_data_opts *opts, const char *what, int64_t **idx,
              int64_t *count, int64_t **new_labels, char *err, size_t errlen) {
    *idx = NULL;
    *new_labels = NULL;
    *count = 0;
    if (opts->take < 0 || opts->skip < 0) {
        snprintf(err, errlen, "%s: take (%lld) and skip (%lld) must not be negative", what, (long long)opts->take,
                 (long long)opts->skip);
        return -1;
    }
    int64_t *keep = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    int64_t *lab = labels ? malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1)) : NULL;
    da_check(keep && (!labels || lab), "data", "out of memory");
    int64_t m = 0;
    if (opts->classes && opts->classes[0]) {
        if (!labels) {
            snprintf(err, errlen, "%s: --classes needs labels, but this data set has none (a folder needs a labels.csv)", what);
            free(keep);
            return -1;
        }
        int64_t *cls;
        int ncls;
        if (da_parse_classes(opts->classes, &cls, &ncls, err, errlen)) {
            free(keep);
            free(lab);
            return -1;
        }
        for (int64_t i = 0; i < n; i++)
            for (int k = 0; k < ncls; k++)
                if (labels[i] == cls[k]) {
                    keep[m] = i;
                    lab[m] = k;
                    m++;
                    break;
                }
        free(cls);
        if (m == 0) {
            int64_t lo = 0, hi = -1;
            for (int64_t i = 0; i < n; i++) {
                if (i == 0 || labels[i] < lo) lo = labels[i];
                if (i == 0 || labels[i] > hi) hi = labels[i];
            }
            snprintf(err, errlen, "%s: no image has a label in --classes \"%s\" (its labels run from %lld to %lld)", what,
                     opts->classes, (long long)lo, (long long)hi);
            free(keep);
            free(lab);
            return -1;
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            keep[i] = i;
            if (lab) lab[i] = labels[i];
        }
        m = n;
    }
    if (m == 0) {
        snprintf(err, errlen, "%s: the data set is empty", what);
        free(keep);
        free(lab);
        return -1;
    }
    if (opts->take > 0 || opts->skip > 0) {
        if (opts->skip >= m || (opts->take > 0 && opts->take > m - opts->skip)) {
            snprintf(err, errlen, "%s: asked to skip %lld and take %lld images, but only %lld are there%s", what,
                     (long long)opts->skip, (long long)opts->take, (long long)m,
                     opts->classes ? " after --classes" : "");
            free(keep);
            free(lab);
            return -1;
        }
        int64_t *perm = malloc(sizeof(int64_t) * (size_t)m);
        da_check(perm != NULL, "data", "out of memory");
        da_rng rng;
        da_rng_init(&rng, opts->seed);
        da_rng_permutation(&rng, perm, m);
        int64_t k = opts->take > 0 ? opts->take : m - opts->skip;
        /* positions into keep[], sorted so that the output keeps the source order */
        int64_t *pos = perm + opts->skip;
        qsort(pos, (size_t)k, sizeof(int64_t), cmp_i64);
        int64_t *keep2 = malloc(sizeof(int64_t) * (size_t)k);
        int64_t *lab2 = lab ? malloc(sizeof(int64_t) * (size_t)k) : NULL;
        da_check(keep2 && (!lab || lab2), "data", "out of memory");
        for (int64_t i = 0; i < k; i++) {
            keep2[i] = keep[pos[i]];
            if (lab) lab2[i] = lab[pos[i]];
        }
        free(perm);
        free(keep);
        free(lab);
        keep = keep2;
        lab = lab2;
        m = k;
    }
    *idx = keep;
    *new_labels = lab;
    *count = m;
    return 0;
}
