/* dataset_idx.c — the IDX format of MNIST and Fashion-MNIST (gzip-compressed or plain): an
 * images file (n,h,w) of bytes and, when it is found beside it, the matching labels file (n). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data/dataset_source.h"
#include "util/files.h"

enum { IDX_UBYTE = 0x08 };

/* Reads exactly `size` bytes; *got says how many came before the end of the data. Returns -1 on
 * a decompression or read error (message in err). */
static int read_exact(gzFile g, const char *path, void *buf, size_t size, size_t *got, char *err, size_t errlen) {
    *got = 0;
    while (*got < size) {
        size_t chunk = size - *got;
        if (chunk > (1u << 30)) chunk = 1u << 30;
        int r = gzread(g, (unsigned char *)buf + *got, (unsigned)chunk);
        if (r < 0) {
            int code;
            const char *msg = gzerror(g, &code);
            snprintf(err, errlen, "%s: cannot read (%s); the file is damaged — download it again",
                     path, code == Z_ERRNO ? strerror(errno) : msg);
            return -1;
        }
        if (r == 0) break;
        *got += (size_t)r;
    }
    return 0;
}

/* Opens an IDX file and reads its header: type must be unsigned bytes; ndim and dims out. */
static gzFile open_idx(const char *path, int *ndim, int64_t dims[4], char *err, size_t errlen) {
    errno = 0;
    gzFile g = gzopen(path, "rb");
    if (!g) {
        snprintf(err, errlen, "cannot open %s: %s", path, errno ? strerror(errno) : "out of memory");
        return NULL;
    }
    unsigned char magic[4];
    size_t got;
    if (read_exact(g, path, magic, 4, &got, err, errlen)) {
        gzclose(g);
        return NULL;
    }
    if (got < 4 || magic[0] != 0 || magic[1] != 0 || magic[3] < 1 || magic[3] > 4) {
        snprintf(err, errlen, "%s: not an IDX file (bad magic number); expected a file such as train-images-idx3-ubyte.gz", path);
        gzclose(g);
        return NULL;
    }
    if (magic[2] != IDX_UBYTE) {
        snprintf(err, errlen, "%s: IDX element type 0x%02x is not supported; only unsigned bytes (0x08) are", path, magic[2]);
        gzclose(g);
        return NULL;
    }
    *ndim = magic[3];
    unsigned char raw[16];
    if (read_exact(g, path, raw, (size_t)*ndim * 4, &got, err, errlen)) {
        gzclose(g);
        return NULL;
    }
    if (got < (size_t)*ndim * 4) {
        snprintf(err, errlen, "%s: truncated IDX header", path);
        gzclose(g);
        return NULL;
    }
    for (int i = 0; i < *ndim; i++)
        dims[i] = ((int64_t)raw[4 * i] << 24) | ((int64_t)raw[4 * i + 1] << 16) | ((int64_t)raw[4 * i + 2] << 8) | raw[4 * i + 3];
    return g;
}

/* Reads the whole body of `size` bytes and checks nothing follows it. */
static int read_body(gzFile g, const char *path, unsigned char *buf, size_t size, const char *what, char *err, size_t errlen) {
    size_t got;
    if (read_exact(g, path, buf, size, &got, err, errlen)) return -1;
    if (got < size) {
        snprintf(err, errlen, "%s: truncated: the header promises %zu bytes of %s but the file holds %zu; download it again",
                 path, size, what, got);
        return -1;
    }
    unsigned char extra;
    if (read_exact(g, path, &extra, 1, &got, err, errlen)) return -1;
    if (got) {
        snprintf(err, errlen, "%s: unexpected data after the %zu bytes of %s the header promises; the file is damaged", path, size, what);
        return -1;
    }
    return 0;
}

/* The same into a new buffer that grows with the data actually read (64 MiB at a time): a
 * header that promises gigabytes over a few bytes of file costs no more than the file holds. */
static unsigned char *read_body_alloc(gzFile g, const char *path, size_t size, const char *what, char *err, size_t errlen) {
    const size_t step = (size_t)1 << 26;
    size_t cap = 0, have = 0;
    unsigned char *buf = NULL;
    while (have < size) {
        size_t next = size - cap < step ? size : cap + step;
        unsigned char *nb = realloc(buf, next);
        if (!nb) {
            snprintf(err, errlen, "%s: out of memory for %zu bytes of %s", path, size, what);
            free(buf);
            return NULL;
        }
        buf = nb;
        cap = next;
        size_t got;
        if (read_exact(g, path, buf + have, cap - have, &got, err, errlen)) {
            free(buf);
            return NULL;
        }
        have += got;
        if (have < cap) break;   /* the file ended early */
    }
    if (have < size) {
        snprintf(err, errlen, "%s: truncated: the header promises %zu bytes of %s but the file holds %zu; download it again",
                 path, size, what, have);
        free(buf);
        return NULL;
    }
    unsigned char extra;
    size_t got;
    if (read_exact(g, path, &extra, 1, &got, err, errlen) || got) {
        if (got) snprintf(err, errlen, "%s: unexpected data after the %zu bytes of %s the header promises; the file is damaged",
                          path, size, what);
        free(buf);
        return NULL;
    }
    return buf;
}

