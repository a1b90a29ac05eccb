/* ops.h — every differentiable op of the engine. Each returns a new arena tensor and records a
 * tape entry when grad is enabled and an input requires grad. Forward and backward of one op
 * family live together in one file under src/tensor/ops/. Shapes follow PyTorch. */
#ifndef DA_OPS_H
#define DA_OPS_H

#include "tensor/tensor.h"

/* ---- elementwise (ops/elementwise.c) ---------------------------------------------------- */
/* Binary ops broadcast numpy-style (trailing dimensions aligned; size-1 dims stretch). */
da_tensor *da_add(da_ctx *ctx, da_tensor *a, da_tensor *b);
da_tensor *da_sub(da_ctx *ctx, da_tensor *a, da_tensor *b);
da_tensor *da_mul(da_ctx *ctx, da_tensor *a, da_tensor *b);
da_tensor *da_div(da_ctx *ctx, da_tensor *a, da_tensor *b);
da_tensor *da_scale(da_ctx *ctx, da_tensor *x, float s);          /* x * s */
da_tensor *da_add_scalar(da_ctx *ctx, da_tensor *x, float s);     /* x + s */
da_tensor *da_pow_scalar(da_ctx *ctx, da_tensor *x, float p);     /* x ^ p */
da_tensor *da_relu(da_ctx *ctx, da_tensor *x);
da_tensor *da_silu(da_ctx *ctx, da_tensor *x);                    /* x * sigmoid(x), "swish" */
da_tensor *da_gelu(da_ctx *ctx, da_tensor *x);                    /* exact, erf form */
da_tensor *da_quick_gelu(da_ctx *ctx, da_tensor *x);              /* x * sigmoid(1.702 x) */
da_tensor *da_sigmoid(da_ctx *ctx, da_tensor *x);
da_tensor *da_tanh(da_ctx *ctx, da_tensor *x);
da_tensor *da_exp(da_ctx *ctx, da_tensor *x);
da_tensor *da_log(da_ctx *ctx, da_tensor *x);
da_tensor *da_sqrt(da_ctx *ctx, da_tensor *x);
/* Dropout with probability p (inverted scaling); identity when !ctx->training or p == 0. */
da_tensor *da_dropout(da_ctx *ctx, da_tensor *x, float p);

/* ---- reductions (ops/reduce.c) ---------------------------------------------------------- */
/* Over the listed axes (negative counts from the end); n_axes == 0 reduces everything. */
da_tensor *da_sum(da_ctx *ctx, da_tensor *x, int n_axes, const int *axes, bool keepdim);
da_tensor *da_mean(da_ctx *ctx, da_tensor *x, int n_axes, const int *axes, bool keepdim);

/* ---- shape (ops/shape.c) ---------------------------------------------------------------- */
da_tensor *da_reshape(da_ctx *ctx, da_tensor *x, int ndim, const int64_t *shape); /* one -1 allowed */
da_tensor *da_permute(da_ctx *ctx, da_tensor *x, const int *perm);
da_tensor *da_concat(da_ctx *ctx, int n, da_tensor *const *xs, int axis);        /* n <= 4 */
da_tensor *da_slice(da_ctx *ctx, da_tensor *x, int axis, int64_t start, int64_t end);
da_tensor *da_index_select(da_ctx *ctx, da_tensor *x, int axis, int64_t n, const int64_t *idx);
/* weight (V,D), ids of shape `shape` -> (shape..., D) */
da_tensor *da_embedding(da_ctx *ctx, da_tensor *weight, int ndim, const int64_t *shape, const int64_t *ids);

/* ---- linear algebra (ops/matmul.c) ------------------------------------------------------ */
/* a (...,M,K) or its transpose (...,K,M); b (...,K,N) / (...,N,K) or 2-D (shared by all
 * batches). Leading dims of a and b must match when b is not 2-D. */
