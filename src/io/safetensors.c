/* safetensors.c — reader (validating header parser, mmap or in-memory, dtype conversion) and
 * atomic writer (F32/I64 + string metadata) for the safetensors format. */
#include "io/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "io/torch_ckpt.h"
#include "util/atomic.h"
#include "util/errf.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

#define ST_MAX_HEADER ((uint64_t)100 * 1024 * 1024)
/* cJSON spends ~64 bytes per value; this caps the parse near 64 MB even for a
 * hostile 100 MB header made only of tiny values. Real headers have ~10 values per tensor. */
#define ST_MAX_JSON_VALUES 1000000

static const struct { const char *name; size_t size; } DTYPES[] = {
    [ST_F32] = {"F32", 4}, [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2}, [ST_F64] = {"F64", 8},
    [ST_I64] = {"I64", 8}, [ST_I32] = {"I32", 4}, [ST_U8] = {"U8", 1},    [ST_I8] = {"I8", 1},
    [ST_BOOL] = {"BOOL", 1}, [ST_I16] = {"I16", 2},
};
#define N_DTYPES ((int)(sizeof DTYPES / sizeof DTYPES[0]))

const char *st_dtype_name(st_dtype d) {
    return (int)d >= 0 && (int)d < N_DTYPES ? DTYPES[d].name : "?";
}

size_t st_dtype_size(st_dtype d) {
    return (int)d >= 0 && (int)d < N_DTYPES ? DTYPES[d].size : 0;
}

static int dtype_from_name(const char *s, st_dtype *out) {
    for (int i = 0; i < N_DTYPES; i++)
        if (!strcmp(s, DTYPES[i].name)) { *out = (st_dtype)i; return 0; }
    return -1;
}

/* ---- header parsing --------------------------------------------------------------------- */

/* Counts JSON values (upper bound) outside strings so a hostile header cannot make cJSON
 * allocate gigabytes. */
static long count_json_values(const char *s, size_t n) {
    long count = 1;
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == ',' || c == ':' || c == '[' || c == '{') {
            count++;
        }
    }
    return count;
}

/* A JSON number that is an exact non-negative integer no larger than max. */
static int json_uint(const cJSON *v, double max, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0) || d > max || d != (double)(uint64_t)d) return -1;
    *out = (uint64_t)d;
    return 0;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct { size_t begin, end; int idx; } span;

