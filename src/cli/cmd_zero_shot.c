/* cmd_zero_shot.c — `diffadapt zero-shot`: CLIP zero-shot classification of a data set among
 * text labels (prompt-template ensemble per label); accuracy when the data carry labels. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/option_fragments.h"
#include "data/dataset.h"
#include "nn/clip.h"
#include "nn/clip_loss.h"
#include "util/progress.h"

#define MAX_LABELS 256

/* Splits "a,b,c" (spaces around names trimmed) into labels; returns the count or -1. */
static int split_labels(char *s, char **out) {
    int n = 0;
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
        while (*tok == ' ') tok++;
        char *end = tok + strlen(tok);
        while (end > tok && end[-1] == ' ') *--end = 0;
        if (!*tok) continue;
        if (n == MAX_LABELS) return -1;
        out[n++] = tok;
    }
    return n;
}

/* (n_labels,E) L2-normalised class embeddings: per label the normalised mean of the normalised
 * embeddings of its prompts (one template, or the built-in ensemble). */
static float *label_embeddings(const da_clip *m, da_bpe *bpe, char **labels, int n_labels, const char *tmpl,
                               bool truncate, char *err, size_t errlen) {
    int n_t;
    const char *const *tmpls = da_clip_templates(&n_t);
    const char *one[1] = {tmpl};
    if (tmpl) { tmpls = one; n_t = 1; }
    int64_t E = m->cfg.embed_dim;
    float *out = calloc((size_t)(n_labels * E), sizeof(float));
    char **texts = calloc((size_t)n_t, sizeof(char *));
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_set_grad(&ctx, false);
    for (int l = 0; l < n_labels && out; l++) {
        for (int t = 0; t < n_t; t++) {
            const char *hole = strstr(tmpls[t], "{}");
            size_t len = strlen(tmpls[t]) + strlen(labels[l]) + 1;
            texts[t] = malloc(len);
            if (hole) snprintf(texts[t], len, "%.*s%s%s", (int)(hole - tmpls[t]), tmpls[t], labels[l], hole + 2);
            else snprintf(texts[t], len, "%s", tmpls[t]);
        }
        da_ctx_reset(&ctx);
        da_tensor *e = da_clip_encode_texts(&ctx, m, bpe, (const char *const *)texts, n_t, truncate, err, errlen);
        for (int t = 0; t < n_t; t++) free(texts[t]);
        if (!e) { free(out); out = NULL; break; }
        e = da_l2_normalize(&ctx, e, 1e-12f);
        double norm = 0;
        for (int64_t j = 0; j < E; j++) {
            double s = 0;
            for (int t = 0; t < n_t; t++) s += e->data[t * E + j];
            out[l * E + j] = (float)(s / n_t);
            norm += (double)out[l * E + j] * out[l * E + j];
        }
        for (int64_t j = 0; j < E; j++) out[l * E + j] /= (float)fmax(sqrt(norm), 1e-12);
    }
    da_ctx_free(&ctx);
    free(texts);
    return out;
}

