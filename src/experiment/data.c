/* data.c — the experiment's images: the labelled training and test draws of the task and the
 * unlabelled pool the diffusion model and the mini-CLIP may be trained on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/styles.h"
#include "experiment/experiment.h"

/* "2,4" -> {2,4}: non-negative integers, no repeats. Returns the count, or -1. */
static int parse_task(const char *spec, int64_t *out, int max) {
    int n = 0;
    const char *p = spec;
    while (*p) {
        char *end;
        if (*p < '0' || *p > '9') return -1;
        long long v = strtoll(p, &end, 10);
        if (end == p || v > 1000000 || n >= max) return -1;
        for (int i = 0; i < n; i++)
            if (out[i] == v) return -1;
        out[n++] = v;
        p = end;
        if (*p == ',') p++;
        else if (*p) return -1;
    }
    return n;
}

static const char *const FASHION_CLASSES[10] = {"t-shirt", "trouser", "pullover", "dress", "coat",
                                                "sandal", "shirt", "sneaker", "bag", "ankle boot"};

const char *da_exp_fashion_class(int label) {
    return label >= 0 && label < 10 ? FASHION_CLASSES[label] : NULL;
}

/* The draws of the experiment. Training-split draws share one seeded order, so skipping the
 * images an earlier draw took keeps them disjoint: the validation images follow the labelled
 * training images, the target images (--tgt-images N) follow the validation images. */
enum { DRAW_TRAIN, DRAW_TEST, DRAW_POOL, DRAW_VALIDATION, DRAW_TARGET };

/* The spec and options of one draw. */
static void draw_opts(const da_experiment *e, int part, const char **spec, da_data_opts *o) {
    const da_exp_config *c = &e->cfg;
    memset(o, 0, sizeof *o);
    *spec = c->data;
    o->seed = (uint64_t)c->data_seed;
    o->size = c->size;
    o->channels = c->channels;
    o->pad = c->pad > 0 ? c->pad : (e->kind == DA_EXP_FASHION && c->size == 0 ? 2 : 0);
    if (e->kind == DA_EXP_FASHION && o->channels == 0) o->channels = 1;
    bool all = !c->task || strcmp(c->task, "all") == 0;
    /* one data source for everything (DA_EXP_OTHER): the test draw comes after the training one */
    int64_t test_skip = e->kind == DA_EXP_OTHER ? c->test_n : 0;
    switch (part) {
    case DRAW_TRAIN: o->take = c->train_n; break;
    case DRAW_TEST: o->take = c->test_n; o->skip = e->kind == DA_EXP_OTHER ? c->train_n : 0; break;
    case DRAW_POOL: o->take = c->pool_n; break;
    case DRAW_VALIDATION: o->take = c->val_n; o->skip = c->train_n + test_skip; break;
    case DRAW_TARGET: o->skip = c->train_n + test_skip + c->val_n; break;   /* take: set by the caller */
    }
    switch (e->kind) {
    case DA_EXP_FASHION:
        *spec = part == DRAW_TEST ? "fashion-mnist:test" : "fashion-mnist:train";
        o->classes = part == DRAW_POOL || all ? NULL : c->task;
        break;
    case DA_EXP_CELEBA:
        *spec = c->data;
        o->attr = part == DRAW_POOL ? NULL : c->attr;
        o->split = part == DRAW_TEST ? "test" : "train";
        break;
    case DA_EXP_OTHER:
        *spec = c->data;
        o->classes = part == DRAW_POOL || all ? NULL : c->task;
        break;
    }
}

/* Number of images per class index (labels 0..k-1) into counts; returns k. */
static int class_counts(const da_dataset *d, int64_t *counts, int max) {
    int k = 0;
    memset(counts, 0, sizeof(int64_t) * (size_t)max);
    for (int64_t i = 0; i < d->n; i++)
        if (d->labels[i] >= 0 && d->labels[i] < max) {
            counts[d->labels[i]]++;
            if (d->labels[i] + 1 > k) k = (int)d->labels[i] + 1;
        }
    return k;
}

