/* dataset_source.h — what each data-set reader (IDX, folder, CelebA, safetensors) hands to
 * da_dataset_load before the choice of images: labels and names, and pixels or file paths. */
#ifndef DA_DATASET_SOURCE_H
#define DA_DATASET_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/safetensors.h"

typedef enum {
    DA_SRC_U8,     /* pixels in memory as 8-bit levels (IDX) */
    DA_SRC_F32,    /* pixels in memory (or in a mapped file) as float in [-1,1] (safetensors) */
    DA_SRC_FILES,  /* one image file per item, decoded only when chosen (folder, CelebA) */
} da_source_kind;

typedef struct {
    da_source_kind kind;
    char what[4200];             /* the file or folder, for error messages */
    int64_t n;
    int64_t *labels;             /* (n) or NULL */
    char **names;                /* (n) or NULL (then "idx_%06lld" of the source index) */
    int64_t *orig_index;         /* (n) index before a split filter (CelebA), or NULL = identity */
    int c, h, w;                 /* U8, F32: the shape of every image */
    unsigned char *u8;           /* U8: (n,c,h,w) levels 0..255, owned */
    const unsigned char *f32;    /* F32: (n,c,h,w) little-endian float32, maybe unaligned */
    float *f32_owned;            /* F32 converted from another float dtype, owned (f32 points here) */
    st_file st;                  /* F32: the open safetensors file f32 may point into */
    bool st_opened;
    char **paths;                /* FILES: (n) full paths */
} da_source;

int da_source_idx(const char *path, da_source *s, char *err, size_t errlen);
int da_source_folder(const char *dir, da_source *s, char *err, size_t errlen);
int da_source_celeba(const char *dir, const char *attr, const char *split, da_source *s, char *err, size_t errlen);
int da_source_safetensors(const char *path, da_source *s, char *err, size_t errlen);
void da_source_free(da_source *s);

/* Shared by the readers: true when the first bytes of the (maybe gzip-compressed) file are an IDX header. */
bool da_idx_sniff(const char *path);

#endif
