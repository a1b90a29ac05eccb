/* conv3x3_relu_pool.c — conv 3×3 (pad 1) + bias → ReLU → max-pool 2×2 in one op, with Winograd
 * F(2×2,3×3) (Lavin & Gray 2016) and its exact adjoint for backward (see tensor/fused_ops.h).
 *
 * Why Winograd: the classifier is trained many times per experiment and its 3×3 convolutions
 * are almost all of its work; F(2×2,3×3) needs 16 multiplies per 2×2 outputs instead of 36.
 * Each 2×2 output tile is exactly one pooling window, so ReLU and pooling happen right in
 * the output transform and the full-resolution activation is never stored.
 *
 * Per tile t and channel pair (o,c), with ⊙ elementwise and the 16 positions ξ = 4i+j:
 *   U = G g Gᵀ (weights, 4×4)   V = Bᵀ d Bᵀᵀ (4×4 input patch d)   M[ξ] = Σ_c U[ξ](o,c) V[ξ](c,t)
 *   y = Aᵀ M A (2×2), pooled = max(relu(y + b)).
 * The sum over c is a GEMM per ξ: M[ξ] (O,T) = U[ξ] (O,C) · V[ξ] (C,T). Backward runs the same
 * maps transposed: dM = A dy Aᵀ (dy one-hot at the pool's argmax), dU[ξ] = dM[ξ] · V[ξ]ᵀ,
 * dg = Gᵀ dU G, dV[ξ] = U[ξ]ᵀ · dM[ξ], dd = B dV Bᵀ scattered back onto the input.
 *
 * Work is cut into chunks of whole images, wide enough for efficient GEMMs; chunks run
 * in parallel, each thread calling single-threaded sgemm (OpenBLAS is set to one thread for
 * the duration of the op and restored afterwards). */
#include "tensor/ops/gemm.h"
#include "tensor/fused_ops.h"

#include <cblas.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "tensor/ops/scratch.h"

/* A chunk holds whole images and at least MIN_TILES tiles when the batch allows it, so that
 * the 16 GEMMs per chunk are wide enough to run near sgemm's peak. */
#ifndef MIN_TILES
#define MIN_TILES 256
#endif
/* The 16 matrices of a chunk (one per ξ) sit this many floats apart beyond their size: loops
 * that touch all 16 at once would otherwise hit 16 addresses a power of two apart, which share
 * one L1 set. */
#define XPAD 16
/* Below this many input channels the GEMMs are outer products: plain loops beat sgemm. */
#define SMALL_C 4

/* Threads this op may use: one when called from inside a parallel region (e.g. several
 * trainings run side by side), so results do not depend on how the caller splits work. */
static int block_threads(void) { return omp_get_level() > 0 ? 1 : omp_get_max_threads(); }

typedef struct {
    int64_t N, C, H, W, O;
    int64_t PH, PW;               /* pooled output (N,O,PH,PW) */
    int64_t tiles;                /* PH*PW tiles per image */
    int64_t imgs;                 /* images per chunk */
    int64_t HP, WP;               /* zero-padded input plane (2*PH+2, 2*PW+2) */
} blk_geom;

static blk_geom make_geom(const da_tensor *x, const da_tensor *w) {
    blk_geom g;
    g.N = x->shape[0];
    g.C = x->shape[1];
    g.H = x->shape[2];
    g.W = x->shape[3];
    g.O = w->shape[0];
    g.PH = g.H / 2;
    g.PW = g.W / 2;
    g.tiles = g.PH * g.PW;
    g.HP = 2 * g.PH + 2;
    g.WP = 2 * g.PW + 2;
    g.imgs = (MIN_TILES + g.tiles - 1) / g.tiles;
    /* but at least one chunk per thread when the batch allows it */
    int64_t nt = block_threads(), fair = (g.N + nt - 1) / nt;
    if (g.imgs > fair) g.imgs = fair;
    if (g.imgs < 1) g.imgs = 1;
    return g;
}

/* Distance between the ξ-matrices of Vc / dVc (C,Tc) and of Mc / dMc (O,Tc). */
static inline int64_t vstride(const blk_geom *g, int64_t Tc) { return g->C * Tc + XPAD; }
static inline int64_t mstride(const blk_geom *g, int64_t Tc) { return g->O * Tc + XPAD; }

