/* strided.h — internal kernels shared by the op files: numpy-style broadcasting of binary ops,
 * summing a tensor down to a broadcast shape, and strided copies (implemented in elementwise.c). */
#ifndef DA_OPS_STRIDED_H
#define DA_OPS_STRIDED_H

#include <stdbool.h>
#include <stdint.h>

/* Loops over more elements than this run in parallel (OpenMP). */
#define DA_PAR_MIN 32768

typedef enum { DA_BIN_ADD, DA_BIN_SUB, DA_BIN_MUL, DA_BIN_DIV } da_bin_op;

/* The broadcast shape of two shapes (trailing dims aligned); false when they do not broadcast. */
bool da_broadcast_shape(int a_nd, const int64_t *a_shape, int b_nd, const int64_t *b_shape,
                        int *out_nd, int64_t *out_shape);

/* out (nd, shape; contiguous) = a op b (or += when accumulate), where a and b have shapes that
 * broadcast to `shape`. out may alias a or b when that operand has the full shape. */
void da_bcast_binary(da_bin_op op, int nd, const int64_t *shape,
                     const float *a, int a_nd, const int64_t *a_shape,
                     const float *b, int b_nd, const int64_t *b_shape, float *out, bool accumulate);

/* dst (dst_nd, dst_shape) += scale * src (nd, shape) summed over the dims that dst broadcasts
 * along (size 1 or missing in dst); with src2 (same shape as src, or NULL) the elementwise
 * product src*src2 is summed instead. Sums run in double in a fixed order, so results do not
 * depend on the thread count. */
void da_bcast_reduce_add(int nd, const int64_t *shape, const float *src, const float *src2,
                         int dst_nd, const int64_t *dst_shape, float *dst, float scale);

/* dst (nd, shape; contiguous) = (or +=) src read with element strides src_strides. */
void da_strided_copy(int nd, const int64_t *shape, const float *src, const int64_t *src_strides,
                     float *dst, bool accumulate);

/* Heap scratch for backward passes (the arena would keep it until the step ends). Exits with a
 * message when memory runs out. Free with free(). */
float *da_scratch(int64_t n);

#endif
