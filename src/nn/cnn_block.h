/* cnn_block.h — one fused block of the classifier CNN: 3×3 convolution (pad 1) + bias → ReLU →
 * 2×2 max-pool, computed with Winograd F(2×2,3×3) so that each output tile is one pool window. */
#ifndef DA_CNN_BLOCK_H
#define DA_CNN_BLOCK_H

#include "tensor/tensor.h"

/* x (N,C,H,W), w (O,C,3,3), b (O) -> max_pool2d(relu(conv2d(x, w, b, stride 1, pad 1)), 2)
 * of shape (N,O,H/2,W/2) (floor, as PyTorch). H, W >= 2. Records one tape entry when grad is
 * enabled; its backward gives the exact gradient of the computed function for x, w and b.
 * Results equal the unfused ops up to float rounding (Winograd reorders the sums). */
da_tensor *da_conv3x3_relu_pool(da_ctx *ctx, da_tensor *x, da_tensor *w, da_tensor *b);

#endif
