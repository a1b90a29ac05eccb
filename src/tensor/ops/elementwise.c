/* elementwise.c — broadcasting binary ops (add, sub, mul, div), scalar ops, activations and
 * dropout, forward + backward, plus the strided kernels of strided.h that other op files share. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/ops.h"
#include "tensor/ops/strided.h"
#include "tensor/rng.h"

/* ==== strided iteration ==================================================================== */

/* The output's dims with the element strides of up to 3 operands read at output coordinates
 * (stride 0 = the operand is broadcast along that dim). */
typedef struct {
    int nd;
    int64_t shape[DA_MAX_DIMS];
    int64_t st[3][DA_MAX_DIMS];
} bc_iter;

/* Strides of an operand of shape (op_nd, op_shape) when read at coordinates of (nd, shape). */
static void operand_strides(int nd, const int64_t *shape, int op_nd, const int64_t *op_shape, int64_t *st) {
    da_check(op_nd <= nd, "broadcast", "operand has %d dims, output only %d", op_nd, nd);
    int64_t s = 1;
    for (int i = nd - 1; i >= 0; i--) {
        int k = i - (nd - op_nd);
        int64_t n = k >= 0 ? op_shape[k] : 1;
        da_check(n == shape[i] || n == 1, "broadcast", "operand dim %d has size %lld, output %lld",
                 k, (long long)n, (long long)shape[i]);
        st[i] = n == 1 ? 0 : s;
        s *= n;
    }
}

static void contiguous_strides(int nd, const int64_t *shape, int64_t *st) {
    int64_t s = 1;
    for (int i = nd - 1; i >= 0; i--) {
        st[i] = s;
        s *= shape[i];
    }
}

/* Drops size-1 dims and merges neighbours that every operand walks contiguously, so the common
 * cases become 1-3 dims: same shape -> (n); per-channel (N,C,H,W)+(1,C,1,1) -> (N,C,HW). */
static void coalesce(bc_iter *it, int n_ops) {
    int m = 0;
    for (int i = 0; i < it->nd; i++) {
        if (it->shape[i] == 1) continue;
        if (m > 0) {
            bool merge = true;
            for (int k = 0; k < n_ops; k++)
                if (it->st[k][m - 1] != it->st[k][i] * it->shape[i]) merge = false;
            if (merge) {
                it->shape[m - 1] *= it->shape[i];
                for (int k = 0; k < n_ops; k++) it->st[k][m - 1] = it->st[k][i];
                continue;
            }
        }
        it->shape[m] = it->shape[i];
        for (int k = 0; k < n_ops; k++) it->st[k][m] = it->st[k][i];
        m++;
    }
    if (m == 0) {
        it->shape[0] = 1;
        for (int k = 0; k < n_ops; k++) it->st[k][0] = 0;
        m = 1;
    }
    it->nd = m;
}

/* Offsets of each operand at row r, a row being one run of the innermost dim. */
static inline void row_offsets(const bc_iter *it, int n_ops, int64_t r, int64_t *off) {
    for (int k = 0; k < n_ops; k++) off[k] = 0;
    for (int d = it->nd - 2; d >= 0; d--) {
        int64_t idx = r % it->shape[d];
        r /= it->shape[d];
        for (int k = 0; k < n_ops; k++) off[k] += idx * it->st[k][d];
    }
}

/* Offsets of a subset of dims (dims[0..n) outer to inner) at linear index r over them. */
static inline void sub_offsets(const bc_iter *it, const int *dims, int n, int64_t r, int64_t *off0, int64_t *off1) {
    int64_t o0 = 0, o1 = 0;
    for (int j = n - 1; j >= 0; j--) {
        int d = dims[j];
        int64_t idx = r % it->shape[d];
        r /= it->shape[d];
        o0 += idx * it->st[0][d];
        o1 += idx * it->st[1][d];
    }
    *off0 = o0;
    *off1 = o1;
}

