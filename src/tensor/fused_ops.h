/* fused_ops.h — ops that do the work of several engine ops (tensor/ops.h) in one tape entry,
 * for the hot paths of the models: the same maths as the composition, less memory traffic and
 * no intermediate tensors. Implemented in tensor/ops/gn_swish.c and tensor/ops/conv3x3_relu_pool.c. */
#ifndef DA_FUSED_OPS_H
#define DA_FUSED_OPS_H

#include "tensor/ops.h"

/* ---- the UNet's GroupNorm + swish (tensor/ops/gn_swish.c) ------------------------------------
 * One pass forward and two passes backward, instead of four separate ops with a tensor each. */

/* y = dropout_p(swish(group_norm(x + shift[:, :, None, None]; weight, bias, groups, eps)))
 * x (N,C,H,W) (any trailing dims); shift (N,C) or NULL; weight, bias (C). Dropout follows
 * da_dropout exactly (one stream per call from ctx->seed and ctx->dropout_calls, element i keeps
 * when its uniform draw >= p, scale 1/(1-p)); it is off unless ctx->training and p > 0. */
da_tensor *da_gn_swish(da_ctx *ctx, da_tensor *x, da_tensor *shift, da_tensor *weight, da_tensor *bias, int groups,
                       float eps, float dropout);

/* swish(x) = x·sigmoid(x) with a vectorisable exp (about 1 ulp). */
da_tensor *da_swish(da_ctx *ctx, da_tensor *x);

/* ---- the classifier CNN's conv block (tensor/ops/conv3x3_relu_pool.c) ------------------------
 * 3×3 convolution (pad 1) + bias → ReLU → 2×2 max-pool, computed with Winograd F(2×2,3×3) so
 * that each output tile is one pool window. */

/* x (N,C,H,W), w (O,C,3,3), b (O) -> max_pool2d(relu(conv2d(x, w, b, stride 1, pad 1)), 2)
 * of shape (N,O,H/2,W/2) (floor, as PyTorch). H, W >= 2. Records one tape entry when grad is
 * enabled; its backward gives the exact gradient of the computed function for x, w and b.
 * Results equal the unfused ops up to float rounding (Winograd reorders the sums). */
da_tensor *da_conv3x3_relu_pool(da_ctx *ctx, da_tensor *x, da_tensor *w, da_tensor *b);

#endif
