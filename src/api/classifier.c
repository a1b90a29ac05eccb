/* classifier.c — the classifier handle: trains the reference CNN (train/classifier_train.h) on a
 * data set on disk and measures its accuracy on another. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "data/dataset.h"
#include "train/classifier_train.h"

void da_classifier_defaults(da_classifier_settings *s) {
    da_clf_opts o = da_clf_defaults();
    *s = (da_classifier_settings){.epochs = o.epochs, .batch = o.batch, .lr = o.lr, .seed = o.seed};
}

int da_classifier_model_train(const char *train_spec, const da_classifier_settings *s, da_progress_fn progress,
                              void *user, da_classifier_model **out, char *err, size_t errlen) {
    *out = NULL;
    if (!train_spec || !s) return da_api_fail(err, errlen, "da_classifier_model_train: an argument is missing");
    da_dataset d = {0};
    if (da_dataset_load(train_spec, NULL, &d, err, errlen)) return -1;
    da_classifier_model *c = calloc(1, sizeof *c);
    if (!c) {
        da_dataset_free(&d);
        return da_api_fail(err, errlen, "out of memory");
    }
    da_clf_opts o = da_clf_defaults();
    o.epochs = s->epochs;
    o.batch = s->batch;
    o.lr = s->lr;
    o.seed = s->seed;
    o.verbose = false;   /* the library prints nothing */
    da_clf_result res = {0};
    if (progress) progress(user, "train", 0, s->epochs);
    int rc = da_classifier_train(&d, 0, NULL, &o, &c->cnn, &res, err, errlen);
    da_dataset_free(&d);
    if (rc) {
        free(c);
        return -1;
    }
    c->n_classes = res.n_classes;
    memcpy(c->class_values, res.class_values, sizeof c->class_values);
    da_clf_result_free(&res);
    if (progress) progress(user, "train", s->epochs, s->epochs);
    *out = c;
    return 0;
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

void da_classifier_model_free(da_classifier_model *c) {
    if (!c) return;
    da_cnn_free(&c->cnn);
    free(c);
}
