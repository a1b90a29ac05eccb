/* conv.c — 2-D convolution with zero padding and any stride: im2col + sgemm (da_sgemm: oneDNN's
 * or OpenBLAS's, gemm.h), forward and backward. A 1x1 stride-1 unpadded convolution multiplies the (C,H*W) view directly.
 *
 * Layout. A column matrix has K = C*kh*kw rows (row k = (c,ki,kj)) and one column per output
 * position. The work is cut into tiles of at most TILE_FLOATS column entries:
 *   - several whole images per tile when an image is small (columns image-major): one larger
 *     GEMM instead of many thin ones; its (O, images*P) result is scattered to (images,O,P);
 *   - a band of whole output rows of one image when an image is large: the GEMM writes
 *     straight into the output with leading dimension P.
 *
 * Threads. Each OpenMP thread takes whole tiles (im2col, a single-threaded sgemm, col2im) with
 * its own workspace, so there is one parallel region per call and no hand-over between
 * OpenMP and OpenBLAS thread pools: alternating the two per tile made idle OpenMP threads spin
 * against OpenBLAS's (4-10x slower on 2 busy cores). OpenBLAS is set to one thread for the
 * duration of the region and restored after. Tiles are sized for at least two per thread.
 * dW is summed in a private buffer per thread (tiles dealt out statically, so reruns give
 * identical bits); dX of bands of one image that share input
 * rows is written in two phases (even bands, then odd bands), so no two threads touch one row.
 * Workspaces are taken from the step arena and handed back before the op returns.
 *
 * Memory trade-off in backward: dW needs the column matrix of the forward input. When the
 * whole batch's column matrix is at most KEEP_FLOATS (4 MiB) it is kept from the forward pass
 * (on the arena, for the step); otherwise backward recomputes im2col tile by tile, one pass
 * over memory per tile against about 2*O flops per column entry in the GEMMs.
 *
 * Backends. da_conv_choose (conv_dispatch.c) may hand a convolution to oneDNN (conv_dnnl.c) or
 * to Winograd (conv_winograd.c) instead; the tape entry remembers which backend ran the forward
 * pass, and backward uses the same one. If oneDNN fails (it returns false), this file's BLAS
 * path does the work. */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "tensor/ops/gemm.h"
#include "tensor/blas_threads.h"
#include "tensor/ops.h"
#include "tensor/ops/conv_backend.h"
#include "tensor/ops/scratch.h"

#define TILE_FLOATS ((int64_t)1 << 20)   /* the largest column tile (4 MiB per thread) */
#define KEEP_FLOATS ((int64_t)1 << 20)   /* keep the forward's columns for backward up to this */
#define DIRECT_MIN_P 512                 /* 1x1: smaller images are gathered into wider tiles */
#define SERIAL_MACS ((int64_t)1 << 20)   /* below this many multiply-adds, one thread does it all */

typedef struct {
    int64_t N, C, H, W;          /* input (N,C,H,W) */
    int64_t O, kh, kw;           /* weight (O,C,kh,kw) */
    int64_t OH, OW, s;           /* output (N,O,OH,OW), stride */
    int64_t pt, pb, pl, pr;      /* zero padding top, bottom, left, right */
    int64_t K, P;                /* K = C*kh*kw, P = OH*OW */
    bool direct;                 /* 1x1, stride 1, no padding: x itself is the column matrix */
} conv_geom;

/* How the work is cut: `imgs` whole images per tile (pc == P), or imgs == 1 and bands of `pc`
 * positions (whole output rows) of one image. */
typedef struct {
    int64_t imgs, pc, bands, n_tiles;   /* bands per image when imgs == 1 */
} conv_plan;

/* A tile: images [n0, n0+nb), output positions [p0, p0+pc) of each. Its column matrix is
 * (K, nb*pc); `band` is its band index inside its image. */
typedef struct {
    int64_t n0, nb, p0, pc, band;
} conv_tile;

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