/* Inner runs are split into chunks of this many elements so a single long run still spreads
 * over threads. */
#define CHUNK 4096

bool da_broadcast_shape(int a_nd, const int64_t *a_shape, int b_nd, const int64_t *b_shape,
                        int *out_nd, int64_t *out_shape) {
    int nd = a_nd > b_nd ? a_nd : b_nd;
    for (int i = 0; i < nd; i++) {
        int ka = i - (nd - a_nd), kb = i - (nd - b_nd);
        int64_t na = ka >= 0 ? a_shape[ka] : 1, nb = kb >= 0 ? b_shape[kb] : 1;
        if (na != nb && na != 1 && nb != 1) return false;
        out_shape[i] = na == 1 ? nb : na;
    }
    *out_nd = nd;
    return true;
}

/* One run of length n; sa, sb are 0 (broadcast) or 1. */
#define BIN_RUN(EXPR)                                                                        \
    do {                                                                                     \
        if (sa && sb) {                                                                      \
            if (acc) for (int64_t j = 0; j < n; j++) { float x = a[j], y = b[j]; o[j] += (EXPR); } \
            else     for (int64_t j = 0; j < n; j++) { float x = a[j], y = b[j]; o[j] = (EXPR); }  \
        } else if (sa) {                                                                     \
            float y = b[0];                                                                  \
            if (acc) for (int64_t j = 0; j < n; j++) { float x = a[j]; o[j] += (EXPR); }     \
            else     for (int64_t j = 0; j < n; j++) { float x = a[j]; o[j] = (EXPR); }      \
        } else if (sb) {                                                                     \
            float x = a[0];                                                                  \
            if (acc) for (int64_t j = 0; j < n; j++) { float y = b[j]; o[j] += (EXPR); }     \
            else     for (int64_t j = 0; j < n; j++) { float y = b[j]; o[j] = (EXPR); }      \
        } else {                                                                             \
            float x = a[0], y = b[0], v = (EXPR);                                            \
            if (acc) for (int64_t j = 0; j < n; j++) o[j] += v;                              \
            else     for (int64_t j = 0; j < n; j++) o[j] = v;                               \
        }                                                                                    \
    } while (0)

static void bin_run(da_bin_op op, float *o, const float *a, int64_t sa, const float *b, int64_t sb,
                    int64_t n, bool acc) {
    switch (op) {
    case DA_BIN_ADD: BIN_RUN(x + y); break;
    case DA_BIN_SUB: BIN_RUN(x - y); break;
    case DA_BIN_MUL: BIN_RUN(x * y); break;
    case DA_BIN_DIV: BIN_RUN(x / y); break;
    }
}

void da_bcast_binary(da_bin_op op, int nd, const int64_t *shape,
                     const float *a, int a_nd, const int64_t *a_shape,
                     const float *b, int b_nd, const int64_t *b_shape, float *out, bool accumulate) {
    bc_iter it;
    it.nd = nd;
    memcpy(it.shape, shape, sizeof(int64_t) * (size_t)nd);
    contiguous_strides(nd, shape, it.st[0]);
    operand_strides(nd, shape, a_nd, a_shape, it.st[1]);
    operand_strides(nd, shape, b_nd, b_shape, it.st[2]);
    int64_t numel = da_shape_numel(nd, shape);
    if (numel == 0) return;
    coalesce(&it, 3);
    int last = it.nd - 1;
    int64_t L = it.shape[last], rows = numel / L, nch = (L + CHUNK - 1) / CHUNK;
    int64_t sa = it.st[1][last], sb = it.st[2][last];
#pragma omp parallel for if (numel > DA_PAR_MIN) schedule(static)
    for (int64_t u = 0; u < rows * nch; u++) {
        int64_t r = u / nch, j0 = (u % nch) * CHUNK, n = L - j0 < CHUNK ? L - j0 : CHUNK;
        int64_t off[3];
        row_offsets(&it, 3, r, off);
        bin_run(op, out + off[0] + j0, a + off[1] + j0 * sa, sa, b + off[2] + j0 * sb, sb, n, accumulate);
    }
}