/* Floats of per-thread workspace a chunk step needs besides V, M and dV: the padded plane and
 * the four column-transformed planes. */
static int64_t plane_floats(const blk_geom *g) { return g->HP * g->WP + 4 * g->HP * g->PW; }

/* ---- the 4×4 transforms ----------------------------------------------------------------- */

/* U = G g Gᵀ, G = [[1,0,0],[.5,.5,.5],[.5,-.5,.5],[0,0,1]]; g (3×3) row-major -> u (16) */
static void weight_transform(const float *g, float *u) {
    float t[4][3];
    for (int j = 0; j < 3; j++) {
        float a = g[j], b = g[3 + j], c = g[6 + j];
        t[0][j] = a;
        t[1][j] = 0.5f * (a + b + c);
        t[2][j] = 0.5f * (a - b + c);
        t[3][j] = c;
    }
    for (int i = 0; i < 4; i++) {
        float a = t[i][0], b = t[i][1], c = t[i][2];
        u[4 * i + 0] = a;
        u[4 * i + 1] = 0.5f * (a + b + c);
        u[4 * i + 2] = 0.5f * (a - b + c);
        u[4 * i + 3] = c;
    }
}

/* dg (3×3) += Gᵀ du G, the adjoint of weight_transform. */
static void weight_transform_adj(const float *du, float *dg) {
    float t[3][4];   /* Gᵀ du: Gᵀ = [[1,.5,.5,0],[0,.5,-.5,0],[0,.5,.5,1]] */
    for (int j = 0; j < 4; j++) {
        float a = du[j], b = du[4 + j], c = du[8 + j], d = du[12 + j];
        t[0][j] = a + 0.5f * (b + c);
        t[1][j] = 0.5f * (b - c);
        t[2][j] = 0.5f * (b + c) + d;
    }
    for (int i = 0; i < 3; i++) {
        float a = t[i][0], b = t[i][1], c = t[i][2], d = t[i][3];
        dg[3 * i + 0] += a + 0.5f * (b + c);
        dg[3 * i + 1] += 0.5f * (b - c);
        dg[3 * i + 2] += 0.5f * (b + c) + d;
    }
}

/* ---- chunk steps ------------------------------------------------------------------------ */

/* pad (HP,WP) <- the plane xp (H,W) with a zero border: pad[r+1][q+1] = xp[r][q]. */
static void pad_plane(const blk_geom *g, const float *xp, float *pad) {
    const int64_t rows = g->H < g->HP - 1 ? g->H : g->HP - 1, cols = g->W < g->WP - 1 ? g->W : g->WP - 1;
    memset(pad, 0, sizeof(float) * (size_t)g->WP);
    for (int64_t r = 1; r < g->HP; r++) {
        float *pr = pad + r * g->WP;
        if (r - 1 < rows) {
            pr[0] = 0.0f;
            memcpy(pr + 1, xp + (r - 1) * g->W, sizeof(float) * (size_t)cols);
            for (int64_t q = cols + 1; q < g->WP; q++) pr[q] = 0.0f;
        } else {
            memset(pr, 0, sizeof(float) * (size_t)g->WP);
        }
    }
}

/* Vc (16, C, Tc) <- V = Bᵀ d B of every tile of images [n0, n0+nb), with
 * Bᵀ = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]]. The column step (d B) runs once per padded
 * row into four planes cs[j] (HP,PW); the row step (Bᵀ ·) then reads them contiguously. */
