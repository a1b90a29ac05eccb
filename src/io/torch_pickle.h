/* torch_pickle.h — a restricted unpickler for the data.pkl of a torch.save archive. It is a
 * security boundary: it builds plain values (None, bool, int, float, str, tuple, list, dict)
 * and only the objects torch.save writes for tensors — collections.OrderedDict,
 * torch._utils._rebuild_tensor_v2 / _rebuild_tensor / _rebuild_parameter and the typed storage
 * classes named in persistent ids. TorchScript archives (torch.jit.save) add module objects of
 * `__torch__.*` classes and torch.jit._pickle's list builders: a module becomes a record of its
 * attributes (its class is only a name; no code of the archive is read or run). Any other
 * global, and any opcode that torch.save does not write, is refused with a message; nothing is
 * ever called. Memory is bounded by the pickle's
 * length (every object comes from one opcode), and storages are bounded by the archive's real
 * entry sizes through the resolver. */
#ifndef DA_TORCH_PICKLE_H
#define DA_TORCH_PICKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/safetensors.h"

typedef enum {
    PK_NONE, PK_BOOL, PK_INT, PK_FLOAT, PK_STR, PK_TUPLE, PK_LIST, PK_DICT, PK_GLOBAL, PK_STORAGE, PK_TENSOR,
    PK_OBJECT                     /* a TorchScript module: class name and attribute dict */
} pk_kind;

typedef struct pk_obj pk_obj;

/* A tensor: a view of a storage. */
typedef struct pk_tensor {
    const pk_obj *storage;
    int64_t storage_offset;       /* in elements */
    int ndim;
    int64_t shape[ST_MAX_DIMS], stride[ST_MAX_DIMS];
    int64_t numel;
    bool contiguous;              /* row-major dense from storage_offset */
} pk_tensor;

struct pk_obj {
    pk_kind kind;
    int64_t i;                    /* BOOL, INT; GLOBAL: which allowed global (internal; -1 for a
                                     TorchScript class) */
    double f;                     /* FLOAT */
    char *s;                      /* STR: NUL-terminated copy (bytes and py2 strings too);
                                     GLOBAL of a TorchScript class: "module.name" */
    size_t slen;
    pk_obj **items;               /* TUPLE/LIST: n items; DICT: n keys and values, alternating */
    int n, cap;
    /* STORAGE (from a persistent id) */
    st_dtype dtype;
    size_t offset;                /* of its first byte in the archive */
    int64_t numel;                /* elements it holds */
    struct pk_tensor *t;          /* TENSOR (allocated only for tensors, to keep objects small) */
    /* OBJECT */
    const pk_obj *cls;            /* its GLOBAL */
    const pk_obj *attrs;          /* DICT set by BUILD, or NULL */
    int mark;                     /* scratch for walks over the objects (0 after pk_load) */
};

/* Maps a storage key ("0", "1", ...) to its bytes in the archive: sets *offset and *nbytes, or
 * returns -1 with err set. */
typedef int (*pk_resolver)(void *user, const char *key, size_t *offset, size_t *nbytes, char *err, size_t errlen);

typedef struct {
    pk_obj **all;                 /* every object made, for freeing */
    int n_all, cap_all;
    pk_obj *root;
} pk_doc;

/* Unpickles buf. On failure returns -1 with a message (naming label and the byte offset) in err;
 * the doc is freed either way by pk_free. */
int pk_load(const unsigned char *buf, size_t size, pk_resolver resolve, void *user, pk_doc *doc,
            const char *label, char *err, size_t errlen);
void pk_free(pk_doc *doc);

/* The value of a string key in a DICT, or NULL. */
const pk_obj *pk_dict_get(const pk_obj *dict, const char *key);

#endif