/* Sum of a contiguous run (of products with q when q is given) in double, with 8 partial
 * sums (vectorises; fixed order). */
static inline double sum_run(const float *p, const float *q, int64_t n) {
    double part[8] = {0, 0, 0, 0, 0, 0, 0, 0}, s = 0;
    int64_t j = 0;
    if (q) {
        for (; j + 8 <= n; j += 8)
            for (int k = 0; k < 8; k++) part[k] += (double)p[j + k] * q[j + k];
        for (; j < n; j++) s += (double)p[j] * q[j];
    } else {
        for (; j + 8 <= n; j += 8)
            for (int k = 0; k < 8; k++) part[k] += p[j + k];
        for (; j < n; j++) s += p[j];
    }
    for (int k = 0; k < 8; k++) s += part[k];
    return s;
}

void da_bcast_reduce_add(int nd, const int64_t *shape, const float *src, const float *src2,
                         int dst_nd, const int64_t *dst_shape, float *dst, float scale) {
    bc_iter it;
    it.nd = nd;
    memcpy(it.shape, shape, sizeof(int64_t) * (size_t)nd);
    contiguous_strides(nd, shape, it.st[0]);
    operand_strides(nd, shape, dst_nd, dst_shape, it.st[1]);
    int64_t numel = da_shape_numel(nd, shape);
    if (numel == 0) return;
    coalesce(&it, 2);
    /* Split the coalesced dims into kept (dst walks them) and reduced ones. */
    int last = it.nd - 1, kept[DA_MAX_DIMS], red[DA_MAX_DIMS], nk = 0, nr = 0;
    int64_t n_kept = 1, n_red = 1;
    for (int d = 0; d < last; d++) {
        if (it.st[1][d]) { kept[nk++] = d; n_kept *= it.shape[d]; }
        else             { red[nr++] = d; n_red *= it.shape[d]; }
    }
    int64_t L = it.shape[last];
    if (it.st[1][last] == 0) {
        /* Innermost dim reduced: each dst element sums contiguous runs of src. */
#pragma omp parallel for if (numel > DA_PAR_MIN) schedule(static)
        for (int64_t i = 0; i < n_kept; i++) {
            int64_t sbase, dbase;
            sub_offsets(&it, kept, nk, i, &sbase, &dbase);
            double s = 0;
            for (int64_t r = 0; r < n_red; r++) {
                int64_t roff, unused;
                sub_offsets(&it, red, nr, r, &roff, &unused);
                s += sum_run(src + sbase + roff, src2 ? src2 + sbase + roff : NULL, L);
            }
            dst[dbase] += (float)(scale * s);
        }
    } else {
        /* Innermost dim kept: chunks of dst accumulate whole src runs (vectorises). */
        enum { RCH = 256 };
        int64_t nch = (L + RCH - 1) / RCH;
#pragma omp parallel for if (numel > DA_PAR_MIN) schedule(static)
        for (int64_t u = 0; u < n_kept * nch; u++) {
            int64_t i = u / nch, j0 = (u % nch) * RCH, n = L - j0 < RCH ? L - j0 : RCH;
            int64_t sbase, dbase;
            sub_offsets(&it, kept, nk, i, &sbase, &dbase);
            double accum[RCH];
            for (int64_t j = 0; j < n; j++) accum[j] = 0;
            for (int64_t r = 0; r < n_red; r++) {
                int64_t roff, unused;
                sub_offsets(&it, red, nr, r, &roff, &unused);
                const float *p = src + sbase + roff + j0;
                if (src2) {
                    const float *q = src2 + sbase + roff + j0;
                    for (int64_t j = 0; j < n; j++) accum[j] += (double)p[j] * q[j];
                } else {
                    for (int64_t j = 0; j < n; j++) accum[j] += p[j];
                }
            }
            float *q = dst + dbase + j0;
            for (int64_t j = 0; j < n; j++) q[j] += (float)(scale * accum[j]);
        }
    }
}