static void chunk_input(const blk_geom *g, const float *x, int64_t n0, int64_t nb, float *restrict vc,
                        float *restrict work) {
    const int64_t Tc = nb * g->tiles, PW = g->PW, stride = vstride(g, Tc);
    float *restrict pad = work, *restrict cs = work + g->HP * g->WP;    /* cs: (4,HP,PW) */
    for (int64_t i = 0; i < nb; i++)
        for (int64_t c = 0; c < g->C; c++) {
            pad_plane(g, x + ((n0 + i) * g->C + c) * g->H * g->W, pad);
            for (int64_t r = 0; r < g->HP; r++) {
                const float *pr = pad + r * g->WP;
                float *c0 = cs + r * PW, *c1 = c0 + g->HP * PW, *c2 = c1 + g->HP * PW, *c3 = c2 + g->HP * PW;
                for (int64_t tx = 0; tx < PW; tx++) {
                    float a = pr[2 * tx], b = pr[2 * tx + 1], d = pr[2 * tx + 2], e = pr[2 * tx + 3];
                    c0[tx] = a - d;
                    c1[tx] = b + d;
                    c2[tx] = d - b;
                    c3[tx] = b - e;
                }
            }
            float *vp = vc + c * Tc + i * g->tiles;
            for (int64_t ty = 0; ty < g->PH; ty++)
                for (int j = 0; j < 4; j++) {
                    const float *r0 = cs + (j * g->HP + 2 * ty) * PW, *r1 = r0 + PW, *r2 = r1 + PW, *r3 = r2 + PW;
                    float *v0 = vp + (0 * 4 + j) * stride + ty * PW, *v1 = vp + (1 * 4 + j) * stride + ty * PW;
                    float *v2 = vp + (2 * 4 + j) * stride + ty * PW, *v3 = vp + (3 * 4 + j) * stride + ty * PW;
                    for (int64_t tx = 0; tx < PW; tx++) {
                        v0[tx] = r0[tx] - r2[tx];
                        v1[tx] = r1[tx] + r2[tx];
                        v2[tx] = r2[tx] - r1[tx];
                        v3[tx] = r1[tx] - r3[tx];
                    }
                }
        }
}

/* dx (images [n0,n0+nb)) += the adjoint of chunk_input applied to dVc (16, C, Tc):
 * dd = B dV Bᵀ per tile, B = [[1,0,0,0],[0,1,-1,1],[-1,1,1,0],[0,0,0,-1]], overlapping tiles summed. */
static void chunk_input_adj(const blk_geom *g, const float *restrict dvc, int64_t n0, int64_t nb, float *dx,
                            float *restrict work) {
    const int64_t Tc = nb * g->tiles, PW = g->PW, stride = vstride(g, Tc);
    float *restrict pad = work, *restrict cs = work + g->HP * g->WP;   /* cs: (4,HP,PW) */
    const int64_t rows = g->H < g->HP - 1 ? g->H : g->HP - 1, cols = g->W < g->WP - 1 ? g->W : g->WP - 1;
    for (int64_t i = 0; i < nb; i++)
        for (int64_t c = 0; c < g->C; c++) {
            /* row step: cs[j][row] += B · dV[.][j] (rows of adjacent tiles overlap by two) */
            memset(cs, 0, sizeof(float) * (size_t)(4 * g->HP * PW));
            const float *vp = dvc + c * Tc + i * g->tiles;
            for (int64_t ty = 0; ty < g->PH; ty++)
                for (int j = 0; j < 4; j++) {
                    float *r0 = cs + (j * g->HP + 2 * ty) * PW, *r1 = r0 + PW, *r2 = r1 + PW, *r3 = r2 + PW;
                    const float *a = vp + (0 * 4 + j) * stride + ty * PW, *b = vp + (1 * 4 + j) * stride + ty * PW;
                    const float *cc = vp + (2 * 4 + j) * stride + ty * PW, *e = vp + (3 * 4 + j) * stride + ty * PW;
                    for (int64_t tx = 0; tx < PW; tx++) {
                        r0[tx] += a[tx];
                        r1[tx] += b[tx] - cc[tx] + e[tx];
                        r2[tx] += cc[tx] + b[tx] - a[tx];
                        r3[tx] -= e[tx];
                    }
                }
            /* column step into the padded plane, then its interior onto dx */
            memset(pad, 0, sizeof(float) * (size_t)(g->HP * g->WP));
            for (int64_t r = 0; r < g->HP; r++) {
                float *pr = pad + r * g->WP;
                const float *c0 = cs + r * PW, *c1 = c0 + g->HP * PW, *c2 = c1 + g->HP * PW, *c3 = c2 + g->HP * PW;
                for (int64_t tx = 0; tx < PW; tx++) {
                    pr[2 * tx] += c0[tx];
                    pr[2 * tx + 1] += c1[tx] - c2[tx] + c3[tx];
                    pr[2 * tx + 2] += c2[tx] - c0[tx] + c1[tx];
                    pr[2 * tx + 3] -= c3[tx];
                }
            }
            float *dxp = dx + ((n0 + i) * g->C + c) * g->H * g->W;
            for (int64_t r = 0; r < rows; r++) {
                const float *pr = pad + (r + 1) * g->WP + 1;
                float *xr = dxp + r * g->W;
                for (int64_t q = 0; q < cols; q++) xr[q] += pr[q];
            }
        }
}

