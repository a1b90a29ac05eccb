/* conv_winograd.c — 3x3 stride-1 convolution by Winograd's minimal filtering F(4x4, 3x3):
 * forward, input gradient and weight gradient, for the shapes where oneDNN has no Winograd
 * kernel (every shape below AVX-512; batch under 16 on AVX-512), chosen by the measured rule in
 * conv_dispatch.c. Each 4x4 block of outputs ("tile") comes from a 6x6 block of inputs with 36
 * products per channel pair instead of 144: the convolution becomes 36 independent matrix
 * products (one per position of the 6x6 transformed tile) plus cheap linear transforms.
 *
 *   forward  y_tile  = A^T [ (G g G^T) ⊙ (B^T d B) ] A          g: 3x3 filter, d: 6x6 input
 *   weights  dg      = G^T [ Σ_tiles (A dy A^T) ⊙ (B^T d B) ] G   dy: 4x4 output gradient
 *   input    dx      = the forward pass on dy with every filter turned 180° and the channel roles
 *                      swapped (padding 2 - p), added into dx.
 *
 * The matrices come from the interpolation points 0, 1, -1, 1/2, -2 and ∞ (written out as
 * formulas in the *_1d functions). The transforms cost float32 bits; with these points the
 * forward error measured 2^-20.2 of the sum of |terms| (simulated on random 64-channel tiles),
 * against 2^-19.0 with the more common 0, ±1, ±2 (Lavin & Gray's), which fails the bound
 * test_conv_backends holds every backend to. The filter transforms run in double.
 *
 * Work layout. Tiles (n, ty, tx) are cut into blocks of `tb` tiles; each OpenMP thread takes
 * whole blocks with its own workspace, sized to stay in the L2 cache:
 *   V (36, tb, C)  transformed inputs      — channels contiguous, transformed 8 at a time;
 *   M (36, tb, K)  products V[p] · U[p]     — 36 calls of da_sgemm (tb x C)·(C x K);
 * and the outputs are transformed back and written to y (N, K, OH, OW). The transformed filters
 * U (36, C, K) are made once per call. For the weight gradient each thread sums
 * dU (36, K, C) += D[p]^T · V[p] over its blocks, D (36, tb, K) being the output-gradient tiles
 * turned by A · A^T (static schedule: the same bits on every run with the same thread count);
 * the sums are added in thread order and turned back by G^T · G. */
#include <immintrin.h>
#include <omp.h>
#include <string.h>

#include "tensor/ops.h"
#include "tensor/ops/conv_backend.h"
#include "tensor/ops/gemm.h"
#include "tensor/ops/scratch.h"
#include "tensor/blas_threads.h"

#define BLOCK_FLOATS ((int64_t)1 << 19)         /* V + M of one block: 2 MiB, this CPU's L2 (1 MiB measured slower) */

/* Eight channels of one tile position: the unit every transform works on (one AVX2 register;
 * arithmetic with the compiler's vector operators). Every function here is compiled for AVX2 +
 * FMA whatever the build's -march, and the backend is offered only where the CPU has both
 * (da_conv_wino_fits), so one binary still runs on older x86-64 CPUs. */
typedef __m256 v8;
#define AVX2 __attribute__((target("avx2,fma")))

/* ---- the transforms, on 6 (or 4) rows of eight channels --------------------------------- */

/* v = B^T d (6 -> 6) */
AVX2 static inline void input_1d(const v8 d[6], v8 v[6]) {
    v8 d0 = d[0], d1 = d[1], d2 = d[2], d3 = d[3], d4 = d[4], d5 = d[5];
    v[0] = d0 - 1.5f * (d1 - d3) - 2.0f * d2 + d4;
    v[1] = -d1 + 0.5f * d2 + 2.5f * d3 + d4;
    v[2] = d1 - 2.5f * d2 + 0.5f * d3 + d4;
    v[3] = 2.0f * (d3 - d1) - d2 + d4;
    v[4] = 0.5f * (d1 - d3) - d2 + d4;
    v[5] = d1 - 1.5f * (d2 - d4) - 2.0f * d3 + d5;
}