static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static void st_clear(st_file *f) {
    if (f->tensors)
        for (int i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    if (f->meta)
        for (int i = 0; i < f->n_meta; i++) { free(f->meta[i].key); free(f->meta[i].value); }
    free(f->meta);
    f->tensors = NULL; f->n_tensors = 0;
    f->meta = NULL; f->n_meta = 0;
    f->data = NULL; f->data_size = 0;
}

/* Parses one tensor entry into t (name already set). */
static int parse_entry(const cJSON *e, st_tensor_info *t, size_t data_size, const char *label,
                       char *err, size_t errlen) {
    const char *nm = t->name;
    if (!cJSON_IsObject(e)) {
        da_errf(err, errlen, "%s: header entry '%s' is not a JSON object", label, nm);
        return -1;
    }
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!dt || !sh || !of) {
        da_errf(err, errlen, "%s: tensor '%s' is missing '%s' in the header", label, nm,
                !dt ? "dtype" : !sh ? "shape" : "data_offsets");
        return -1;
    }
    if (!cJSON_IsString(dt) || !dt->valuestring) {
        da_errf(err, errlen, "%s: tensor '%s': dtype must be a string", label, nm);
        return -1;
    }
    if (dtype_from_name(dt->valuestring, &t->dtype)) {
        da_errf(err, errlen, "%s: tensor '%s': unknown dtype '%.32s' (supported: F32 F16 BF16 F64 "
                "I64 I32 I16 I8 U8 BOOL)", label, nm, dt->valuestring);
        return -1;
    }
    if (!cJSON_IsArray(sh)) {
        da_errf(err, errlen, "%s: tensor '%s': shape must be an array of integers", label, nm);
        return -1;
    }
    int nd = cJSON_GetArraySize(sh);
    if (nd > ST_MAX_DIMS) {
        da_errf(err, errlen, "%s: tensor '%s': too many dims (%d, at most %d)", label, nm, nd, ST_MAX_DIMS);
        return -1;
    }
    t->ndim = nd;
    int64_t numel = 1;
    int d = 0;
    for (const cJSON *v = sh->child; v; v = v->next, d++) {
        uint64_t dim;
        if (json_uint(v, 9007199254740992.0, &dim)) {
            da_errf(err, errlen, "%s: tensor '%s': shape dim %d is not a non-negative integer "
                    "(or is too large)", label, nm, d);
            return -1;
        }
        t->shape[d] = (int64_t)dim;
        if (dim != 0 && numel > INT64_MAX / (int64_t)dim) {
            da_errf(err, errlen, "%s: tensor '%s': shape product overflows (element count too large)", label, nm);
            return -1;
        }
        numel *= (int64_t)dim;
    }
    t->numel = numel;
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2) {
        da_errf(err, errlen, "%s: tensor '%s': data_offsets must be an array of two integers", label, nm);
        return -1;
    }
    uint64_t b, en;
    if (json_uint(of->child, 1.8e19, &b) || json_uint(of->child->next, 1.8e19, &en)) {
        da_errf(err, errlen, "%s: tensor '%s': data_offsets must be two non-negative integers", label, nm);
        return -1;
    }
    if (en < b) {
        da_errf(err, errlen, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] are not ascending",
                label, nm, b, en);
        return -1;
    }
    if (en > data_size) {
        da_errf(err, errlen, "%s: tensor '%s': data_offsets end %" PRIu64 " is beyond the data section "
                "(%zu bytes; the file is truncated or the header is wrong)", label, nm, en, data_size);
        return -1;
    }
    t->begin = (size_t)b;
    t->end = (size_t)en;
    size_t ds = st_dtype_size(t->dtype), len = t->end - t->begin;
    if (len % ds || (uint64_t)(len / ds) != (uint64_t)numel) {
        da_errf(err, errlen, "%s: tensor '%s': byte length %zu != %" PRId64 " elements x %zu bytes (%s)",
                label, nm, len, numel, ds, st_dtype_name(t->dtype));
        return -1;
    }
    return 0;
}