/* 8-wide vectors (GCC/Clang vector extensions) for the two per-tile loops below: their
 * compare-and-select code does not auto-vectorise under the default -ftrapping-math. */
typedef float vf8 __attribute__((vector_size(32)));
typedef int32_t vi8 __attribute__((vector_size(32)));
/* the same, for loads and stores at any float-aligned address */
typedef float vf8u __attribute__((vector_size(32), aligned(4), may_alias));
typedef int32_t vi8u __attribute__((vector_size(32), aligned(4), may_alias));
#define VF8_LOAD(p) (*(const vf8u *)(p))
#define VF8_STORE(p, v) (*(vf8u *)(p) = (v))
#define VI8_LOAD(p) (*(const vi8u *)(p))
#define VI8_STORE(p, v) (*(vi8u *)(p) = (v))
/* lanes of a where mask is set, else of b (macros: no vector arguments cross a call) */
#define VF8_SEL(mask, a, b) ((vf8)(((vi8)(a) & (mask)) | ((vi8)(b) & ~(mask))))
#define VI8_SEL(mask, a, b) (((a) & (mask)) | ((b) & ~(mask)))

/* One pooled output from its 16 M values (m[k*stride]) and the bias: y and the code. */
static inline void output_one(const float *m, int64_t stride, float bo, float *y, int32_t *code) {
    float s00 = m[0] + m[stride] + m[2 * stride], s01 = m[stride] - m[2 * stride] - m[3 * stride];
    float s10 = m[4 * stride] + m[5 * stride] + m[6 * stride], s11 = m[5 * stride] - m[6 * stride] - m[7 * stride];
    float s20 = m[8 * stride] + m[9 * stride] + m[10 * stride], s21 = m[9 * stride] - m[10 * stride] - m[11 * stride];
    float s30 = m[12 * stride] + m[13 * stride] + m[14 * stride], s31 = m[13 * stride] - m[14 * stride] - m[15 * stride];
    float v[4] = {s00 + s10 + s20 + bo, s01 + s11 + s21 + bo, s10 - s20 - s30 + bo, s11 - s21 - s31 + bo};
    float mx = v[0] > 0.0f ? v[0] : 0.0f;
    int32_t k = 0;
    for (int j = 1; j < 4; j++)
        if (v[j] > mx) { mx = v[j]; k = j; }
    *y = mx;
    *code = mx > 0.0f ? k : 4;
}

/* M (16,O,Tc) -> y (N,O,PH,PW) = max-pool(relu(Aᵀ M A + b)) with Aᵀ = [[1,1,1,0],[0,1,-1,-1]];
 * code = argmax in the window (row-major, first maximum wins as in PyTorch) or 4 when the
 * maximum is 0 (ReLU inactive: no gradient). */
