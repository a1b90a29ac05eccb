/* tiny_unet.h — a tiny random UNet (32 channels, two levels, attention at 4x4) saved to a file,
 * for tests that need a model file quickly. */
#ifndef DA_TEST_TINY_UNET_H
#define DA_TEST_TINY_UNET_H

#include "nn/unet.h"
#include "tensor/tensor.h"

/* A tiny random UNet of res×res one-channel images, its output layer scaled by 0.2 so that
 * translations stay in range and differ from image to image. */
static inline void tiny_unet_init(da_unet *m, int res, uint64_t seed) {
    da_unet_config c;
    da_unet_config_default(&c);
    c.ch = 32;
    c.ch_mult[0] = 1;
    c.ch_mult[1] = 2;
    c.n_levels = 2;
    c.num_res_blocks = 1;
    c.attn_resolutions[0] = 4;
    c.n_attn = 1;
    c.resolution = res;
    char err[512];
    da_check(da_unet_init(m, &c, seed, err, sizeof err) == 0, "tiny_unet", "%s", err);
    da_tensor *w = da_unet_param(m, "conv_out.weight");
    for (int64_t i = 0; i < w->numel; i++) w->data[i] *= 0.2f;
}

static inline void tiny_unet_save(const char *path, int res, uint64_t seed) {
    da_unet m;
    char err[512];
    tiny_unet_init(&m, res, seed);
    da_check(da_unet_save(&m, path, NULL, 0, err, sizeof err) == 0, "tiny_unet", "%s", err);
    da_unet_free(&m);
}

#endif
