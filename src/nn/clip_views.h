/* clip_views.h — random differentiable views of an image batch (crop-and-resize, low-pass,
 * mirror) under which the directional CLIP loss is averaged, so that a change which fools the
 * judge in one view only (a pixel texture) no longer pays off. */
#ifndef DA_CLIP_VIEWS_H
#define DA_CLIP_VIEWS_H

#include <stdbool.h>
#include <stdint.h>

#include "tensor/rng.h"
#include "tensor/tensor.h"

typedef struct {
    int64_t top, left, h, w;  /* the crop, resized back to the full image */
    bool lowpass;             /* 2×2 average pooling, then bilinear back to full size */
    bool mirror;              /* left-right flip */
} da_clip_view;

/* A view of an H×W image: crop side ∈ [min_scale, 1] × the image side (same factor for both
 * sides, random position), low-pass with probability 1/2 (images of at least 4×4), mirror with
 * probability 1/2. min_scale in (0, 1]. */
void da_clip_view_draw(da_rng *r, int64_t H, int64_t W, float min_scale, da_clip_view *v);

/* x (B,C,H,W) seen through v: (B,C,H,W), on ctx's tape when x requires grad. */
da_tensor *da_clip_view_apply(da_ctx *ctx, da_tensor *x, const da_clip_view *v);

#endif