static void chunk_output(const blk_geom *g, const float *restrict mc, const float *bias, int64_t n0, int64_t nb,
                         float *restrict y, int32_t *restrict code) {
    const int64_t Tc = nb * g->tiles, S = mstride(g, Tc), T = g->tiles;
    const vf8 zero = {0}, one = zero + 1, two = zero + 2, three = zero + 3;
    for (int64_t o = 0; o < g->O; o++) {
        const float bo = bias ? bias[o] : 0.0f;
        const vf8 bv = zero + bo;
        for (int64_t i = 0; i < nb; i++) {
            const float *m = mc + o * Tc + i * T;
            const int64_t at = ((n0 + i) * g->O + o) * T;
            int64_t t = 0;
            for (; t + 8 <= T; t += 8) {
                const float *p = m + t;
                vf8 s00 = VF8_LOAD(p) + VF8_LOAD(p + S) + VF8_LOAD(p + 2 * S);
                vf8 s01 = VF8_LOAD(p + S) - VF8_LOAD(p + 2 * S) - VF8_LOAD(p + 3 * S);
                vf8 s10 = VF8_LOAD(p + 4 * S) + VF8_LOAD(p + 5 * S) + VF8_LOAD(p + 6 * S);
                vf8 s11 = VF8_LOAD(p + 5 * S) - VF8_LOAD(p + 6 * S) - VF8_LOAD(p + 7 * S);
                vf8 s20 = VF8_LOAD(p + 8 * S) + VF8_LOAD(p + 9 * S) + VF8_LOAD(p + 10 * S);
                vf8 s21 = VF8_LOAD(p + 9 * S) - VF8_LOAD(p + 10 * S) - VF8_LOAD(p + 11 * S);
                vf8 s30 = VF8_LOAD(p + 12 * S) + VF8_LOAD(p + 13 * S) + VF8_LOAD(p + 14 * S);
                vf8 s31 = VF8_LOAD(p + 13 * S) - VF8_LOAD(p + 14 * S) - VF8_LOAD(p + 15 * S);
                vf8 v0 = s00 + s10 + s20 + bv, v1 = s01 + s11 + s21 + bv;
                vf8 v2 = s10 - s20 - s30 + bv, v3 = s11 - s21 - s31 + bv;
                vf8 mx = VF8_SEL(v0 > zero, v0, zero), k = zero;
                vi8 gt = v1 > mx;
                k = VF8_SEL(gt, one, k);
                mx = VF8_SEL(gt, v1, mx);
                gt = v2 > mx;
                k = VF8_SEL(gt, two, k);
                mx = VF8_SEL(gt, v2, mx);
                gt = v3 > mx;
                k = VF8_SEL(gt, three, k);
                mx = VF8_SEL(gt, v3, mx);
                VF8_STORE(y + at + t, mx);
                vi8 ki = __builtin_convertvector(k, vi8);
                VI8_STORE(code + at + t, VI8_SEL(mx > zero, ki, ki - ki + 4));
            }
            for (; t < T; t++) output_one(m + t, S, bo, y + at + t, code + at + t);
        }
    }
}

/* dM (16,O,Tc) = A dy Aᵀ with dy one-hot at the argmax (r,c) = (k>>1, k&1) of each window:
 * dM[4i+j] = g a_i(r) a_j(c), A = [[1,0],[1,1],[1,-1],[0,-1]], i.e. a(0..3)(r) = 1-r, 1, 1-2r, -r.
 * Also dbias[o] += the gradients that pass the ReLU. */
static void chunk_grad_out(const blk_geom *g, const float *dy, const int32_t *code, int64_t n0, int64_t nb,
                           float *restrict dm, float *restrict dbias) {
    const int64_t Tc = nb * g->tiles, S = mstride(g, Tc), T = g->tiles;
    const vf8 zero = {0};
    const vi8 izero = {0}, four = izero + 4, bit1 = izero + 1, bit2 = izero + 2;
    for (int64_t o = 0; o < g->O; o++) {
        float sum = 0.0f;
        vf8 vsum = zero;
        for (int64_t i = 0; i < nb; i++) {
            const int64_t at = ((n0 + i) * g->O + o) * T;
            const float *dyo = dy + at;
            const int32_t *co = code + at;
            float *d = dm + o * Tc + i * T;
            int64_t t = 0;
            for (; t + 8 <= T; t += 8) {
                vi8 k = VI8_LOAD(co + t);
                vf8 gv = VF8_SEL(k < four, VF8_LOAD(dyo + t), zero);
                vi8 r = (k & bit2) != izero, c = (k & bit1) != izero;
                vsum += gv;
                vf8 a0 = VF8_SEL(r, zero, gv), a2 = VF8_SEL(r, -gv, gv), a3 = VF8_SEL(r, -gv, zero);
                vf8 a[4] = {a0, gv, a2, a3};
                for (int ai = 0; ai < 4; ai++) {
                    float *row = d + 4 * ai * S + t;
                    VF8_STORE(row, VF8_SEL(c, zero, a[ai]));
                    VF8_STORE(row + S, a[ai]);
                    VF8_STORE(row + 2 * S, VF8_SEL(c, -a[ai], a[ai]));
                    VF8_STORE(row + 3 * S, VF8_SEL(c, -a[ai], zero));
                }
            }
            for (; t < T; t++) {
                const int32_t k = co[t];
                const float gv = k < 4 ? dyo[t] : 0.0f;
                const float r = (k & 2) ? 1.0f : 0.0f, c = (k & 1) ? 1.0f : 0.0f;
                sum += gv;
                const float a[4] = {gv * (1.0f - r), gv, gv * (1.0f - 2.0f * r), -gv * r};
                const float bb[4] = {1.0f - c, 1.0f, 1.0f - 2.0f * c, -c};
                for (int ai = 0; ai < 4; ai++)
                    for (int bi = 0; bi < 4; bi++) d[(4 * ai + bi) * S + t] = a[ai] * bb[bi];
            }
        }
        for (int l = 0; l < 8; l++) sum += vsum[l];
        dbias[o] += sum;
    }
}

