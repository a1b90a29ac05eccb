/* conv_backend.h — the three ways 2-D convolution is computed and how one is chosen.
 *   blas: im2col + da_sgemm (conv.c; oneDNN's or OpenBLAS's sgemm, gemm.h), always built;
 *   dnnl: oneDNN's convolution primitives (conv_dnnl.c), built when CMake found libdnnl;
 *   wino: Winograd F(4x4,3x3) on da_sgemm (conv_winograd.c), 3x3 stride 1 only, always built.
 * da_conv_choose (conv_dispatch.c) picks one per call from the shape, the CPU and the
 * DIFFADAPT_CONV environment variable (auto | blas | dnnl | wino). */
#ifndef DA_CONV_BACKEND_H
#define DA_CONV_BACKEND_H

#include <stdbool.h>

#include "tensor/tensor.h"

/* A convolution's sizes: input (N,C,H,W), weight (O,C,kh,kw), output (N,O,OH,OW). */
typedef struct {
    int64_t N, C, H, W;
    int64_t O, kh, kw;
    int64_t OH, OW;
    int stride, pt, pb, pl, pr;   /* stride; zero padding top, bottom, left, right */
} da_conv_shape;

typedef enum { DA_CONV_BLAS = 0, DA_CONV_DNNL = 1, DA_CONV_WINO = 2 } da_conv_backend;

/* The backend for this convolution (never DA_CONV_DNNL when oneDNN is not built in, never
 * DA_CONV_WINO for a shape da_conv_wino_fits refuses). */
da_conv_backend da_conv_choose(const da_conv_shape *s);

/* Whether DIFFADAPT_CONV_ALGO=direct turns every Winograd off (oneDNN's and ours); read at every call. */
bool da_conv_direct_forced(void);

/* One line for benchmarks and --version: the switch's value and, when built in, oneDNN's ISA. */
const char *da_conv_backend_describe(void);

/* ---- conv_dnnl.c ------------------------------------------------------------------------ */

/* Whether the oneDNN backend is compiled in. */
bool da_conv_dnnl_available(void);

/* The instruction set oneDNN runs ("avx2", "avx512_core_amx", ...; respects ONEDNN_MAX_CPU_ISA),
 * or "none" when it is not built in. */
const char *da_conv_dnnl_isa(void);

/* Whether oneDNN's ISA has AVX-512 (false when it is not built in or held to AVX2). */
bool da_conv_dnnl_has_avx512(void);

/* Whether oneDNN's ISA has AMX tiles; false without oneDNN or when ONEDNN_MAX_CPU_ISA holds it
 * below. Without AMX, bf16 products are no faster than float32 ones (one bf16 dot-product port
 * against two FMA ports: measured in docs/precision.md), so only AMX makes bf16 worth its error. */
bool da_conv_dnnl_has_amx(void);
/* Whether oneDNN can make a bf16 convolution here at all (natively or emulated on AVX-512):
 * tried once on a small shape. */
bool da_conv_dnnl_bf16_works(void);

/* y (N,O,OH,OW) = conv(x (N,C,H,W), w (O,C,kh,kw)) + b (O) (b may be NULL). With bf16, x and
 * w are rounded to bfloat16 on the way in (products in bf16, sums and y in float32; inference
 * only). Workspaces come from ctx's arena and are handed back. Returns false (y untouched) when
 * oneDNN cannot do it; the caller then uses BLAS (in float32). */
bool da_conv_dnnl_forward(da_ctx *ctx, const da_conv_shape *s, const float *x, const float *w, const float *b,
                          float *y, bool bf16);

/* dx (N,C,H,W) += dL/dx, dw (O,C,kh,kw) += dL/dw and db (O) += dL/db from dy (N,O,OH,OW); any
 * may be NULL, but db only with dw (oneDNN sums it in the weight-gradient pass). Returns false
 * (nothing written) when oneDNN cannot do it or for db without dw; a failure after a gradient
 * was written stops the program (da_check). */
bool da_conv_dnnl_backward(da_ctx *ctx, const da_conv_shape *s, const float *x, const float *w, const float *dy,
                           float *dx, float *dw, float *db);

/* ---- conv_winograd.c -------------------------------------------------------------------- */

/* Whether Winograd can compute this shape on this CPU: AVX2 and FMA, a 3x3 kernel, stride 1,
 * padding at most 2 per side. */
bool da_conv_wino_fits(const da_conv_shape *s);

/* y (N,O,OH,OW) = conv(x, w) + b (b may be NULL); workspaces from ctx's arena, handed back. */
void da_conv_wino_forward(da_ctx *ctx, const da_conv_shape *s, const float *x, const float *w, const float *b,
                          float *y);

/* dx += dL/dx and dw += dL/dw from dy (either may be NULL; the bias gradient is the caller's). */
void da_conv_wino_backward(da_ctx *ctx, const da_conv_shape *s, const float *x, const float *w, const float *dy,
                           float *dx, float *dw);

#endif
