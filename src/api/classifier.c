/* classifier.c — the classifier handle: trains the reference CNN (train/classifier_train.h) on
 * images in memory or a data set on disk, with eval sets, metrics and a report per epoch;
 * measures its accuracy; saves and loads it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "data/dataset.h"
#include "io/safetensors.h"
#include "train/classifier_train.h"

void da_classifier_defaults(da_classifier_settings *s) {
    da_clf_opts o = da_clf_defaults();
    *s = (da_classifier_settings){.epochs = o.epochs, .batch = o.batch, .lr = o.lr, .seed = o.seed};
}

/* A data set over the caller's images (only read: the training never writes its inputs). */
static int set_view(const da_image_set *s, const char *what, da_dataset *d, char *err, size_t errlen) {
    if (!s->images || s->n < 1 || s->c < 1 || s->h < 1 || s->w < 1)
        return da_api_fail(err, errlen, "%s: no images, or a shape with a zero side (n %lld, %dx%dx%d CxHxW)", what,
                           (long long)s->n, s->c, s->h, s->w);
    *d = (da_dataset){.n = s->n, .c = s->c, .h = s->h, .w = s->w, .images = (float *)s->images,
                      .labels = (int64_t *)s->labels};
    return 0;
}

static void on_epoch(void *user, const da_clf_result *res, int epoch, double seconds, double elapsed) {
    const da_classifier_train_options *o = user;
    const da_classifier_epoch_report r = {epoch + 1, res->epochs, res->train_loss[epoch], res->train_acc[epoch],
                                          res->n_eval, res->eval_acc + (size_t)epoch * (size_t)res->n_eval, seconds,
                                          elapsed};
    o->on_epoch(o->user, &r);
}

int da_classifier_model_train_set(const da_image_set *train, const da_classifier_settings *s,
                                  const da_classifier_train_options *o, da_classifier_model **out, char *err,
                                  size_t errlen) {
    if (!out) return da_api_fail(err, errlen, "da_classifier_model_train_set: no place for the model (out is NULL)");
    *out = NULL;
    if (!train || !s) return da_api_fail(err, errlen, "da_classifier_model_train_set: an argument is missing");
    static const da_classifier_train_options none = {0};
    if (!o) o = &none;
    if (o->n_eval < 0 || o->n_eval > DA_CLASSIFIER_MAX_EVAL || (o->n_eval > 0 && !o->evals))
        return da_api_fail(err, errlen, "between 0 and %d eval sets, got %d%s", DA_CLASSIFIER_MAX_EVAL, o->n_eval,
                           o->n_eval > 0 && !o->evals ? " and no array" : "");
    da_dataset d, sets[DA_CLASSIFIER_MAX_EVAL];
    da_eval_set ev[DA_CLASSIFIER_MAX_EVAL];
    if (set_view(train, "the training set", &d, err, errlen)) return -1;
    for (int k = 0; k < o->n_eval; k++) {
        if (set_view(&o->evals[k].set, o->evals[k].name ? o->evals[k].name : "an eval set", &sets[k], err, errlen))
            return -1;
        ev[k] = (da_eval_set){o->evals[k].name, &sets[k]};
    }
    da_classifier_model *c = calloc(1, sizeof *c);
    if (!c) return da_api_fail(err, errlen, "out of memory");
    da_clf_opts co = da_clf_defaults();
    co.epochs = s->epochs;
    co.batch = s->batch;
    co.lr = s->lr;
    co.seed = s->seed;
    if (o->train_name) co.train_name = o->train_name;
    co.metrics_path = o->metrics_path;
    co.verbose = false;   /* the library prints nothing */
    co.on_epoch = o->on_epoch ? on_epoch : NULL;
    co.user = (void *)o;
    da_clf_result res = {0};
    if (da_classifier_train(&d, o->n_eval, ev, &co, &c->cnn, &res, err, errlen)) {
        free(c);
        return -1;
    }
    c->n_classes = res.n_classes;
    memcpy(c->class_values, res.class_values, sizeof c->class_values);
    da_clf_result_free(&res);
    *out = c;
    return 0;
}

typedef struct {
    da_progress_fn fn;
    void *user;
} train_progress;

static void progress_per_epoch(void *user, const da_classifier_epoch_report *r) {
    const train_progress *p = user;
    p->fn(p->user, "train", r->epoch, r->epochs);
}