static int parse_header(const unsigned char *buf, size_t size, st_file *f, const char *label,
                        char *err, size_t errlen) {
    if (size < 8) {
        da_errf(err, errlen, "%s: file is %zu bytes, shorter than the 8-byte header length "
                "(not a safetensors file)", label, size);
        return -1;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    if (hlen > ST_MAX_HEADER) {
        da_errf(err, errlen, "%s: header length %" PRIu64 " is larger than the 100 MB limit "
                "(not a safetensors file?)", label, hlen);
        return -1;
    }
    if (hlen > size - 8) {
        da_errf(err, errlen, "%s: header length %" PRIu64 " exceeds file size %zu", label, hlen, size);
        return -1;
    }
    if (hlen < 2) {
        da_errf(err, errlen, "%s: header of %" PRIu64 " bytes cannot be a JSON object", label, hlen);
        return -1;
    }
    const char *hdr = (const char *)buf + 8;
    long nvals = count_json_values(hdr, (size_t)hlen);
    if (nvals > ST_MAX_JSON_VALUES) {
        da_errf(err, errlen, "%s: header has too many JSON values (%ld, at most %d)", label, nvals,
                ST_MAX_JSON_VALUES);
        return -1;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, 0);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= hdr && at <= hdr + hlen ? (long)(at - hdr) : -1;
        da_errf(err, errlen, "%s: header is not valid JSON (error near byte %ld of %" PRIu64 ")",
                label, off, hlen);
        return -1;
    }
    /* only padding (spaces) may follow the JSON text */
    for (const char *p = end ? end : hdr + hlen; p < hdr + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != '\0') {
            da_errf(err, errlen, "%s: header has trailing bytes after the JSON object (byte %ld)",
                    label, (long)(p - hdr));
            cJSON_Delete(root);
            return -1;
        }
    if (!cJSON_IsObject(root)) {
        da_errf(err, errlen, "%s: header is not a JSON object", label);
        cJSON_Delete(root);
        return -1;
    }
    f->data = buf + 8 + hlen;
    f->data_size = size - 8 - (size_t)hlen;

    int n = 0;
    const cJSON *meta = NULL;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (!e->string) continue;
        if (!strcmp(e->string, "__metadata__")) {
            if (meta) {
                da_errf(err, errlen, "%s: duplicate __metadata__ in header", label);
                goto fail;
            }
            meta = e;
        } else {
            n++;
        }
    }
    f->tensors = calloc((size_t)(n ? n : 1), sizeof *f->tensors);
    if (!f->tensors) { da_errf(err, errlen, "%s: out of memory", label); goto fail; }
    for (const cJSON *e = root->child; e; e = e->next) {
        if (!e->string || !strcmp(e->string, "__metadata__")) continue;
        st_tensor_info *t = &f->tensors[f->n_tensors];
        t->name = strdup(e->string);
        if (!t->name) { da_errf(err, errlen, "%s: out of memory", label); goto fail; }
        f->n_tensors++;
        if (parse_entry(e, t, f->data_size, label, err, errlen)) goto fail;
    }
    if (meta) {
        if (!cJSON_IsObject(meta)) {
            da_errf(err, errlen, "%s: __metadata__ must be a JSON object of strings", label);
            goto fail;
        }
        int nm = cJSON_GetArraySize(meta);
        f->meta = calloc((size_t)(nm ? nm : 1), sizeof *f->meta);
        if (!f->meta) { da_errf(err, errlen, "%s: out of memory", label); goto fail; }
        for (const cJSON *e = meta->child; e; e = e->next) {
            if (!cJSON_IsString(e) || !e->valuestring || !e->string) {
                da_errf(err, errlen, "%s: __metadata__ value of '%.64s' is not a string", label,
                        e->string ? e->string : "?");
                goto fail;
            }
            st_meta *m = &f->meta[f->n_meta];
            m->key = strdup(e->string);
            m->value = strdup(e->valuestring);
            f->n_meta++;
            if (!m->key || !m->value) { da_errf(err, errlen, "%s: out of memory", label); goto fail; }
        }
    }
    cJSON_Delete(root);
    root = NULL;

    if (f->n_tensors > 1) {
        /* duplicate names: sort a copy of the name pointers */
        char **names = malloc(sizeof(char *) * (size_t)f->n_tensors);
        span *sp = malloc(sizeof(span) * (size_t)f->n_tensors);
        if (!names || !sp) {
            free(names); free(sp);
            da_errf(err, errlen, "%s: out of memory", label);
            goto fail;
        }
        for (int i = 0; i < f->n_tensors; i++) {
            names[i] = f->tensors[i].name;
            sp[i] = (span){f->tensors[i].begin, f->tensors[i].end, i};
        }
        qsort(names, (size_t)f->n_tensors, sizeof *names, cmp_names);
        for (int i = 1; i < f->n_tensors; i++)
            if (!strcmp(names[i], names[i - 1])) {
                da_errf(err, errlen, "%s: duplicate tensor name '%.200s' in header", label, names[i]);
                free(names); free(sp);
                goto fail;
            }
        /* overlaps: sorted by begin, each tensor must start at or after the furthest end so
         * far; zero-size tensors occupy no bytes and may sit anywhere */
        qsort(sp, (size_t)f->n_tensors, sizeof *sp, cmp_span);
        int last = -1;
        for (int i = 0; i < f->n_tensors; i++) {
            if (sp[i].begin == sp[i].end) continue;
            if (last >= 0 && sp[i].begin < sp[last].end) {
                da_errf(err, errlen, "%s: tensors '%.200s' and '%.200s' overlap in the data section "
                        "(bytes [%zu,%zu) and [%zu,%zu))", label, f->tensors[sp[last].idx].name,
                        f->tensors[sp[i].idx].name, sp[last].begin, sp[last].end, sp[i].begin, sp[i].end);
                free(names); free(sp);
                goto fail;
            }
            if (last < 0 || sp[i].end > sp[last].end) last = i;
        }
        free(names);
        free(sp);
    }
    if (f->n_meta > 1) {
        char **keys = malloc(sizeof(char *) * (size_t)f->n_meta);
        if (!keys) { da_errf(err, errlen, "%s: out of memory", label); goto fail; }
        for (int i = 0; i < f->n_meta; i++) keys[i] = f->meta[i].key;
        qsort(keys, (size_t)f->n_meta, sizeof *keys, cmp_names);
        for (int i = 1; i < f->n_meta; i++)
            if (!strcmp(keys[i], keys[i - 1])) {
                da_errf(err, errlen, "%s: duplicate __metadata__ key '%.200s'", label, keys[i]);
                free(keys);
                goto fail;
            }
        free(keys);
    }
    return 0;

