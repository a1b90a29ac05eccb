/* tensor.h — float32 N-d tensors, the per-step context (arena + autograd tape) and backward.
 * Every op in src/tensor/ops/ takes a da_ctx, allocates its output from the context's arena
 * and, when a gradient is wanted, records one tape entry that backward() later replays. */
#ifndef DA_TENSOR_H
#define DA_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tensor/arena.h"

#define DA_MAX_DIMS 6
#define DA_ERR_LEN 512

typedef struct da_tensor {
    float *data;                  /* (numel) row-major, PyTorch dimension order */
    float *grad;                  /* same shape; NULL until a gradient reaches it */
    int ndim;
    int64_t shape[DA_MAX_DIMS];
    int64_t numel;
    bool requires_grad;           /* a gradient is wanted for this tensor or flows through it */
    bool persistent;              /* owned by the heap (parameters), not the step arena */
    const char *name;             /* optional, for error messages and parameter files */
} da_tensor;

struct da_ctx;
struct da_tape_entry;
typedef void (*da_backward_fn)(struct da_ctx *ctx, struct da_tape_entry *e);

#define DA_TAPE_MAX_IN 4
/* One recorded op. `saved` points to op-specific data in the arena (indices, masks, stats). */
typedef struct da_tape_entry {
    da_backward_fn backward;
    da_tensor *out;
    da_tensor *in[DA_TAPE_MAX_IN];
    int n_in;
    void *saved;
    float f[4];                   /* small scalar arguments (scale, eps, slope, ...) */
    int64_t i[16];                /* small integer arguments (axes, strides, pads, ...) */
} da_tape_entry;

/* How convolution products are computed where no gradient is recorded (inference):
 *   FP32: float32 throughout (always; the only mode when a tape is kept);
 *   BF16: bfloat16 inputs and weights, float32 accumulation and output (oneDNN, on CPUs with
 *         native bf16 instructions: AVX512-BF16 or AMX); elsewhere it falls back to FP32. */
typedef enum { DA_PRECISION_FP32 = 0, DA_PRECISION_BF16 = 1 } da_precision;
/* The precision a name asks for: "fp32", "bf16" (an error where bf16 cannot run), or "auto":
 * bf16 where oneDNN has AMX (the only place it measured faster, docs/precision.md), else fp32.
 * Returns 0, or -1 with a message for an unknown name or bf16 that cannot run
 * (tensor/ops/conv_dispatch.c, beside the rule that picks convolution backends). */
int da_precision_from_name(const char *name, da_precision *out, char *err, size_t errlen);
/* "fp32" or "bf16". */
const char *da_precision_name(da_precision p);

/* The context of one step: all activations live in `arena`; `tape` lists the ops to replay. */
typedef struct da_ctx {
    da_arena arena;
    da_tape_entry *tape;
    int tape_len, tape_cap;
    bool grad_enabled;            /* false = inference: no tape is kept */
    bool training;                /* dropout active */
    uint64_t seed;                /* for dropout masks; advanced per dropout call */
    uint64_t dropout_calls;
    da_precision precision;       /* of convolutions that record nothing (FP32 by default) */
} da_ctx;

/* ---- context ---------------------------------------------------------------------------- */
void da_ctx_init(da_ctx *ctx);
void da_ctx_free(da_ctx *ctx);
/* Forgets the tape and every arena tensor (parameters and their gradients survive). */
void da_ctx_reset(da_ctx *ctx);
/* Returns the previous mode; use it to restore: `bool old = da_set_grad(ctx, false); ... da_set_grad(ctx, old);` */
bool da_set_grad(da_ctx *ctx, bool enabled);

/* ---- creation --------------------------------------------------------------------------- */
/* Arena tensors (freed by da_ctx_reset). Shapes are given as (ndim, int64_t shape[]). */
da_tensor *da_new(da_ctx *ctx, int ndim, const int64_t *shape);          /* uninitialised */
da_tensor *da_zeros(da_ctx *ctx, int ndim, const int64_t *shape);
da_tensor *da_full(da_ctx *ctx, int ndim, const int64_t *shape, float value);
da_tensor *da_from_data(da_ctx *ctx, int ndim, const int64_t *shape, const float *src); /* copies */
da_tensor *da_new_like(da_ctx *ctx, const da_tensor *t);
/* Shape helpers for literals: da_new(ctx, DA_SHAPE(2, 3)) */
#define DA_SHAPE(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (const int64_t[]){__VA_ARGS__}

/* Heap tensors that outlive steps (parameters). With requires_grad, a zeroed gradient buffer
 * is allocated too. Free with da_tensor_free. */
da_tensor *da_persistent(int ndim, const int64_t *shape, bool requires_grad);
void da_tensor_free(da_tensor *t);

/* ---- shape utilities -------------------------------------------------------------------- */
int64_t da_shape_numel(int ndim, const int64_t *shape);
bool da_same_shape(const da_tensor *a, const da_tensor *b);
/* "(2,3,32,32)" into buf; returns buf. */
const char *da_shape_str(const da_tensor *t, char *buf, size_t len);
/* Aborts with a message naming the op when a shape precondition fails: a programming error,
 * not bad user input (user input is checked where it is read, with a clear error). */
void da_check(bool cond, const char *op, const char *fmt, ...);

/* ---- autograd --------------------------------------------------------------------------- */
/* True when an op with these inputs must record itself on the tape. */
bool da_needs_grad(const da_ctx *ctx, int n, da_tensor *const *in);
/* Appends a tape entry for `out` (sets out->requires_grad); returns it for the op to fill. */
da_tape_entry *da_record(da_ctx *ctx, da_backward_fn fn, da_tensor *out, int n_in, da_tensor *const *in);
/* The gradient buffer of t, allocated zeroed (arena, or heap for persistent) on first use. */
float *da_grad(da_ctx *ctx, da_tensor *t);
/* Seeds d(out)/d(out) = 1 for every element (a scalar loss) and replays the tape backwards.
 * Gradients accumulate into every tensor with requires_grad, parameters and inputs alike. */
void da_backward(da_ctx *ctx, da_tensor *loss);
/* Same, but out->grad must already hold the upstream gradient. */
void da_backward_from(da_ctx *ctx, da_tensor *out);
/* Marks an arena tensor as a leaf that wants a gradient (e.g. an input image). */
void da_require_grad(da_tensor *t);
/* A copy of t cut off from the tape (gradient stops here). */
da_tensor *da_detach(da_ctx *ctx, da_tensor *t);

/* How many of the n values are NaN or infinite (weights, images and latents are checked before
 * use or writing, so that a damaged file never turns into silent black images). */
int64_t da_count_nonfinite(const float *x, int64_t n);

/* The most memory one model may declare (weights, or one image's largest activation), in
 * bytes: 16 GiB, or DIFFADAPT_MAX_GIB from the environment. Sizes read from files are checked
 * against it before anything is allocated. */
double da_memory_limit_bytes(void);

/* ---- threads ---------------------------------------------------------------------------- */
void da_set_threads(int n);   /* OpenMP and OpenBLAS; n <= 0 means all cores */
int da_get_threads(void);

#endif
