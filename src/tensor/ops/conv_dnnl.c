/* conv_dnnl.c — 2-D convolution on oneDNN: forward, backward-data and backward-weights, fp32.
 *
 * Layouts. The engine's tensors are plain NCHW (weights OIHW). oneDNN's fast kernels want
 * blocked layouts (e.g. nChw16c), so each convolution primitive is made with "any" layouts and
 * reorder primitives convert between the plain buffers and the layouts it chose, through
 * workspaces taken from the step arena and handed back before returning. Gradients are added
 * (dx += ..., dw += ...) by a reorder with a sum post-op, as the tape expects.
 *
 * Cache. Making a primitive costs milliseconds (code generation), so the primitives of a shape
 * are kept in a small table keyed by shape, bias and thread count (oneDNN's OpenMP kernels
 * split their work for the thread count they were made for); when the table is full the oldest
 * entry is dropped. Entries hold primitives only, never data: scratchpads are user-provided
 * (arena), so memory stays bounded. One mutex guards the table and the calls using it.
 *
 * Algorithm. Primitives are made with oneDNN's "auto" algorithm, which takes its Winograd kernels
 * (F(4x4, 3x3), AVX-512 only) for the 3x3 stride-1 shapes where oneDNN deems them faster, and
 * direct convolution everywhere else; DIFFADAPT_CONV_ALGO=direct forces direct convolution (read
 * at every call, part of the cache key). Measured on this project's Xeon, batch-32 3x3 rows of
 * bench_conv: 1.4-2.0x faster, forward error at most 2^-19.8 of Σ|x·w| against 2^-22 for direct
 * (docs/conv-backends.md); tests/test_conv_backends.c bounds it.
 *
 * Threads. libdnnl is built on the same OpenMP runtime (libgomp) as the engine, so it runs with
 * omp_get_max_threads(), which da_set_threads sets: one thread pool for every op. */
#include "tensor/ops/conv_backend.h"

#ifdef DA_HAVE_DNNL

#include <dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <string.h>

#include "tensor/ops/scratch.h"

#define CACHE_SIZE 48   /* a UNet has ~20 distinct conv shapes; train + sample fit twice over */
#define WS_ALIGN 64     /* workspace pieces start on cache lines */

/* A buffer of one primitive argument: the layout the primitive chose, and the reorder between
 * it and the plain layout (NULL when the primitive takes the plain buffer itself). */
typedef struct {
    dnnl_memory_desc_t md;
    dnnl_primitive_t reorder;
    size_t bytes;     /* workspace for the copy in md's layout (0 without a reorder) */
    size_t scratch;   /* the reorder's scratchpad bytes */
} layout;

typedef struct {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    size_t scratch;   /* scratchpad bytes */
} conv_op;

typedef struct {
    bool used;
    da_conv_shape s;
    bool bias;
    bool bf16;                /* forward only: bf16 x and w, float32 y */
    bool direct;              /* direct convolution forced (else oneDNN's "auto" algorithm) */
    int threads;
    conv_op fwd;
    layout fwd_x, fwd_w, fwd_y;
    bool bwd_tried, bwd_ok;   /* backward primitives are made on the first backward call */
    conv_op bwd_data;
    layout bd_dy, bd_w, bd_dx;
    conv_op bwd_w;
    layout bw_x, bw_dy, bw_dw;
} entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool started, start_failed;
static dnnl_engine_t engine;
static dnnl_stream_t stream;
static entry cache[CACHE_SIZE];
static int next_victim;

static bool ok(dnnl_status_t st) { return st == dnnl_success; }