static conv_plan make_plan(const conv_geom *g, int threads) {
    conv_plan p;
    /* columns per tile: bounded by the workspace, and small enough for two tiles per thread */
    int64_t total = g->N * g->P, balance = (total + 2 * threads - 1) / (2 * threads);
    int64_t t = min64(max64(TILE_FLOATS / max64(g->K, 1), 1), balance);
    if (g->direct && g->P >= DIRECT_MIN_P) t = balance;   /* no workspace: only balance counts */
    /* Bands hold at least ceil(kh/s) rows, so that bands two apart share no input row. */
    int64_t min_rows = max64(1, (g->kh + g->s - 1) / g->s);
    /* Tiles of even size: a thin last tile makes a slow GEMM. */
    if (g->P <= t && !(g->direct && g->P >= DIRECT_MIN_P)) {
        int64_t n_tiles = (g->N + t / g->P - 1) / (t / g->P);
        p.pc = g->P;
        p.imgs = (g->N + n_tiles - 1) / n_tiles;
        p.bands = 1;
        p.n_tiles = (g->N + p.imgs - 1) / p.imgs;
    } else {
        int64_t rows = max64(t / g->OW, min_rows), bands = (g->OH + rows - 1) / rows;
        rows = max64((g->OH + bands - 1) / bands, min_rows);
        p.imgs = 1;
        p.pc = min64(g->P, rows * g->OW);
        p.bands = (g->P + p.pc - 1) / p.pc;
        p.n_tiles = g->N * p.bands;
    }
    return p;
}

static conv_tile get_tile(const conv_geom *g, const conv_plan *p, int64_t i) {
    conv_tile t;
    if (p->imgs > 1 || p->bands == 1) {
        t.n0 = i * p->imgs;
        t.nb = min64(p->imgs, g->N - t.n0);
        t.p0 = 0;
        t.pc = g->P;
        t.band = 0;
    } else {
        t.n0 = i / p->bands;
        t.nb = 1;
        t.band = i % p->bands;
        t.p0 = t.band * p->pc;
        t.pc = min64(p->pc, g->P - t.p0);
    }
    return t;
}

/* ---- im2col / col2im (single-threaded: each thread works on its own tile) ----------------- */

/* Output columns [lo, hi) of a row read input column ow*s - pl + kj inside [0, W). */
static void valid_ow(const conv_geom *g, int64_t kj, int64_t *lo, int64_t *hi) {
    int64_t a = g->pl - kj, b = g->W - 1 + g->pl - kj;
    *lo = a <= 0 ? 0 : (a + g->s - 1) / g->s;
    *hi = b < 0 ? 0 : b / g->s + 1;
    if (*hi > g->OW) *hi = g->OW;
    if (*lo > *hi) *lo = *hi;
}

/* col (K, nb*pc) <- the tile's patches of x (N,C,H,W). */
static void im2col(const conv_geom *g, const conv_tile *t, const float *x, float *col) {
    const int64_t T = t->nb * t->pc, khw = g->kh * g->kw;
    const int64_t oh0 = t->p0 / g->OW, rows = t->pc / g->OW;
    for (int64_t k = 0; k < g->K; k++) {
        int64_t c = k / khw, ki = (k / g->kw) % g->kh, kj = k % g->kw;
        int64_t lo, hi;
        valid_ow(g, kj, &lo, &hi);
        const int64_t off = kj - g->pl;   /* input column of ow is ow*s + off */
        for (int64_t i = 0; i < t->nb; i++) {
            const float *xc = x + ((t->n0 + i) * g->C + c) * g->H * g->W;   /* (H,W) */
            float *d = col + k * T + i * t->pc;
            for (int64_t r = 0; r < rows; r++, d += g->OW) {
                int64_t ih = (oh0 + r) * g->s - g->pt + ki;
                if (ih < 0 || ih >= g->H) {
                    memset(d, 0, sizeof(float) * (size_t)g->OW);
                    continue;
                }
                const float *xr = xc + ih * g->W;
                for (int64_t ow = 0; ow < lo; ow++) d[ow] = 0.0f;
                if (g->s == 1) {
                    if (hi > lo) memcpy(d + lo, xr + lo + off, sizeof(float) * (size_t)(hi - lo));
                } else {
                    for (int64_t ow = lo; ow < hi; ow++) d[ow] = xr[ow * g->s + off];
                }
                for (int64_t ow = hi; ow < g->OW; ow++) d[ow] = 0.0f;
            }
        }
    }
}

