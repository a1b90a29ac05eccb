/* arena.h — bump allocator for the tensors of one step.
 * Allocation is a pointer increment; reset() frees everything at once and, after the first
 * step, keeps one block as large as the step's peak so later steps never call malloc. */
#ifndef DA_ARENA_H
#define DA_ARENA_H

#include <stddef.h>

typedef struct da_arena_block {
    struct da_arena_block *next;
    size_t size, used;
    unsigned char *base;          /* 64-byte aligned */
} da_arena_block;

typedef struct da_arena {
    da_arena_block *head;         /* the block allocations come from now */
    size_t in_use;                /* bytes handed out since the last reset */
    size_t peak;                  /* largest in_use ever seen (for memory reports) */
    size_t min_block;
} da_arena;

void da_arena_init(da_arena *a, size_t min_block);
/* 64-byte aligned, uninitialised; never returns NULL (aborts with a message when out of memory). */
void *da_arena_alloc(da_arena *a, size_t bytes);
void *da_arena_calloc(da_arena *a, size_t bytes);
void da_arena_reset(da_arena *a);
void da_arena_free(da_arena *a);

#endif