/* o = A^T m (6 -> 4) */
AVX2 static inline void output_1d(const v8 m[6], v8 o[4]) {
    v8 s12 = m[1] + m[2], d12 = m[1] - m[2];
    o[0] = m[0] + s12 + m[3] + m[4];
    o[1] = d12 + 0.5f * m[3] - 2.0f * m[4];
    o[2] = s12 + 0.25f * m[3] + 4.0f * m[4];
    o[3] = d12 + 0.125f * m[3] - 8.0f * m[4] + m[5];
}

/* p = A dy (4 -> 6): the transpose of output_1d */
AVX2 static inline void grad_1d(const v8 g[4], v8 p[6]) {
    v8 s02 = g[0] + g[2], s13 = g[1] + g[3];
    p[0] = g[0];
    p[1] = s02 + s13;
    p[2] = s02 - s13;
    p[3] = g[0] + 0.5f * g[1] + 0.25f * g[2] + 0.125f * g[3];
    p[4] = g[0] - 2.0f * g[1] + 4.0f * g[2] - 8.0f * g[3];
    p[5] = g[3];
}

/* ---- moving eight channels between planes and vectors ----------------------------------- */

/* The first n lanes on (all ones), the rest off. */
AVX2 static inline __m256i first_lanes(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Lanes s with 0 <= x0 + s < W on. */
AVX2 static inline __m256i columns_inside(int64_t x0, int64_t W) {
    __m256i at = _mm256_add_epi32(_mm256_set1_epi32((int)x0), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_setzero_si256(), at),
                               _mm256_cmpgt_epi32(_mm256_set1_epi32((int)W), at));
}

/* r[i] (8 floats each) -> r[j] lane i = old r[i] lane j */
AVX2 static inline void transpose8(v8 r[8]) {
    v8 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

/* Four vectors q[s] (8 lanes) -> lane l's four values q[0..3][l] as one 4-float vector out[l]. */
AVX2 static inline void lanes_to_rows(const v8 q[4], __m128 out[8]) {
    v8 t0 = _mm256_unpacklo_ps(q[0], q[1]), t1 = _mm256_unpackhi_ps(q[0], q[1]);
    v8 t2 = _mm256_unpacklo_ps(q[2], q[3]), t3 = _mm256_unpackhi_ps(q[2], q[3]);
    v8 u[4] = {_mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)), _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2)),
               _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)), _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2))};
    for (int l = 0; l < 4; l++) {
        out[l] = _mm256_castps256_ps128(u[l]);
        out[l + 4] = _mm256_extractf128_ps(u[l], 1);
    }
}

/* The inverse of lanes_to_rows: rows[l] (4 floats of lane l) -> q[s] lane l = rows[l][s]. */
AVX2 static inline void rows_to_lanes(const __m128 rows[8], v8 q[4]) {
    v8 u[4];
    for (int l = 0; l < 4; l++) u[l] = _mm256_set_m128(rows[l + 4], rows[l]);
    v8 t0 = _mm256_unpacklo_ps(u[0], u[1]), t1 = _mm256_unpackhi_ps(u[0], u[1]);
    v8 t2 = _mm256_unpacklo_ps(u[2], u[3]), t3 = _mm256_unpackhi_ps(u[2], u[3]);
    q[0] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    q[1] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    q[2] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    q[3] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
}

AVX2 static inline v8 load_lanes(const float *p, int lanes, __m256i mask) {
    return lanes == 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask);
}

AVX2 static inline void store_lanes(float *p, v8 v, int lanes, __m256i mask) {
    if (lanes == 8) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, mask, v);
}

/* Four filters' taps in double: the filter transform runs 4 filters at a time in double and
 * rounds to float once. */
typedef double d4 __attribute__((vector_size(32)));

