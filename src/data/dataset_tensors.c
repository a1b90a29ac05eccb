/* dataset_tensors.c — data sets stored as safetensors: `images` (N,C,H,W) float in [-1,1] and
 * optional integer `labels` (N); reading (as a source for da_dataset_load) and da_dataset_save. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/dataset_source.h"
#include "io/safetensors.h"

static bool is_float(st_dtype d) { return d == ST_F32 || d == ST_F16 || d == ST_BF16 || d == ST_F64; }

int da_source_safetensors(const char *path, da_source *s, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    s->kind = DA_SRC_F32;
    snprintf(s->what, sizeof s->what, "%s", path);
    if (st_open(path, &s->st, err, errlen)) return -1;
    s->st_opened = true;
    const st_tensor_info *im = st_find(&s->st, "images");
    if (!im) {
        snprintf(err, errlen, "%s has no tensor `images`; a data set file holds `images` (N,C,H,W) F32 in [-1,1] and optionally `labels` (N)", path);
        goto fail;
    }
    if (!is_float(im->dtype) || im->ndim != 4 || im->shape[0] < 1 || (im->shape[1] != 1 && im->shape[1] != 3) ||
        im->shape[2] < 1 || im->shape[3] < 1 || im->shape[2] > 65535 || im->shape[3] > 65535) {
        char shape[128] = "";
        for (int i = 0; i < im->ndim; i++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", i ? "," : "", (long long)im->shape[i]);
        snprintf(err, errlen, "%s: `images` is %s (%s); expected float (N,C,H,W) with C = 1 or 3", path,
                 st_dtype_name(im->dtype), shape);
        goto fail;
    }
    s->n = im->shape[0];
    s->c = (int)im->shape[1];
    s->h = (int)im->shape[2];
    s->w = (int)im->shape[3];
    if (im->dtype == ST_F32) {
        s->f32 = s->st.data + im->begin;
    } else {
        s->f32_owned = malloc(sizeof(float) * (size_t)im->numel);
        if (!s->f32_owned) {
            snprintf(err, errlen, "%s: out of memory converting `images` from %s", path, st_dtype_name(im->dtype));
            goto fail;
        }
        if (st_read_f32(&s->st, im, s->f32_owned, err, errlen)) goto fail;
        s->f32 = (const unsigned char *)s->f32_owned;
    }
    const st_tensor_info *lab = st_find(&s->st, "labels");
    if (lab) {
        if (is_float(lab->dtype) || lab->ndim != 1 || lab->shape[0] != s->n) {
            snprintf(err, errlen, "%s: `labels` must be integers (I64 or I32) of shape (%lld) to match `images`; found %s with %d dimensions%s",
                     path, (long long)s->n, st_dtype_name(lab->dtype), lab->ndim,
                     lab->ndim == 1 && lab->shape[0] != s->n ? " and another length" : "");
            goto fail;
        }
        s->labels = malloc(sizeof(int64_t) * (size_t)s->n);
        if (!s->labels) {
            snprintf(err, errlen, "%s: out of memory", path);
            goto fail;
        }
        if (st_read_i64(&s->st, lab, s->labels, err, errlen)) goto fail;
        for (int64_t i = 0; i < s->n; i++)
            if (s->labels[i] < 0) {
                snprintf(err, errlen, "%s: label %lld of image %lld is negative; labels are class numbers 0, 1, 2, ...", path,
                         (long long)s->labels[i], (long long)i);
                goto fail;
            }
    }
    return 0;
fail:
    da_source_free(s);
    return -1;
}

int da_dataset_save(const da_dataset *d, const char *path, char *err, size_t errlen) {
    if (!d || d->n < 1 || !d->images) {
        snprintf(err, errlen, "%s: nothing to save (the data set is empty)", path);
        return -1;
    }
    st_writer *w = st_writer_new();
    if (!w) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    int64_t shape[4] = {d->n, d->c, d->h, d->w};
    st_writer_add_f32(w, "images", 4, shape, d->images);
    if (d->labels) st_writer_add_i64(w, "labels", 1, shape, d->labels);
    int rc = st_writer_save(w, path, err, errlen);
    st_writer_free(w);
    return rc;
}