static bool start(void) {
    if (!started && !start_failed) {
        start_failed = !ok(dnnl_engine_create(&engine, dnnl_cpu, 0)) ||
                       !ok(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
        started = !start_failed;
    }
    return started;
}

/* ---- making primitives ------------------------------------------------------------------ */

static dnnl_primitive_attr_t user_scratch_attr(bool add) {
    dnnl_primitive_attr_t attr = NULL;
    if (!ok(dnnl_primitive_attr_create(&attr))) return NULL;
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (add) {   /* destination += result */
        dnnl_post_ops_t po;
        if (ok(dnnl_post_ops_create(&po))) {
            dnnl_post_ops_append_sum(po, 1.0f);
            dnnl_primitive_attr_set_post_ops(attr, po);
            dnnl_post_ops_destroy(po);
        }
    }
    return attr;
}

static size_t scratch_bytes(const_dnnl_primitive_desc_t pd) {
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    return md ? dnnl_memory_desc_get_size(md) : 0;
}

/* The layout `chosen` for a buffer whose plain layout is `plain`. `into`: data goes plain ->
 * chosen (an input); otherwise chosen -> plain (an output), added to it when `add`. An output
 * that is added always goes through a reorder (the primitive overwrites its destination). */
static bool make_layout(layout *l, const dnnl_memory_desc_t *plain, const dnnl_memory_desc_t *chosen, bool into,
                        bool add) {
    memset(l, 0, sizeof *l);
    l->md = *chosen;
    if (!add && dnnl_memory_desc_equal(plain, chosen)) return true;
    dnnl_primitive_attr_t attr = user_scratch_attr(add);
    dnnl_primitive_desc_t pd = NULL;
    bool good = attr && ok(dnnl_reorder_primitive_desc_create(&pd, into ? plain : chosen, engine,
                                                              into ? chosen : plain, engine, attr));
    if (good) {
        l->scratch = scratch_bytes(pd);
        l->bytes = dnnl_memory_desc_get_size(chosen);
        good = ok(dnnl_primitive_create(&l->reorder, pd));
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return good;
}

static bool make_op(conv_op *o, const dnnl_convolution_desc_t *cd, const_dnnl_primitive_desc_t hint) {
    dnnl_primitive_attr_t attr = user_scratch_attr(false);
    bool good = attr && ok(dnnl_primitive_desc_create(&o->pd, cd, attr, engine, hint));
    if (good) {
        o->scratch = scratch_bytes(o->pd);
        good = ok(dnnl_primitive_create(&o->prim, o->pd));
    }
    if (attr) dnnl_primitive_attr_destroy(attr);
    return good;
}

static const dnnl_memory_desc_t *chosen_md(const conv_op *o, dnnl_query_t what) {
    return dnnl_primitive_desc_query_md(o->pd, what, 0);
}

/* The plain descriptors of x (N,C,H,W), w (O,C,kh,kw), y (N,O,OH,OW), b (O), and the "any"
 * versions the convolutions are made with. */
typedef struct {
    dnnl_memory_desc_t x, w, y, b, x_any, w_any, y_any;
    dnnl_dims_t strides, pad_l, pad_r;
} descs;

static void make_descs(descs *d, const da_conv_shape *s, bool bf16) {
    dnnl_data_type_t in = bf16 ? dnnl_bf16 : dnnl_f32;   /* what the products read */
    dnnl_dims_t xd = {s->N, s->C, s->H, s->W}, wd = {s->O, s->C, s->kh, s->kw}, yd = {s->N, s->O, s->OH, s->OW},
                bd = {s->O};
    dnnl_memory_desc_init_by_tag(&d->x, 4, xd, dnnl_f32, dnnl_nchw);
    dnnl_memory_desc_init_by_tag(&d->w, 4, wd, dnnl_f32, dnnl_oihw);
    dnnl_memory_desc_init_by_tag(&d->y, 4, yd, dnnl_f32, dnnl_nchw);
    dnnl_memory_desc_init_by_tag(&d->b, 1, bd, dnnl_f32, dnnl_x);
    dnnl_memory_desc_init_by_tag(&d->x_any, 4, xd, in, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&d->w_any, 4, wd, in, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&d->y_any, 4, yd, dnnl_f32, dnnl_format_tag_any);
    d->strides[0] = d->strides[1] = s->stride;
    d->pad_l[0] = s->pt, d->pad_l[1] = s->pl;
    d->pad_r[0] = s->pb, d->pad_r[1] = s->pr;
}

static void free_op(conv_op *o) {
    if (o->prim) dnnl_primitive_destroy(o->prim);
    if (o->pd) dnnl_primitive_desc_destroy(o->pd);
}

static void free_layout(layout *l) {
    if (l->reorder) dnnl_primitive_destroy(l->reorder);
}

static void free_entry(entry *e) {
    free_op(&e->fwd), free_op(&e->bwd_data), free_op(&e->bwd_w);
    layout *ls[] = {&e->fwd_x, &e->fwd_w, &e->fwd_y, &e->bd_dy, &e->bd_w, &e->bd_dx, &e->bw_x, &e->bw_dy, &e->bw_dw};
    for (size_t i = 0; i < sizeof ls / sizeof ls[0]; i++) free_layout(ls[i]);
    memset(e, 0, sizeof *e);
}

static dnnl_alg_kind_t algorithm(const entry *e) {
    return e->direct ? dnnl_convolution_direct : dnnl_convolution_auto;
}

static bool make_forward(entry *e) {
    descs d;
    make_descs(&d, &e->s, e->bf16);
    dnnl_convolution_desc_t cd;
    /* the plain float32 x and w reach the bf16 layouts through reorders, which round them */
    return ok(dnnl_convolution_forward_desc_init(&cd, e->bf16 ? dnnl_forward_inference : dnnl_forward_training, algorithm(e), &d.x_any,
                                                 &d.w_any, e->bias ? &d.b : NULL, &d.y_any, d.strides, d.pad_l,
                                                 d.pad_r)) &&
           make_op(&e->fwd, &cd, NULL) &&
           make_layout(&e->fwd_x, &d.x, chosen_md(&e->fwd, dnnl_query_src_md), true, false) &&
           make_layout(&e->fwd_w, &d.w, chosen_md(&e->fwd, dnnl_query_weights_md), true, false) &&
           make_layout(&e->fwd_y, &d.y, chosen_md(&e->fwd, dnnl_query_dst_md), false, false);
}

static bool make_backward(entry *e) {
    descs d;
    make_descs(&d, &e->s, false);
    dnnl_convolution_desc_t bd, bw;
    return ok(dnnl_convolution_backward_data_desc_init(&bd, algorithm(e), &d.x_any, &d.w_any, &d.y_any,
                                                       d.strides, d.pad_l, d.pad_r)) &&
           make_op(&e->bwd_data, &bd, e->fwd.pd) &&
           make_layout(&e->bd_dy, &d.y, chosen_md(&e->bwd_data, dnnl_query_diff_dst_md), true, false) &&
           make_layout(&e->bd_w, &d.w, chosen_md(&e->bwd_data, dnnl_query_weights_md), true, false) &&
           make_layout(&e->bd_dx, &d.x, chosen_md(&e->bwd_data, dnnl_query_diff_src_md), false, true) &&
           /* with a bias, the weight-gradient pass sums its gradient too (no extra pass over dy) */
           ok(dnnl_convolution_backward_weights_desc_init(&bw, algorithm(e), &d.x_any, &d.w_any,
                                                          e->bias ? &d.b : NULL, &d.y_any, d.strides, d.pad_l,
                                                          d.pad_r)) &&
           make_op(&e->bwd_w, &bw, e->fwd.pd) &&
           make_layout(&e->bw_x, &d.x, chosen_md(&e->bwd_w, dnnl_query_src_md), true, false) &&
           make_layout(&e->bw_dy, &d.y, chosen_md(&e->bwd_w, dnnl_query_diff_dst_md), true, false) &&
           make_layout(&e->bw_dw, &d.w, chosen_md(&e->bwd_w, dnnl_query_diff_weights_md), false, true);
}

/* Field by field: the struct's padding bytes are not initialised by callers. */
static bool same_shape(const da_conv_shape *a, const da_conv_shape *b) {
    return a->N == b->N && a->C == b->C && a->H == b->H && a->W == b->W && a->O == b->O && a->kh == b->kh &&
           a->kw == b->kw && a->OH == b->OH && a->OW == b->OW && a->stride == b->stride && a->pt == b->pt &&
           a->pb == b->pb && a->pl == b->pl && a->pr == b->pr;
}

/* The cached entry of this convolution at the current thread count, or NULL. */
static entry *lookup(const da_conv_shape *s, bool bias, bool bf16, bool direct) {
    int threads = omp_get_max_threads();
    for (int i = 0; i < CACHE_SIZE; i++) {
        entry *e = &cache[i];
        if (e->used && e->bias == bias && e->bf16 == bf16 && e->direct == direct && e->threads == threads &&
            same_shape(&e->s, s))
            return e;
    }
    return NULL;
}

/* The cached entry of this convolution, made (forward primitives only) when missing; NULL when
 * oneDNN cannot make it. */
static entry *find(const da_conv_shape *s, bool bias, bool bf16) {
    bool direct = da_conv_direct_forced();
    entry *found = lookup(s, bias, bf16, direct);
    if (found) return found;
    int threads = omp_get_max_threads();
    entry *e = &cache[next_victim];
    next_victim = (next_victim + 1) % CACHE_SIZE;
    if (e->used) free_entry(e);
    e->used = true;
    e->s = *s;
    e->bias = bias;
    e->bf16 = bf16;
    e->direct = direct;
    e->threads = threads;
    if (!make_forward(e)) {
        free_entry(e);
        return NULL;
    }
    return e;
}

/* ---- running primitives ----------------------------------------------------------------- */

/* The arguments of one execution; memory objects wrap the caller's buffers. */
typedef struct {
    int n;
    bool bad;
    dnnl_exec_arg_t a[6];
} args;

static void arg(args *A, int id, const dnnl_memory_desc_t *md, const void *ptr) {
    dnnl_memory_t m;
    if (!ok(dnnl_memory_create(&m, md, engine, (void *)ptr))) {
        A->bad = true;
        return;
    }
    A->a[A->n].arg = id;
    A->a[A->n].memory = m;
    A->n++;
}

static bool execute(dnnl_primitive_t p, args *A, size_t scratch, void *scratch_ptr) {
    if (scratch) {
        dnnl_dims_t sd = {(dnnl_dim_t)scratch};
        dnnl_memory_desc_t smd;
        dnnl_memory_desc_init_by_tag(&smd, 1, sd, dnnl_u8, dnnl_x);
        arg(A, DNNL_ARG_SCRATCHPAD, &smd, scratch_ptr);
    }
    bool good = !A->bad && ok(dnnl_primitive_execute(p, stream, A->n, A->a)) && ok(dnnl_stream_wait(stream));
    for (int i = 0; i < A->n; i++) dnnl_memory_destroy(A->a[i].memory);
    return good;
}

/* Converts `plain` (layout `pmd`) into l's layout in `copy` (into), or `copy` back into
 * `plain` (out: overwritten, or added to when the reorder was made with a sum). */
static bool convert(const layout *l, const dnnl_memory_desc_t *pmd, bool into, const void *plain, void *copy,
                    void *scratch) {
    args A = {0};
    arg(&A, DNNL_ARG_FROM, into ? pmd : &l->md, into ? plain : copy);
    arg(&A, DNNL_ARG_TO, into ? &l->md : pmd, into ? copy : plain);
    return execute(l->reorder, &A, l->scratch, scratch);
}

/* Workspace pieces, carved from one arena allocation. */
static size_t round_up(size_t b) { return (b + WS_ALIGN - 1) / WS_ALIGN * WS_ALIGN; }

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

/* A buffer in l's layout: the plain buffer itself without a reorder, else the next piece of the
 * workspace, filled from the plain buffer when `into`. */
static void *staged(const layout *l, const dnnl_memory_desc_t *pmd, const void *plain, bool into, char **ws,
                    void *scratch, bool *good) {
    if (!l->reorder) return (void *)plain;
    void *copy = *ws;
    *ws += round_up(l->bytes);
    if (into && *good) *good = convert(l, pmd, true, plain, copy, scratch);
    return copy;
}

static float *take_workspace(da_ctx *ctx, size_t bytes, da_scratch_mark *mark) {
    return da_scratch_take(ctx, (int64_t)((bytes + sizeof(float) - 1) / sizeof(float)), mark);
}

bool da_conv_dnnl_forward(da_ctx *ctx, const da_conv_shape *s, const float *x, const float *w, const float *b,
                          float *y, bool bf16) {
    pthread_mutex_lock(&lock);
    entry *e = start() ? find(s, b != NULL, bf16) : NULL;
    bool good = e != NULL;
    if (good) {
        descs d;
        make_descs(&d, s, false);   /* the caller's plain float32 buffers */
        size_t scratch = max_size(max_size(e->fwd.scratch, e->fwd_x.scratch), max_size(e->fwd_w.scratch, e->fwd_y.scratch));
        size_t bytes = round_up(e->fwd_x.bytes) + round_up(e->fwd_w.bytes) + round_up(e->fwd_y.bytes) + scratch;
        da_scratch_mark mark;
        char *ws = (char *)take_workspace(ctx, bytes, &mark);
        void *sp = ws + bytes - scratch;   /* the scratchpad is the last piece */
        const void *xs = staged(&e->fwd_x, &d.x, x, true, &ws, sp, &good);
        const void *wst = staged(&e->fwd_w, &d.w, w, true, &ws, sp, &good);
        void *ys = staged(&e->fwd_y, &d.y, y, false, &ws, sp, &good);
        if (good) {
            args A = {0};
            arg(&A, DNNL_ARG_SRC, &e->fwd_x.md, xs);
            arg(&A, DNNL_ARG_WEIGHTS, &e->fwd_w.md, wst);
            if (b) arg(&A, DNNL_ARG_BIAS, &d.b, b);
            arg(&A, DNNL_ARG_DST, &e->fwd_y.md, ys);
            good = execute(e->fwd.prim, &A, e->fwd.scratch, sp);
        }
        if (good && e->fwd_y.reorder) good = convert(&e->fwd_y, &d.y, false, y, ys, sp);
        da_scratch_give_back(ctx, &mark);
    }
    pthread_mutex_unlock(&lock);
    return good;
}

bool da_conv_dnnl_backward(da_ctx *ctx, const da_conv_shape *s, const float *x, const float *w, const float *dy,
                           float *dx, float *dw, float *db) {
    if (db && !dw) return false;   /* db is summed by the weight-gradient pass */
    pthread_mutex_lock(&lock);
    /* the forward pass made the entry (it may have been dropped since, and is then remade) */
    entry *e = start() ? find(s, db != NULL, false) : NULL;
    if (e && !e->bwd_tried) {
        e->bwd_tried = true;
        e->bwd_ok = make_backward(e);
    }
    bool good = e && e->bwd_ok;
    if (good) {
        descs d;
        make_descs(&d, s, false);
        const layout *ls[] = {&e->bd_dy, &e->bd_w, &e->bd_dx, &e->bw_x, &e->bw_dy, &e->bw_dw};
        size_t scratch = max_size(e->bwd_data.scratch, e->bwd_w.scratch), bytes = 0;
        for (int i = 0; i < 6; i++) {
            scratch = max_size(scratch, ls[i]->scratch);
            bytes += round_up(ls[i]->bytes);
        }
        size_t db_bytes = round_up(sizeof(float) * (size_t)s->O);
        bytes += db_bytes + scratch;
        da_scratch_mark mark;
        char *ws = (char *)take_workspace(ctx, bytes, &mark);
        void *sp = ws + bytes - scratch;
        float *db_new = (float *)(ws + bytes - scratch - db_bytes);   /* (O) */
        const void *dy_data = NULL;   /* dy as backward-data read it */
        bool wrote = false;           /* dx was (perhaps partly) added to */
        if (dx) {
            /* dx += conv_transpose(dy, w): computed into a workspace, added by the reorder */
            const void *dys = staged(&e->bd_dy, &d.y, dy, true, &ws, sp, &good);
            dy_data = dys;
            const void *wst = staged(&e->bd_w, &d.w, w, true, &ws, sp, &good);
            void *dxs = staged(&e->bd_dx, &d.x, dx, false, &ws, sp, &good);
            if (good) {
                args A = {0};
                arg(&A, DNNL_ARG_DIFF_DST, &e->bd_dy.md, dys);
                arg(&A, DNNL_ARG_WEIGHTS, &e->bd_w.md, wst);
                arg(&A, DNNL_ARG_DIFF_SRC, &e->bd_dx.md, dxs);
                good = execute(e->bwd_data.prim, &A, e->bwd_data.scratch, sp);
            }
            if (good) good = convert(&e->bd_dx, &d.x, false, dx, dxs, sp);
            wrote = true;
        }
        if (dw && good) {
            const void *xs = staged(&e->bw_x, &d.x, x, true, &ws, sp, &good);
            /* dy in the layout backward-data already converted it to: no second pass over it */
            const void *dys = dx && dy_data && dnnl_memory_desc_equal(&e->bw_dy.md, &e->bd_dy.md)
                                  ? dy_data
                                  : staged(&e->bw_dy, &d.y, dy, true, &ws, sp, &good);
            void *dws = staged(&e->bw_dw, &d.w, dw, false, &ws, sp, &good);
            if (good) {
                args A = {0};
                arg(&A, DNNL_ARG_SRC, &e->bw_x.md, xs);
                arg(&A, DNNL_ARG_DIFF_DST, &e->bw_dy.md, dys);
                arg(&A, DNNL_ARG_DIFF_WEIGHTS, &e->bw_dw.md, dws);
                if (e->bias) arg(&A, DNNL_ARG_DIFF_BIAS, &d.b, db_new);
                good = execute(e->bwd_w.prim, &A, e->bwd_w.scratch, sp);
            }
            if (good) good = convert(&e->bw_dw, &d.w, false, dw, dws, sp);
            if (good && db)
                for (int64_t o = 0; o < s->O; o++) db[o] += db_new[o];
        }
        da_scratch_give_back(ctx, &mark);
        /* Making primitives is what fails in practice, and that happens before any write. A
         * failure after dx was added to cannot fall back to BLAS (dx would be added twice). */
        da_check(good || !wrote, "conv2d", "oneDNN failed while adding gradients; rerun with DIFFADAPT_CONV=blas");
    }
    pthread_mutex_unlock(&lock);
    return good;
}

bool da_conv_dnnl_available(void) { return true; }

const char *da_conv_dnnl_isa(void) {
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other";
    }
}

/* Whether the ISA oneDNN runs includes `level`: each ISA value holds the bits of those below it. */
static bool isa_includes(dnnl_cpu_isa_t level) {
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    return (isa & (unsigned)level) == (unsigned)level;
}

bool da_conv_dnnl_has_avx512(void) { return isa_includes(dnnl_cpu_isa_avx512_core); }

bool da_conv_dnnl_has_amx(void) { return isa_includes(dnnl_cpu_isa_avx512_core_amx); }

bool da_conv_dnnl_bf16_works(void) {
    static int answer = -1;   /* not asked yet */
    pthread_mutex_lock(&lock);
    if (answer < 0) {
        entry e = {.s = {.N = 1, .C = 16, .H = 8, .W = 8, .O = 16, .kh = 3, .kw = 3, .OH = 8, .OW = 8, .stride = 1,
                         .pt = 1, .pb = 1, .pl = 1, .pr = 1},
                   .bias = true, .bf16 = true};
        answer = start() && make_forward(&e);
        free_entry(&e);
    }
    pthread_mutex_unlock(&lock);
    return answer;
}

#else /* built without oneDNN: every call says "use BLAS" */

bool da_conv_dnnl_available(void) { return false; }
const char *da_conv_dnnl_isa(void) { return "none"; }
bool da_conv_dnnl_has_avx512(void) { return false; }
bool da_conv_dnnl_has_amx(void) { return false; }
bool da_conv_dnnl_bf16_works(void) { return false; }

bool da_conv_dnnl_forward(da_ctx *ctx, const da_conv_shape *s, const float *x, const float *w, const float *b,
                          float *y, bool bf16) {
    return false;
}

bool da_conv_dnnl_backward(da_ctx *ctx, const da_conv_shape *s, const float *x, const float *w, const float *dy,
                           float *dx, float *dw, float *db) {
    return false;
}

#endif
