/* tiny_clip.h — a tiny random CLIP (16×16 images, 32 wide, one layer per tower) with a byte-level
 * vocabulary, for tests that need a CLIP model quickly. */
#ifndef DA_TEST_TINY_CLIP_H
#define DA_TEST_TINY_CLIP_H

#include <string.h>

#include "nn/clip.h"
#include "tensor/tensor.h"

static inline void tiny_clip_config(da_clip_config *c) {
    da_clip_config_default(c);
    c->image_size = 16;
    c->patch_size = 8;
    c->vision_width = 32;
    c->vision_layers = 1;
    c->vision_heads = 2;
    c->vision_mlp = 64;
    c->vocab_size = 514;   /* byte-level vocabulary without merges */
    c->context_length = 77;
    c->text_width = 32;
    c->text_layers = 1;
    c->text_heads = 2;
    c->text_mlp = 64;
    c->embed_dim = 16;
}

static inline void tiny_clip(da_clip *m, uint64_t seed) {
    da_clip_config c;
    tiny_clip_config(&c);
    char err[512];
    int rc = da_clip_init(m, &c, seed, err, sizeof err);
    da_check(rc == 0, "tiny_clip", "clip init: %s", err);
    m->bpe_merges = strdup("#version: 0.2\n");
}

#endif
