/* rng.c — counter-based random numbers: value i of stream s is a strong 64-bit mix of (s, i)
 * (SplitMix64 finaliser applied twice), so any element can be drawn independently. */
#include "tensor/rng.h"

#include <math.h>

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t da_rng_at(uint64_t seed, uint64_t index) {
    return mix64(mix64(seed * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL) ^ (index * 0xd1b54a32d192ed03ULL + 1));
}

void da_rng_init(da_rng *r, uint64_t seed) {
    r->seed = seed;
    r->counter = 0;
}

uint64_t da_rng_u64(da_rng *r) { return da_rng_at(r->seed, r->counter++); }

float da_rng_uniform1(da_rng *r) { return (float)(da_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

void da_rng_uniform(da_rng *r, float *out, int64_t n, float lo, float hi) {
    for (int64_t i = 0; i < n; i++) out[i] = lo + (hi - lo) * da_rng_uniform1(r);
}

void da_rng_normal(da_rng *r, float *out, int64_t n, float mean, float std) {
    /* Box-Muller in double; both values of each pair are used. */
    for (int64_t i = 0; i < n; i += 2) {
        double u1 = ((double)(da_rng_u64(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
        double u2 = (double)(da_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
        double rad = sqrt(-2.0 * log(u1));
        out[i] = mean + std * (float)(rad * cos(2.0 * M_PI * u2));
        if (i + 1 < n) out[i + 1] = mean + std * (float)(rad * sin(2.0 * M_PI * u2));
    }
}

int64_t da_rng_int(da_rng *r, int64_t n) { return n <= 0 ? 0 : (int64_t)(da_rng_u64(r) % (uint64_t)n); }

void da_rng_permutation(da_rng *r, int64_t *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = da_rng_int(r, i + 1);
        int64_t t = out[i]; out[i] = out[j]; out[j] = t;
    }
}