void da_strided_copy(int nd, const int64_t *shape, const float *src, const int64_t *src_strides,
                     float *dst, bool accumulate) {
    bc_iter it;
    it.nd = nd;
    memcpy(it.shape, shape, sizeof(int64_t) * (size_t)nd);
    contiguous_strides(nd, shape, it.st[0]);
    memcpy(it.st[1], src_strides, sizeof(int64_t) * (size_t)nd);
    int64_t numel = da_shape_numel(nd, shape);
    if (numel == 0) return;
    coalesce(&it, 2);
    int last = it.nd - 1;
    int64_t L = it.shape[last], rows = numel / L, nch = (L + CHUNK - 1) / CHUNK, s = it.st[1][last];
#pragma omp parallel for if (numel > DA_PAR_MIN) schedule(static)
    for (int64_t u = 0; u < rows * nch; u++) {
        int64_t r = u / nch, j0 = (u % nch) * CHUNK, n = L - j0 < CHUNK ? L - j0 : CHUNK;
        int64_t off[2];
        row_offsets(&it, 2, r, off);
        float *o = dst + off[0] + j0;
        const float *p = src + off[1] + j0 * s;
        if (accumulate) {
            if (s == 1) for (int64_t j = 0; j < n; j++) o[j] += p[j];
            else        for (int64_t j = 0; j < n; j++) o[j] += p[j * s];
        } else {
            if (s == 1) memcpy(o, p, sizeof(float) * (size_t)n);
            else        for (int64_t j = 0; j < n; j++) o[j] = p[j * s];
        }
    }
}

float *da_scratch(int64_t n) {
    float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    if (!p) {
        fprintf(stderr, "error: out of memory allocating %.1f MiB of scratch for a backward pass\n",
                (double)n * sizeof(float) / (1 << 20));
        exit(3);
    }
    return p;
}

/* ==== binary ops =========================================================================== */

/* dt += scale * (g, times g2 when given) summed down to the shape of t; g and g2 have the
 * output's shape. */
static void add_reduced(da_ctx *ctx, da_tensor *t, const da_tensor *out, const float *g, const float *g2,
                        float scale) {
    float *dt = da_grad(ctx, t);
    if (t->numel == out->numel) {
        int64_t n = t->numel;
        if (g2) {
#pragma omp parallel for if (n > DA_PAR_MIN) schedule(static)
            for (int64_t i = 0; i < n; i++) dt[i] += scale * g[i] * g2[i];
        } else {
#pragma omp parallel for if (n > DA_PAR_MIN) schedule(static)
            for (int64_t i = 0; i < n; i++) dt[i] += scale * g[i];
        }
    } else {
        da_bcast_reduce_add(out->ndim, out->shape, g, g2, t->ndim, t->shape, dt, scale);
    }
}

/* d(a*b)/da = b and d(a/b)/da = 1/b: dt += g op other, summed down to t's shape. */
static void mul_div_grad(da_ctx *ctx, da_bin_op op, da_tensor *t, da_tensor *other, const da_tensor *out) {
    int nd = out->ndim;
    const int64_t *shape = out->shape;
    const float *g = out->grad;
    if (t->numel == out->numel) {
        da_bcast_binary(op, nd, shape, g, nd, shape, other->data, other->ndim, other->shape, da_grad(ctx, t), true);
    } else if (op == DA_BIN_MUL && other->numel == out->numel) {
        add_reduced(ctx, t, out, g, other->data, 1.0f);   /* fused: no temporary */
    } else {
        float *tmp = da_scratch(out->numel);
        da_bcast_binary(op, nd, shape, g, nd, shape, other->data, other->ndim, other->shape, tmp, false);
        add_reduced(ctx, t, out, tmp, NULL, 1.0f);
        free(tmp);
    }
}

