/* miniclip_eval.c — zero-shot evaluation of a (mini-)CLIP on style renderings of held-out images:
 * style accuracy among the training styles, and "sketch" vs "photo" on the held-out renderer. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/clip_loss.h"
#include "train/miniclip_train.h"

#define EVAL_CHUNK 200   /* images per forward pass */

/* The normalised mean of the normalised embeddings of every template with every word (E floats). */
static int text_class(da_ctx *ctx, const da_clip *m, da_bpe *bpe, const char *const *words, int nw,
                      const char *const *tmpl, int nt, float *out, char *err, size_t errlen) {
    int n = nw * nt;
    char **texts = calloc((size_t)n, sizeof *texts);
    da_check(texts != NULL, "miniclip_eval", "out of memory");
    char buf[512];
    for (int w = 0; w < nw; w++)
        for (int t = 0; t < nt; t++) {
            texts[w * nt + t] = strdup(da_miniclip_fill(tmpl[t], words[w], buf, sizeof buf));
            da_check(texts[w * nt + t] != NULL, "miniclip_eval", "out of memory");
        }
    da_ctx_reset(ctx);
    da_tensor *f = da_clip_encode_texts(ctx, m, bpe, (const char *const *)texts, n, false, err, errlen);
    for (int i = 0; i < n; i++) free(texts[i]);
    free(texts);
    if (!f) return -1;
    f = da_l2_normalize(ctx, f, 1e-12f);
    int64_t E = f->shape[1];
    double ss = 0;
    for (int64_t e = 0; e < E; e++) {
        double s = 0;
        for (int i = 0; i < n; i++) s += f->data[i * E + e];
        out[e] = (float)(s / n);
        ss += (double)out[e] * out[e];
    }
    float norm = (float)sqrt(ss);
    for (int64_t e = 0; e < E; e++) out[e] /= norm > 1e-12f ? norm : 1e-12f;
    return 0;
}

/* Normalised image features of n images (n,C,H,W) into out (n,E), in chunks. */
static void embed_images(da_ctx *ctx, const da_clip *m, const da_dataset *shape, const float *images, int64_t n,
                         float *out) {
    size_t img = (size_t)(shape->c * shape->h * shape->w);
    int64_t E = m->cfg.embed_dim;
    for (int64_t b = 0; b < n; b += EVAL_CHUNK) {
        int64_t nb = n - b < EVAL_CHUNK ? n - b : EVAL_CHUNK;
        da_ctx_reset(ctx);
        da_tensor *x = da_from_data(ctx, DA_SHAPE(nb, shape->c, shape->h, shape->w), images + (size_t)b * img);
        da_tensor *f = da_l2_normalize(ctx, da_clip_image_features(ctx, m, x), 1e-12f);
        memcpy(out + b * E, f->data, sizeof(float) * (size_t)(nb * E));
    }
}

static float dot(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return (float)s;
}

