/* test_cnn_block.c — the fused Winograd conv3x3+ReLU+maxpool block: values and all gradients
 * against the unfused ops (conv2d, relu, max_pool2d, each checked by finite differences in its
 * own test) on many shapes. Finite differences of the fused op itself would straddle the kinks
 * of ReLU and max-pool; the PyTorch golden of the whole CNN is in test_cnn. */
#include "tensor/fused_ops.h"
#include "tensor/ops.h"
#include "tensor/rng.h"
#include "test_util.h"

typedef da_tensor *(*build_fn)(da_ctx *ctx, da_tensor **in, void *u);

/* A persistent tensor filled with N(0, scale^2) values that wants a gradient. */
static da_tensor *input(da_rng *rng, int ndim, const int64_t *shape, float scale) {
    da_tensor *t = da_persistent(ndim, shape, true);
    da_rng_normal(rng, t->data, t->numel, 0.0f, scale);
    return t;
}

static da_tensor *build_fused(da_ctx *ctx, da_tensor **in, void *u) {
    return da_conv3x3_relu_pool(ctx, in[0], in[1], u ? in[2] : NULL);
}

static da_tensor *build_ops(da_ctx *ctx, da_tensor **in, void *u) {
    da_tensor *h = da_conv2d(ctx, in[0], in[1], u ? in[2] : NULL, 1, 1);
    return da_max_pool2d(ctx, da_relu(ctx, h), 2, 2);
}

/* Forward and the gradients of x, w, b for L = sum(out * R) through one builder. */
static da_tensor *run(build_fn f, da_tensor **in, bool bias, const float *R, float **grads) {
    da_ctx ctx;
    da_ctx_init(&ctx);
    for (int k = 0; k < 3; k++) memset(in[k]->grad, 0, sizeof(float) * (size_t)in[k]->numel);
    da_tensor *out = f(&ctx, in, bias ? in : NULL);
    memcpy(da_grad(&ctx, out), R, sizeof(float) * (size_t)out->numel);
    da_backward_from(&ctx, out);
    da_tensor *y = da_persistent(out->ndim, out->shape, false);
    memcpy(y->data, out->data, sizeof(float) * (size_t)out->numel);
    for (int k = 0; k < 3; k++) {
        grads[k] = malloc(sizeof(float) * (size_t)in[k]->numel);
        memcpy(grads[k], in[k]->grad, sizeof(float) * (size_t)in[k]->numel);
    }
    da_ctx_free(&ctx);
    return y;
}

static void compare(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, bool bias, da_rng *rng) {
    da_tensor *in[3] = {input(rng, DA_SHAPE(N, C, H, W), 1.0f), input(rng, DA_SHAPE(O, C, 3, 3), 0.5f),
                        input(rng, DA_SHAPE(O), 0.3f)};
    int64_t n_out = N * O * (H / 2) * (W / 2);
    float *R = malloc(sizeof(float) * (size_t)(n_out ? n_out : 1));
    da_rng_normal(rng, R, n_out, 0.0f, 1.0f);
    float *ga[3], *gb[3];
    da_tensor *a = run(build_fused, in, bias, R, ga), *b = run(build_ops, in, bias, R, gb);
    char name[160];
    snprintf(name, sizeof name, "N%lld C%lld %lldx%lld O%lld bias%d", (long long)N, (long long)C, (long long)H,
             (long long)W, (long long)O, bias);
    CHECK(da_same_shape(a, b), "%s: output shapes differ", name);
    char what[200];
    snprintf(what, sizeof what, "%s forward", name);
    tu_close(what, a->data, b->data, (long)a->numel, 2e-5, 1e-4);
    const char *which[3] = {"dx", "dw", "db"};
    for (int k = 0; k < (bias ? 3 : 2); k++) {
        snprintf(what, sizeof what, "%s %s", name, which[k]);
        tu_close(what, ga[k], gb[k], (long)in[k]->numel, 1e-4, 1e-4);
    }
    for (int k = 0; k < 3; k++) {
        free(ga[k]);
        free(gb[k]);
        da_tensor_free(in[k]);
    }
    da_tensor_free(a);
    da_tensor_free(b);
    free(R);
}

int main(void) {
    da_rng rng;
    da_rng_init(&rng, 99);
    /* odd and even sizes, tiny planes, channel counts around the chunking, batches of 1..9 */
    const int64_t shapes[][5] = {
        {1, 1, 2, 2, 1},   {2, 1, 3, 5, 3},   {3, 3, 8, 8, 4},    {5, 2, 9, 7, 6},  {1, 7, 16, 12, 5},
        {9, 4, 11, 9, 8},  {4, 16, 6, 6, 32}, {2, 3, 33, 17, 4},  {7, 32, 8, 8, 64}, {33, 1, 32, 32, 8},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int bias = 0; bias < 2; bias++)
            compare(shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3], shapes[i][4], bias, &rng);

    /* without a gradient wanted, no tape entry */
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_set_grad(&ctx, false);
    da_tensor *x = da_zeros(&ctx, DA_SHAPE(1, 1, 4, 4));
    da_tensor *w = da_persistent(DA_SHAPE(2, 1, 3, 3), true);
    da_tensor *y = da_conv3x3_relu_pool(&ctx, x, w, NULL);
    CHECK(ctx.tape_len == 0 && y->shape[1] == 2 && y->shape[2] == 2 && y->shape[3] == 2, "inference call");
    da_tensor_free(w);
    da_ctx_free(&ctx);
    return tu_finish("test_cnn_block");
}