/* dx (N,C,H,W) += the tile's column gradients dcol (K, nb*pc) folded back onto the input. */
static void col2im_add(const conv_geom *g, const conv_tile *t, const float *dcol, float *dx) {
    const int64_t T = t->nb * t->pc;
    const int64_t oh0 = t->p0 / g->OW, rows = t->pc / g->OW;
    for (int64_t i = 0; i < t->nb; i++)
        for (int64_t c = 0; c < g->C; c++) {
            float *xc = dx + ((t->n0 + i) * g->C + c) * g->H * g->W;   /* (H,W) */
            for (int64_t ki = 0; ki < g->kh; ki++)
                for (int64_t kj = 0; kj < g->kw; kj++) {
                    int64_t k = (c * g->kh + ki) * g->kw + kj, lo, hi;
                    valid_ow(g, kj, &lo, &hi);
                    const int64_t off = kj - g->pl;
                    const float *s = dcol + k * T + i * t->pc;
                    for (int64_t r = 0; r < rows; r++, s += g->OW) {
                        int64_t ih = (oh0 + r) * g->s - g->pt + ki;
                        if (ih < 0 || ih >= g->H) continue;
                        float *xr = xc + ih * g->W;
                        if (g->s == 1) {
                            for (int64_t ow = lo; ow < hi; ow++) xr[ow + off] += s[ow];
                        } else {
                            for (int64_t ow = lo; ow < hi; ow++) xr[ow * g->s + off] += s[ow];
                        }
                    }
                }
        }
}

/* The tile's column matrix and its leading dimension: a view of x for a direct conv on one
 * image, the kept forward buffer (tiles stored one after another), or im2col into `work`. */
static const float *tile_cols(const conv_geom *g, const conv_tile *t, const float *x, const float *kept,
                              float *work, int64_t *ld) {
    if (g->direct && t->nb == 1) {
        *ld = g->P;
        return x + t->n0 * g->C * g->P + t->p0;
    }
    *ld = t->nb * t->pc;
    if (kept) return kept + g->K * (t->n0 * g->P + t->p0);
    im2col(g, t, x, work);
    return work;
}

static void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                 const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    da_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}

/* ---- forward tile ----------------------------------------------------------------------- */

static void forward_tile(const conv_geom *g, const conv_tile *t, const float *x, const float *w, const float *b,
                         float *kept, float *col, float *yt, float *y) {
    int64_t cols = t->nb * t->pc, ld_col;
    const float *cv;
    if (kept) {
        cv = kept + g->K * (t->n0 * g->P + t->p0);
        ld_col = cols;
        im2col(g, t, x, (float *)cv);
    } else {
        cv = tile_cols(g, t, x, NULL, col, &ld_col);
    }
    if (t->nb > 1) {
        /* yt (O, nb*P) = W (O,K) col (K, nb*P), then to (nb,O,P) with the bias */
        gemm(false, false, g->O, cols, g->K, w, g->K, cv, ld_col, 0.0f, yt, cols);
        for (int64_t i = 0; i < t->nb; i++)
            for (int64_t o = 0; o < g->O; o++) {
                const float *s = yt + o * cols + i * g->P;
                float *d = y + ((t->n0 + i) * g->O + o) * g->P;
                if (b) {
                    for (int64_t p = 0; p < g->P; p++) d[p] = s[p] + b[o];
                } else {
                    memcpy(d, s, sizeof(float) * (size_t)g->P);
                }
            }
    } else {
        /* Y_n[:, band] (O,pc) = W (O,K) col (K,pc) (+ bias, pre-filled while it is in cache) */
        float *yv = y + t->n0 * g->O * g->P + t->p0;
        if (b)
            for (int64_t o = 0; o < g->O; o++)
                for (int64_t p = 0; p < t->pc; p++) yv[o * g->P + p] = b[o];
        gemm(false, false, g->O, cols, g->K, w, g->K, cv, ld_col, b ? 1.0f : 0.0f, yv, g->P);
    }
}

/* ---- backward --------------------------------------------------------------------------- */

static void make_geom(conv_geom *g, const da_tensor *x, const da_tensor *w, int stride, int pt, int pb,
                      int pl, int pr);

static da_conv_shape backend_shape(const conv_geom *g) {
    da_conv_shape s = {g->N, g->C, g->H, g->W, g->O, g->kh, g->kw, g->OH, g->OW,
                       (int)g->s, (int)g->pt, (int)g->pb, (int)g->pl, (int)g->pr};
    return s;
}

