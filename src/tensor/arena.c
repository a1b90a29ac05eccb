/* arena.c — bump allocator for per-step tensors (see arena.h).
 * Blocks are chained; reset() replaces a chain of several blocks by one block of the peak size. */
#include "tensor/arena.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DA_ALIGN 64

static da_arena_block *block_new(size_t size) {
    da_arena_block *b = malloc(sizeof *b);
    void *mem = NULL;
    if (!b || posix_memalign(&mem, DA_ALIGN, size) != 0) {
        fprintf(stderr, "error: out of memory allocating a %.1f MiB tensor arena block\n",
                (double)size / (1 << 20));
        exit(3);
    }
    b->next = NULL;
    b->size = size;
    b->used = 0;
    b->base = mem;
    return b;
}

void da_arena_init(da_arena *a, size_t min_block) {
    a->head = NULL;
    a->in_use = 0;
    a->peak = 0;
    a->min_block = min_block ? min_block : ((size_t)16 << 20);
}

void *da_arena_alloc(da_arena *a, size_t bytes) {
    size_t need = (bytes + DA_ALIGN - 1) & ~(size_t)(DA_ALIGN - 1);
    if (need == 0) need = DA_ALIGN;
    if (!a->head || a->head->used + need > a->head->size) {
        size_t size = a->min_block;
        if (a->head && a->head->size * 2 > size) size = a->head->size * 2;
        if (need > size) size = need;
        da_arena_block *b = block_new(size);
        b->next = a->head;
        a->head = b;
    }
    void *p = a->head->base + a->head->used;
    a->head->used += need;
    a->in_use += need;
    if (a->in_use > a->peak) a->peak = a->in_use;
    return p;
}

void *da_arena_calloc(da_arena *a, size_t bytes) {
    void *p = da_arena_alloc(a, bytes);
    memset(p, 0, bytes);
    return p;
}

void da_arena_reset(da_arena *a) {
    if (a->head && a->head->next) {
        /* Several blocks were needed: replace them by one that holds the whole peak. */
        size_t total = 0;
        for (da_arena_block *b = a->head; b;) {
            da_arena_block *next = b->next;
            total += b->size;
            free(b->base);
            free(b);
            b = next;
        }
        a->head = block_new(total);
    }
    if (a->head) a->head->used = 0;
    a->in_use = 0;
}

void da_arena_free(da_arena *a) {
    for (da_arena_block *b = a->head; b;) {
        da_arena_block *next = b->next;
        free(b->base);
        free(b);
        b = next;
    }
    a->head = NULL;
    a->in_use = 0;
}
