/* fuzz_safetensors.c — libFuzzer target for the safetensors reader: any byte string must be
 * either rejected with a message or opened so that every tensor reads without a fault. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    st_file f;
    char err[512];
    err[0] = 0;
    if (st_open_memory(data, size, &f, err, sizeof err)) {
        if (!err[0]) abort();          /* a rejection must say why */
        if (f.n_tensors || f.tensors || f.meta) abort();
        st_close(&f);
        return 0;
    }
    for (int i = 0; i < f.n_tensors; i++) {
        const st_tensor_info *t = &f.tensors[i];
        /* validated: the bytes lie inside the data section and match numel */
        if (t->end > f.data_size || t->end - t->begin != (size_t)t->numel * st_dtype_size(t->dtype)) abort();
        if (st_find(&f, t->name) == NULL) abort();
        float *x = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
        int64_t *y = malloc(sizeof(int64_t) * (size_t)(t->numel ? t->numel : 1));
        if (st_read_f32(&f, t, x, err, sizeof err)) abort();   /* every dtype converts to f32 */
        (void)st_read_i64(&f, t, y, err, sizeof err);         /* float dtypes are refused */
        free(x);
        free(y);
    }
    for (int i = 0; i < f.n_meta; i++)
        if (st_meta_get(&f, f.meta[i].key) == NULL) abort();
    st_close(&f);
    return 0;
}
