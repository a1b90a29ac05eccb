/* transforms.h — the per-image transforms of the data options (centre crop, bilinear resize,
 * padding, channel conversion) and the choice of images (classes, seeded take/skip). */
#ifndef DA_TRANSFORMS_H
#define DA_TRANSFORMS_H

#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"

/* (c,ih,iw) → (c,oh,ow) with the maths of PyTorch's interpolate(mode="bilinear",
 * align_corners=False, antialias=False): source coordinate (dst+0.5)·in/out − 0.5, clamped at 0. */
void da_image_resize_bilinear(const float *in, int c, int ih, int iw, float *out, int oh, int ow);
/* The centred side×side square of (c,h,w), side = min(h,w), offsets floor((h−side)/2) and
 * floor((w−side)/2); out holds c·side·side. */
void da_center_crop_square(const float *in, int c, int h, int w, float *out);
/* (c,h,w) → (c,h+2·pad,w+2·pad), the border filled with `value`. */
void da_pad_image(const float *in, int c, int h, int w, int pad, float value, float *out);
/* (c_in,h,w) → (c_out,h,w) for c_in, c_out ∈ {1,3}: grey = 0.299R + 0.587G + 0.114B, grey to
 * RGB copies the plane. out must not overlap in. */
void da_convert_channels(const float *in, int c_in, int h, int w, float *out, int c_out);

/* Parses "5,7" into *classes (malloc'ed, *n entries). Returns -1 with err set on a malformed
 * list, a negative value or a repeated class. */
int da_parse_classes(const char *spec, int64_t **classes, int *n, char *err, size_t errlen);

/* Chooses images from a source of n (labels may be NULL) as opts says:
 *  1. classes: keep images whose label is listed, relabelled to its position in the list;
 *  2. take/skip: a permutation seeded with opts->seed (da_rng_permutation) of what is left;
 *     the first `skip` are dropped and the next `take` kept (all the rest when take is 0), so
 *     two draws with the same seed and skip ≥ the other's take are disjoint;
 *  3. the chosen indices are sorted, so the output keeps the source's order.
 * *idx (source indices) and *new_labels (NULL when labels is NULL) are malloc'ed with *count
 * entries. An empty result, --classes without labels, or take+skip beyond what is there are
 * errors naming `what`. */
int da_select(int64_t n, const int64_t *labels, const da_data_opts *opts, const char *what, int64_t **idx,
              int64_t *count, int64_t **new_labels, char *err, size_t errlen);

#endif