/* One tile of backward: dW_t (O,K) += dY col^T ; dX += col2im(W^T dY). */
static void backward_tile(const conv_geom *g, const conv_tile *t, const float *x, const float *w, const float *dy,
                          const float *kept, float *col, float *dyt, float *dcol, float *dw_t, float *dx) {
    int64_t cols = t->nb * t->pc, ld_dy;
    const float *dyv;
    if (t->nb > 1) {
        for (int64_t i = 0; i < t->nb; i++)
            for (int64_t o = 0; o < g->O; o++)
                memcpy(dyt + o * cols + i * g->P, dy + ((t->n0 + i) * g->O + o) * g->P, sizeof(float) * (size_t)g->P);
        dyv = dyt;
        ld_dy = cols;
    } else {
        dyv = dy + t->n0 * g->O * g->P + t->p0;
        ld_dy = g->P;
    }
    if (dw_t) {
        int64_t ld_col;
        const float *cv = tile_cols(g, t, x, kept, col, &ld_col);
        gemm(false, true, g->O, g->K, cols, dyv, ld_dy, cv, ld_col, 1.0f, dw_t, g->K);
    }
    if (dx) {
        if (g->direct && t->nb == 1) {
            /* dX_n[:, band] (C,pc) += W^T (C,O) dY_n[:, band] (O,pc) */
            gemm(true, false, g->K, cols, g->O, w, g->K, dyv, ld_dy, 1.0f, dx + t->n0 * g->C * g->P + t->p0, g->P);
        } else {
            gemm(true, false, g->K, cols, g->O, w, g->K, dyv, ld_dy, 0.0f, dcol, cols);
            col2im_add(g, t, dcol, dx);
        }
    }
}

/* db (O) += dy (N,O,P) summed over images and positions, in double. */
static void add_bias_grad(const conv_geom *g, const float *dy, float *db, int threads) {
#pragma omp parallel for schedule(static) if (threads > 1)
    for (int64_t o = 0; o < g->O; o++) {
        double s = 0;
        for (int64_t n = 0; n < g->N; n++) {
            const float *r = dy + (n * g->O + o) * g->P;
            for (int64_t p = 0; p < g->P; p++) s += r[p];
        }
        db[o] += (float)s;
    }
}

/* in = {x, w, b?}; i[0..4] = stride, pad top, bottom, left, right; i[5] = threads the plan was
 * made for; i[6] = the backend of the forward pass; saved = kept columns or NULL */
static void conv2d_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *x = e->in[0], *w = e->in[1], *b = e->n_in > 2 ? e->in[2] : NULL;
    conv_geom g;
    make_geom(&g, x, w, (int)e->i[0], (int)e->i[1], (int)e->i[2], (int)e->i[3], (int)e->i[4]);
    const float *dy = e->out->grad;   /* (N,O,P) */
    const float *kept = e->saved;     /* tiles of (K, cols), in tile order, or NULL */
    /* Gradient buffers before the workspace, so that the workspace can be handed back. */
    float *dx = x->requires_grad ? da_grad(ctx, x) : NULL;
    float *dw = w->requires_grad ? da_grad(ctx, w) : NULL;
    float *db = b && b->requires_grad ? da_grad(ctx, b) : NULL;

    int threads = (int)e->i[5];   /* as in the forward pass: the kept columns follow its plan */
    bool empty = e->out->numel == 0 || g.K == 0;
    if (e->i[6] == DA_CONV_WINO && !empty && (dx || dw)) {
        da_conv_shape s = backend_shape(&g);
        if (db) add_bias_grad(&g, dy, db, threads);
        da_conv_wino_backward(ctx, &s, x->data, w->data, dy, dx, dw);
        return;
    }
    if (e->i[6] == DA_CONV_DNNL && !empty && (dx || dw)) {
        da_conv_shape s = backend_shape(&g);
        if (da_conv_dnnl_backward(ctx, &s, x->data, w->data, dy, dx, dw, dw ? db : NULL)) {
            if (db && !dw) add_bias_grad(&g, dy, db, threads);
            return;
        }
    }
    if (db) add_bias_grad(&g, dy, db, threads);
    if ((!dx && !dw) || empty) return;

    conv_plan plan = make_plan(&g, threads);
    int64_t T = plan.imgs * plan.pc;
    bool one_direct = g.direct && plan.imgs == 1;
    int64_t col_n = dw && !kept && !one_direct ? g.K * T : 0;   /* im2col of x */
    int64_t dyt_n = plan.imgs > 1 ? g.O * T : 0;                /* gathered dy */
    int64_t dcol_n = dx && !one_direct ? g.K * T : 0;           /* column gradients */
    int64_t dwt_n = dw ? g.O * g.K : 0;                         /* private dW of threads 1.. */
    int64_t per = col_n + dyt_n + dcol_n + dwt_n;
    da_scratch_mark mark;
    float *work = da_scratch_take(ctx, per * threads, &mark);
    /* Bands of one image that share input rows (kh > s) are done in two phases. */
    bool phases = plan.imgs == 1 && plan.bands > 1 && g.kh > g.s && dx;

    const int blas_old = da_blas_serial_begin();