/* u = G g (3 -> 6) */
AVX2 static inline void filter_1d(const d4 g[3], d4 u[6]) {
    const double third = 1.0 / 3.0, fifteenth = 1.0 / 15.0;
    u[0] = g[0];
    u[1] = (g[0] + g[1] + g[2]) * third;
    u[2] = -(g[0] - g[1] + g[2]) * third;
    u[3] = -(16.0 * g[0] + 8.0 * g[1] + 4.0 * g[2]) * fifteenth;
    u[4] = (g[0] - 2.0 * g[1] + 4.0 * g[2]) * fifteenth;
    u[5] = g[2];
}

/* g = G^T u (6 -> 3): the transpose of filter_1d */
AVX2 static inline void filter_grad_1d(const d4 u[6], d4 g[3]) {
    const double third = 1.0 / 3.0, fifteenth = 1.0 / 15.0;
    g[0] = u[0] + (u[1] - u[2]) * third + (u[4] - 16.0 * u[3]) * fifteenth;
    g[1] = (u[1] + u[2]) * third - (8.0 * u[3] + 2.0 * u[4]) * fifteenth;
    g[2] = (u[1] - u[2]) * third + (4.0 * u[4] - 4.0 * u[3]) * fifteenth + u[5];
}

/* ---- geometry --------------------------------------------------------------------------- */

/* One Winograd convolution: x (N,C,H,W) -> y (N,K,OH,OW), 3x3, stride 1, zero padding pt/pl on
 * top/left (the bottom/right padding is implied by OH, OW). */
typedef struct {
    int64_t N, C, H, W, K, OH, OW;
    int64_t pt, pl;
    int64_t tiles_h, tiles_w, tiles;   /* 4x4 output tiles per column, per row, in all */
    int64_t tb, blocks;                /* tiles per block, number of blocks */
} wino_geom;

AVX2 static wino_geom make_geom(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t OH, int64_t OW, int64_t pt,
                           int64_t pl, int threads) {
    wino_geom g = {N, C, H, W, K, OH, OW, pt, pl, 0, 0, 0, 0, 0};
    g.tiles_h = (OH + 3) / 4;
    g.tiles_w = (OW + 3) / 4;
    g.tiles = N * g.tiles_h * g.tiles_w;
    /* blocks that fit the cache, at least four per thread so that the threads stay busy, and
     * evened out so that every thread gets the same number (the weight gradient deals them
     * out statically) */
    int64_t tb = BLOCK_FLOATS / (36 * (C + K));   /* V and M of one tile */
    int64_t per_thread = (g.tiles + 4 * threads - 1) / (4 * threads);
    if (tb > per_thread) tb = per_thread;
    if (tb < 4) tb = 4;
    int64_t rounds = (g.tiles + tb * threads - 1) / (tb * threads);   /* blocks per thread */
    tb = (g.tiles + threads * rounds - 1) / (threads * rounds);
    if (tb < 4) tb = 4;
    g.tb = tb;
    g.blocks = (g.tiles + tb - 1) / tb;
    return g;
}

/* The tile's image and the top-left corner of its outputs. */
AVX2 static void tile_origin(const wino_geom *g, int64_t t, int64_t *n, int64_t *oy, int64_t *ox) {
    int64_t per_image = g->tiles_h * g->tiles_w;
    *n = t / per_image;
    int64_t r = t % per_image;
    *oy = 4 * (r / g->tiles_w);
    *ox = 4 * (r % g->tiles_w);
}

/* A tile's 4x4 outputs: image n, corner (oy, ox), how many of its rows and columns lie inside
 * the output, and those columns as a 4-lane mask. */
typedef struct {
    int64_t n, oy, ox;
    int rows, cols;
    __m128i colmask;
} out_tile;

AVX2 static out_tile output_tile(const wino_geom *g, int64_t t) {
    out_tile o;
    tile_origin(g, t, &o.n, &o.oy, &o.ox);
    o.rows = g->OH - o.oy < 4 ? (int)(g->OH - o.oy) : 4;
    o.cols = g->OW - o.ox < 4 ? (int)(g->OW - o.ox) : 4;
    o.colmask = _mm256_castsi256_si128(first_lanes(o.cols));
    return o;
}