int da_classifier_model_train(const char *train_spec, const da_classifier_settings *s, da_progress_fn progress,
                              void *user, da_classifier_model **out, char *err, size_t errlen) {
    if (!out) return da_api_fail(err, errlen, "da_classifier_model_train: no place for the model (out is NULL)");
    *out = NULL;
    if (!train_spec || !s) return da_api_fail(err, errlen, "da_classifier_model_train: an argument is missing");
    da_dataset d = {0};
    if (da_dataset_load(train_spec, NULL, &d, err, errlen)) return -1;
    const da_image_set set = {d.images, d.labels, d.n, (int)d.c, (int)d.h, (int)d.w};
    train_progress tp = {progress, user};
    const da_classifier_train_options o = {.on_epoch = progress ? progress_per_epoch : NULL, .user = &tp};
    if (progress) progress(user, "train", 0, s->epochs);
    int rc = da_classifier_model_train_set(&set, s, &o, out, err, errlen);
    da_dataset_free(&d);
    return rc;
}

int da_classifier_model_evaluate(const da_classifier_model *c, const char *data_spec, double *accuracy, char *err,
                                 size_t errlen) {
    if (!c || !data_spec || !accuracy) return da_api_fail(err, errlen, "da_classifier_model_evaluate: an argument is missing");
    da_dataset d = {0};
    if (da_dataset_load(data_spec, NULL, &d, err, errlen)) return -1;
    int rc = -1;
    if (!d.labels) {
        da_api_fail(err, errlen, "%s has no labels to evaluate against", data_spec);
    } else if (d.c != c->cnn.cfg.in_c || d.h != c->cnn.cfg.in_h || d.w != c->cnn.cfg.in_w) {
        da_api_fail(err, errlen, "%s: the images are %lldx%lldx%lld (HxWxC) but the classifier takes %dx%dx%d",
                    data_spec, (long long)d.h, (long long)d.w, (long long)d.c, c->cnn.cfg.in_h, c->cnn.cfg.in_w,
                    c->cnn.cfg.in_c);
    } else {
        *accuracy = da_cnn_accuracy(&c->cnn, &d, c->class_values, c->n_classes);
        rc = 0;
    }
    da_dataset_free(&d);
    return rc;
}

int da_classifier_model_classes(const da_classifier_model *c, int64_t *values, int max) {
    if (!c) return 0;
    for (int i = 0; values && i < max && i < c->n_classes; i++) values[i] = c->class_values[i];
    return c->n_classes;
}

int da_classifier_model_save(const da_classifier_model *c, const char *path, const char *class_names, char *err,
                             size_t errlen) {
    if (!c || !path) return da_api_fail(err, errlen, "da_classifier_model_save: an argument is missing");
    char values[256 * 24];   /* up to 256 label values as text */
    if (!class_names) {
        size_t o = 0;
        values[0] = 0;
        for (int i = 0; i < c->n_classes && o < sizeof values; i++)
            o += (size_t)snprintf(values + o, sizeof values - o, "%s%lld", i ? "," : "", (long long)c->class_values[i]);
        class_names = values;
    }
    return da_cnn_save(&c->cnn, path, class_names, err, errlen);
}

/* "5,7" -> {5, 7} when it lists exactly k integers; else 0..k-1. */
static void class_values_from(const char *classes, int k, int64_t *values) {
    int n = 0;
    const char *p = classes;
    while (p && n < k) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || (*end != ',' && *end)) break;
        values[n++] = v;
        p = *end ? end + 1 : NULL;
    }
    if (n == k && !p) return;
    for (int i = 0; i < k; i++) values[i] = i;
}

int da_classifier_model_load(const char *path, da_classifier_model **out, char *err, size_t errlen) {
    if (!out) return da_api_fail(err, errlen, "da_classifier_model_load: no place for the model (out is NULL)");
    *out = NULL;
    if (!path) return da_api_fail(err, errlen, "da_classifier_model_load: no path");
    da_classifier_model *c = calloc(1, sizeof *c);
    if (!c) return da_api_fail(err, errlen, "out of memory");
    if (da_cnn_load(&c->cnn, path, err, errlen)) {
        free(c);
        return -1;
    }
    const int k = c->cnn.cfg.n_classes;
    if (k > 256) {
        da_cnn_free(&c->cnn);
        free(c);
        return da_api_fail(err, errlen, "%s: %d classes; a classifier here takes at most 256", path, k);
    }
    c->n_classes = k;
    st_file f;
    const char *classes = NULL;
    char e2[512];
    bool opened = st_open(path, &f, e2, sizeof e2) == 0;   /* da_cnn_load has just read it */
    if (opened) classes = st_meta_get(&f, "classes");
    class_values_from(classes, c->n_classes, c->class_values);
    if (opened) st_close(&f);
    *out = c;
    return 0;
}

void da_classifier_model_free(da_classifier_model *c) {
    if (!c) return;
    da_cnn_free(&c->cnn);
    free(c);
}
