/* clip_loss.c — the directional CLIP loss (see clip_loss.h): prompt templates, the text
 * direction, and L_clip = -log((2 - L_dir)/2) over image features. */
#include "nn/clip_loss.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Our own wording: neutral framings, so that the direction between two words is mostly the
 * difference the words make, averaged over many contexts. */
static const char *const TEMPLATES[] = {
    "a {}.",
    "the {}.",
    "this is a {}.",
    "here is a {}.",
    "an example of a {}.",
    "a typical {}.",
    "a {} of something.",
    "a {} of an object.",
    "a {} of an item.",
    "a {} of a thing on display.",
    "a {} of a piece of clothing.",
    "a {} of a person.",
    "a small {}.",
    "a large {}.",
    "a centred {}.",
    "a cropped {}.",
    "a clean {}.",
    "a rough {}.",
    "a low-resolution {}.",
    "a high-resolution {}.",
    "a {} on a plain background.",
    "a {} seen up close.",
    "a {} seen from a distance.",
    "a dim {}.",
    "a bright {}.",
    "my {}.",
    "an old {}.",
    "a recent {}.",
};

const char *const *da_clip_templates(int *n) {
    *n = (int)(sizeof TEMPLATES / sizeof TEMPLATES[0]);
    return TEMPLATES;
}

/* template with its first "{}" replaced by word (malloc'ed) */
static char *fill(const char *tmpl, const char *word) {
    const char *hole = strstr(tmpl, "{}");
    size_t n = strlen(tmpl) + strlen(word) + 1;
    char *s = malloc(n);
    da_check(s != NULL, "clip_text_direction", "out of memory");
    if (!hole) snprintf(s, n, "%s", tmpl);
    else snprintf(s, n, "%.*s%s%s", (int)(hole - tmpl), tmpl, word, hole + 2);
    return s;
}

int da_clip_text_direction(const da_clip *m, da_bpe *bpe, const char *source, const char *target,
                           const char *const *templates, int n_templates, float *dir, char *err, size_t errlen) {
    if (!templates) templates = da_clip_templates(&n_templates);
    int n = n_templates;
    char **texts = malloc(sizeof(char *) * (size_t)(2 * n));
    da_check(texts != NULL, "clip_text_direction", "out of memory");
    for (int i = 0; i < n; i++) {
        texts[i] = fill(templates[i], target);
        texts[n + i] = fill(templates[i], source);
    }
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_set_grad(&ctx, false);
    int rc = -1;
    da_tensor *f = da_clip_encode_texts(&ctx, m, bpe, (const char *const *)texts, 2 * n, false, err, errlen);
    if (f) {
        /* (2n,E): rows 0..n-1 target, n..2n-1 source */
        int64_t E = f->shape[1];
        da_tensor *u = da_l2_normalize(&ctx, f, 1e-12f);
        double *acc = calloc((size_t)E, sizeof(double));
        da_check(acc != NULL, "clip_text_direction", "out of memory");
        for (int i = 0; i < n; i++)
            for (int64_t j = 0; j < E; j++) acc[j] += (double)u->data[i * E + j] - (double)u->data[(n + i) * E + j];
        double norm = 0;
        for (int64_t j = 0; j < E; j++) {
            acc[j] /= n;
            norm += acc[j] * acc[j];
        }
        norm = sqrt(norm);
        if (norm > 0) {
            for (int64_t j = 0; j < E; j++) dir[j] = (float)(acc[j] / norm);
            rc = 0;
        } else {
            snprintf(err, errlen, "the source and target texts (\"%s\", \"%s\") give the same embedding: no direction",
                     source, target);
        }
        free(acc);
    }
    da_ctx_free(&ctx);
    for (int i = 0; i < 2 * n; i++) free(texts[i]);
    free(texts);
    return rc;
}

