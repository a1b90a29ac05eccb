/* scratch.h — short-lived workspaces for ops (im2col columns, resize intermediates) taken from
 * the step arena and handed back before the op returns, so the arena does not grow per call. */
#ifndef DA_OPS_SCRATCH_H
#define DA_OPS_SCRATCH_H

#include "tensor/tensor.h"

/* Where the arena stood before the workspace was taken. Nothing else may be allocated from the
 * arena between da_scratch_take and da_scratch_give_back (take gradient buffers first). */
typedef struct {
    da_arena_block *head;
    size_t used, in_use;
} da_scratch_mark;

/* `floats` uninitialised floats (NULL when floats <= 0), in one arena allocation. */
static inline float *da_scratch_take(da_ctx *ctx, int64_t floats, da_scratch_mark *m) {
    da_arena *a = &ctx->arena;
    m->head = a->head;
    m->used = a->head ? a->head->used : 0;
    m->in_use = a->in_use;
    return floats > 0 ? (float *)da_arena_alloc(a, (size_t)floats * sizeof(float)) : NULL;
}

static inline void da_scratch_give_back(da_ctx *ctx, const da_scratch_mark *m) {
    da_arena *a = &ctx->arena;
    if (a->head == m->head) {
        if (a->head) a->head->used = m->used;
    } else {
        a->head->used = 0;   /* the workspace opened a new block, which holds nothing else */
    }
    a->in_use = m->in_use;
}

#endif