/* ---- block stages ----------------------------------------------------------------------- */

/* V (36, tb, C) for tiles [t0, t0+nt): input patches turned by B^T · B. Each row of a 6x6
 * patch is read for eight channels at once (masked where it leaves the image: zero padding)
 * and transposed so that a vector holds one pixel of eight channels. */
AVX2 static void transform_inputs(const wino_geom *g, const float *x, int64_t t0, int64_t nt, float *V) {
    int64_t HW = g->H * g->W, ldp = g->tb * g->C;
    for (int64_t i = 0; i < nt; i++) {
        int64_t n, oy, ox;
        tile_origin(g, t0 + i, &n, &oy, &ox);
        int64_t y0 = oy - g->pt, x0 = ox - g->pl;
        __m256i cols = columns_inside(x0, g->W);
        for (int64_t c0 = 0; c0 < g->C; c0 += 8) {
            int lanes = g->C - c0 < 8 ? (int)(g->C - c0) : 8;
            const float *xc = x + (n * g->C + c0) * HW;
            v8 d[6][6], t[6][6], v[6][6];   /* d[col][row]; t[col][row']; v[row][col]; eight channels each */
            for (int r = 0; r < 6; r++) {
                int64_t yy = y0 + r;
                v8 row[8];
                for (int l = 0; l < 8; l++)
                    row[l] = l < lanes && yy >= 0 && yy < g->H ? _mm256_maskload_ps(xc + l * HW + yy * g->W + x0, cols)
                                                               : _mm256_setzero_ps();
                transpose8(row);
                for (int c = 0; c < 6; c++) d[c][r] = row[c];   /* d[col][row]: columns first */
            }
            for (int c = 0; c < 6; c++) input_1d(d[c], t[c]);   /* t[col][row'] = (B^T d)[row'][col] */
            for (int r = 0; r < 6; r++) {
                v8 across[6] = {t[0][r], t[1][r], t[2][r], t[3][r], t[4][r], t[5][r]};
                input_1d(across, v[r]);
            }
            __m256i mask = first_lanes(lanes);
            float *dst = V + i * g->C + c0;
            for (int p = 0; p < 36; p++) store_lanes(dst + p * ldp, v[p / 6][p % 6], lanes, mask);
        }
    }
}

/* y (or y +=) from M (36, tb, K) for tiles [t0, t0+nt): A^T · A, plus the bias when given. */
AVX2 static void transform_outputs(const wino_geom *g, const float *M, int64_t t0, int64_t nt, const float *bias,
                              bool add, float *y) {
    int64_t P = g->OH * g->OW, ldp = g->tb * g->K;
    for (int64_t i = 0; i < nt; i++) {
        out_tile ot = output_tile(g, t0 + i);
        for (int64_t k0 = 0; k0 < g->K; k0 += 8) {
            int lanes = g->K - k0 < 8 ? (int)(g->K - k0) : 8;
            __m256i mask = first_lanes(lanes);
            v8 m[6][6], t[6][4], o[4][4];   /* m[col][row]; t[col][row']; o[row][col] */
            const float *src = M + i * g->K + k0;
            for (int p = 0; p < 36; p++) m[p % 6][p / 6] = load_lanes(src + p * ldp, lanes, mask);   /* m[col][row] */
            for (int c = 0; c < 6; c++) output_1d(m[c], t[c]);
            for (int r = 0; r < 4; r++) {
                v8 across[6] = {t[0][r], t[1][r], t[2][r], t[3][r], t[4][r], t[5][r]};
                output_1d(across, o[r]);
            }
            v8 b = bias && !add ? load_lanes(bias + k0, lanes, mask) : _mm256_setzero_ps();
            for (int r = 0; r < ot.rows; r++) {
                v8 q[4] = {o[r][0] + b, o[r][1] + b, o[r][2] + b, o[r][3] + b};
                __m128 out[8];
                lanes_to_rows(q, out);
                for (int l = 0; l < lanes; l++) {
                    float *dst = y + (ot.n * g->K + k0 + l) * P + (ot.oy + r) * g->OW + ot.ox;
                    if (ot.cols == 4) {
                        _mm_storeu_ps(dst, add ? _mm_add_ps(_mm_loadu_ps(dst), out[l]) : out[l]);
                    } else {
                        __m128 val = add ? _mm_add_ps(_mm_maskload_ps(dst, ot.colmask), out[l]) : out[l];
                        _mm_maskstore_ps(dst, ot.colmask, val);
                    }
                }
            }
        }
    }
}

