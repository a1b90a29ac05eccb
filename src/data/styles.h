/* styles.h — a bank of image style renderers (line drawings, pencil sketch, blur, noise, ...)
 * named in words, used to make synthetic target domains and to check translations against them. */
#ifndef DA_STYLES_H
#define DA_STYLES_H

#include <stdbool.h>
#include <stdint.h>

#include "tensor/rng.h"

/* Renders one image (c,h,w) in [-1,1] into out (c,h,w) in [-1,1]; c = 1 or 3. Line drawings
 * work on the grey image and write it to every channel. */
typedef void (*da_style_fn)(const float *in, int c, int h, int w, float *out, da_rng *rng);

/* What a style may be used for. The decision is made here, once, before any recipe is tuned:
 * the mini-CLIP trains on DA_STYLE_TRAIN styles only; DA_STYLE_VALIDATION renders *training*
 * images to choose recipes; DA_STYLE_TEST styles are the held-out target panel, used only to
 * make test sets, never to train or to pick anything. */
typedef enum { DA_STYLE_TRAIN, DA_STYLE_VALIDATION, DA_STYLE_TEST } da_style_use;

typedef struct {
    const char *name;                 /* e.g. "sobel" */
    da_style_use use;
    /* true for every style the mini-CLIP never sees (validation and test) */
    bool held_out;
    const char *const *synonyms;      /* words that also find it, NULL-terminated */
    const char *description;          /* one line for --help and reports */
    da_style_fn render;
} da_style;

int da_style_count(void);
/* The test panel (DA_STYLE_TEST styles, table order: "pencil" first) into out; returns the count. */
int da_style_test_panel(const da_style **out, int max);
/* The validation style ("xdog"). */
const da_style *da_style_validation(void);
const da_style *da_style_get(int i);  /* 0 <= i < da_style_count() */
/* By name or synonym, ignoring case, '-', '_' and repeated spaces, a leading "a"/"an"/"the"
 * and a trailing "style"; NULL when no style has that name. */
const da_style *da_style_find(const char *name);
/* Renders one image; out may equal in. Deterministic given the rng's state (only "noisy"
 * draws from it); rng may be NULL (then a stream seeded 0 is used). */
void da_style_render(const da_style *s, const float *in, int c, int h, int w, float *out, da_rng *rng);
/* Renders n images (n,c,h,w) in parallel; image i draws from the stream seeded
 * da_rng_at(seed, i), so the result does not depend on the thread count. out may equal in. */
void da_style_render_batch(const da_style *s, const float *in, int64_t n, int c, int h, int w, float *out, uint64_t seed);

#endif
