/* fuzz_torch_ckpt.c — libFuzzer target for the PyTorch checkpoint reader: a zip archive ("PK...")
 * goes through the whole reader (CRC checks off, so that mutations reach the pickle), any other
 * input through the restricted unpickler alone with every storage key resolving to a small
 * buffer. Either way the input must be rejected with a message or yield tensors that read
 * without a fault and lie inside their storage. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "io/torch_ckpt.h"
#include "io/torch_pickle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAKE_STORAGE 256

/* Keys "0".."9" are storages of FAKE_STORAGE bytes at offset 16 * key; others are missing. */
static int fake_resolve(void *user, const char *key, size_t *offset, size_t *nbytes, char *err, size_t errlen) {
    (void)user;
    if (key[0] < '0' || key[0] > '9' || key[1]) {
        snprintf(err, errlen, "no storage '%s'", key);
        return -1;
    }
    *offset = (size_t)(key[0] - '0') * 16;
    *nbytes = FAKE_STORAGE;
    return 0;
}

static void check_pickle(const uint8_t *data, size_t size) {
    pk_doc doc;
    char err[512];
    err[0] = 0;
    if (pk_load(data, size, fake_resolve, NULL, &doc, "<fuzz>", err, sizeof err)) {
        if (!err[0] || doc.root) abort();
        pk_free(&doc);
        return;
    }
    if (!doc.root) abort();
    for (int i = 0; i < doc.n_all; i++) {
        if (doc.all[i]->kind != PK_TENSOR) continue;
        const pk_tensor *o = doc.all[i]->t;
        /* the view's highest element lies inside its storage */
        int64_t last = o->storage_offset;
        for (int d = 0; d < o->ndim; d++)
            if (o->shape[d] > 0) last += (o->shape[d] - 1) * o->stride[d];
        if (o->numel && last >= o->storage->numel) abort();
        if ((size_t)o->storage->numel * st_dtype_size(o->storage->dtype) > FAKE_STORAGE) abort();
    }
    pk_free(&doc);
}

static void check_archive(const uint8_t *data, size_t size, const char *select) {
    st_file f;
    memset(&f, 0, sizeof f);
    char err[512];
    err[0] = 0;
    if (da_torch_parse_select(data, size, DA_TORCH_NO_CRC, select, &f, "<fuzz>", err, sizeof err)) {
        if (!err[0] || f.n_tensors || f.tensors || f.meta || f.owned) abort();
        return;
    }
    for (int i = 0; i < f.n_tensors; i++) {
        const st_tensor_info *t = &f.tensors[i];
        if (t->end > f.data_size || t->end - t->begin != (size_t)t->numel * st_dtype_size(t->dtype)) abort();
        if (st_find(&f, t->name) == NULL) abort();
        float *x = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
        if (st_read_f32(&f, t, x, err, sizeof err)) abort();
        free(x);
    }
    st_close(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (da_torch_is_zip(data, size)) {
        check_archive(data, size, NULL);
        check_archive(data, size, "model/0");   /* the FILE#key walk */
    } else {
        check_pickle(data, size);
    }
    return 0;
}