/* ---- the three products over the 16 positions ------------------------------------------- */

/* M[ξ] (O,Tc) = U[ξ] (O,C) · V[ξ] (C,Tc) */
static void prod_forward(const blk_geom *g, const float *U, const float *vc, int64_t Tc, float *mc) {
    for (int xi = 0; xi < 16; xi++) {
        const float *u = U + xi * g->O * g->C, *v = vc + xi * vstride(g, Tc);
        float *m = mc + xi * mstride(g, Tc);
        if (g->C > SMALL_C) {
            da_sgemm(false, false, (int)g->O, (int)Tc, (int)g->C, 1.0f, u, (int)g->C,
                        v, (int)Tc, 0.0f, m, (int)Tc);
            continue;
        }
        for (int64_t o = 0; o < g->O; o++) {
            float *restrict mo = m + o * Tc;
            const float u0 = u[o * g->C];
            for (int64_t t = 0; t < Tc; t++) mo[t] = u0 * v[t];
            for (int64_t c = 1; c < g->C; c++) {
                const float uc = u[o * g->C + c];
                const float *restrict vr = v + c * Tc;
                for (int64_t t = 0; t < Tc; t++) mo[t] += uc * vr[t];
            }
        }
    }
}

/* dU[ξ] (O,C) += dM[ξ] (O,Tc) · V[ξ]ᵀ */
static void prod_grad_u(const blk_geom *g, const float *dm, const float *vc, int64_t Tc, float *dU) {
    for (int xi = 0; xi < 16; xi++) {
        const float *d = dm + xi * mstride(g, Tc), *v = vc + xi * vstride(g, Tc);
        float *du = dU + xi * g->O * g->C;
        if (g->C > SMALL_C) {
            da_sgemm(false, true, (int)g->O, (int)g->C, (int)Tc, 1.0f, d, (int)Tc, v,
                        (int)Tc, 1.0f, du, (int)g->C);
            continue;
        }
        for (int64_t o = 0; o < g->O; o++)
            for (int64_t c = 0; c < g->C; c++) {
                const float *restrict a = d + o * Tc, *restrict b = v + c * Tc;
                vf8 acc = {0};   /* eight partial sums: an in-order float sum would not vectorise */
                int64_t t = 0;
                for (; t + 8 <= Tc; t += 8) acc += VF8_LOAD(a + t) * VF8_LOAD(b + t);
                float s = 0.0f;
                for (; t < Tc; t++) s += a[t] * b[t];
                for (int l = 0; l < 8; l++) s += acc[l];
                du[o * g->C + c] += s;
            }
    }
}