int cmd_zero_shot(int argc, char **argv) {
    const char *input = NULL, *labels_arg = NULL, *tmpl = NULL, *classes = NULL;
    int take = 0, seed = 0;
    bool truncate = false, quiet = false;
    da_common co = {.batch = 16};
    da_option opts[16] = {
        {"--input", DA_OPT_STRING, &input, "D", "the images " DA_DATA_SOURCES, true},
        {"--labels", DA_OPT_STRING, &labels_arg, "L1,L2,...",
         "the label texts; data label k is the k-th of them when the data carry labels", true},
        {"--template", DA_OPT_STRING, &tmpl, "T",
         "one prompt with {} for the label (default: the built-in template ensemble)", false},
        {"--classes", DA_OPT_STRING, &classes, "K1,K2", "keep these data labels, renumbered 0.. in this order", false},
        {"--take", DA_OPT_INT, &take, "N", "use N images drawn at random (0 = all)", false},
        {"--seed", DA_OPT_INT, &seed, "S", "seed of the --take draw", false},
        {"--truncate", DA_OPT_FLAG, &truncate, NULL, "cut over-long prompts instead of failing", false},
        {"--quiet", DA_OPT_FLAG, &quiet, NULL, "print only the accuracy line, not one line per image", false},
    };
    static const da_common_words words = {.batch = "images per forward pass"};
    const da_fragments shared = {
        .common = &co, .words = &words,
        .common_parts = DA_COPT_CLIP | DA_COPT_BATCH};
    da_fragments_add(&shared, opts);
    const da_cmd_info info = {"zero-shot", "--clip C --input D --labels \"photo,sketch\" [options]",
                              "Classifies every image of D as the label whose prompts CLIP finds closest. Prints "
                              "\"name<TAB>predicted[<TAB>true]\" per image,\nthen the accuracy when D carries labels.",
                              NULL};
    int rc;
    if (!da_fragments_parse(&info, opts, &shared, argc, argv, &rc)) return rc;
    if (take < 0) {
        fprintf(stderr, "diffadapt zero-shot: --take must not be negative\n");
        return 2;
    }
    const char *clip = co.clip, *vocab = co.vocab;
    const int batch = co.batch;
    if (tmpl && !strstr(tmpl, "{}")) {
        /* without the hole every label would get the same prompt, and every image the first label */
        fprintf(stderr, "diffadapt zero-shot: --template needs {} where the label goes (e.g. \"a photo of a {}.\"), "
                        "got \"%s\"\n", tmpl);
        return 2;
    }
    char *labels_buf = strdup(labels_arg);
    char *labels[MAX_LABELS];
    int n_labels = split_labels(labels_buf, labels);
    if (n_labels < 2) {
        fprintf(stderr, "diffadapt zero-shot: --labels needs at least two comma-separated labels%s, got \"%s\"\n",
                n_labels < 0 ? " (and at most 256)" : "", labels_arg);
        free(labels_buf);
        return 2;
    }
    char err[1024];
    da_clip m;
    if (da_clip_load(&m, clip, err, sizeof err)) {
        fprintf(stderr, "diffadapt zero-shot: %s\n", err);
        free(labels_buf);
        return 1;
    }
    da_clip_requires_grad(&m, false);
    da_bpe *bpe = da_clip_vocab(&m, vocab, err, sizeof err);
    float *lab = bpe ? label_embeddings(&m, bpe, labels, n_labels, tmpl, truncate, err, sizeof err) : NULL;
    da_dataset d = {0};
    da_data_opts o = {0};
    o.classes = classes;
    o.take = take;
    o.seed = (uint64_t)seed;
    if (!lab || da_dataset_load(input, &o, &d, err, sizeof err)) {
        fprintf(stderr, "diffadapt zero-shot: %s\n", err);
        free(lab);
        da_bpe_free(bpe);
        da_clip_free(&m);
        free(labels_buf);
        return 1;
    }
    if (d.c != 1 && d.c != 3) {
        fprintf(stderr, "diffadapt zero-shot: %s: images have %lld channels; CLIP takes 1 or 3\n", input, (long long)d.c);
        rc = 1;
    }
    int64_t E = m.cfg.embed_dim, per = d.c * d.h * d.w, correct = 0, counted = 0, out_of_range = 0;
    int64_t *per_label = calloc((size_t)n_labels, sizeof(int64_t));
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_set_grad(&ctx, false);
    da_progress p;
    if (!rc) da_progress_begin(&p, "zero-shot", d.n, "img");
    for (int64_t s = 0; s < d.n && !rc; s += batch) {
        da_ctx_reset(&ctx);
        int64_t b = d.n - s < batch ? d.n - s : batch;
        da_tensor *x = da_from_data(&ctx, DA_SHAPE(b, d.c, d.h, d.w), d.images + s * per);
        da_tensor *e = da_l2_normalize(&ctx, da_clip_image_features(&ctx, &m, x), 1e-12f);
        for (int64_t k = 0; k < b; k++) {
            int best = 0;
            double best_s = -INFINITY;
            for (int l = 0; l < n_labels; l++) {
                double sim = 0;
                for (int64_t j = 0; j < E; j++) sim += (double)e->data[k * E + j] * lab[l * E + j];
                if (sim > best_s) { best_s = sim; best = l; }
            }
            per_label[best]++;
            if (d.labels) {
                int64_t t = d.labels[s + k];
                if (t >= 0 && t < n_labels) {
                    counted++;
                    correct += t == best;
                } else {
                    out_of_range++;
                }
                if (!quiet) printf("%s\t%s\t%s\n", d.names[s + k], labels[best], t >= 0 && t < n_labels ? labels[t] : "?");
            } else if (!quiet) {
                printf("%s\t%s\n", d.names[s + k], labels[best]);
            }
        }
        da_progress_update(&p, s + b, NULL);
    }
    if (!rc) {
        da_progress_end(&p, d.n, NULL);
        for (int l = 0; l < n_labels; l++)
            fprintf(stderr, "predicted %s: %lld\n", labels[l], (long long)per_label[l]);
        if (d.labels && counted)
            printf("accuracy %.4f (%lld/%lld)\n", (double)correct / (double)counted, (long long)correct, (long long)counted);
        if (out_of_range)
            fprintf(stderr, "warning: %lld images carry labels beyond the %d given; they were not counted "
                    "(use --classes to choose and renumber data labels)\n", (long long)out_of_range, n_labels);
        if (!d.labels) fprintf(stderr, "the data carry no labels: no accuracy\n");
    }
    da_ctx_free(&ctx);
    free(per_label);
    da_dataset_free(&d);
    free(lab);
    da_bpe_free(bpe);
    da_clip_free(&m);
    free(labels_buf);
    return rc;
}