int da_exp_load_data(da_experiment *e, char *err, size_t errlen) {
    const da_exp_config *c = &e->cfg;
    if (c->train_n < 2 || c->test_n < 2) {
        snprintf(err, errlen, "--train-n and --test-n must be at least 2 (got %d and %d)", c->train_n, c->test_n);
        return -1;
    }
    if (e->kind == DA_EXP_CELEBA && !c->attr) {
        snprintf(err, errlen, "--data %s needs --attr NAME, the CelebA attribute to classify (e.g. --attr Male)", c->data);
        return -1;
    }
    if (e->kind != DA_EXP_CELEBA && c->attr) {
        snprintf(err, errlen, "--attr applies to CelebA data only (--data celeba:DIR)");
        return -1;
    }
    bool all = !c->task || strcmp(c->task, "all") == 0;
    int64_t cls[256];
    int n_cls = 0;
    if (!all) {
        if (e->kind == DA_EXP_CELEBA) {
            snprintf(err, errlen, "--task does not apply to CelebA: the label is the --attr attribute");
            return -1;
        }
        n_cls = parse_task(c->task, cls, 256);
        bool bad = n_cls < 2;
        for (int i = 0; i < n_cls; i++) bad |= e->kind == DA_EXP_FASHION && cls[i] > 9;
        if (bad) {
            snprintf(err, errlen, "--task %s: give two or more class labels%s, e.g. --task 2,4, or --task all",
                     c->task, e->kind == DA_EXP_FASHION ? " between 0 and 9" : "");
            return -1;
        }
    }
    /* names for the report */
    size_t o = 0;
    e->task_desc[0] = e->class_names[0] = 0;
    if (e->kind == DA_EXP_CELEBA) {
        snprintf(e->task_desc, sizeof e->task_desc, "CelebA attribute %s (0 = not %s, 1 = %s)", c->attr, c->attr, c->attr);
        snprintf(e->class_names, sizeof e->class_names, "not %s,%s", c->attr, c->attr);
    } else if (all) {
        snprintf(e->task_desc, sizeof e->task_desc, "all classes");
        if (e->kind == DA_EXP_FASHION)
            for (int i = 0; i < 10; i++)
                o += (size_t)snprintf(e->class_names + o, sizeof e->class_names - o, "%s%s", i ? "," : "",
                                      FASHION_CLASSES[i]);
    } else {
        size_t od = 0;
        for (int i = 0; i < n_cls && od < sizeof e->task_desc && o < sizeof e->class_names; i++) {
            const char *nm = e->kind == DA_EXP_FASHION ? FASHION_CLASSES[cls[i]] : NULL;
            char num[32];
            snprintf(num, sizeof num, "%lld", (long long)cls[i]);
            od += (size_t)snprintf(e->task_desc + od, sizeof e->task_desc - od, "%s%s%s%s", i ? " vs " : "", num,
                                   nm ? " " : "", nm ? nm : "");
            o += (size_t)snprintf(e->class_names + o, sizeof e->class_names - o, "%s%s", i ? "," : "", nm ? nm : num);
        }
    }
    const char *names[3] = {"training", "test", "validation"};
    /* (the pool is loaded by da_exp_load_pool only when a model must be trained) */
    da_dataset *sets[3] = {&e->train, &e->test, &e->validation};
    int parts[3] = {DRAW_TRAIN, DRAW_TEST, DRAW_VALIDATION};
    for (int k = 0; k < 3; k++) {
        int part = parts[k];
        const char *spec = NULL;
        da_data_opts opt;
        draw_opts(e, part, &spec, &opt);
        char sub[2048];
        if (da_dataset_load(spec, &opt, sets[k], sub, sizeof sub) != 0) {
            snprintf(err, errlen, "loading the %s images (%s): %s%s", names[k], spec, sub,
                     part == DRAW_VALIDATION ? " (the validation images are drawn after the training images: lower "
                                               "--val-n or --train-n)" : "");
            return -1;
        }
        if (!sets[k]->labels) {
            snprintf(err, errlen, "the %s images (%s) have no labels; the experiment needs labelled images "
                     "(a labels.csv next to PNG files, IDX labels, or CelebA with --attr)", names[k], spec);
            return -1;
        }
    }
    if (e->test.c != e->train.c || e->test.h != e->train.h || e->test.w != e->train.w) {
        snprintf(err, errlen, "the training images are %lldx%lldx%lld (CxHxW) but the test images %lldx%lldx%lld; "
                 "give --size N so that both are resized alike", (long long)e->train.c, (long long)e->train.h,
                 (long long)e->train.w, (long long)e->test.c, (long long)e->test.h, (long long)e->test.w);
        return -1;
    }
    int64_t counts[256];
    int k = class_counts(&e->train, counts, 256);
    int present = 0;
    for (int i = 0; i < k; i++) present += counts[i] > 0;
    if (present < 2) {
        snprintf(err, errlen, "the %d training images hold only one class; draw more (--train-n) or check the labels",
                 c->train_n);
        return -1;
    }
    return 0;
}

