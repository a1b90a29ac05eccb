/* unet_ops.h — fused ops of the UNet's hot path: GroupNorm + swish (+ a per-channel shift
 * before the norm, + dropout after) in one pass forward and two passes backward, instead of
 * four separate ops with a tensor each. Same maths as the composition of the engine's ops. */
#ifndef DA_UNET_OPS_H
#define DA_UNET_OPS_H

#include "tensor/ops.h"

/* y = dropout_p(swish(group_norm(x + shift[:, :, None, None]; weight, bias, groups, eps)))
 * x (N,C,H,W) (any trailing dims); shift (N,C) or NULL; weight, bias (C). Dropout follows
 * da_dropout exactly (one stream per call from ctx->seed and ctx->dropout_calls, element i keeps
 * when its uniform draw >= p, scale 1/(1-p)); it is off unless ctx->training and p > 0. */
da_tensor *da_gn_swish(da_ctx *ctx, da_tensor *x, da_tensor *shift, da_tensor *weight, da_tensor *bias, int groups,
                       float eps, float dropout);

/* swish(x) = x·sigmoid(x) with a vectorisable exp (about 1 ulp). */
da_tensor *da_swish(da_ctx *ctx, da_tensor *x);

#endif
