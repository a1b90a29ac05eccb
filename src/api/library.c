/* library.c — the API's global setting (the thread count), its error helper and the model and
 * CLIP handles: thin wrappers over nn/unet.h and nn/clip.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/api.h"
#include "nn/params.h"
#include "tensor/tensor.h"

int da_api_fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void da_threads_set(int n) { da_set_threads(n); }
int da_threads_get(void) { return da_get_threads(); }

int da_model_load(const char *path, const char *config_path, da_model **out, char *err, size_t errlen) {
    *out = NULL;
    if (!path) return da_api_fail(err, errlen, "da_model_load: no path");
    da_model *m = calloc(1, sizeof *m);
    if (!m) return da_api_fail(err, errlen, "out of memory");
    if (da_unet_load(&m->unet, path, config_path, err, errlen)) {
        free(m);
        return -1;
    }
    *out = m;
    return 0;
}

int da_model_save(const da_model *m, const char *path, char *err, size_t errlen) {
    return da_unet_save(&m->unet, path, NULL, 0, err, errlen);
}

void da_model_image_shape(const da_model *m, int *channels, int *side) {
    if (channels) *channels = m->unet.cfg.in_channels;
    if (side) *side = m->unet.cfg.resolution;
}

void da_model_hash(const da_model *m, char out[17]) { da_params_hash(&m->unet.params, out); }

const char *da_model_describe(const da_model *m, char *buf, size_t len) {
    char cs[256];
    snprintf(buf, len, "%s, %.2f M parameters", da_unet_config_str(&m->unet.cfg, cs, sizeof cs),
             (double)da_unet_num_params(&m->unet) / 1e6);
    return buf;
}

void da_model_free(da_model *m) {
    if (!m) return;
    da_unet_free(&m->unet);
    free(m);
}

/* A CLIP handle; with_tokenizer: its vocabulary from vocab_path (NULL: the model's own). */
static int load_clip(const char *fn, const char *path, bool with_tokenizer, const char *vocab_path, da_clip_model **out,
                     char *err, size_t errlen) {
    if (!out) return da_api_fail(err, errlen, "%s: no place for the model (out is NULL)", fn);
    *out = NULL;
    if (!path) return da_api_fail(err, errlen, "%s: no path", fn);
    da_clip_model *c = calloc(1, sizeof *c);
    if (!c) return da_api_fail(err, errlen, "out of memory");
    if (da_clip_load(&c->clip, path, err, errlen)) {
        free(c);
        return -1;
    }
    if (with_tokenizer) {
        c->bpe = da_clip_vocab(&c->clip, vocab_path, err, errlen);
        if (!c->bpe) {
            da_clip_free(&c->clip);
            free(c);
            return -1;
        }
    }
    *out = c;
    return 0;
}

int da_clip_model_load(const char *path, da_clip_model **out, char *err, size_t errlen) {
    return load_clip("da_clip_model_load", path, true, NULL, out, err, errlen);
}

int da_clip_model_load_vocab(const char *path, const char *vocab_path, da_clip_model **out, char *err, size_t errlen) {
    return load_clip("da_clip_model_load_vocab", path, true, vocab_path, out, err, errlen);
}

int da_clip_model_load_image_only(const char *path, da_clip_model **out, char *err, size_t errlen) {
    return load_clip("da_clip_model_load_image_only", path, false, NULL, out, err, errlen);
}

const char *da_clip_model_describe(const da_clip_model *c, char *buf, size_t len) {
    return da_clip_config_str(&c->clip.cfg, buf, len);
}

void da_clip_model_hash(const da_clip_model *c, char out[17]) { da_params_hash(&c->clip.params, out); }

void da_clip_model_free(da_clip_model *c) {
    if (!c) return;
    da_bpe_free(c->bpe);
    da_clip_free(&c->clip);
    free(c);
}
