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
