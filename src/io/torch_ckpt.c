/* torch_ckpt.c — a torch.save zip archive as an st_file (see torch_ckpt.h): find <dir>/data.pkl,
 * unpickle it with the restricted unpickler, pick the state dict, and list its tensors as byte
 * ranges of the archive. */
#include "io/torch_ckpt.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/torch_pickle.h"
#include "io/zip.h"
#include "util/errf.h"

/* Where checkpoints commonly nest the state dict, in the order they are tried. */
static const char *const NEST_KEYS[] = {"state_dict", "model_state_dict", "model", "ema", "module", "net"};
#define N_NEST ((int)(sizeof NEST_KEYS / sizeof NEST_KEYS[0]))
#define MAX_NEST_DEPTH 4

bool da_torch_is_zip(const unsigned char *buf, size_t size) {
    return size >= 4 && buf[0] == 'P' && buf[1] == 'K' &&
           ((buf[2] == 3 && buf[3] == 4) || (buf[2] == 5 && buf[3] == 6));
}

bool da_torch_is_legacy(const unsigned char *buf, size_t size) {
    /* PROTO 2, then LONG1 of the legacy magic number 0x1950a86a20f9469cfc6c */
    static const unsigned char magic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
    return size >= sizeof magic && !memcmp(buf, magic, sizeof magic);
}

/* ---- storages: data/<key> entries of the archive ------------------------------------------ */

typedef struct {
    const unsigned char *buf;
    const da_zip *zip;
    const char *prefix;           /* the archive's folder, e.g. "archive" */
    unsigned char *checked;       /* per zip entry: already verified */
    int flags;
    const char *label;
} storages;

static int resolve_storage(void *user, const char *key, size_t *offset, size_t *nbytes, char *err, size_t errlen) {
    storages *s = user;
    char name[600];
    if (snprintf(name, sizeof name, "%s/data/%s", s->prefix, key) >= (int)sizeof name) {
        da_errf(err, errlen, "storage key '%.64s' is too long", key);
        return -1;
    }
    const da_zip_entry *e = da_zip_find(s->zip, name);
    if (!e) {
        da_errf(err, errlen, "storage '%.64s' is missing from the archive (no entry %.300s)", key, name);
        return -1;
    }
    int idx = (int)(e - s->zip->entries);
    if (!s->checked[idx]) {
        if (da_zip_check_stored(s->buf, e, s->label, !(s->flags & DA_TORCH_NO_CRC), err, errlen)) return -1;
        s->checked[idx] = 1;
    }
    *offset = e->offset;
    *nbytes = e->size;
    return 0;
}

/* ---- finding data.pkl ------------------------------------------------------------------- */

/* The folder holding data.pkl (the only one). */
static int find_pickle(const da_zip *z, const char *label, char *prefix, size_t plen,
                       const da_zip_entry **pkl, char *err, size_t errlen) {
    *pkl = NULL;
    for (int i = 0; i < z->n; i++) {
        const char *nm = z->entries[i].name, *slash = strchr(nm, '/');
        if (!slash || strcmp(slash, "/data.pkl")) continue;
        if (*pkl) {
            da_errf(err, errlen, "%s: the archive holds more than one data.pkl (%.100s and %.100s)", label,
                    (*pkl)->name, nm);
            return -1;
        }
        *pkl = &z->entries[i];
        size_t n = (size_t)(slash - nm);
        if (n + 1 > plen) { da_errf(err, errlen, "%s: archive folder name too long", label); return -1; }
        memcpy(prefix, nm, n);
        prefix[n] = 0;
    }
    if (!*pkl) {
        da_errf(err, errlen, "%s: a zip archive without <folder>/data.pkl: not a torch.save checkpoint "
                "(first entry: %.100s)", label, z->n ? z->entries[0].name : "none");
        return -1;
    }
    return 0;
}

/* ---- the state dict ----------------------------------------------------------------------- */

