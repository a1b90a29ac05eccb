/* dataset.h — image data sets in memory, loaded from any supported source, and the options
 * that choose, crop, resize, pad and convert them. Every command that takes --data/--input
 * goes through da_dataset_load. */
#ifndef DA_DATASET_H
#define DA_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t n, c, h, w;
    float *images;          /* (n,c,h,w) in [-1,1] */
    int64_t *labels;        /* (n), or NULL when the source has none */
    char **names;           /* (n) a name per image (file name, or "idx_000123"), never NULL after load */
    int64_t *source_index;  /* (n) index of the image in its source before selection */
} da_dataset;

typedef struct {
    const char *classes;    /* "5,7": keep these labels, relabelled 0..k-1 in this order; NULL = all */
    int64_t take;           /* > 0: keep this many images, drawn without replacement with `seed`;
                               the kept images stay in the source's order (see da_select) */
    int64_t skip;           /* drop this many of the drawn order first (disjoint train/test draws) */
    uint64_t seed;
    int size;               /* > 0: centre-crop to a square, then bilinear resize to size×size */
    int pad;                /* > 0: pad every side with -1 (black), e.g. 2 turns 28 into 32 */
    int channels;           /* 0 = as stored, 1 = to grey, 3 = to RGB */
    const char *attr;       /* CelebA: the attribute that becomes the 0/1 label */
    const char *split;      /* CelebA: "train", "valid", "test" or NULL for all */
} da_data_opts;

/* spec: a folder of PNG/JPEG (+ optional labels.csv), an IDX images file (.gz or not), the
 * alias fashion-mnist[:train|:test] (plain = train), a .safetensors file with `images`
 * (+ `labels`), or celeba:DIR. opts may be NULL (everything as stored). Order of work: source
 * (CelebA split) → classes → take/skip → decode the chosen images to `channels` →
 * crop+resize → pad. Returns 0, or -1 with a message naming the file at fault. */
int da_dataset_load(const char *spec, const da_data_opts *opts, da_dataset *out, char *err, size_t errlen);
void da_dataset_free(da_dataset *d);
/* Saves `images` (F32) and, if present, `labels` (I64) to a safetensors file, atomically. */
int da_dataset_save(const da_dataset *d, const char *path, char *err, size_t errlen);

#endif