#pragma omp parallel num_threads(threads)
    {
        int tid = omp_get_thread_num();
        float *mine = work + per * tid;
        float *col = mine, *dyt = col + col_n, *dcol = dyt + dyt_n, *dwt = dcol + dcol_n;
        float *dw_t = dw ? (tid == 0 ? dw : dwt) : NULL;   /* thread 0 adds into dW directly */
        if (dw && tid != 0) memset(dwt, 0, sizeof(float) * (size_t)dwt_n);
        for (int ph = 0; ph < 2; ph++) {
            /* static: which tiles a thread sums into its dW is fixed, so dW is the same on
             * every run with this thread count (docs/determinism.md) */
#pragma omp for schedule(static)
            for (int64_t i = 0; i < plan.n_tiles; i++) {
                conv_tile t = get_tile(&g, &plan, i);
                if ((phases ? t.band % 2 : 0) != ph) continue;
                backward_tile(&g, &t, x->data, w->data, dy, kept, col, dyt, dcol, dw_t, dx);
            }
        }
        int team = omp_get_num_threads();   /* the runtime may give fewer than asked */
        if (dw && team > 1) {
            /* dW += the other threads' sums (the loops above ended with a barrier) */
#pragma omp for schedule(static)
            for (int64_t j = 0; j < dwt_n; j++) {
                float s = 0.0f;
                for (int th = 1; th < team; th++) s += work[per * th + col_n + dyt_n + dcol_n + j];
                dw[j] += s;
            }
        }
    }
    da_blas_serial_end(blas_old);
    da_scratch_give_back(ctx, &mark);
}

/* ---- forward ---------------------------------------------------------------------------- */

static void make_geom(conv_geom *g, const da_tensor *x, const da_tensor *w, int stride, int pt, int pb,
                      int pl, int pr) {
    g->N = x->shape[0]; g->C = x->shape[1]; g->H = x->shape[2]; g->W = x->shape[3];
    g->O = w->shape[0]; g->kh = w->shape[2]; g->kw = w->shape[3];
    g->s = stride; g->pt = pt; g->pb = pb; g->pl = pl; g->pr = pr;
    g->OH = (g->H + pt + pb - g->kh) / stride + 1;
    g->OW = (g->W + pl + pr - g->kw) / stride + 1;
    g->K = g->C * g->kh * g->kw;
    g->P = g->OH * g->OW;
    g->direct = g->kh == 1 && g->kw == 1 && stride == 1 && pt == 0 && pb == 0 && pl == 0 && pr == 0;
}

