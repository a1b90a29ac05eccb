/* dataset.c — da_dataset_load: recognises the data source, chooses images (classes, take, skip),
 * then decodes only the chosen ones and crops, resizes, pads and converts them in parallel. */
#include "data/dataset.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/dataset_source.h"
#include "data/image.h"
#include "data/transforms.h"
#include "util/files.h"

#define FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

void da_source_free(da_source *s) {
    free(s->labels);
    if (s->names)
        for (int64_t i = 0; i < s->n; i++) free(s->names[i]);
    free(s->names);
    if (s->paths)
        for (int64_t i = 0; i < s->n; i++) free(s->paths[i]);
    free(s->paths);
    free(s->orig_index);
    free(s->u8);
    free(s->f32_owned);
    if (s->st_opened) st_close(&s->st);
    memset(s, 0, sizeof *s);
}

void da_dataset_free(da_dataset *d) {
    if (!d) return;
    free(d->images);
    free(d->labels);
    if (d->names)
        for (int64_t i = 0; i < d->n; i++) free(d->names[i]);
    free(d->names);
    free(d->source_index);
    memset(d, 0, sizeof *d);
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static bool starts_with_gzip_magic(const char *path) {
    unsigned char m[2] = {0, 0};
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    size_t n = fread(m, 1, 2, f);
    fclose(f);
    return n == 2 && m[0] == 0x1f && m[1] == 0x8b;
}

/* Opens whatever `spec` names as a source. */
static int open_source(const char *spec, const da_data_opts *o, da_source *s, char *err, size_t errlen) {
    const char *usage = "--data takes a folder of PNG/JPEG images (+ labels.csv), an IDX images file (.gz or not), "
                        "fashion-mnist[:train|:test], a .safetensors file with `images`, or celeba:FOLDER";
    bool celeba = strncmp(spec, "celeba:", 7) == 0;
    if (!celeba && (o->attr || o->split)) {
        snprintf(err, errlen, "%s: --attr and --split apply to CelebA only (celeba:FOLDER)", spec);
        return -1;
    }
    if (celeba) {
        if (!spec[7]) {
            snprintf(err, errlen, "celeba: needs a folder, e.g. celeba:/data/celeba");
            return -1;
        }
        return da_source_celeba(spec + 7, o->attr, o->split, s, err, errlen);
    }
    if (strncmp(spec, "fashion-mnist", 13) == 0 && (spec[13] == '\0' || spec[13] == ':')) {
        const char *part = spec[13] ? spec + 14 : "train";
        const char *prefix = strcmp(part, "train") == 0 ? "train" : strcmp(part, "test") == 0 ? "t10k" : NULL;
        if (!prefix) {
            snprintf(err, errlen, "%s: unknown part \"%s\"; use fashion-mnist, fashion-mnist:train or fashion-mnist:test", spec, part);
            return -1;
        }
        char path[512];
        snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte.gz", FASHION_MNIST_DIR, prefix);
        if (!da_is_file(path)) snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", FASHION_MNIST_DIR, prefix);
        if (!da_is_file(path)) {
            snprintf(err, errlen, "%s: %s/%s-images-idx3-ubyte.gz not found; install Debian's package "
                     "(apt-get install dataset-fashion-mnist)", spec, FASHION_MNIST_DIR, prefix);
            return -1;
        }
        return da_source_idx(path, s, err, errlen);
    }
    if (da_is_dir(spec)) return da_source_folder(spec, s, err, errlen);
    if (!da_is_file(spec)) {
        snprintf(err, errlen, "%s: no such file or folder; %s", spec, usage);
        return -1;
    }
    if (ends_with(spec, ".safetensors")) return da_source_safetensors(spec, s, err, errlen);
    /* a gzip file that does not decompress gets the IDX reader's precise complaint */
    if (da_idx_sniff(spec) || starts_with_gzip_magic(spec)) return da_source_idx(spec, s, err, errlen);
    snprintf(err, errlen, "%s: not a data set I can read; %s", spec, usage);
    return -1;
}

/* The shape every chosen file will have before cropping: from the headers alone. */
static int probe_files(const da_source *s, const int64_t *idx, int64_t m, const da_data_opts *o, int *c, int *h, int *w,
                       char *err, size_t errlen) {
    int64_t bad = -1;
    int *info = malloc(sizeof(int) * 3 * (size_t)m);
    if (!info) {
        snprintf(err, errlen, "%s: out of memory", s->what);
        return -1;
    }
    #pragma omp parallel for schedule(dynamic, 64)
    for (int64_t j = 0; j < m; j++) {
        char e[8192];
        if (da_image_info(s->paths[idx[j]], &info[3 * j], &info[3 * j + 1], &info[3 * j + 2], e, sizeof e)) {
            #pragma omp critical(da_probe_error)
            if (bad < 0 || j < bad) {
                bad = j;
                snprintf(err, errlen, "%s", e);
            }
        }
    }
    int rc = bad >= 0 ? -1 : 0;
    *c = 1;
    *h = info[1];
    *w = info[2];
    for (int64_t j = 0; rc == 0 && j < m; j++) {
        if (info[3 * j] == 3) *c = 3;
        if (o->size <= 0 && (info[3 * j + 1] != *h || info[3 * j + 2] != *w)) {
            snprintf(err, errlen, "%s is %d×%d but %s is %d×%d; pass a size (e.g. --size 64) to crop and resize them all to one size",
                     s->paths[idx[j]], info[3 * j + 2], info[3 * j + 1], s->paths[idx[0]], *w, *h);
            rc = -1;
        }
    }
    free(info);
    return rc;
}

/* Image j of the source as float (c,h,w) in a malloc'ed buffer, converted to `oc` channels. */
static float *source_image(const da_source *s, int64_t i, int oc, int *h, int *w, char *err, size_t errlen) {
    if (s->kind == DA_SRC_FILES) {
        float *img;
        int c;
        if (da_image_read(s->paths[i], oc, &img, &c, h, w, err, errlen)) return NULL;
        return img;
    }
    size_t plane = (size_t)s->h * (size_t)s->w, numel = plane * (size_t)s->c;
    float *raw = malloc(sizeof(float) * numel), *img = malloc(sizeof(float) * plane * (size_t)oc);
    if (!raw || !img) {
        free(raw);
        free(img);
        snprintf(err, errlen, "%s: out of memory", s->what);
        return NULL;
    }
    if (s->kind == DA_SRC_U8) {
        const unsigned char *p = s->u8 + (size_t)i * numel;
        for (size_t k = 0; k < numel; k++) raw[k] = (float)p[k] / 127.5f - 1.0f;
    } else {
        memcpy(raw, s->f32 + (size_t)i * numel * sizeof(float), sizeof(float) * numel);
        for (size_t k = 0; k < numel; k++)
            if (!isfinite(raw[k]) || fabsf(raw[k]) > 1.5f) {
                snprintf(err, errlen, "%s: image %lld holds %g; `images` must be in [-1,1] (scale 0..255 data as x/127.5 - 1)",
                         s->what, (long long)i, (double)raw[k]);
                free(raw);
                free(img);
                return NULL;
            }
    }
    da_convert_channels(raw, s->c, s->h, s->w, img, oc);
    free(raw);
    *h = s->h;
    *w = s->w;
    return img;
}

/* Decodes, crops/resizes and pads chosen image j into its slot of `out` (c,oh,ow). */
static int build_image(const da_source *s, int64_t i, const da_data_opts *o, int oc, int oh, int ow, float *out, char *err,
                       size_t errlen) {
    int h, w;
    float *img = source_image(s, i, oc, &h, &w, err, errlen);
    if (!img) return -1;
    if (o->size > 0 && (h != o->size || w != o->size)) {
        int side = h < w ? h : w;
        float *sq = img;
        if (h != w) {
            sq = malloc(sizeof(float) * (size_t)oc * (size_t)side * (size_t)side);
            if (sq) da_center_crop_square(img, oc, h, w, sq);
        }
        float *rs = sq ? malloc(sizeof(float) * (size_t)oc * (size_t)o->size * (size_t)o->size) : NULL;
        if (rs) da_image_resize_bilinear(sq, oc, side, side, rs, o->size, o->size);
        if (sq != img) free(sq);
        free(img);
        if (!rs) {
            snprintf(err, errlen, "%s: out of memory", s->what);
            return -1;
        }
        img = rs;
        h = w = o->size;
    }
    if (h + 2 * o->pad != oh || w + 2 * o->pad != ow) {
        snprintf(err, errlen, "%s: %s changed size while being read (%d×%d, expected %d×%d)", s->what,
                 s->paths ? s->paths[i] : "an image", w, h, ow - 2 * o->pad, oh - 2 * o->pad);
        free(img);
        return -1;
    }
    if (o->pad > 0) da_pad_image(img, oc, h, w, o->pad, -1.0f, out);
    else memcpy(out, img, sizeof(float) * (size_t)oc * (size_t)h * (size_t)w);
    free(img);
    return 0;
}

int da_dataset_load(const char *spec, const da_data_opts *opts, da_dataset *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    da_data_opts none = {0};
    const da_data_opts *o = opts ? opts : &none;
    if (o->channels != 0 && o->channels != 1 && o->channels != 3) {
        snprintf(err, errlen, "%s: cannot convert to %d channels; use 1 (grey) or 3 (RGB)", spec, o->channels);
        return -1;
    }
    if (o->size < 0 || o->size > 16384 || o->pad < 0 || o->pad > 4096) {
        snprintf(err, errlen, "%s: bad size %d or padding %d", spec, o->size, o->pad);
        return -1;
    }
    da_source s;
    if (open_source(spec, o, &s, err, errlen)) return -1;
    int64_t *idx = NULL, *labels = NULL, m = 0;
    if (da_select(s.n, s.labels, o, s.what, &idx, &m, &labels, err, errlen)) {
        da_source_free(&s);
        return -1;
    }
    int c = s.c, h = s.h, w = s.w;
    if (s.kind == DA_SRC_FILES && probe_files(&s, idx, m, o, &c, &h, &w, err, errlen)) goto fail;
    int oc = o->channels ? o->channels : c;
    int oh = (o->size > 0 ? o->size : h) + 2 * o->pad, ow = (o->size > 0 ? o->size : w) + 2 * o->pad;
    size_t per = (size_t)oc * (size_t)oh * (size_t)ow;
    out->images = malloc(sizeof(float) * per * (size_t)m);
    out->names = calloc((size_t)m, sizeof(char *));
    out->source_index = malloc(sizeof(int64_t) * (size_t)m);
    if (!out->images || !out->names || !out->source_index) {
        snprintf(err, errlen, "%s: out of memory for %lld images of %d×%d×%d; choose fewer (--take) or smaller (--size) images",
                 s.what, (long long)m, oc, oh, ow);
        goto fail;
    }
    out->n = m;
    out->c = oc;
    out->h = oh;
    out->w = ow;
    int64_t bad = -1;
    #pragma omp parallel for schedule(dynamic, 16)
    for (int64_t j = 0; j < m; j++) {
        char e[8192];
        if (build_image(&s, idx[j], o, oc, oh, ow, out->images + per * (size_t)j, e, sizeof e)) {
            #pragma omp critical(da_load_error)
            if (bad < 0 || j < bad) {
                bad = j;
                snprintf(err, errlen, "%s", e);
            }
        }
    }
    if (bad >= 0) goto fail;
    for (int64_t j = 0; j < m; j++) {
        int64_t i = idx[j];
        out->source_index[j] = s.orig_index ? s.orig_index[i] : i;
        char buf[32];
        if (!s.names) snprintf(buf, sizeof buf, "idx_%06lld", (long long)i);
        out->names[j] = strdup(s.names ? s.names[i] : buf);
        if (!out->names[j]) {
            snprintf(err, errlen, "%s: out of memory", s.what);
            goto fail;
        }
    }
    out->labels = labels;
    free(idx);
    da_source_free(&s);
    return 0;
fail:
    free(idx);
    free(labels);
    da_source_free(&s);
    da_dataset_free(out);
    return -1;
}