static bool has_tensor(const pk_obj *d) {
    for (int i = 1; i < d->n; i += 2)
        if (d->items[i]->kind == PK_TENSOR) return true;
    return false;
}

static bool is_container(const pk_obj *o) {
    return o && (o->kind == PK_DICT || o->kind == PK_LIST || o->kind == PK_TUPLE);
}

/* Lists up to 8 string keys of d into buf. */
static void list_keys(const pk_obj *d, char *buf, size_t len) {
    size_t o = 0;
    buf[0] = 0;
    int shown = 0;
    for (int i = 0; i + 1 < d->n && o < len; i += 2) {
        const pk_obj *k = d->items[i];
        if (k->kind != PK_STR) continue;
        if (shown == 8) { snprintf(buf + o, len - o, ", ..."); break; }
        o += (size_t)snprintf(buf + o, len - o, "%s%.40s", shown ? ", " : "", k->s);
        shown++;
    }
}

/* Walks down from root to the dict that holds the tensors; path receives how it was reached. */
static const pk_obj *select_state_dict(const pk_obj *root, char *path, size_t plen, const char *label,
                                       char *err, size_t errlen) {
    const pk_obj *node = root;
    size_t o = 0;
    path[0] = 0;
    for (int depth = 0; depth <= MAX_NEST_DEPTH; depth++) {
        if (node->kind == PK_LIST || node->kind == PK_TUPLE) {
            /* e.g. the DDIM code's [model, optimizer, epoch, step, ema] */
            int i = 0;
            while (i < node->n && node->items[i]->kind != PK_DICT) i++;
            if (i == node->n) break;
            o += (size_t)snprintf(path + o, o < plen ? plen - o : 0, "[%d]", i);
            node = node->items[i];
            continue;
        }
        if (node->kind == PK_OBJECT) {
            /* torch.jit.save: the module's attributes hold its parameters and submodules */
            snprintf(path + o, o < plen ? plen - o : 0, "%sTorchScript module %.100s", o ? " " : "", node->cls->s);
            return node;
        }
        if (node->kind != PK_DICT) break;
        const pk_obj *next = NULL;
        for (int k = 0; k < N_NEST && !next; k++) {
            const pk_obj *v = pk_dict_get(node, NEST_KEYS[k]);
            if (is_container(v)) {
                next = v;
                o += (size_t)snprintf(path + o, o < plen ? plen - o : 0, "%s%s", o ? "." : "", NEST_KEYS[k]);
            }
        }
        if (next) { node = next; continue; }
        if (has_tensor(node)) return node;
        char keys[400];
        list_keys(node, keys, sizeof keys);
        da_errf(err, errlen, "%s: no state dict found: the dict at %s holds no tensors and none of the keys "
                "state_dict, model_state_dict, model, ema, module, net (its keys: %s)", label,
                o ? path : "the top level", keys[0] ? keys : "none");
        return NULL;
    }
    da_errf(err, errlen, "%s: no state dict found: the checkpoint holds no dict of tensors%s%s", label,
            o ? " under " : "", path);
    return NULL;
}