/* dV[ξ] (C,Tc) = U[ξ]ᵀ (C,O) · dM[ξ] (O,Tc) */
static void prod_grad_v(const blk_geom *g, const float *U, const float *dm, int64_t Tc, float *dv) {
    for (int xi = 0; xi < 16; xi++) {
        const float *u = U + xi * g->O * g->C, *d = dm + xi * mstride(g, Tc);
        float *v = dv + xi * vstride(g, Tc);
        if (g->C > SMALL_C) {
            da_sgemm(true, false, (int)g->C, (int)Tc, (int)g->O, 1.0f, u, (int)g->C, d,
                        (int)Tc, 0.0f, v, (int)Tc);
            continue;
        }
        for (int64_t c = 0; c < g->C; c++) {
            float *restrict vr = v + c * Tc;
            memset(vr, 0, sizeof(float) * (size_t)Tc);
            for (int64_t o = 0; o < g->O; o++) {
                const float uo = u[o * g->C + c];
                const float *restrict dr = d + o * Tc;
                for (int64_t t = 0; t < Tc; t++) vr[t] += uo * dr[t];
            }
        }
    }
}

/* ---- the op ----------------------------------------------------------------------------- */

typedef struct {
    float *U;          /* (16,O,C) transformed weights */
    float *V;          /* per chunk, at ch * 16 * vstride(Tmax): its transformed input tiles */
    int32_t *code;     /* (N,O,PH,PW) argmax in the pool window, 4 = ReLU inactive */
} blk_saved;

static void block_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *x = e->in[0], *w = e->in[1], *b = e->n_in > 2 ? e->in[2] : NULL;
    const blk_saved *sv = e->saved;
    blk_geom g = make_geom(x, w);
    const float *dy = e->out->grad;   /* (N,O,PH,PW) */
    const bool need_dx = x->requires_grad, need_dw = w->requires_grad;
    float *dx = need_dx ? da_grad(ctx, x) : NULL;
    float *dw = need_dw ? da_grad(ctx, w) : NULL;
    float *db = b && b->requires_grad ? da_grad(ctx, b) : NULL;
    const int nt = block_threads();
    const int64_t Tmax = g.imgs * g.tiles, n_chunks = (g.N + g.imgs - 1) / g.imgs, OC16 = 16 * g.O * g.C;
    const int64_t VS = 16 * vstride(&g, Tmax), MS = 16 * mstride(&g, Tmax);
    const int64_t per_thread = VS + MS + plane_floats(&g);
    da_scratch_mark mark;
    /* per thread: dV, dM and planes; then per-thread dU (16,O,C) and dbias (O) sums */
    float *ws = da_scratch_take(ctx, nt * (per_thread + OC16 + g.O), &mark);
    float *dU_all = ws + nt * per_thread, *db_all = dU_all + nt * OC16;
    memset(dU_all, 0, sizeof(float) * (size_t)(nt * (OC16 + g.O)));
    const int blas_threads = openblas_get_num_threads();
    if (blas_threads != 1) openblas_set_num_threads(1);
#pragma omp parallel num_threads(nt)
    {
        int th = omp_get_thread_num();
        float *dv = ws + th * per_thread, *dm = dv + VS, *work = dm + MS;
#pragma omp for schedule(static)
        for (int64_t ch = 0; ch < n_chunks; ch++) {
            int64_t n0 = ch * g.imgs, nb = g.N - n0 < g.imgs ? g.N - n0 : g.imgs, Tc = nb * g.tiles;
            chunk_grad_out(&g, dy, sv->code, n0, nb, dm, db_all + th * g.O);
            if (need_dw) prod_grad_u(&g, dm, sv->V + ch * VS, Tc, dU_all + th * OC16);
            if (need_dx) {
                prod_grad_v(&g, sv->U, dm, Tc, dv);
                chunk_input_adj(&g, dv, n0, nb, dx, work);
            }
        }
    }
    if (blas_threads != 1) openblas_set_num_threads(blas_threads);
    for (int th = 1; th < nt; th++) {   /* sum the per-thread accumulators */
        const float *src = dU_all + th * OC16;
        for (int64_t k = 0; k < OC16; k++) dU_all[k] += src[k];
        for (int64_t o = 0; o < g.O; o++) db_all[o] += db_all[th * g.O + o];
    }
    if (dw) {   /* dW (O,C,3,3) += Gᵀ dU G */
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int64_t oc = 0; oc < g.O * g.C; oc++) {
            float du[16];
            for (int k = 0; k < 16; k++) du[k] = dU_all[k * g.O * g.C + oc];
            weight_transform_adj(du, dw + oc * 9);
        }
    }
    if (db)
        for (int64_t o = 0; o < g.O; o++) db[o] += db_all[o];
    da_scratch_give_back(ctx, &mark);
}