fail:
    cJSON_Delete(root);
    st_clear(f);
    return -1;
}

/* ---- open / close ----------------------------------------------------------------------- */

/* The format is told by the first bytes: a zip archive is a torch.save checkpoint. select (or
 * NULL) picks an object inside one (st_open's "FILE#key"). */
static int parse_any(const unsigned char *buf, size_t size, st_file *f, const char *label, const char *select,
                     char *err, size_t errlen) {
    if (da_torch_is_zip(buf, size)) return da_torch_parse_select(buf, size, 0, select, f, label, err, errlen);
    if (select) {
        da_errf(err, errlen, "%s: '#%s' picks a state dict inside a PyTorch checkpoint, and this file is not one", label, select);
        return -1;
    }
    if (da_torch_is_legacy(buf, size)) {
        da_errf(err, errlen, "%s: a torch.save file in the legacy format of PyTorch before 1.6, which is not "
                "supported; re-save it with a newer PyTorch (torch.save(torch.load(f), g)) or as safetensors", label);
        return -1;
    }
    return parse_header(buf, size, f, label, err, errlen);
}

int st_open_memory(const void *buf, size_t size, st_file *f, char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    if (!buf && size) {
        da_errf(err, errlen, "<memory>: NULL buffer");
        return -1;
    }
    static const unsigned char empty[1] = {0};
    return parse_any(buf ? buf : empty, size, f, "<memory>", NULL, err, errlen);
}

/* Maps `path` (messages name `label`) and parses it. */
static int open_file(const char *path, const char *label, const char *select, st_file *f, char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        da_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st)) {
        da_errf(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        da_errf(err, errlen, "%s: not a regular file%s", path, S_ISDIR(st.st_mode) ? " (it is a directory)" : "");
        close(fd);
        return -1;
    }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX / 2) {
        da_errf(err, errlen, "%s: file too large", path);
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    if (size < 8) {
        da_errf(err, errlen, "%s: file is %zu bytes, shorter than the 8-byte header length "
                "(neither a safetensors file nor a PyTorch checkpoint)", path, size);
        close(fd);
        return -1;
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map != MAP_FAILED) {
        f->mapped = true;
    } else {
        /* e.g. a file system without mmap support: read the whole file */
        map = malloc(size);
        if (!map) {
            da_errf(err, errlen, "%s: out of memory reading %zu bytes", path, size);
            close(fd);
            return -1;
        }
        size_t got = 0;
        while (got < size) {
            ssize_t r = read(fd, (char *)map + got, size - got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                da_errf(err, errlen, "%s: read failed after %zu of %zu bytes: %s", path, got, size,
                        r < 0 ? strerror(errno) : "unexpected end of file");
                free(map);
                close(fd);
                return -1;
            }
            got += (size_t)r;
        }
    }
    close(fd);
    f->map = map;
    f->map_size = size;
    if (parse_any(map, size, f, label, select, err, errlen)) {
        if (f->mapped) munmap(map, size);
        else free(map);
        f->map = NULL;
        f->map_size = 0;
        f->mapped = false;
        return -1;
    }
    return 0;
}

int st_open(const char *path, st_file *f, char *err, size_t errlen) {
    /* "FILE.pth#key" picks the state dict under a key (or list index) of a PyTorch checkpoint,
     * e.g. ckpt.pth#ema; a file whose name holds '#' itself is taken as it is */
    const char *hash = strrchr(path, '#');
    if (hash && hash[1] && access(path, F_OK) != 0) {
        char *base = strndup(path, (size_t)(hash - path));
        if (!base) {
            memset(f, 0, sizeof *f);
            da_errf(err, errlen, "%s: out of memory", path);
            return -1;
        }
        int rc = open_file(base, path, hash + 1, f, err, errlen);
        free(base);
        return rc;
    }
    return open_file(path, path, NULL, f, err, errlen);
}

void st_close(st_file *f) {
    if (!f) return;
    st_clear(f);
    free(f->owned);
    f->owned = NULL;
    if (f->map) {
        if (f->mapped) munmap(f->map, f->map_size);
        else free(f->map);
    }
    f->map = NULL;
    f->map_size = 0;
    f->mapped = false;
}

