/* classifier_train.h — trains the reference CNN on an in-memory data set with Adam and evaluates
 * it on named sets after every epoch; appends the per-epoch rows to a metrics.csv. */
#ifndef DA_CLASSIFIER_TRAIN_H
#define DA_CLASSIFIER_TRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"
#include "diffadapt.h"
#include "nn/cnn.h"

/* the public API names them (diffadapt.h) */
#define DA_METRICS_HEADER DA_CLASSIFIER_METRICS_HEADER
#define DA_CLF_MAX_EVAL DA_CLASSIFIER_MAX_EVAL

typedef struct {
    const char *name;             /* the eval_set column, e.g. "source" */
    const da_dataset *data;       /* labelled, same (C,H,W) as the training set */
} da_eval_set;

struct da_clf_result;

typedef struct {
    int epochs;                   /* 10 */
    int batch;                    /* 32; the last batch of an epoch may be smaller */
    float lr;                     /* 1e-3, Adam with torch defaults otherwise */
    uint64_t seed;                /* initialisation and per-epoch shuffling */
    const char *train_name;       /* the train_set column of metrics.csv ("train") */
    const char *metrics_path;     /* NULL, or a CSV that gets n_eval rows after every epoch */
    bool verbose;                 /* one progress line per epoch on stderr */
    int c1, c2, c3, hidden;       /* CNN widths; 0 = the reference 32/64/128/512 */
    /* optional: called after every epoch (0-based `epoch`) once its row of res is filled and the
     * metrics written, with the epoch's and the training's wall time so far */
    void (*on_epoch)(void *user, const struct da_clf_result *res, int epoch, double seconds, double elapsed);
    void *user;
} da_clf_opts;

/* torch/reference defaults: 10 epochs, batch 32, lr 1e-3, seed 0, name "train", verbose. */
da_clf_opts da_clf_defaults(void);

typedef struct da_clf_result {
    int epochs, n_eval;
    int n_classes;                /* 2 = binary (one logit) */
    int64_t class_values[256];    /* the training label behind each class index 0..n_classes-1 */
    double *train_loss;           /* (epochs) mean loss over the epoch's batches, per image */
    double *train_acc;            /* (epochs) accuracy in percent on the training batches */
    double *eval_acc;             /* (epochs, n_eval) accuracy in percent after each epoch */
    double seconds;               /* wall time of training and evaluation */
} da_clf_result;

/* The classes of a labelled set: its distinct label values in increasing order (at most 256).
 * Returns the count, or -1 with a message (no labels, too many values). */
int da_clf_classes(const da_dataset *d, int64_t *values, char *err, size_t errlen);

/* Trains a fresh CNN (seeded init) on `train` and evaluates it on every eval set after every
 * epoch. Labels are mapped to class indices by da_clf_classes of the training set; two
 * classes train one logit with BCE, more train K logits with cross-entropy. Eval sets must
 * have labels among the training classes and the training set's image shape. When
 * model_out is not NULL it receives the trained model (free with da_cnn_free). Returns 0,
 * or -1 with a message (bad data, metrics file with another header, write error). */
int da_classifier_train(const da_dataset *train, int n_eval, const da_eval_set *evals, const da_clf_opts *opts,
                        da_cnn *model_out, da_clf_result *res, char *err, size_t errlen);
void da_clf_result_free(da_clf_result *r);

/* One training of a batch run by da_classifier_train_jobs. */
typedef struct {
    const da_dataset *train;
    int n_eval;
    const da_eval_set *evals;
    da_clf_opts opts;             /* opts.metrics_path: rows appended after all jobs, in job order */
    da_cnn *model_out;            /* NULL, or receives the trained model */
    da_clf_result res;            /* out */
    int status;                   /* out: 0, or -1 with err set */
    char err[512];
} da_clf_job;

/* Runs the jobs (e.g. one per seed), up to `parallel` at once (0 = da_get_threads()), each on
 * a single thread: for several trainings this scales far better than threading inside each
 * one, whose layers are small. A job gives the same numbers as running it alone with one
 * thread. Progress lines (opts.verbose) come as jobs finish their epochs. Returns the number
 * of failed jobs. */
int da_classifier_train_jobs(int n_jobs, da_clf_job *jobs, int parallel);

/* Appends the rows of a finished training (r->epochs x n_eval) to a metrics CSV prepared by
 * da_metrics_prepare. Returns 0, or -1 with a message. */
int da_metrics_append(const char *path, const da_clf_opts *o, const da_clf_result *r, const da_eval_set *evals,
                      char *err, size_t errlen);

/* Accuracy in percent of model on d, whose labels are mapped through class_values. */
double da_cnn_accuracy(const da_cnn *m, const da_dataset *d, const int64_t *class_values, int n_classes);

/* Creates path with the header, or checks that an existing file starts with that header
 * (so several runs can share one file). Returns 0, or -1 with a message. */
int da_metrics_prepare(const char *path, char *err, size_t errlen);

#endif
