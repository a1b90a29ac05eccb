/* safetensors.h — reading and writing the safetensors format (8-byte little-endian header
 * length, JSON header, raw little-endian tensor bytes). Reading validates everything in the
 * header before touching data; large files are memory-mapped. Writing is atomic. */
#ifndef DA_SAFETENSORS_H
#define DA_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8

typedef enum { ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64, ST_I32, ST_U8, ST_I8, ST_BOOL, ST_I16 } st_dtype;

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    size_t begin, end;            /* byte offsets into the data section */
} st_tensor_info;

typedef struct {
    char *key, *value;
} st_meta;

typedef struct {
    st_tensor_info *tensors;      /* in file order */
    int n_tensors;
    st_meta *meta;                /* the "__metadata__" object (string values) */
    int n_meta;
    const unsigned char *data;    /* start of the data section */
    size_t data_size;
    void *map; size_t map_size;   /* whole file (mmap or malloc) */
    bool mapped;
    void *owned;                  /* NULL, or a buffer data points into that st_close frees
                                     (a PyTorch archive whose strided views were gathered) */
} st_file;

/* Opens and validates a safetensors file, or a PyTorch torch.save zip archive (.pth, .pt, .ckpt,
 * .bin; see torch_ckpt.h), which is presented the same way: its state dict's tensors with their
 * names and dtypes; "FILE.pth#key" takes the state dict under a key or list index of the
 * checkpoint (ckpt.pth#ema, ckpt.pth#4). The first bytes decide the format, not the file name.
 * On failure returns -1 with a message in err (e.g. "x.safetensors: header length 9999999
 * exceeds file size 120"), and f is left empty (st_close is still safe). */
int st_open(const char *path, st_file *f, char *err, size_t errlen);
/* Same, over a buffer owned by the caller (used by the fuzzer and the tests). */
int st_open_memory(const void *buf, size_t size, st_file *f, char *err, size_t errlen);
void st_close(st_file *f);

/* NULL when absent. A leading "module." in stored names is ignored by st_find. */
const st_tensor_info *st_find(const st_file *f, const char *name);
const char *st_meta_get(const st_file *f, const char *key);
const char *st_dtype_name(st_dtype d);
size_t st_dtype_size(st_dtype d);

/* Converts any float dtype (F32/F16/BF16/F64) or integer dtype to float32; out holds numel. */
int st_read_f32(const st_file *f, const st_tensor_info *t, float *out, char *err, size_t errlen);
/* Converts integer dtypes (I64/I32/I16/I8/U8/BOOL) to int64; out holds numel. */
int st_read_i64(const st_file *f, const st_tensor_info *t, int64_t *out, char *err, size_t errlen);

/* ---- writing ---------------------------------------------------------------------------- */
typedef struct st_writer st_writer;
st_writer *st_writer_new(void);
/* The writer copies nothing: data must stay valid until st_writer_save returns. */
void st_writer_add_f32(st_writer *w, const char *name, int ndim, const int64_t *shape, const float *data);
void st_writer_add_i64(st_writer *w, const char *name, int ndim, const int64_t *shape, const int64_t *data);
/* Any dtype: numel * st_dtype_size(dtype) little-endian bytes, e.g. a tensor of another file. */
void st_writer_add_raw(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape, const void *data);
void st_writer_set_meta(st_writer *w, const char *key, const char *value);  /* copies key and value */
/* Writes an exclusive temporary beside path (util/atomic.h), then renames it over path; returns -1
 * with err set on failure (disk full, permission, ...) and leaves any existing file at path
 * untouched. */
int st_writer_save(st_writer *w, const char *path, char *err, size_t errlen);
void st_writer_free(st_writer *w);

#endif
