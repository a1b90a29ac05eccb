/* bench_reference_inputs.c — inputs of bench/reference_run_bench.sh: a random-weight model file
 * for a UNet config (either family, the real sizes of the public checkpoints) and a set of
 * smooth test images, so that the reference pipeline can be timed without downloading anything.
 *
 *   bench_reference_inputs model CONFIG.yml SEED OUT.safetensors
 *   bench_reference_inputs images N SIZE OUT.safetensors
 *
 * Weights: PyTorch's default initialisation drawn from SEED (da_unet_init). Images: (N,3,SIZE,SIZE)
 * in [-1,1], low-frequency sinusoids (a "photo" the UNet's numerics treat like any other). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "nn/unet.h"

static int make_model(const char *config, const char *seed, const char *out) {
    char err[1024];
    da_unet_config c;
    da_unet_config_default(&c);
    if (da_unet_config_load(config, &c, err, sizeof err)) { fprintf(stderr, "error: %s\n", err); return 1; }
    da_unet m;
    if (da_unet_init(&m, &c, strtoull(seed, NULL, 10), err, sizeof err)) { fprintf(stderr, "error: %s\n", err); return 1; }
    int rc = da_unet_save(&m, out, NULL, 0, err, sizeof err);
    if (rc) fprintf(stderr, "error: %s\n", err);
    else fprintf(stderr, "%s: %lld parameters, random (seed %s)\n", out, (long long)da_unet_num_params(&m), seed);
    da_unet_free(&m);
    return rc ? 1 : 0;
}

static int make_images(int n, int size, const char *out) {
    if (n < 1 || n > 64 || size < 8 || size > 1024) { fprintf(stderr, "error: N 1..64, SIZE 8..1024\n"); return 1; }
    int64_t per = 3LL * size * size;
    float *img = malloc(sizeof(float) * (size_t)(n * per));   /* (N,3,SIZE,SIZE) */
    int64_t *labels = malloc(sizeof(int64_t) * (size_t)n);     /* (N) */
    for (int i = 0; i < n; i++) {
        labels[i] = i % 2;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++) {
                    double u = (double)x / size, v = (double)y / size;
                    img[((int64_t)i * 3 + c) * size * size + (int64_t)y * size + x] =
                        (float)(0.7 * sin(6.0 * u + 2.0 * c + i) * cos(4.0 * v - c));
                }
    }
    st_writer *w = st_writer_new();
    st_writer_add_f32(w, "images", 4, (const int64_t[]){n, 3, size, size}, img);
    st_writer_add_i64(w, "labels", 1, (const int64_t[]){n}, labels);
    char err[512];
    int rc = st_writer_save(w, out, err, sizeof err);
    if (rc) fprintf(stderr, "error: %s\n", err);
    st_writer_free(w);
    free(img);
    free(labels);
    return rc ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "model")) return make_model(argv[2], argv[3], argv[4]);
    if (argc == 5 && !strcmp(argv[1], "images")) return make_images(atoi(argv[2]), atoi(argv[3]), argv[4]);
    fprintf(stderr, "usage: %s model CONFIG SEED OUT.safetensors | images N SIZE OUT.safetensors\n", argv[0]);
    return 2;
}