/* Copies the elements of a strided view into dst, row-major. */
static void gather(unsigned char *dst, const unsigned char *src, const pk_tensor *t, size_t es) {
    int64_t idx[ST_MAX_DIMS] = {0};
    for (int64_t n = 0; n < t->numel; n++) {
        int64_t off = t->storage_offset;
        for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
        memcpy(dst + (size_t)n * es, src + (size_t)off * es, es);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_meta(st_file *f, int cap, const char *key, const char *value) {
    if (f->n_meta == cap) return -1;
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) { free(k); free(v); return -1; }
    f->meta[f->n_meta++] = (st_meta){k, v};
    return 0;
}

static void clear_file(st_file *f) {
    for (int i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    for (int i = 0; i < f->n_meta; i++) { free(f->meta[i].key); free(f->meta[i].value); }
    free(f->tensors);
    free(f->meta);
    free(f->owned);
    f->tensors = NULL; f->n_tensors = 0;
    f->meta = NULL; f->n_meta = 0;
    f->owned = NULL;
    f->data = NULL; f->data_size = 0;
}

/* The state dict's tensors under their names (owned). */
typedef struct {
    char **names;
    const pk_obj **tensors;
    int n, cap;
} tensor_list;

static void list_free(tensor_list *l) {
    for (int i = 0; i < l->n; i++) free(l->names[i]);
    free(l->names);
    free(l->tensors);
}

/* Appends name (copied, len bytes) -> t; -1 when out of memory. */
static int list_add(tensor_list *l, const char *name, size_t len, const pk_obj *t) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **nn = realloc(l->names, sizeof *nn * (size_t)cap);
        if (nn) l->names = nn;
        const pk_obj **nt = realloc(l->tensors, sizeof *nt * (size_t)cap);
        if (nt) l->tensors = nt;
        if (!nn || !nt) return -1;
        l->cap = cap;
    }
    char *s = malloc(len + 1);
    if (!s) return -1;
    memcpy(s, name, len);
    s[len] = 0;
    l->names[l->n] = s;
    l->tensors[l->n++] = t;
    return 0;
}

static bool valid_key(const pk_obj *k) {
    return k->kind == PK_STR && k->slen && strlen(k->s) == k->slen;
}

/* The tensors of a state dict (string keys; other entries are skipped). */
static int collect_dict(const pk_obj *d, tensor_list *l, const char *label, char *err, size_t errlen) {
    for (int i = 0; i + 1 < d->n; i += 2) {
        const pk_obj *k = d->items[i], *v = d->items[i + 1];
        if (v->kind != PK_TENSOR || k->kind != PK_STR) continue;
        if (!valid_key(k)) { da_errf(err, errlen, "%s: a state dict key is empty or holds a NUL byte", label); return -1; }
        if (list_add(l, k->s, k->slen, v)) { da_errf(err, errlen, "%s: out of memory", label); return -1; }
    }
    return 0;
}

#define MAX_MODULE_DEPTH 32
#define MAX_NAME 1024

/* The tensors of a TorchScript module and its submodules, named like its state_dict ("a.b.weight").
 * Each module object is walked once (mark), so shared or cyclic references cost nothing. */
static int collect_module(pk_obj *mod, char *name, size_t len, int depth, tensor_list *l, const char *label,
                          char *err, size_t errlen) {
    if (mod->mark || !mod->attrs) return 0;
    mod->mark = 1;
    if (depth > MAX_MODULE_DEPTH) {
        da_errf(err, errlen, "%s: TorchScript modules nested more than %d deep", label, MAX_MODULE_DEPTH);
        return -1;
    }
    const pk_obj *d = mod->attrs;
    for (int i = 0; i + 1 < d->n; i += 2) {
        const pk_obj *k = d->items[i];
        pk_obj *v = d->items[i + 1];
        if ((v->kind != PK_TENSOR && v->kind != PK_OBJECT) || !valid_key(k)) continue;
        size_t nl = len + (len ? 1 : 0) + k->slen;
        if (nl >= MAX_NAME) { da_errf(err, errlen, "%s: a TorchScript attribute path is longer than %d bytes", label, MAX_NAME); return -1; }
        if (len) name[len] = '.';
        memcpy(name + len + (len ? 1 : 0), k->s, k->slen);
        name[nl] = 0;
        int rc = v->kind == PK_TENSOR ? list_add(l, name, nl, v) : collect_module(v, name, nl, depth + 1, l, label, err, errlen);
        if (rc) {
            if (v->kind == PK_TENSOR) da_errf(err, errlen, "%s: out of memory", label);
            return -1;
        }
        name[len] = 0;
    }
    return 0;
}