/* i[0] = op */
static void binary_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *a = e->in[0], *b = e->in[1], *out = e->out;
    const float *g = out->grad;
    da_bin_op op = (da_bin_op)e->i[0];
    switch (op) {
    case DA_BIN_ADD:
    case DA_BIN_SUB:
        if (a->requires_grad) add_reduced(ctx, a, out, g, NULL, 1.0f);
        if (b->requires_grad) add_reduced(ctx, b, out, g, NULL, op == DA_BIN_ADD ? 1.0f : -1.0f);
        break;
    case DA_BIN_MUL:
        if (a->requires_grad) mul_div_grad(ctx, DA_BIN_MUL, a, b, out);
        if (b->requires_grad) mul_div_grad(ctx, DA_BIN_MUL, b, a, out);
        break;
    case DA_BIN_DIV:
        if (a->requires_grad) mul_div_grad(ctx, DA_BIN_DIV, a, b, out);
        if (b->requires_grad) {
            /* d(a/b)/db = -out/b. b is constant along the dims it is summed over, so
             * db -= (sum of g*out) / b, with the sum fused into the reduction. */
            if (b->numel == out->numel) {
                float *db = da_grad(ctx, b);
                int64_t n = out->numel;
#pragma omp parallel for if (n > DA_PAR_MIN) schedule(static)
                for (int64_t i = 0; i < n; i++) db[i] -= g[i] * out->data[i] / b->data[i];
            } else {
                float *tmp = da_scratch(b->numel);
                memset(tmp, 0, sizeof(float) * (size_t)b->numel);
                da_bcast_reduce_add(out->ndim, out->shape, g, out->data, b->ndim, b->shape, tmp, 1.0f);
                float *db = da_grad(ctx, b);
                for (int64_t i = 0; i < b->numel; i++) db[i] -= tmp[i] / b->data[i];
                free(tmp);
            }
        }
        break;
    }
}

static da_tensor *binary(da_ctx *ctx, da_bin_op op, da_tensor *a, da_tensor *b, const char *name) {
    int nd = 0;
    int64_t shape[DA_MAX_DIMS];
    char sa[96], sb[96];
    da_check(da_broadcast_shape(a->ndim, a->shape, b->ndim, b->shape, &nd, shape), name,
             "shapes %s and %s do not broadcast", da_shape_str(a, sa, sizeof sa), da_shape_str(b, sb, sizeof sb));
    da_tensor *out = da_new(ctx, nd, shape);
    da_bcast_binary(op, nd, shape, a->data, a->ndim, a->shape, b->data, b->ndim, b->shape, out->data, false);
    da_tensor *in[2] = {a, b};
    if (da_needs_grad(ctx, 2, in)) {
        da_tape_entry *e = da_record(ctx, binary_backward, out, 2, in);
        e->i[0] = op;
    }
    return out;
}

da_tensor *da_add(da_ctx *ctx, da_tensor *a, da_tensor *b) { return binary(ctx, DA_BIN_ADD, a, b, "add"); }
da_tensor *da_sub(da_ctx *ctx, da_tensor *a, da_tensor *b) { return binary(ctx, DA_BIN_SUB, a, b, "sub"); }
da_tensor *da_mul(da_ctx *ctx, da_tensor *a, da_tensor *b) { return binary(ctx, DA_BIN_MUL, a, b, "mul"); }
da_tensor *da_div(da_ctx *ctx, da_tensor *a, da_tensor *b) { return binary(ctx, DA_BIN_DIV, a, b, "div"); }

/* ==== unary ops ============================================================================ */

typedef enum {
    U_SCALE, U_ADD_SCALAR, U_POW, U_RELU, U_SILU, U_GELU, U_QUICK_GELU, U_SIGMOID, U_TANH, U_EXP,
    U_LOG, U_SQRT
} unary_kind;

