/* test_matmul.c — matmul and linear: finite-difference gradients for every transpose and batch
 * layout, and forward values against a direct triple loop. */
#include "gradcheck.h"

typedef struct { bool ta, tb; } mm_args;

static da_tensor *build_matmul(da_ctx *ctx, da_tensor **in, void *u) {
    mm_args *a = u;
    return da_matmul(ctx, in[0], in[1], a->ta, a->tb);
}

static da_tensor *build_linear(da_ctx *ctx, da_tensor **in, void *u) {
    return da_linear(ctx, in[0], in[1], u ? in[2] : NULL);
}

int main(void) {
    da_rng rng;
    da_rng_init(&rng, 7);
    const int64_t M = 3, K = 4, N = 5, B = 2;
    for (int shared = 0; shared < 2; shared++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int64_t ashape[3] = {B, ta ? K : M, ta ? M : K};
                int64_t bshape[3] = {B, tb ? N : K, tb ? K : N};
                da_tensor *in[2] = {gc_input(&rng, 3, ashape, 1.0f),
                                    shared ? gc_input(&rng, 2, bshape + 1, 1.0f) : gc_input(&rng, 3, bshape, 1.0f)};
                mm_args args = {ta, tb};
                char name[64];
                snprintf(name, sizeof name, "matmul ta=%d tb=%d shared_b=%d", ta, tb, shared);
                gradcheck(name, build_matmul, 2, in, &args, 1e-2f, 1e-3, 1e-3, 1000);

                /* forward against a direct loop */
                da_ctx ctx;
                da_ctx_init(&ctx);
                da_tensor *c = da_matmul(&ctx, in[0], in[1], ta, tb);
                float ref[B * M * N];
                for (int64_t b = 0; b < B; b++)
                    for (int64_t i = 0; i < M; i++)
                        for (int64_t j = 0; j < N; j++) {
                            double s = 0;
                            for (int64_t k = 0; k < K; k++) {
                                float av = ta ? in[0]->data[b * K * M + k * M + i] : in[0]->data[b * M * K + i * K + k];
                                const float *bb = in[1]->data + (shared ? 0 : b * K * N);
                                float bv = tb ? bb[j * K + k] : bb[k * N + j];
                                s += (double)av * bv;
                            }
                            ref[b * M * N + i * N + j] = (float)s;
                        }
                tu_close(name, c->data, ref, B * M * N, 1e-5, 1e-5);
                da_ctx_free(&ctx);
                da_tensor_free(in[0]);
                da_tensor_free(in[1]);
            }
    da_tensor *lin[3] = {gc_input(&rng, DA_SHAPE(2, 3, 4), 1.0f), gc_input(&rng, DA_SHAPE(6, 4), 1.0f),
                         gc_input(&rng, DA_SHAPE(6), 1.0f)};
    gradcheck("linear with bias", build_linear, 3, lin, lin, 1e-2f, 1e-3, 1e-3, 1000);
    gradcheck("linear without bias", build_linear, 2, lin, NULL, 1e-2f, 1e-3, 1e-3, 1000);
    for (int i = 0; i < 3; i++) da_tensor_free(lin[i]);
    return tu_finish("test_matmul");
}