/* Fills f from the named tensors: dtypes, shapes and byte ranges of buf (or of f->owned). The
 * names move into f. */
static int fill_tensors(tensor_list *l, const unsigned char *buf, size_t size, st_file *f, const char *label,
                        char *err, size_t errlen) {
    int n = l->n;
    size_t gathered = 0;
    for (int i = 0; i < n; i++) {
        const pk_tensor *v = l->tensors[i]->t;
        if (v->contiguous) continue;
        /* a view that repeats elements (stride 0, overlapping strides) could ask for far more
         * memory than the file holds: gather only views no larger than their storage, and no
         * more in all than the archive's own size */
        if (v->numel > v->storage->numel) {
            da_errf(err, errlen, "%s: tensor '%.200s' is a strided view with more elements than its storage "
                    "(an expanded tensor?); save it with .contiguous() or .clone()", label, l->names[i]);
            return -1;
        }
        gathered += (size_t)v->numel * st_dtype_size(v->storage->dtype);
        if (gathered > size) {
            da_errf(err, errlen, "%s: the strided (non-contiguous) tensors add up to more bytes than the archive; "
                    "save the state dict with .contiguous() tensors", label);
            return -1;
        }
    }
    if (!n) {
        da_errf(err, errlen, "%s: the state dict holds no tensors", label);
        return -1;
    }
    f->tensors = calloc((size_t)n, sizeof *f->tensors);
    if (!f->tensors) { da_errf(err, errlen, "%s: out of memory", label); return -1; }
    f->data = buf;
    f->data_size = size;
    if (gathered) {
        /* strided views (e.g. a saved transpose) become dense copies after the archive's bytes */
        f->owned = malloc(size + gathered);
        if (!f->owned) { da_errf(err, errlen, "%s: out of memory gathering %zu bytes of strided tensors", label, gathered); return -1; }
        memcpy(f->owned, buf, size);
        f->data = f->owned;
        f->data_size = size + gathered;
    }
    size_t tail = size;
    bool all_module = true;
    for (int i = 0; i < n; i++) {
        const pk_tensor *v = l->tensors[i]->t;
        st_tensor_info *t = &f->tensors[f->n_tensors++];
        t->name = l->names[i];
        l->names[i] = NULL;
        if (strncmp(t->name, "module.", 7)) all_module = false;
        t->dtype = v->storage->dtype;
        t->ndim = v->ndim;
        memcpy(t->shape, v->shape, sizeof t->shape);
        t->numel = v->numel;
        size_t es = st_dtype_size(t->dtype), bytes = (size_t)t->numel * es;
        if (v->contiguous) {
            t->begin = v->storage->offset + (size_t)v->storage_offset * es;
        } else {
            gather((unsigned char *)f->owned + tail, buf + v->storage->offset, v, es);
            t->begin = tail;
            tail += bytes;
        }
        t->end = t->begin + bytes;
    }
    if (all_module)   /* DataParallel: every name starts with "module." */
        for (int i = 0; i < f->n_tensors; i++) memmove(f->tensors[i].name, f->tensors[i].name + 7, strlen(f->tensors[i].name + 7) + 1);
    char **names = malloc(sizeof *names * (size_t)f->n_tensors);
    if (!names) { da_errf(err, errlen, "%s: out of memory", label); return -1; }
    for (int i = 0; i < f->n_tensors; i++) names[i] = f->tensors[i].name;
    qsort(names, (size_t)f->n_tensors, sizeof *names, cmp_names);
    for (int i = 1; i < f->n_tensors; i++)
        if (!strcmp(names[i], names[i - 1])) {
            da_errf(err, errlen, "%s: the state dict names '%.200s' twice", label, names[i]);
            free(names);
            return -1;
        }
    free(names);
    return 0;
}