#define QUICK_GELU_K 1.702f
#define INV_SQRT2 0.70710678118654752f
#define INV_SQRT_2PI 0.39894228040143268f

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* y[i] = EXPR(x = xs[i]) over n elements, in parallel when large. */
#define UNARY_LOOP(EXPR)                                                     \
    do {                                                                     \
        _Pragma("omp parallel for if (n > DA_PAR_MIN) schedule(static)")     \
        for (int64_t i = 0; i < n; i++) {                                    \
            float x = xs[i];                                                 \
            y[i] = (EXPR);                                                   \
        }                                                                    \
    } while (0)

/* dx[i] += g[i] * EXPR, with x = input and y = output values. */
#define UNARY_BACK(EXPR)                                                     \
    do {                                                                     \
        _Pragma("omp parallel for if (n > DA_PAR_MIN) schedule(static)")     \
        for (int64_t i = 0; i < n; i++) {                                    \
            float x = xs[i], y = ys[i];                                      \
            (void)x; (void)y;                                                \
            dx[i] += g[i] * (EXPR);                                          \
        }                                                                    \
    } while (0)

/* i[0] = kind, f[0] = scalar argument */
static void unary_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *in = e->in[0], *out = e->out;
    float *dx = da_grad(ctx, in);
    const float *g = out->grad, *xs = in->data, *ys = out->data;
    float s = e->f[0];
    int64_t n = in->numel;
    switch ((unary_kind)e->i[0]) {
    case U_SCALE: UNARY_BACK(s); break;
    case U_ADD_SCALAR: UNARY_BACK(1.0f); break;
    case U_POW:
        if (s == 0.0f) break;   /* x^0 is constant (torch gives 0 even at x = 0) */
        UNARY_BACK(s * powf(x, s - 1.0f));
        break;
    case U_RELU: UNARY_BACK(x > 0.0f ? 1.0f : 0.0f); break;
    case U_SILU: {
        UNARY_BACK(sigmoidf(x) * (1.0f + x * (1.0f - sigmoidf(x))));
        break;
    }
    case U_GELU:
        /* d/dx x*Phi(x) = Phi(x) + x*phi(x) */
        UNARY_BACK(0.5f * (1.0f + erff(x * INV_SQRT2)) + x * INV_SQRT_2PI * expf(-0.5f * x * x));
        break;
    case U_QUICK_GELU:
        UNARY_BACK(sigmoidf(QUICK_GELU_K * x) *
                   (1.0f + QUICK_GELU_K * x * (1.0f - sigmoidf(QUICK_GELU_K * x))));
        break;
    case U_SIGMOID: UNARY_BACK(y * (1.0f - y)); break;
    case U_TANH: UNARY_BACK(1.0f - y * y); break;
    case U_EXP: UNARY_BACK(y); break;
    case U_LOG: UNARY_BACK(1.0f / x); break;
    case U_SQRT: UNARY_BACK(0.5f / y); break;
    }
}

static da_tensor *unary(da_ctx *ctx, unary_kind kind, da_tensor *x, float s) {
    da_tensor *out = da_new_like(ctx, x);
    const float *xs = x->data;
    float *y = out->data;
    int64_t n = x->numel;
    switch (kind) {
    case U_SCALE: UNARY_LOOP(x * s); break;
    case U_ADD_SCALAR: UNARY_LOOP(x + s); break;
    case U_POW:
        if (s == 2.0f) UNARY_LOOP(x * x);   /* the common square, exact and fast */
        else UNARY_LOOP(powf(x, s));
        break;
    case U_RELU: UNARY_LOOP(x > 0.0f ? x : 0.0f); break;
    case U_SILU: UNARY_LOOP(x * sigmoidf(x)); break;
    case U_GELU: UNARY_LOOP(0.5f * x * (1.0f + erff(x * INV_SQRT2))); break;
    case U_QUICK_GELU: UNARY_LOOP(x * sigmoidf(QUICK_GELU_K * x)); break;
    case U_SIGMOID: UNARY_LOOP(sigmoidf(x)); break;
    case U_TANH: UNARY_LOOP(tanhf(x)); break;
    case U_EXP: UNARY_LOOP(expf(x)); break;
    case U_LOG: UNARY_LOOP(logf(x)); break;
    case U_SQRT: UNARY_LOOP(sqrtf(x)); break;
    }
    if (da_needs_grad(ctx, 1, &x)) {
        da_tape_entry *e = da_record(ctx, unary_backward, out, 1, &x);
        e->i[0] = kind;
        e->f[0] = s;
    }
    return out;
}