/* D (36, tb, K) for tiles [t0, t0+nt): output-gradient tiles turned by A · A^T (zero beyond the
 * output's edge). */
AVX2 static void transform_grads(const wino_geom *g, const float *dy, int64_t t0, int64_t nt, float *D) {
    int64_t P = g->OH * g->OW, ldp = g->tb * g->K;
    for (int64_t i = 0; i < nt; i++) {
        out_tile ot = output_tile(g, t0 + i);
        for (int64_t k0 = 0; k0 < g->K; k0 += 8) {
            int lanes = g->K - k0 < 8 ? (int)(g->K - k0) : 8;
            v8 d[4][4], t[4][6], v[6][6];   /* d[col][row]; t[col][row']; v[row][col] */
            for (int r = 0; r < 4; r++) {
                __m128 in[8];
                for (int l = 0; l < 8; l++) in[l] = _mm_setzero_ps();
                if (r < ot.rows) {
                    const float *row = dy + (ot.n * g->K + k0) * P + (ot.oy + r) * g->OW + ot.ox;
                    for (int l = 0; l < lanes; l++) in[l] = _mm_maskload_ps(row + l * P, ot.colmask);
                }
                v8 q[4];
                rows_to_lanes(in, q);
                for (int c = 0; c < 4; c++) d[c][r] = q[c];
            }
            for (int c = 0; c < 4; c++) grad_1d(d[c], t[c]);
            for (int r = 0; r < 6; r++) {
                v8 across[4] = {t[0][r], t[1][r], t[2][r], t[3][r]};
                grad_1d(across, v[r]);
            }
            __m256i mask = first_lanes(lanes);
            float *dst = D + i * g->K + k0;
            for (int p = 0; p < 36; p++) store_lanes(dst + p * ldp, v[p / 6][p % 6], lanes, mask);
        }
    }
}

/* U (36, C, K) = G f G^T for every filter; `flip` reads w (C,K,3,3) turned 180° with its two
 * channel axes swapped (the input-gradient pass), otherwise w is (K,C,3,3). */
/* U[p][c][k] for one input channel c and every k, four filters at a time. */
AVX2 static void transform_filters_of(const float *w, int64_t C, int64_t K, bool flip, int64_t c, float *U) {
    for (int64_t k0 = 0; k0 < K; k0 += 4) {
        int lanes = K - k0 < 4 ? (int)(K - k0) : 4;
        d4 g[3][3], t[3][6], u[6][6];   /* g[col][row]; t[col][row']; u[row'][col'] */
        for (int r = 0; r < 3; r++)
            for (int s = 0; s < 3; s++)
                for (int l = 0; l < 4; l++) {
                    int64_t k = k0 + (l < lanes ? l : 0);   /* spare lanes repeat filter k0 */
                    const float *f = flip ? w + (c * K + k) * 9 : w + (k * C + c) * 9;
                    g[s][r][l] = flip ? f[(2 - r) * 3 + (2 - s)] : f[r * 3 + s];
                }
        for (int s = 0; s < 3; s++) filter_1d(g[s], t[s]);   /* t[col][row'] = (G g)[row'][col] */
        for (int r = 0; r < 6; r++) {
            d4 across[3] = {t[0][r], t[1][r], t[2][r]};
            filter_1d(across, u[r]);                       /* u[row'][col'] = (G g G^T) */
        }
        for (int p = 0; p < 36; p++) {
            __m128 v = _mm256_cvtpd_ps((__m256d)u[p / 6][p % 6]);
            float *dst = U + (p * C + c) * K + k0;
            if (lanes == 4) _mm_storeu_ps(dst, v);
            else _mm_maskstore_ps(dst, _mm256_castsi256_si128(first_lanes(lanes)), v);
        }
    }
}