da_tensor *da_conv2d_ex(da_ctx *ctx, da_tensor *x, da_tensor *w, da_tensor *b, int stride,
                        int pad_top, int pad_bottom, int pad_left, int pad_right) {
    char xs[64], ws[64];
    da_check(x->ndim == 4 && w->ndim == 4 && x->shape[1] == w->shape[1], "conv2d",
             "input %s and weight %s do not match (need (N,C,H,W) and (O,C,kh,kw))",
             da_shape_str(x, xs, sizeof xs), da_shape_str(w, ws, sizeof ws));
    da_check(stride >= 1 && pad_top >= 0 && pad_bottom >= 0 && pad_left >= 0 && pad_right >= 0, "conv2d",
             "stride %d must be >= 1 and pads (%d,%d,%d,%d) >= 0", stride, pad_top, pad_bottom, pad_left, pad_right);
    da_check(x->shape[2] + pad_top + pad_bottom >= w->shape[2] && x->shape[3] + pad_left + pad_right >= w->shape[3],
             "conv2d", "padded input %s is smaller than the kernel %s", xs, ws);
    da_check(!b || b->numel == w->shape[0], "conv2d", "bias has %lld entries, expected %lld",
             b ? (long long)b->numel : 0LL, (long long)w->shape[0]);
    conv_geom g;
    make_geom(&g, x, w, stride, pad_top, pad_bottom, pad_left, pad_right);
    da_tensor *y = da_new(ctx, DA_SHAPE(g.N, g.O, g.OH, g.OW));
    bool empty = y->numel == 0 || g.K == 0;
    if (empty)
        for (int64_t i = 0; i < y->numel; i++) y->data[i] = b ? b->data[(i / g.P) % g.O] : 0.0f;

    da_tensor *in[3] = {x, w, b};
    int n_in = b ? 3 : 2;
    bool record = da_needs_grad(ctx, n_in, in);
    /* Small convolutions (gradient checks, tiny layers) are not worth waking other threads. */
    int threads = g.O * g.K * g.N * g.P < SERIAL_MACS ? 1 : omp_get_max_threads();
    da_conv_shape shape = backend_shape(&g);
    da_conv_backend backend = DA_CONV_BLAS;
    /* bf16 products only where nothing is differentiated (see da_precision) */
    bool bf16 = !record && ctx->precision == DA_PRECISION_BF16;
    da_conv_backend chosen = empty ? DA_CONV_BLAS : da_conv_choose(&shape);
    if (!empty && bf16 && da_conv_dnnl_forward(ctx, &shape, x->data, w->data, b ? b->data : NULL, y->data, true)) {
        backend = DA_CONV_DNNL;
    } else if (chosen == DA_CONV_WINO) {
        da_conv_wino_forward(ctx, &shape, x->data, w->data, b ? b->data : NULL, y->data);
        backend = DA_CONV_WINO;
    } else if (chosen == DA_CONV_DNNL &&
               da_conv_dnnl_forward(ctx, &shape, x->data, w->data, b ? b->data : NULL, y->data, false)) {
        backend = DA_CONV_DNNL;
    }
    /* Keep the whole batch's column matrix for dW when it is small (see the top of the file). */
    float *kept = NULL;
    if (backend == DA_CONV_BLAS && record && w->requires_grad && !g.direct && !empty &&
        g.K * g.N * g.P <= KEEP_FLOATS)
        kept = da_arena_alloc(&ctx->arena, sizeof(float) * (size_t)(g.K * g.N * g.P));

    if (!empty && backend == DA_CONV_BLAS) {
        conv_plan plan = make_plan(&g, threads);
        int64_t T = plan.imgs * plan.pc;
        bool one_direct = g.direct && plan.imgs == 1;
        int64_t col_n = !kept && !one_direct ? g.K * T : 0;
        int64_t yt_n = plan.imgs > 1 ? g.O * T : 0;
        int64_t per = col_n + yt_n;
        da_scratch_mark mark;
        float *work = da_scratch_take(ctx, per * threads, &mark);
        const int blas_old = da_blas_serial_begin();
#pragma omp parallel num_threads(threads)
        {
            float *mine = work + per * omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
            for (int64_t i = 0; i < plan.n_tiles; i++) {
                conv_tile t = get_tile(&g, &plan, i);
                forward_tile(&g, &t, x->data, w->data, b ? b->data : NULL, kept, mine, mine + col_n, y->data);
            }
        }
        da_blas_serial_end(blas_old);
        da_scratch_give_back(ctx, &mark);
    }

    if (record) {
        da_tape_entry *e = da_record(ctx, conv2d_backward, y, n_in, in);
        e->i[0] = stride; e->i[1] = pad_top; e->i[2] = pad_bottom; e->i[3] = pad_left; e->i[4] = pad_right;
        e->i[5] = threads;
        e->i[6] = backend;
        e->saved = kept;
    }
    return y;
}

da_tensor *da_conv2d(da_ctx *ctx, da_tensor *x, da_tensor *w, da_tensor *b, int stride, int pad) {
    return da_conv2d_ex(ctx, x, w, b, stride, pad, pad, pad, pad);
}