da_tensor *da_clip_directional_loss_features(da_ctx *ctx, da_tensor *src, da_tensor *gen, const float *text_dir,
                                             float *l_dir) {
    da_check(src->ndim == 2 && da_same_shape(src, gen), "clip_directional_loss", "features must be (B,E) alike");
    int64_t E = gen->shape[1];
    da_tensor *t = da_from_data(ctx, DA_SHAPE(1, E), text_dir);
    da_tensor *d_img = da_sub(ctx, da_l2_normalize(ctx, gen, 1e-12f), da_l2_normalize(ctx, src, 1e-12f));
    da_tensor *cos = da_cosine_similarity(ctx, d_img, t, 1e-8f);                        /* (B) */
    da_tensor *ldir = da_add_scalar(ctx, da_scale(ctx, da_mean(ctx, cos, 0, NULL, false), -1.0f), 1.0f);
    if (l_dir) *l_dir = ldir->data[0];
    /* -log((2 - L_dir) / 2) */
    da_tensor *half = da_scale(ctx, da_add_scalar(ctx, da_scale(ctx, ldir, -1.0f), 2.0f), 0.5f);
    return da_scale(ctx, da_log(ctx, half), -1.0f);
}

da_tensor *da_clip_directional_loss(da_ctx *ctx, const da_clip *m, da_tensor *src, da_tensor *x, const float *text_dir,
                                    float *l_dir) {
    return da_clip_directional_loss_features(ctx, src, da_clip_image_features(ctx, m, x), text_dir, l_dir);
}

/* Mean of the normalised image embeddings of n images (n,C,H,W) into mean (E), in batches. */
static void mean_image_embedding(const da_clip *m, const float *x, int64_t n, int64_t C, int64_t H, int64_t W,
                                 float *mean) {
    int64_t E = m->cfg.embed_dim, per = C * H * W;
    double *acc = calloc((size_t)E, sizeof(double));
    da_check(acc != NULL, "clip_image_direction", "out of memory");
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_set_grad(&ctx, false);
    ctx.training = false;
    for (int64_t b0 = 0; b0 < n; b0 += 64) {
        int64_t bs = n - b0 < 64 ? n - b0 : 64;
        da_ctx_reset(&ctx);
        da_tensor *t = da_from_data(&ctx, DA_SHAPE(bs, C, H, W), x + b0 * per);
        da_tensor *e = da_l2_normalize(&ctx, da_clip_image_features(&ctx, m, t), 1e-12f);   /* (bs,E) */
        for (int64_t i = 0; i < bs; i++)
            for (int64_t k = 0; k < E; k++) acc[k] += e->data[i * E + k];
    }
    for (int64_t k = 0; k < E; k++) mean[k] = (float)(acc[k] / (double)n);
    da_ctx_free(&ctx);
    free(acc);
}

/* v /= |v|; returns -1 when |v| is (nearly) 0. */
static int normalise_in_place(float *v, int64_t E) {
    double s = 0;
    for (int64_t k = 0; k < E; k++) s += (double)v[k] * v[k];
    if (!(s > 1e-20)) return -1;
    float inv = (float)(1.0 / sqrt(s));
    for (int64_t k = 0; k < E; k++) v[k] *= inv;
    return 0;
}

int da_clip_image_direction(const da_clip *m, const float *src, int64_t n_src, const float *tgt, int64_t n_tgt,
                            int64_t C, int64_t H, int64_t W, float *dir, char *err, size_t errlen) {
    if (n_src < 1 || n_tgt < 1) {
        snprintf(err, errlen, "an image direction needs source and target images (got %lld and %lld)", (long long)n_src,
                 (long long)n_tgt);
        return -1;
    }
    int64_t E = m->cfg.embed_dim;
    float *ms = malloc(sizeof(float) * (size_t)E);
    da_check(ms != NULL, "clip_image_direction", "out of memory");
    mean_image_embedding(m, src, n_src, C, H, W, ms);
    mean_image_embedding(m, tgt, n_tgt, C, H, W, dir);
    for (int64_t k = 0; k < E; k++) dir[k] -= ms[k];
    free(ms);
    if (normalise_in_place(dir, E) != 0) {
        snprintf(err, errlen, "the target images have the same mean CLIP embedding as the source images: no direction");
        return -1;
    }
    return 0;
}

int da_clip_mix_directions(const float *text, const float *image, float w, int64_t E, float *out) {
    for (int64_t k = 0; k < E; k++) out[k] = (1.0f - w) * text[k] + w * image[k];
    return normalise_in_place(out, E);
}