int da_miniclip_evaluate(const da_clip *m, da_bpe *bpe, const da_dataset *test, int n_images, uint64_t seed,
                         da_miniclip_eval *ev, char *err, size_t errlen) {
    memset(ev, 0, sizeof *ev);
    int64_t n = test->n < n_images ? test->n : n_images;
    if (n < 1 || (test->c != 1 && test->c != 3)) {
        snprintf(err, errlen, "the evaluation needs at least one test image with 1 or 3 channels");
        return -1;
    }
    int ns = da_style_count();
    da_check(ns <= DA_MINICLIP_MAX_STYLES, "miniclip_eval", "too many styles");
    ev->n_images = (int)n;
    ev->n_styles = ns;
    ev->n_train = da_miniclip_train_styles(ev->train_style, DA_MINICLIP_MAX_STYLES);
    int64_t E = m->cfg.embed_dim;
    int nt, nd;
    const char *const *tmpl = da_miniclip_eval_templates(&nt);
    const char *const *dl_tmpl = da_clip_templates(&nd);
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_set_grad(&ctx, false);
    float *cls = calloc((size_t)(ev->n_train * E), sizeof(float));   /* (n_train,E) */
    float *sp = calloc((size_t)(4 * E), sizeof(float));               /* sketch, photo; the same with dl templates */
    size_t img = (size_t)(test->c * test->h * test->w);
    float *rendered = malloc(sizeof(float) * (size_t)n * img);        /* (n,C,H,W) */
    float *feat = malloc(sizeof(float) * (size_t)(n * E));            /* (n,E) normalised */
    float *orig = malloc(sizeof(float) * (size_t)(n * E));            /* (n,E) of the unchanged images */
    float *dir = malloc(sizeof(float) * (size_t)E);                   /* ΔT photo -> sketch */
    da_check(cls && sp && rendered && feat && orig && dir, "miniclip_eval", "out of memory");
    int rc = -1;
    for (int k = 0; k < ev->n_train; k++) {
        const char *words[64];
        int nw = da_miniclip_style_words(da_style_get(ev->train_style[k]), words, 64);
        if (text_class(&ctx, m, bpe, words, nw, tmpl, nt, cls + k * E, err, errlen)) goto done;
    }
    const char *sketch[1] = {"sketch"}, *photo[1] = {"photo"};
    if (text_class(&ctx, m, bpe, sketch, 1, tmpl, nt, sp, err, errlen) ||
        text_class(&ctx, m, bpe, photo, 1, tmpl, nt, sp + E, err, errlen) ||
        text_class(&ctx, m, bpe, sketch, 1, dl_tmpl, nd, sp + 2 * E, err, errlen) ||
        text_class(&ctx, m, bpe, photo, 1, dl_tmpl, nd, sp + 3 * E, err, errlen))
        goto done;
    if (da_clip_text_direction(m, bpe, "photo", "sketch", NULL, 0, dir, err, errlen)) goto done;
    embed_images(&ctx, m, test, test->images, n, orig);
    double sum_acc = 0;
    for (int s = 0; s < ns; s++) {
        const da_style *st = da_style_get(s);
        da_style_render_batch(st, test->images, n, (int)test->c, (int)test->h, (int)test->w, rendered,
                              da_rng_at(seed, (uint64_t)s));
        embed_images(&ctx, m, test, rendered, n, feat);
        double cos_sum = 0;
        for (int64_t i = 0; i < n; i++) {
            /* ΔI = norm(E_I(style(x))) - norm(E_I(x)); 0 when the style leaves the image alone */
            double dd = 0, dt = 0;
            for (int64_t e = 0; e < E; e++) {
                double d = (double)feat[i * E + e] - orig[i * E + e];
                dd += d * d;
                dt += d * dir[e];
            }
            if (dd > 1e-12) cos_sum += dt / sqrt(dd);
        }
        ev->dir_cos[s] = cos_sum / (double)n;
        int counts[DA_MINICLIP_MAX_STYLES] = {0};
        int own = -1, sketch_n = 0, sketch_dl = 0;
        for (int k = 0; k < ev->n_train; k++)
            if (ev->train_style[k] == s) own = k;
        for (int64_t i = 0; i < n; i++) {
            const float *fi = feat + i * E;
            int best = 0;
            float bv = dot(fi, cls, E);
            for (int k = 1; k < ev->n_train; k++) {
                float v = dot(fi, cls + k * E, E);
                if (v > bv) { bv = v; best = k; }
            }
            counts[best]++;
            sketch_n += dot(fi, sp, E) > dot(fi, sp + E, E);
            sketch_dl += dot(fi, sp + 2 * E, E) > dot(fi, sp + 3 * E, E);
        }
        int top = 0;
        for (int k = 1; k < ev->n_train; k++)
            if (counts[k] > counts[top]) top = k;
        ev->most_predicted[s] = ev->train_style[top];
        ev->most_predicted_pct[s] = 100.0 * counts[top] / (double)n;
        ev->style_acc[s] = own >= 0 ? 100.0 * counts[own] / (double)n : -1;
        if (own >= 0) sum_acc += ev->style_acc[s];
        ev->sketch_pct[s] = 100.0 * sketch_n / (double)n;
        if (!strcmp(st->name, "pencil")) {
            ev->pencil_as_sketch = ev->sketch_pct[s];
            ev->pencil_as_sketch_dl = 100.0 * sketch_dl / (double)n;
        }
        if (!strcmp(st->name, "photo")) {
            ev->photo_as_photo = 100.0 - ev->sketch_pct[s];
            ev->photo_as_photo_dl = 100.0 - 100.0 * sketch_dl / (double)n;
        }
    }
    ev->mean_style_acc = sum_acc / ev->n_train;
    ev->sketch_photo_acc = 0.5 * (ev->pencil_as_sketch + ev->photo_as_photo);
    ev->sketch_photo_acc_dl = 0.5 * (ev->pencil_as_sketch_dl + ev->photo_as_photo_dl);
    rc = 0;
done:
    free(cls);
    free(sp);
    free(rendered);
    free(feat);
    free(orig);
    free(dir);
    da_ctx_free(&ctx);
    return rc;
}