const st_tensor_info *st_find(const st_file *f, const char *name) {
    for (int i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    /* DataParallel checkpoints prefix every name with "module." */
    for (int i = 0; i < f->n_tensors; i++) {
        const char *s = f->tensors[i].name;
        if (!strncmp(s, "module.", 7) && !strcmp(s + 7, name)) return &f->tensors[i];
    }
    return NULL;
}

const char *st_meta_get(const st_file *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta[i].key, key)) return f->meta[i].value;
    return NULL;
}

/* ---- conversion ------------------------------------------------------------------------- */

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);              /* inf / nan */
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);      /* normal: rebias 15 -> 127 */
    } else if (man == 0) {
        bits = sign;                                          /* +-0 */
    } else {
        /* subnormal: normalise the mantissa */
        int e = -1;
        do { e++; man <<= 1; } while (!(man & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static int check_tensor(const st_file *f, const st_tensor_info *t, char *err, size_t errlen) {
    if (!f || !t || t->end < t->begin || t->end > f->data_size || (t->numel && !f->data) ||
        (uint64_t)(t->end - t->begin) != (uint64_t)t->numel * st_dtype_size(t->dtype)) {
        da_errf(err, errlen, "tensor '%s' does not belong to this file", t && t->name ? t->name : "?");
        return -1;
    }
    return 0;
}

int st_read_f32(const st_file *f, const st_tensor_info *t, float *out, char *err, size_t errlen) {
    if (check_tensor(f, t, err, errlen)) return -1;
    const unsigned char *p = f->data + t->begin;
    int64_t n = t->numel;
    switch (t->dtype) {
    case ST_F32:
        if (n) memcpy(out, p, sizeof(float) * (size_t)n);
        break;
    case ST_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = half_to_float(h);
        }
        break;
    case ST_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16;
            memcpy(&out[i], &bits, 4);
        }
        break;
    case ST_F64:
        for (int64_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            out[i] = (float)d;
        }
        break;
    case ST_I64:
        for (int64_t i = 0; i < n; i++) {
            int64_t v;
            memcpy(&v, p + 8 * i, 8);
            out[i] = (float)v;
        }
        break;
    case ST_I32:
        for (int64_t i = 0; i < n; i++) {
            int32_t v;
            memcpy(&v, p + 4 * i, 4);
            out[i] = (float)v;
        }
        break;
    case ST_I16:
        for (int64_t i = 0; i < n; i++) {
            int16_t v;
            memcpy(&v, p + 2 * i, 2);
            out[i] = (float)v;
        }
        break;
    case ST_I8:
        for (int64_t i = 0; i < n; i++) out[i] = (float)(int8_t)p[i];
        break;
    case ST_U8:
        for (int64_t i = 0; i < n; i++) out[i] = (float)p[i];
        break;
    case ST_BOOL:
        for (int64_t i = 0; i < n; i++) out[i] = p[i] ? 1.0f : 0.0f;
        break;
    default:
        da_errf(err, errlen, "tensor '%s': unsupported dtype", t->name);
        return -1;
    }
    return 0;
}

int st_read_i64(const st_file *f, const st_tensor_info *t, int64_t *out, char *err, size_t errlen) {
    if (check_tensor(f, t, err, errlen)) return -1;
    const unsigned char *p = f->data + t->begin;
    int64_t n = t->numel;
    switch (t->dtype) {
    case ST_I64:
        if (n) memcpy(out, p, sizeof(int64_t) * (size_t)n);
        break;
    case ST_I32:
        for (int64_t i = 0; i < n; i++) {
            int32_t v;
            memcpy(&v, p + 4 * i, 4);
            out[i] = v;
        }
        break;
    case ST_I16:
        for (int64_t i = 0; i < n; i++) {
            int16_t v;
            memcpy(&v, p + 2 * i, 2);
            out[i] = v;
        }
        break;
    case ST_I8:
        for (int64_t i = 0; i < n; i++) out[i] = (int8_t)p[i];
        break;
    case ST_U8:
        for (int64_t i = 0; i < n; i++) out[i] = p[i];
        break;
    case ST_BOOL:
        for (int64_t i = 0; i < n; i++) out[i] = p[i] != 0;
        break;
    default:
        da_errf(err, errlen, "tensor '%s' has dtype %s; an integer dtype (I64/I32/I16/I8/U8/BOOL) "
                "was expected", t->name, st_dtype_name(t->dtype));
        return -1;
    }
    return 0;
}

/* ---- writing ---------------------------------------------------------------------------- */

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data;
    size_t nbytes;
} st_wentry;