/* The labels file that belongs to an images file: "images" → "labels" and "idx3" → "idx1" in
 * the file name, with or without ".gz". False when the name does not follow that pattern or no
 * such file exists. */
static bool labels_path_for(const char *images, char *out, size_t outlen) {
    if (strlen(images) + 4 >= outlen) return false;
    strcpy(out, images);
    char *base = strrchr(out, '/');
    base = base ? base + 1 : out;
    char *im = NULL;
    for (char *p = strstr(base, "images"); p; p = strstr(p + 1, "images")) im = p;
    if (!im) return false;
    char *i3 = strstr(im, "idx3");
    if (!i3) return false;
    memcpy(im, "labels", 6);
    memcpy(i3, "idx1", 4);
    if (da_is_file(out)) return true;
    size_t len = strlen(out);
    if (len > 3 && strcmp(out + len - 3, ".gz") == 0) out[len - 3] = '\0';
    else strcat(out, ".gz");
    return da_is_file(out);
}

bool da_idx_sniff(const char *path) {
    gzFile g = gzopen(path, "rb");
    if (!g) return false;
    unsigned char magic[4];
    int r = gzread(g, magic, 4);
    gzclose(g);
    return r == 4 && magic[0] == 0 && magic[1] == 0 && magic[2] == IDX_UBYTE && magic[3] >= 1 && magic[3] <= 4;
}

int da_source_idx(const char *path, da_source *s, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    s->kind = DA_SRC_U8;
    snprintf(s->what, sizeof s->what, "%s", path);
    int ndim;
    int64_t dims[4];
    gzFile g = open_idx(path, &ndim, dims, err, errlen);
    if (!g) return -1;
    if (ndim == 1) {
        snprintf(err, errlen, "%s is an IDX labels file; pass the images file (e.g. train-images-idx3-ubyte.gz) and its labels are found beside it", path);
        gzclose(g);
        return -1;
    }
    if (ndim != 3) {
        snprintf(err, errlen, "%s: an IDX images file has 3 dimensions (count, height, width), this one has %d", path, ndim);
        gzclose(g);
        return -1;
    }
    if (dims[0] < 1 || dims[1] < 1 || dims[2] < 1 || dims[1] > 65535 || dims[2] > 65535) {
        snprintf(err, errlen, "%s: bad IDX dimensions %lld×%lld×%lld", path, (long long)dims[0], (long long)dims[1], (long long)dims[2]);
        gzclose(g);
        return -1;
    }
    int64_t bytes = dims[0] * dims[1] * dims[2];
    if (bytes > ((int64_t)1 << 34)) {
        snprintf(err, errlen, "%s: %lld images of %lld×%lld are more than 16 GiB; split the file", path, (long long)dims[0],
                 (long long)dims[1], (long long)dims[2]);
        gzclose(g);
        return -1;
    }
    s->u8 = read_body_alloc(g, path, (size_t)bytes, "pixels", err, errlen);
    gzclose(g);
    if (!s->u8) {
        da_source_free(s);
        return -1;
    }
    s->n = dims[0];
    s->c = 1;
    s->h = (int)dims[1];
    s->w = (int)dims[2];

    char lpath[4200];
    if (!labels_path_for(path, lpath, sizeof lpath)) return 0; /* unlabelled */
    int lndim;
    int64_t ldims[4];
    g = open_idx(lpath, &lndim, ldims, err, errlen);
    if (!g) {
        da_source_free(s);
        return -1;
    }
    if (lndim != 1 || ldims[0] != s->n) {
        if (lndim != 1)
            snprintf(err, errlen, "%s: an IDX labels file has 1 dimension, this one has %d", lpath, lndim);
        else
            snprintf(err, errlen, "%s has %lld labels but %s has %lld images; they must match", lpath, (long long)ldims[0],
                     path, (long long)s->n);
        gzclose(g);
        da_source_free(s);
        return -1;
    }
    unsigned char *lab = malloc((size_t)s->n);
    s->labels = malloc(sizeof(int64_t) * (size_t)s->n);
    if (!lab || !s->labels) {
        snprintf(err, errlen, "%s: out of memory", lpath);
        free(lab);
        gzclose(g);
        da_source_free(s);
        return -1;
    }
    int rc = read_body(g, lpath, lab, (size_t)s->n, "labels", err, errlen);
    gzclose(g);
    if (rc == 0)
        for (int64_t i = 0; i < s->n; i++) s->labels[i] = lab[i];
    free(lab);
    if (rc) da_source_free(s);
    return rc;
}