/* Every vector operation lives in functions with the AVX2 attribute and the OpenMP loops only
 * call them: clang outlines a parallel region into a function without its parent's target. */
static void transform_filters(const float *w, int64_t C, int64_t K, bool flip, float *U) {
#pragma omp parallel for schedule(static) if (C * K >= 4096)
    for (int64_t c = 0; c < C; c++) transform_filters_of(w, C, K, flip, c, U);
}

/* ---- the three passes ------------------------------------------------------------------- */

/* y = conv(x, w) (+ bias), or y += it when `add`; with `flip`, w is read as the input
 * gradient's filters (transform_filters). The transformed filters and every thread's V and M
 * are one workspace from the arena, handed back at the end. */
AVX2 static void convolve(da_ctx *ctx, const wino_geom *g, const float *x, const float *w, bool flip,
                          const float *bias, bool add, float *y) {
    int threads = omp_get_max_threads();
    int64_t nu = 36 * g->C * g->K, per = 36 * g->tb * (g->C + g->K);
    da_scratch_mark mark;
    float *U = da_scratch_take(ctx, nu + per * threads, &mark), *work = U + nu;
    transform_filters(w, g->C, g->K, flip, U);
    const int blas_old = da_blas_serial_begin();
#pragma omp parallel num_threads(threads)
    {
        float *V = work + per * omp_get_thread_num(), *M = V + 36 * g->tb * g->C;
#pragma omp for schedule(dynamic, 1)
        for (int64_t blk = 0; blk < g->blocks; blk++) {
            int64_t t0 = blk * g->tb, nt = g->tiles - t0 < g->tb ? g->tiles - t0 : g->tb;
            transform_inputs(g, x, t0, nt, V);
            for (int p = 0; p < 36; p++)
                da_sgemm(false, false, nt, g->K, g->C, 1.0f, V + p * g->tb * g->C, g->C, U + p * g->C * g->K, g->K,
                         0.0f, M + p * g->tb * g->K, g->K);
            transform_outputs(g, M, t0, nt, bias, add, y);
        }
    }
    da_blas_serial_end(blas_old);
    da_scratch_give_back(ctx, &mark);
}

bool da_conv_wino_fits(const da_conv_shape *s) {
    static int cpu = -1;   /* whether this CPU has AVX2 and FMA */
    if (cpu < 0) cpu = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return cpu && s->kh == 3 && s->kw == 3 && s->stride == 1 && s->pt <= 2 && s->pb <= 2 && s->pl <= 2 && s->pr <= 2 &&
           s->OH > 0 && s->OW > 0 && s->C > 0 && s->O > 0;
}

AVX2 void da_conv_wino_forward(da_ctx *ctx, const da_conv_shape *s, const float *x, const float *w, const float *b,
                          float *y) {
    wino_geom g = make_geom(s->N, s->C, s->H, s->W, s->O, s->OH, s->OW, s->pt, s->pl,
                            omp_get_max_threads());
    convolve(ctx, &g, x, w, false, b, false, y);
}

/* dw += G^T dU G for the four (k, c) pairs from kc0, dU being the sum of the `team` threads'
 * partial sums (thread th's dU (36, K, C) at dus + th * stride), added in thread order in double. */
