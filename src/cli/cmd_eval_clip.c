/* cmd_eval_clip.c — `diffadapt eval-clip`: zero-shot style accuracy of a CLIP model (the mini-CLIP
 * of train-clip, or any CLIP) on style renderings of held-out images, and sketch vs photo. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/option_fragments.h"
#include "cli/miniclip_cli.h"
#include "data/dataset.h"
#include "io/safetensors.h"
#include "tensor/tensor.h"
#include "train/miniclip_train.h"
#include "util/atomic.h"

int da_miniclip_run_eval(const da_clip *m, const char *vocab_path, const char *test_spec, int take, int pad,
                         uint64_t seed, const char *json_path, char **json_out) {
    char err[2048];
    da_data_opts dopt = {NULL, take, 0, 0, 0, pad, 0, NULL, NULL};
    da_dataset test = {0};
    if (da_dataset_load(test_spec, &dopt, &test, err, sizeof err)) {
        fprintf(stderr, "error: evaluation images: %s\n", err);
        return 1;
    }
    free(test.labels);   /* zero-shot: the class labels play no part */
    test.labels = NULL;
    da_bpe *bpe = da_clip_vocab(m, vocab_path, err, sizeof err);
    if (!bpe) {
        fprintf(stderr, "error: %s\n", err);
        da_dataset_free(&test);
        return 1;
    }
    da_miniclip_eval ev;
    int status = 1;
    char *table = NULL, *json = NULL;
    if (da_miniclip_evaluate(m, bpe, &test, take, seed, &ev, err, sizeof err)) {
        fprintf(stderr, "error: evaluation: %s\n", err);
        goto done;
    }
    table = da_miniclip_eval_table(&ev);
    json = da_miniclip_eval_json(&ev);
    printf("%s", table);
    fflush(stdout);
    if (json_path && da_atomic_write(json_path, json, strlen(json), err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }
    status = 0;
    if (json_out) {
        *json_out = json;
        json = NULL;
    }
done:
    free(table);
    free(json);
    da_bpe_free(bpe);
    da_dataset_free(&test);
    return status;
}

/* Rewrites the diffadapt model file at path with metadata key = value (everything else kept). */
static int store_meta(const char *path, const char *key, const char *value, char *err, size_t errlen) {
    st_file f;
    if (st_open(path, &f, err, errlen)) return -1;
    const char *fmt = st_meta_get(&f, "format");
    if (!fmt || strcmp(fmt, "diffadapt-clip")) {
        snprintf(err, errlen, "%s is not a diffadapt CLIP file (format '%s'); --store only updates files that "
                 "train-clip wrote", path, fmt ? fmt : "none");
        st_close(&f);
        return -1;
    }
    st_writer *w = st_writer_new();
    float **bufs = calloc((size_t)f.n_tensors + 1, sizeof *bufs);
    int64_t **ibufs = calloc((size_t)f.n_tensors + 1, sizeof *ibufs);
    int rc = bufs && ibufs ? 0 : -1;
    if (rc) snprintf(err, errlen, "out of memory");
    for (int i = 0; i < f.n_tensors && !rc; i++) {
        const st_tensor_info *t = &f.tensors[i];
        bool integer = t->dtype == ST_I64 || t->dtype == ST_I32 || t->dtype == ST_I16 || t->dtype == ST_I8 ||
                       t->dtype == ST_U8 || t->dtype == ST_BOOL;
        if (integer) {
            ibufs[i] = malloc(sizeof(int64_t) * (size_t)(t->numel ? t->numel : 1));
            rc = !ibufs[i] || st_read_i64(&f, t, ibufs[i], err, errlen) ? -1 : 0;
            if (!rc) st_writer_add_i64(w, t->name, t->ndim, t->shape, ibufs[i]);
        } else {
            bufs[i] = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
            rc = !bufs[i] || st_read_f32(&f, t, bufs[i], err, errlen) ? -1 : 0;
            if (!rc) st_writer_add_f32(w, t->name, t->ndim, t->shape, bufs[i]);
        }
    }
    for (int i = 0; i < f.n_meta && !rc; i++)
        if (strcmp(f.meta[i].key, key)) st_writer_set_meta(w, f.meta[i].key, f.meta[i].value);
    if (!rc) {
        st_writer_set_meta(w, key, value);
        rc = st_writer_save(w, path, err, errlen);
    }
    for (int i = 0; bufs && ibufs && i < f.n_tensors; i++) { free(bufs[i]); free(ibufs[i]); }
    free(bufs);
    free(ibufs);
    st_writer_free(w);
    st_close(&f);
    return rc;
}

int cmd_eval_clip(int argc, char **argv) {
    const char *data = "fashion-mnist:test", *json = NULL;
    int take = 1000, pad = 2;
    bool store = false;
    da_common co = {.seed = 0};
    da_option opts[16] = {
        {"--data", DA_OPT_STRING, &data, "DATA", "held-out source images", false},
        {"--take", DA_OPT_INT, &take, "N", "images per style, drawn at random with seed 0", false},
        {"--pad", DA_OPT_INT, &pad, "N", "pad every side with N black pixels", false},
        {"--json", DA_OPT_STRING, &json, "FILE", "write the figures as JSON here", false},
        {"--store", DA_OPT_FLAG, &store, NULL, "also store the figures in the model file (metadata miniclip_eval)", false},
    };
    static const da_common_words words = {.seed = "seed of the noise of the noisy style"};
    const da_fragments shared = {
        .common = &co, .words = &words,
        .common_parts = DA_COPT_CLIP | DA_COPT_SEED | DA_COPT_THREADS};
    da_fragments_add(&shared, opts);
    static const da_cmd_info info = {
        "eval-clip", "--clip M [options]",
        "Zero-shot evaluation on held-out images rendered in every style of the style bank:\n"
        "style accuracy among the training (not held-out) styles, each style's text embedding being the\n"
        "mean over evaluation templates (never used in training) and the style's words; and, for every\n"
        "style, the share of images closer to \"sketch\" than to \"photo\" -- on the held-out pencil\n"
        "renderer they should be called sketch, the originals photo.",
        NULL};
    int rc;
    if (!da_fragments_parse(&info, opts, &shared, argc, argv, &rc)) return rc;
    if (take < 1 || pad < 0) {
        fprintf(stderr, "diffadapt eval-clip: --take must be at least 1 and --pad not negative\n");
        return 2;
    }
    const char *clip = co.clip;
    da_set_threads(co.threads);
    char err[2048];
    da_clip m;
    if (da_clip_load(&m, clip, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    da_clip_requires_grad(&m, false);
    char *figures = NULL;
    int status = da_miniclip_run_eval(&m, co.vocab, data, take, pad, (uint64_t)co.seed, json, &figures);
    if (!status && json) printf("wrote %s\n", json);
    da_clip_free(&m);
    if (!status && store) {
        if (store_meta(clip, "miniclip_eval", figures, err, sizeof err)) {
            fprintf(stderr, "error: --store: %s\n", err);
            status = 1;
        } else {
            printf("stored the figures in %s\n", clip);
        }
    }
    free(figures);
    return status;
}
