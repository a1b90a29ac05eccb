/* cmd_embed.c — `diffadapt embed`: CLIP embeddings of texts, image files and data sets, one JSON
 * object per input and line, in command-line order (projected, before L2 normalisation). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/option_fragments.h"
#include "data/dataset.h"
#include "data/image.h"
#include "nn/clip.h"
#include "util/progress.h"

/* {"<key>": <value as JSON string>, "embedding": [...]} */
static void print_row(const char *key, const char *value, const float *e, int64_t n) {
    cJSON *s = cJSON_CreateString(value);
    char *js = cJSON_PrintUnformatted(s);
    printf("{\"%s\": %s, \"embedding\": [", key, js);
    for (int64_t i = 0; i < n; i++) printf(i ? ", %.8g" : "%.8g", (double)e[i]);
    printf("]}\n");
    free(js);
    cJSON_Delete(s);
}

typedef enum { IN_TEXT, IN_IMAGE, IN_IMAGES } input_kind;

int cmd_embed(int argc, char **argv) {
    bool truncate = false;
    da_strlist texts = {0}, images = {0}, sets = {0};
    da_common co = {.batch = 16};
    da_option opts[16] = {
        {"--text", DA_OPT_LIST, &texts, "T", "a text to embed", false},
        {"--image", DA_OPT_LIST, &images, "F", "an image file (PNG, JPEG, ...) to embed", false},
        {"--images", DA_OPT_LIST, &sets, "D", "every image of a data set (X.safetensors with `images`, a folder, ...)", false},
        {"--truncate", DA_OPT_FLAG, &truncate, NULL, "cut over-long texts to the context instead of failing", false},
    };
    static const da_common_words words = {.batch = "images per forward pass"};
    const da_fragments shared = {
        .common = &co, .words = &words,
        .common_parts = DA_COPT_CLIP | DA_COPT_BATCH};
    da_fragments_add(&shared, opts);
    const da_cmd_info info = {"embed", "--clip C [--vocab V] (--text T | --image F | --images D)...",
                              "Prints the CLIP embedding of each input as one JSON object per line, in the order "
                              "given:\n{\"text\": T, \"embedding\": [...]} or {\"image\": F, \"embedding\": [...]} "
                              "(projected, not L2-normalised).",
                              NULL};
    int rc;
    if (!da_fragments_parse(&info, opts, &shared, argc, argv, &rc)) return rc;
    if (texts.n + images.n + sets.n == 0) {
        fprintf(stderr, "diffadapt embed: nothing to embed; give --text, --image or --images (see --help)\n");
        return 2;
    }
    const char *clip = co.clip, *vocab = co.vocab;
    const int batch = co.batch;
    /* the inputs in command-line order */
    int n_in = 0;
    input_kind *kind = malloc(sizeof *kind * (size_t)argc);
    const char **value = malloc(sizeof *value * (size_t)argc);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) break;
        static const struct { const char *name; input_kind k; } in_opts[] = {
            {"--text", IN_TEXT}, {"--image", IN_IMAGE}, {"--images", IN_IMAGES}};
        bool matched = false;
        for (int k = 0; k < 3 && !matched; k++) {
            size_t n = strlen(in_opts[k].name);
            if (!strncmp(a, in_opts[k].name, n) && (a[n] == 0 || a[n] == '=')) {
                kind[n_in] = in_opts[k].k;
                value[n_in++] = a[n] == '=' ? a + n + 1 : argv[++i];
                matched = true;
            }
        }
        if (!matched && (!strcmp(a, "--clip") || !strcmp(a, "--vocab") || !strcmp(a, "--batch"))) i++;
    }

    char err[1024];
    da_clip m;
    if (da_clip_load(&m, clip, err, sizeof err)) {
        fprintf(stderr, "diffadapt embed: %s\n", err);
        free(kind); free(value);
        return 1;
    }
    da_clip_requires_grad(&m, false);
    da_bpe *bpe = NULL;
    if (texts.n) {
        bpe = da_clip_vocab(&m, vocab, err, sizeof err);
        if (!bpe) {
            fprintf(stderr, "diffadapt embed: %s\n", err);
            da_clip_free(&m);
            free(kind); free(value);
            return 1;
        }
    }
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_set_grad(&ctx, false);
    int64_t E = m.cfg.embed_dim;
    rc = 0;
    for (int i = 0; i < n_in && rc == 0; i++) {
        da_ctx_reset(&ctx);
        if (kind[i] == IN_TEXT) {
            const char *t[1] = {value[i]};
            da_tensor *e = da_clip_encode_texts(&ctx, &m, bpe, t, 1, truncate, err, sizeof err);
            if (!e) { fprintf(stderr, "diffadapt embed: %s\n", err); rc = 1; break; }
            print_row("text", value[i], e->data, E);
        } else if (kind[i] == IN_IMAGE) {
            float *px;
            int c, h, w;
            if (da_image_read(value[i], 0, &px, &c, &h, &w, err, sizeof err)) {
                fprintf(stderr, "diffadapt embed: %s\n", err);
                rc = 1;
                break;
            }
            da_tensor *x = da_from_data(&ctx, DA_SHAPE(1, c, h, w), px);
            free(px);
            da_tensor *e = da_clip_image_features(&ctx, &m, x);
            print_row("image", value[i], e->data, E);
        } else {
            da_dataset d;
            da_data_opts o = {0};
            if (da_dataset_load(value[i], &o, &d, err, sizeof err)) {
                fprintf(stderr, "diffadapt embed: %s\n", err);
                rc = 1;
                break;
            }
            if (d.c != 1 && d.c != 3) {
                fprintf(stderr, "diffadapt embed: %s: images have %lld channels; CLIP takes 1 or 3\n", value[i], (long long)d.c);
                da_dataset_free(&d);
                rc = 1;
                break;
            }
            da_progress p;
            da_progress_begin(&p, "embed", d.n, "img");
            int64_t per = d.c * d.h * d.w;
            for (int64_t s = 0; s < d.n; s += batch) {
                da_ctx_reset(&ctx);
                int64_t b = d.n - s < batch ? d.n - s : batch;
                da_tensor *x = da_from_data(&ctx, DA_SHAPE(b, d.c, d.h, d.w), d.images + s * per);
                da_tensor *e = da_clip_image_features(&ctx, &m, x);
                for (int64_t k = 0; k < b; k++) {
                    char name[4200];
                    snprintf(name, sizeof name, "%s:%s", value[i], d.names[s + k]);
                    print_row("image", name, e->data + k * E, E);
                }
                da_progress_update(&p, s + b, NULL);
            }
            da_progress_end(&p, d.n, NULL);
            da_dataset_free(&d);
        }
        fflush(stdout);
    }
    da_ctx_free(&ctx);
    da_bpe_free(bpe);
    da_clip_free(&m);
    free(kind);
    free(value);
    return rc;
}