da_tensor *da_matmul(da_ctx *ctx, da_tensor *a, da_tensor *b, bool trans_a, bool trans_b);
/* x (...,in), w (out,in), b (out) or NULL -> (...,out) */
da_tensor *da_linear(da_ctx *ctx, da_tensor *x, da_tensor *w, da_tensor *b);

/* ---- convolution and pooling (ops/conv.c, ops/pool.c) ----------------------------------- */
/* x (N,C,H,W), w (O,C,kh,kw), b (O) or NULL. Zero padding; pads = top, bottom, left, right. */
da_tensor *da_conv2d(da_ctx *ctx, da_tensor *x, da_tensor *w, da_tensor *b, int stride, int pad);
da_tensor *da_conv2d_ex(da_ctx *ctx, da_tensor *x, da_tensor *w, da_tensor *b, int stride,
                        int pad_top, int pad_bottom, int pad_left, int pad_right);
da_tensor *da_max_pool2d(da_ctx *ctx, da_tensor *x, int kernel, int stride);
da_tensor *da_avg_pool2d(da_ctx *ctx, da_tensor *x, int kernel, int stride);

/* ---- resampling (ops/resize.c) ---------------------------------------------------------- */
/* x (N,C,H,W). Resizes follow torch.nn.functional.interpolate with align_corners=False and
 * no antialias; bicubic uses a = -0.75 and clamps source indices at the border. */
da_tensor *da_upsample_nearest2x(da_ctx *ctx, da_tensor *x);
da_tensor *da_resize_bilinear(da_ctx *ctx, da_tensor *x, int64_t out_h, int64_t out_w);
da_tensor *da_resize_bicubic(da_ctx *ctx, da_tensor *x, int64_t out_h, int64_t out_w);
da_tensor *da_crop(da_ctx *ctx, da_tensor *x, int64_t top, int64_t left, int64_t h, int64_t w);
da_tensor *da_pad2d(da_ctx *ctx, da_tensor *x, int top, int bottom, int left, int right, float value);

/* ---- normalisation (ops/norm.c) --------------------------------------------------------- */
/* x (N,C,...) ; weight, bias (C) or NULL */
da_tensor *da_group_norm(da_ctx *ctx, da_tensor *x, da_tensor *weight, da_tensor *bias, int groups, float eps);
/* over the last dimension; weight, bias (D) or NULL */
da_tensor *da_layer_norm(da_ctx *ctx, da_tensor *x, da_tensor *weight, da_tensor *bias, float eps);
/* x / max(||x||, eps) over the last dimension */
da_tensor *da_l2_normalize(da_ctx *ctx, da_tensor *x, float eps);

/* ---- attention (ops/attention.c) -------------------------------------------------------- */
/* softmax over the last dim; causal masks entries j > i of the last two dims (square). */
da_tensor *da_softmax(da_ctx *ctx, da_tensor *x, bool causal);
/* q (B,H,Tq,D), k (B,H,Tk,D), v (B,H,Tk,Dv) -> (B,H,Tq,Dv); scale <= 0 means 1/sqrt(D). */
da_tensor *da_attention(da_ctx *ctx, da_tensor *q, da_tensor *k, da_tensor *v, bool causal, float scale);

/* ---- losses and similarities (ops/loss.c) ----------------------------------------------- */
/* All losses return a 0-d tensor (ndim 0, numel 1) holding the mean over elements. */
da_tensor *da_mse_loss(da_ctx *ctx, da_tensor *a, da_tensor *b);
da_tensor *da_l1_loss(da_ctx *ctx, da_tensor *a, da_tensor *b);
/* logits and targets of equal shape; targets in [0,1], not differentiated */
da_tensor *da_bce_with_logits(da_ctx *ctx, da_tensor *logits, da_tensor *targets);
/* logits (N,C), labels (N) in [0,C) */
da_tensor *da_cross_entropy(da_ctx *ctx, da_tensor *logits, const int64_t *labels);
/* over the last dimension: (...,D),(...,D) -> (...) ; torch.cosine_similarity semantics */
da_tensor *da_cosine_similarity(da_ctx *ctx, da_tensor *a, da_tensor *b, float eps);

#endif