/* Walks the '/'-separated keys (dict keys, or list indices) of select from root. */
static const pk_obj *select_path(const pk_obj *root, const char *select, const char *label, char *err, size_t errlen) {
    const pk_obj *node = root;
    for (const char *p = select; *p;) {
        size_t len = strcspn(p, "/");
        char key[128];
        if (!len || len >= sizeof key) {
            da_errf(err, errlen, "%s: '#%s' is not a key path (keys separated by '/', each 1..127 bytes)", label, select);
            return NULL;
        }
        memcpy(key, p, len);
        key[len] = 0;
        const pk_obj *next = NULL;
        if (node->kind == PK_DICT) {
            next = pk_dict_get(node, key);
        } else if (node->kind == PK_LIST || node->kind == PK_TUPLE) {
            char *end;
            long i = strtol(key, &end, 10);
            if (!*end && i >= 0 && i < node->n) next = node->items[i];
        }
        if (!next) {
            char keys[400] = "";
            if (node->kind == PK_DICT) list_keys(node, keys, sizeof keys);
            else if (node->kind == PK_LIST || node->kind == PK_TUPLE) snprintf(keys, sizeof keys, "indices 0..%d", node->n - 1);
            da_errf(err, errlen, "%s: the checkpoint has no '%s' in '#%s' (there: %s)", label, key, select,
                    keys[0] ? keys : "no keys");
            return NULL;
        }
        node = next;
        p += len + (p[len] == '/');
    }
    return node;
}

int da_torch_parse(const unsigned char *buf, size_t size, int flags, st_file *f, const char *label,
                   char *err, size_t errlen) {
    return da_torch_parse_select(buf, size, flags, NULL, f, label, err, errlen);
}

int da_torch_parse_select(const unsigned char *buf, size_t size, int flags, const char *select, st_file *f,
                          const char *label, char *err, size_t errlen) {
    clear_file(f);
    da_zip z;
    if (da_zip_open(buf, size, &z, label, err, errlen)) return -1;
    pk_doc doc = {0};
    tensor_list list = {0};
    storages s = {buf, &z, NULL, calloc((size_t)z.n + 1, 1), flags, label};
    char prefix[512];
    const da_zip_entry *pkl;
    int rc = -1;
    if (!s.checked) { da_errf(err, errlen, "%s: out of memory", label); goto done; }
    if (find_pickle(&z, label, prefix, sizeof prefix, &pkl, err, errlen)) goto done;
    s.prefix = prefix;
    if (da_zip_check_stored(buf, pkl, label, !(flags & DA_TORCH_NO_CRC), err, errlen)) goto done;
    if (pk_load(buf + pkl->offset, pkl->size, resolve_storage, &s, &doc, label, err, errlen)) goto done;
    const pk_obj *start = select && *select ? select_path(doc.root, select, label, err, errlen) : doc.root;
    if (!start) goto done;
    char path[200], where[400];
    const pk_obj *sd = select_state_dict(start, path, sizeof path, label, err, errlen);
    if (!sd) goto done;
    if (select && *select) snprintf(where, sizeof where, "#%s%s%s", select, path[0] ? " " : "", path);
    else snprintf(where, sizeof where, "%s", path[0] ? path : "top level");
    char name[MAX_NAME];
    name[0] = 0;
    if (sd->kind == PK_OBJECT ? collect_module((pk_obj *)sd, name, 0, 0, &list, label, err, errlen)
                              : collect_dict(sd, &list, label, err, errlen))
        goto done;
    if (fill_tensors(&list, buf, size, f, label, err, errlen)) goto done;
    f->meta = calloc(2, sizeof *f->meta);
    if (!f->meta || add_meta(f, 2, "source", "torch.save archive") ||
        add_meta(f, 2, "state_dict", where)) {
        da_errf(err, errlen, "%s: out of memory", label);
        goto done;
    }
    rc = 0;
done:
    if (rc) clear_file(f);
    list_free(&list);
    pk_free(&doc);
    free(s.checked);
    da_zip_free(&z);
    return rc;
}