AVX2 static void filter_grads(const float *dus, int64_t stride, int team, int64_t pairs, int64_t kc0, float *dw) {
    int lanes = pairs - kc0 < 4 ? (int)(pairs - kc0) : 4;
    d4 u[6][6], t[3][6], f[3][3];   /* u[col][row]; t[row][col]: G^T applied down the columns; f[row][col] */
    for (int p = 0; p < 36; p++) {
        d4 sum = {0.0, 0.0, 0.0, 0.0};
        for (int th = 0; th < team; th++) {
            const float *part = dus + stride * th + p * pairs + kc0;
            for (int l = 0; l < lanes; l++) sum[l] += part[l];
        }
        u[p % 6][p / 6] = sum;
    }
    for (int c = 0; c < 6; c++) {
        d4 out[3];
        filter_grad_1d(u[c], out);   /* over the rows of column c */
        for (int r = 0; r < 3; r++) t[r][c] = out[r];
    }
    for (int r = 0; r < 3; r++) filter_grad_1d(t[r], f[r]);
    for (int l = 0; l < lanes; l++) {
        float *dst = dw + (kc0 + l) * 9;   /* dw (K, C, 3, 3): kc = k*C + c */
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 3; c++) dst[r * 3 + c] += (float)f[r][c][l];
    }
}

/* dU (36, K, C) summed over all tiles, then dw += G^T dU G. */
AVX2 static void weight_grad(da_ctx *ctx, const da_conv_shape *s, const float *x, const float *dy, float *dw) {
    int threads = omp_get_max_threads();
    wino_geom g = make_geom(s->N, s->C, s->H, s->W, s->O, s->OH, s->OW, s->pt, s->pl, threads);
    int64_t nu = 36 * g.K * g.C;
    int64_t per = 36 * g.tb * (g.C + g.K) + nu;
    da_scratch_mark mark;
    float *work = da_scratch_take(ctx, per * threads, &mark);
    int team = 1;
    const int blas_old = da_blas_serial_begin();
#pragma omp parallel num_threads(threads)
    {
        float *V = work + per * omp_get_thread_num(), *D = V + 36 * g.tb * g.C, *dU = D + 36 * g.tb * g.K;
        memset(dU, 0, sizeof(float) * (size_t)nu);
#pragma omp single
        team = omp_get_num_threads();
        /* static: the blocks a thread sums are fixed, so dW has the same bits on every run */
#pragma omp for schedule(static)
        for (int64_t blk = 0; blk < g.blocks; blk++) {
            int64_t t0 = blk * g.tb, nt = g.tiles - t0 < g.tb ? g.tiles - t0 : g.tb;
            transform_inputs(&g, x, t0, nt, V);
            transform_grads(&g, dy, t0, nt, D);
            for (int p = 0; p < 36; p++)
                da_sgemm(true, false, g.K, g.C, nt, 1.0f, D + p * g.tb * g.K, g.K, V + p * g.tb * g.C, g.C, 1.0f,
                         dU + p * g.K * g.C, g.C);
        }
        /* the threads' sums turned back into 3x3 filters (the loop above ended with a barrier) */
#pragma omp for schedule(static)
        for (int64_t kc0 = 0; kc0 < g.K * g.C; kc0 += 4)
            filter_grads(work + 36 * g.tb * (g.C + g.K), per, team, g.K * g.C, kc0, dw);
    }
    da_blas_serial_end(blas_old);
    da_scratch_give_back(ctx, &mark);
}

AVX2 void da_conv_wino_backward(da_ctx *ctx, const da_conv_shape *s, const float *x, const float *w, const float *dy,
                           float *dx, float *dw) {
    if (dx) {
        /* dx += conv(dy, w turned 180° with channels swapped), padding 2 - p: its output is (N,C,H,W) */
        wino_geom g = make_geom(s->N, s->O, s->OH, s->OW, s->C, s->H, s->W, 2 - s->pt, 2 - s->pl,
                                omp_get_max_threads());
        convolve(ctx, &g, dy, w, true, NULL, true, dx);
    }
    if (dw) weight_grad(ctx, s, x, dy, dw);
}
