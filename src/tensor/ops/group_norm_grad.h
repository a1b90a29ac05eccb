/* group_norm_grad.h — the part of backward that the group norm (norm.c) and the fused
 * GroupNorm + swish (gn_swish.c) share: the gradients of the per-channel affine parameters. */
#ifndef DA_OPS_GROUP_NORM_GRAD_H
#define DA_OPS_GROUP_NORM_GRAD_H

#include <stdint.h>

/* Adds to dw and db (C each; either may be NULL) the sums over the N samples of the
 * per-(sample, channel) sums sum_dyx (of dy·x̂) and sum_dy (of dy), both (N,C) in double. */
void da_gn_affine_grad(const double *sum_dy, const double *sum_dyx, int64_t N, int64_t C, float *dw, float *db);

#endif
