/* rng.h — the seeded random stream (counter-based, so it is identical on every run and for
 * every thread count): uniform and normal floats, integers, and permutations. */
#ifndef DA_RNG_H
#define DA_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t seed;
    uint64_t counter;             /* how many 64-bit draws were taken */
} da_rng;

void da_rng_init(da_rng *r, uint64_t seed);
uint64_t da_rng_u64(da_rng *r);
float da_rng_uniform1(da_rng *r);                       /* [0,1) */
void da_rng_uniform(da_rng *r, float *out, int64_t n, float lo, float hi);
void da_rng_normal(da_rng *r, float *out, int64_t n, float mean, float std);
int64_t da_rng_int(da_rng *r, int64_t n);               /* [0,n) */
void da_rng_permutation(da_rng *r, int64_t *out, int64_t n);
/* A stateless draw: the value a stream seeded `seed` gives at position `index`. Lets parallel
 * loops (dropout masks) draw reproducibly whatever the thread count. */
uint64_t da_rng_at(uint64_t seed, uint64_t index);

#endif