/* U (16,O,C) from w (O,C,3,3) */
static void transform_weights(const blk_geom *g, const float *w, float *U, int nt) {
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t oc = 0; oc < g->O * g->C; oc++) {
        float u[16];
        weight_transform(w + oc * 9, u);
        for (int k = 0; k < 16; k++) U[k * g->O * g->C + oc] = u[k];
    }
}

da_tensor *da_conv3x3_relu_pool(da_ctx *ctx, da_tensor *x, da_tensor *w, da_tensor *b) {
    char xs[64], ws_[64];
    da_check(x->ndim == 4 && w->ndim == 4 && w->shape[1] == x->shape[1] && w->shape[2] == 3 && w->shape[3] == 3,
             "conv3x3_relu_pool", "input %s and weight %s do not fit (N,C,H,W) and (O,C,3,3)",
             da_shape_str(x, xs, sizeof xs), da_shape_str(w, ws_, sizeof ws_));
    da_check(x->shape[2] >= 2 && x->shape[3] >= 2, "conv3x3_relu_pool", "input %s is smaller than 2x2",
             da_shape_str(x, xs, sizeof xs));
    da_check(!b || (b->ndim == 1 && b->shape[0] == w->shape[0]), "conv3x3_relu_pool", "bias must be (O)");
    blk_geom g = make_geom(x, w);
    da_tensor *in[3] = {x, w, b};
    bool record = da_needs_grad(ctx, b ? 3 : 2, in);
    const int nt = block_threads();
    const int64_t Tmax = g.imgs * g.tiles, n_chunks = (g.N + g.imgs - 1) / g.imgs;
    const int64_t VS = 16 * vstride(&g, Tmax), MS = 16 * mstride(&g, Tmax);
    da_tensor *y = da_new(ctx, DA_SHAPE(g.N, g.O, g.PH, g.PW));
    blk_saved *sv = NULL;
    float *U;
    /* argmax codes are written in inference too (a branch-free loop); kept for backward */
    int32_t *code = da_arena_alloc(&ctx->arena, sizeof(int32_t) * (size_t)(y->numel ? y->numel : 1));
    if (record) {   /* kept for backward: allocated before the scratch space */
        sv = da_arena_alloc(&ctx->arena, sizeof *sv);
        sv->U = U = da_arena_alloc(&ctx->arena, sizeof(float) * (size_t)(16 * g.O * g.C));
        sv->code = code;
        /* backward needs the transformed input for dU: keep it rather than recompute it */
        sv->V = da_arena_alloc(&ctx->arena, sizeof(float) * (size_t)(n_chunks * VS));
    }
    const int64_t per_thread = VS + MS + plane_floats(&g);
    da_scratch_mark mark;
    float *ws = da_scratch_take(ctx, (record ? 0 : 16 * g.O * g.C) + nt * per_thread, &mark);
    if (!record) U = ws;
    float *chunks = record ? ws : ws + 16 * g.O * g.C;
    transform_weights(&g, w->data, U, nt);
    const int blas_threads = openblas_get_num_threads();
    if (blas_threads != 1) openblas_set_num_threads(1);
#pragma omp parallel num_threads(nt)
    {
        int th = omp_get_thread_num();
        float *vc = chunks + th * per_thread, *mc = vc + VS, *work = mc + MS;
#pragma omp for schedule(static)
        for (int64_t ch = 0; ch < n_chunks; ch++) {
            int64_t n0 = ch * g.imgs, nb = g.N - n0 < g.imgs ? g.N - n0 : g.imgs, Tc = nb * g.tiles;
            float *v = record ? sv->V + ch * VS : vc;
            chunk_input(&g, x->data, n0, nb, v, work);
            prod_forward(&g, U, v, Tc, mc);
            chunk_output(&g, mc, b ? b->data : NULL, n0, nb, y->data, code);
        }
    }
    if (blas_threads != 1) openblas_set_num_threads(blas_threads);
    da_scratch_give_back(ctx, &mark);
    if (record) {
        da_tape_entry *e = da_record(ctx, block_backward, y, b ? 3 : 2, in);
        e->saved = sv;
    }
    return y;
}