struct st_writer {
    st_wentry *e;
    int n, cap;
    st_meta *meta;
    int n_meta, cap_meta;
    char deferred[256];           /* first error seen by an add call, reported by save */
};

st_writer *st_writer_new(void) {
    st_writer *w = calloc(1, sizeof *w);
    if (!w) {
        fprintf(stderr, "st_writer_new: out of memory\n");
        abort();
    }
    return w;
}

static void defer_err(st_writer *w, const char *fmt, ...) {
    if (w->deferred[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->deferred, sizeof w->deferred, fmt, ap);
    va_end(ap);
}

static void writer_add(st_writer *w, const char *name, st_dtype dt, int ndim, const int64_t *shape, const void *data) {
    if (!name) { defer_err(w, "tensor with a NULL name"); return; }
    if (!strcmp(name, "__metadata__")) { defer_err(w, "tensor name '__metadata__' is reserved"); return; }
    if (ndim < 0 || ndim > ST_MAX_DIMS) { defer_err(w, "tensor '%s': ndim %d out of range 0..%d", name, ndim, ST_MAX_DIMS); return; }
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0 || (shape[d] && numel > INT64_MAX / 8 / shape[d])) {
            defer_err(w, "tensor '%s': bad shape", name);
            return;
        }
        numel *= shape[d];
    }
    if (numel && !data) { defer_err(w, "tensor '%s': NULL data", name); return; }
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->e[i].name, name)) { defer_err(w, "duplicate tensor name '%s'", name); return; }
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        st_wentry *ne = realloc(w->e, sizeof *ne * (size_t)cap);
        if (!ne) { defer_err(w, "out of memory"); return; }
        w->e = ne;
        w->cap = cap;
    }
    st_wentry *e = &w->e[w->n];
    memset(e, 0, sizeof *e);
    e->name = strdup(name);
    if (!e->name) { defer_err(w, "out of memory"); return; }
    e->dtype = dt;
    e->ndim = ndim;
    for (int d = 0; d < ndim; d++) e->shape[d] = shape[d];
    e->data = data;
    e->nbytes = (size_t)numel * st_dtype_size(dt);
    w->n++;
}

void st_writer_add_f32(st_writer *w, const char *name, int ndim, const int64_t *shape, const float *data) {
    writer_add(w, name, ST_F32, ndim, shape, data);
}

void st_writer_add_i64(st_writer *w, const char *name, int ndim, const int64_t *shape, const int64_t *data) {
    writer_add(w, name, ST_I64, ndim, shape, data);
}

void st_writer_add_raw(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape, const void *data) {
    if (!st_dtype_size(dtype)) { defer_err(w, "tensor '%s': unknown dtype", name ? name : "?"); return; }
    writer_add(w, name, dtype, ndim, shape, data);
}

void st_writer_set_meta(st_writer *w, const char *key, const char *value) {
    if (!key || !value) { defer_err(w, "metadata with a NULL key or value"); return; }
    for (int i = 0; i < w->n_meta; i++)
        if (!strcmp(w->meta[i].key, key)) {
            char *v = strdup(value);
            if (!v) { defer_err(w, "out of memory"); return; }
            free(w->meta[i].value);
            w->meta[i].value = v;
            return;
        }
    if (w->n_meta == w->cap_meta) {
        int cap = w->cap_meta ? 2 * w->cap_meta : 8;
        st_meta *nm = realloc(w->meta, sizeof *nm * (size_t)cap);
        if (!nm) { defer_err(w, "out of memory"); return; }
        w->meta = nm;
        w->cap_meta = cap;
    }
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) { free(k); free(v); defer_err(w, "out of memory"); return; }
    w->meta[w->n_meta++] = (st_meta){k, v};
}

void st_writer_free(st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) free(w->e[i].name);
    for (int i = 0; i < w->n_meta; i++) { free(w->meta[i].key); free(w->meta[i].value); }
    free(w->e);
    free(w->meta);
    free(w);
}