da_tensor *da_scale(da_ctx *ctx, da_tensor *x, float s) { return unary(ctx, U_SCALE, x, s); }
da_tensor *da_add_scalar(da_ctx *ctx, da_tensor *x, float s) { return unary(ctx, U_ADD_SCALAR, x, s); }
da_tensor *da_pow_scalar(da_ctx *ctx, da_tensor *x, float p) { return unary(ctx, U_POW, x, p); }
da_tensor *da_relu(da_ctx *ctx, da_tensor *x) { return unary(ctx, U_RELU, x, 0.0f); }
da_tensor *da_silu(da_ctx *ctx, da_tensor *x) { return unary(ctx, U_SILU, x, 0.0f); }
da_tensor *da_gelu(da_ctx *ctx, da_tensor *x) { return unary(ctx, U_GELU, x, 0.0f); }
da_tensor *da_quick_gelu(da_ctx *ctx, da_tensor *x) { return unary(ctx, U_QUICK_GELU, x, 0.0f); }
da_tensor *da_sigmoid(da_ctx *ctx, da_tensor *x) { return unary(ctx, U_SIGMOID, x, 0.0f); }
da_tensor *da_tanh(da_ctx *ctx, da_tensor *x) { return unary(ctx, U_TANH, x, 0.0f); }
da_tensor *da_exp(da_ctx *ctx, da_tensor *x) { return unary(ctx, U_EXP, x, 0.0f); }
da_tensor *da_log(da_ctx *ctx, da_tensor *x) { return unary(ctx, U_LOG, x, 0.0f); }
da_tensor *da_sqrt(da_ctx *ctx, da_tensor *x) { return unary(ctx, U_SQRT, x, 0.0f); }

/* ==== dropout ============================================================================== */

/* saved = keep mask (numel bytes), f[0] = scale of kept elements */
static void dropout_backward(da_ctx *ctx, da_tape_entry *e) {
    da_tensor *x = e->in[0];
    float *dx = da_grad(ctx, x);
    const float *g = e->out->grad;
    const unsigned char *keep = e->saved;
    float scale = e->f[0];
    int64_t n = x->numel;
#pragma omp parallel for if (n > DA_PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) dx[i] += keep[i] ? g[i] * scale : 0.0f;
}

da_tensor *da_dropout(da_ctx *ctx, da_tensor *x, float p) {
    da_check(p >= 0.0f && p <= 1.0f, "dropout", "probability %g outside [0,1]", (double)p);
    if (!ctx->training || p == 0.0f) return x;
    /* One stream per call; element i draws value i of it, whatever thread computes it. */
    uint64_t stream = da_rng_at(ctx->seed, ctx->dropout_calls++);
    float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    da_tensor *out = da_new_like(ctx, x);
    unsigned char *keep = da_arena_alloc(&ctx->arena, (size_t)(x->numel ? x->numel : 1));
    int64_t n = x->numel;
#pragma omp parallel for if (n > DA_PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float u = (float)(da_rng_at(stream, (uint64_t)i) >> 40) * (1.0f / 16777216.0f);  /* [0,1) */
        keep[i] = u >= p;
        out->data[i] = keep[i] ? x->data[i] * scale : 0.0f;
    }
    if (da_needs_grad(ctx, 1, &x)) {
        da_tape_entry *e = da_record(ctx, dropout_backward, out, 1, &x);
        e->saved = keep;
        e->f[0] = scale;
    }
    return out;
}