int da_exp_load_target_images(const da_experiment *e, da_dataset *out, char *err, size_t errlen) {
    const char *spec = e->cfg.tgt_images, *colon = strrchr(spec, ':');
    memset(out, 0, sizeof *out);
    da_data_opts opt;
    const char *draw_spec = NULL;
    char sub[2048], name[128];
    /* STYLE:N */
    if (colon && colon > spec && (size_t)(colon - spec) < sizeof name && colon[1] >= '0' && colon[1] <= '9') {
        snprintf(name, sizeof name, "%.*s", (int)(colon - spec), spec);
        char *end;
        long n = strtol(colon + 1, &end, 10);
        const da_style *st = da_style_find(name);
        if (st && *end == 0) {
            if (n < 1 || n > 4096) {
                snprintf(err, errlen, "--tgt-images %s: take between 1 and 4096 images (16 to 64 is the intended use)", spec);
                return -1;
            }
            draw_opts(e, DRAW_TARGET, &draw_spec, &opt);
            opt.take = n;
            if (da_dataset_load(draw_spec, &opt, out, sub, sizeof sub) != 0) {
                snprintf(err, errlen, "--tgt-images %s: drawing %ld training images after the labelled and validation "
                         "draws: %s", spec, n, sub);
                return -1;
            }
            da_style_render_batch(st, out->images, out->n, (int)out->c, (int)out->h, (int)out->w, out->images,
                                  (uint64_t)e->cfg.data_seed ^ 0x7467ULL);
            free(out->labels);
            out->labels = NULL;
            return 0;
        }
    }
    /* any data spec, shaped like the experiment's images */
    draw_opts(e, DRAW_POOL, &draw_spec, &opt);
    opt.classes = NULL;
    opt.attr = NULL;
    opt.split = NULL;
    opt.take = 0;
    if (da_dataset_load(spec, &opt, out, sub, sizeof sub) != 0) {
        snprintf(err, errlen, "--tgt-images %s (neither STYLE:N with a style of the bank nor readable data): %s", spec,
                 sub);
        return -1;
    }
    free(out->labels);
    out->labels = NULL;
    if (out->c != e->train.c || out->h != e->train.h || out->w != e->train.w) {
        snprintf(err, errlen, "--tgt-images %s: images of %lldx%lldx%lld, the experiment's are %lldx%lldx%lld (CxHxW)",
                 spec, (long long)out->c, (long long)out->h, (long long)out->w, (long long)e->train.c,
                 (long long)e->train.h, (long long)e->train.w);
        da_dataset_free(out);
        return -1;
    }
    return 0;
}

int da_exp_load_pool(const da_experiment *e, da_dataset *pool, char *err, size_t errlen) {
    const char *spec = NULL;
    da_data_opts opt;
    draw_opts(e, DRAW_POOL, &spec, &opt);
    char sub[2048];
    if (da_dataset_load(spec, &opt, pool, sub, sizeof sub) != 0) {
        snprintf(err, errlen, "loading the unlabelled images (%s): %s", spec, sub);
        return -1;
    }
    /* unlabelled: the models trained on the pool never see a label */
    free(pool->labels);
    pool->labels = NULL;
    return 0;
}