/* A growable string for building the JSON header. */
typedef struct { char *s; size_t len, cap; int oom; } sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) { b->oom = 1; return; }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* A JSON string literal: quotes, backslashes and control characters escaped. */
static void sb_json_string(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char tmp[8];
        if (*p == '"' || *p == '\\') {
            tmp[0] = '\\'; tmp[1] = (char)*p;
            sb_put(b, tmp, 2);
        } else if (*p < 0x20) {
            snprintf(tmp, sizeof tmp, "\\u%04x", *p);
            sb_put(b, tmp, 6);
        } else {
            sb_put(b, (const char *)p, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static int write_all(FILE *fp, const void *p, size_t n) {
    return n == 0 || fwrite(p, 1, n, fp) == n ? 0 : -1;
}

int st_writer_save(st_writer *w, const char *path, char *err, size_t errlen) {
    if (w->deferred[0]) {
        da_errf(err, errlen, "%s: cannot write: %s", path, w->deferred);
        return -1;
    }
    /* header */
    sbuf b = {0};
    char num[64];
    size_t off = 0;
    sb_str(&b, "{");
    if (w->n_meta) {
        sb_str(&b, "\"__metadata__\":{");
        for (int i = 0; i < w->n_meta; i++) {
            if (i) sb_str(&b, ",");
            sb_json_string(&b, w->meta[i].key);
            sb_str(&b, ":");
            sb_json_string(&b, w->meta[i].value);
        }
        sb_str(&b, "}");
    }
    for (int i = 0; i < w->n; i++) {
        const st_wentry *e = &w->e[i];
        if (i || w->n_meta) sb_str(&b, ",");
        sb_json_string(&b, e->name);
        sb_str(&b, ":{\"dtype\":\"");
        sb_str(&b, st_dtype_name(e->dtype));
        sb_str(&b, "\",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            snprintf(num, sizeof num, "%s%" PRId64, d ? "," : "", e->shape[d]);
            sb_str(&b, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%zu,%zu]}", off, off + e->nbytes);
        sb_str(&b, num);
        off += e->nbytes;
    }
    sb_str(&b, "}");
    while (!b.oom && b.len % 8) sb_str(&b, " ");   /* data section starts 8-byte aligned */
    if (b.oom) {
        free(b.s);
        da_errf(err, errlen, "%s: out of memory building the header", path);
        return -1;
    }

    size_t tlen = strlen(path) + 64;
    char *tmp = malloc(tlen);
    if (!tmp) {
        free(b.s);
        da_errf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    char inner[512];
    int fd = da_tmp_create(path, tmp, tlen, inner, sizeof inner);
    FILE *fp = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!fp) {
        if (fd >= 0) {
            snprintf(inner, sizeof inner, "%s", strerror(errno));
            close(fd);
            unlink(tmp);
        }
        da_errf(err, errlen, "%s: cannot create a temporary file: %s", path, inner);
        free(b.s);
        free(tmp);
        return -1;
    }
    unsigned char lenbytes[8];
    uint64_t hl = b.len;
    for (int i = 0; i < 8; i++) lenbytes[i] = (unsigned char)(hl >> (8 * i));
    int failed = write_all(fp, lenbytes, 8) || write_all(fp, b.s, b.len);
    for (int i = 0; i < w->n && !failed; i++) failed = write_all(fp, w->e[i].data, w->e[i].nbytes);
    int saved_errno = errno;
    free(b.s);
    const char *what = "write";
    if (!failed && fflush(fp)) { failed = 1; what = "flush"; saved_errno = errno; }
    if (!failed && fsync(fileno(fp))) { failed = 1; what = "fsync"; saved_errno = errno; }
    if (fclose(fp) && !failed) { failed = 1; what = "close"; saved_errno = errno; }
    if (failed) {
        da_errf(err, errlen, "%s: %s of %s failed: %s (is the disk full?); the existing file was "
                "left unchanged", path, what, tmp, strerror(saved_errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    if (rename(tmp, path)) {
        da_errf(err, errlen, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    /* make the rename itself durable (best effort: some file systems refuse a directory fsync) */
    char *slash = strrchr(tmp, '/');
    if (slash) slash[slash == tmp ? 1 : 0] = 0;
    int dfd = open(slash ? tmp : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    free(tmp);
    return 0;
}