char *da_miniclip_eval_table(const da_miniclip_eval *ev) {
    size_t cap = 8192, k = 0;
    char *s = malloc(cap);
    da_check(s != NULL, "miniclip_eval", "out of memory");
    int nt;
    da_miniclip_eval_templates(&nt);
    k += (size_t)snprintf(s + k, cap - k,
                          "zero-shot on %d held-out images per style; candidates: the %d training styles "
                          "(prompts: %d evaluation templates x every word of the style)\n"
                          "%-18s %8s  %-24s %10s %9s\n", ev->n_images, ev->n_train, nt, "style", "acc %",
                          "most predicted", "\"sketch\" %", "cos dir");
    for (int i = 0; i < ev->n_styles && k < cap; i++) {
        const da_style *st = da_style_get(i);
        char acc[32], name[64], most[64];
        if (ev->style_acc[i] >= 0) snprintf(acc, sizeof acc, "%.1f", ev->style_acc[i]);
        else snprintf(acc, sizeof acc, "-");
        snprintf(name, sizeof name, "%s%s", st->name, st->held_out ? " (held out)" : "");
        snprintf(most, sizeof most, "%s %.1f%%", da_style_get(ev->most_predicted[i])->name, ev->most_predicted_pct[i]);
        k += (size_t)snprintf(s + k, cap - k, "%-18s %8s  %-24s %10.1f %9.3f\n", name, acc, most, ev->sketch_pct[i],
                              ev->dir_cos[i]);
    }
    if (k < cap)
        k += (size_t)snprintf(s + k, cap - k,
                              "mean style accuracy over the %d training styles: %.1f %%\n"
                              "held-out pencil renderer, \"sketch\" vs \"photo\": pencil images called sketch %.1f %%, "
                              "originals called photo %.1f %%, accuracy %.1f %%\n"
                              "  the same with the directional loss's templates: %.1f %%, %.1f %%, accuracy %.1f %%\n"
                              "cos dir: mean cos(image direction original -> style, text direction \"photo\" -> \"sketch\")\n",
                              ev->n_train, ev->mean_style_acc, ev->pencil_as_sketch, ev->photo_as_photo,
                              ev->sketch_photo_acc, ev->pencil_as_sketch_dl, ev->photo_as_photo_dl,
                              ev->sketch_photo_acc_dl);
    return s;
}

static double round1(double x) { return round(x * 10.0) / 10.0; }

char *da_miniclip_eval_json(const da_miniclip_eval *ev) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "images_per_style", ev->n_images);
    cJSON *styles = cJSON_AddArrayToObject(j, "styles");
    for (int i = 0; i < ev->n_styles; i++) {
        const da_style *st = da_style_get(i);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "style", st->name);
        cJSON_AddBoolToObject(o, "held_out", st->held_out);
        if (ev->style_acc[i] >= 0) cJSON_AddNumberToObject(o, "accuracy", round1(ev->style_acc[i]));
        else cJSON_AddNullToObject(o, "accuracy");
        cJSON_AddStringToObject(o, "most_predicted", da_style_get(ev->most_predicted[i])->name);
        cJSON_AddNumberToObject(o, "most_predicted_pct", round1(ev->most_predicted_pct[i]));
        cJSON_AddNumberToObject(o, "called_sketch_pct", round1(ev->sketch_pct[i]));
        cJSON_AddNumberToObject(o, "direction_cos_photo_to_sketch", round(ev->dir_cos[i] * 1000.0) / 1000.0);
        cJSON_AddItemToArray(styles, o);
    }
    cJSON_AddNumberToObject(j, "mean_style_accuracy", round1(ev->mean_style_acc));
    cJSON *sp = cJSON_AddObjectToObject(j, "sketch_vs_photo");
    cJSON_AddNumberToObject(sp, "pencil_called_sketch", round1(ev->pencil_as_sketch));
    cJSON_AddNumberToObject(sp, "photo_called_photo", round1(ev->photo_as_photo));
    cJSON_AddNumberToObject(sp, "accuracy", round1(ev->sketch_photo_acc));
    int pencil = -1;
    for (int i = 0; i < ev->n_styles; i++)
        if (!strcmp(da_style_get(i)->name, "pencil")) pencil = i;
    if (pencil >= 0) cJSON_AddNumberToObject(sp, "pencil_direction_cos", round(ev->dir_cos[pencil] * 1000.0) / 1000.0);
    cJSON *dl = cJSON_AddObjectToObject(j, "sketch_vs_photo_loss_templates");
    cJSON_AddNumberToObject(dl, "pencil_called_sketch", round1(ev->pencil_as_sketch_dl));
    cJSON_AddNumberToObject(dl, "photo_called_photo", round1(ev->photo_as_photo_dl));
    cJSON_AddNumberToObject(dl, "accuracy", round1(ev->sketch_photo_acc_dl));
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    return s;
}
