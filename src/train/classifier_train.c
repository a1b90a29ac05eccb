/* classifier_train.c — the classifier's training loop (Adam, shuffled mini-batches, per-epoch
 * evaluation on named sets) and the metrics.csv it appends to (see classifier_train.h). */
#include "train/classifier_train.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/ops.h"
#include "tensor/optim.h"
#include "tensor/rng.h"
#include "util/atomic.h"
#include "util/clock.h"
#include "util/files.h"

#define EVAL_BATCH 256

da_clf_opts da_clf_defaults(void) {
    da_clf_opts o;
    memset(&o, 0, sizeof o);
    o.epochs = 10;
    o.batch = 32;
    o.lr = 1e-3f;
    o.seed = 0;
    o.train_name = "train";
    o.verbose = true;
    return o;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int da_clf_classes(const da_dataset *d, int64_t *values, char *err, size_t errlen) {
    if (!d->labels) {
        snprintf(err, errlen, "the data set has no labels (a classifier needs labelled images: a folder "
                 "with labels.csv, an IDX file with its labels, or a .safetensors file with `labels`)");
        return -1;
    }
    if (d->n < 1) {
        snprintf(err, errlen, "the data set is empty");
        return -1;
    }
    int k = 0;
    for (int64_t i = 0; i < d->n; i++) {
        int64_t v = d->labels[i];
        bool seen = false;
        for (int j = 0; j < k && !seen; j++) seen = values[j] == v;
        if (seen) continue;
        if (k == 256) {
            snprintf(err, errlen, "the labels take more than 256 values; a classifier here takes at most 256 classes");
            return -1;
        }
        values[k++] = v;
    }
    qsort(values, (size_t)k, sizeof(int64_t), cmp_i64);
    return k;
}

/* Index of v in the sorted values, or -1. */
static int class_index(const int64_t *values, int k, int64_t v) {
    int lo = 0, hi = k - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (values[mid] == v) return mid;
        if (values[mid] < v) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

/* Class indices of d's labels into y (n); -1 with a message naming the set on a foreign label. */
static int map_labels(const da_dataset *d, const char *name, const int64_t *values, int k, int64_t *y,
                      char *err, size_t errlen) {
    for (int64_t i = 0; i < d->n; i++) {
        int c = class_index(values, k, d->labels[i]);
        if (c < 0) {
            snprintf(err, errlen, "%s: image %lld has label %lld, which the training set does not have "
                     "(choose the same --classes for every set)", name, (long long)i, (long long)d->labels[i]);
            return -1;
        }
        y[i] = c;
    }
    return 0;
}

/* Accuracy in percent over d with class indices y. */
static double accuracy(da_ctx *ctx, const da_cnn *m, const da_dataset *d, const int64_t *y) {
    bool old = da_set_grad(ctx, false);
    int64_t per = d->c * d->h * d->w, correct = 0;
    int64_t pred[EVAL_BATCH];
    for (int64_t b0 = 0; b0 < d->n; b0 += EVAL_BATCH) {
        int64_t bs = d->n - b0 < EVAL_BATCH ? d->n - b0 : EVAL_BATCH;
        da_ctx_reset(ctx);
        da_tensor *x = da_from_data(ctx, DA_SHAPE(bs, d->c, d->h, d->w), d->images + b0 * per);
        da_tensor *logits = da_cnn_forward(ctx, m, x);
        da_cnn_predict(m, logits, pred);
        for (int64_t i = 0; i < bs; i++) correct += pred[i] == y[b0 + i];
    }
    da_ctx_reset(ctx);
    da_set_grad(ctx, old);
    return d->n ? 100.0 * (double)correct / (double)d->n : 0.0;
}

double da_cnn_accuracy(const da_cnn *m, const da_dataset *d, const int64_t *class_values, int n_classes) {
    int64_t *y = malloc(sizeof(int64_t) * (size_t)(d->n ? d->n : 1));
    char err[256];
    if (!y || !d->labels || map_labels(d, "eval", class_values, n_classes, y, err, sizeof err) != 0) {
        free(y);
        return NAN;
    }
    da_ctx ctx;
    da_ctx_init(&ctx);
    double acc = accuracy(&ctx, m, d, y);
    da_ctx_free(&ctx);
    free(y);
    return acc;
}

/* ---- metrics.csv ------------------------------------------------------------------------ */

int da_metrics_prepare(const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (f) {
        char line[256] = "";
        bool empty = !fgets(line, sizeof line, f);
        fclose(f);
        line[strcspn(line, "\r\n")] = 0;
        if (!empty && strcmp(line, DA_METRICS_HEADER) != 0) {
            snprintf(err, errlen, "%s exists with another header (\"%.80s\", expected \"%s\"); "
                     "choose another output folder or remove the file", path, line, DA_METRICS_HEADER);
            return -1;
        }
        if (!empty) return 0;
    }
    /* atomically: a full disk must not leave an empty metrics.csv behind */
    return da_atomic_write(path, DA_METRICS_HEADER "\n", strlen(DA_METRICS_HEADER "\n"), err, errlen);
}

/* Rows of epochs [e0, e1), appended by rewriting the file atomically (old rows + new ones), so
 * that a full disk never leaves a row cut in half. */
static int metrics_append(const char *path, const da_clf_opts *o, int e0, int e1, const da_clf_result *r,
                          const da_eval_set *evals, char *err, size_t errlen) {
    size_t len = 0;
    char *old = da_read_file(path, &len, NULL, 0);
    if (!old) {
        snprintf(err, errlen, "cannot read %s to append to it: %s", path, strerror(errno));
        return -1;
    }
    da_atomic_file af;
    if (da_atomic_open(&af, path, err, errlen)) {
        free(old);
        return -1;
    }
    fwrite(old, 1, len, af.f);
    free(old);
    for (int epoch = e0; epoch < e1; epoch++)
        for (int k = 0; k < r->n_eval; k++)
            fprintf(af.f, "%s,%llu,%d,%.6f,%.4f,%s,%.4f\n", o->train_name, (unsigned long long)o->seed, epoch + 1,
                    r->train_loss[epoch], r->train_acc[epoch], evals[k].name, r->eval_acc[epoch * r->n_eval + k]);
    return da_atomic_commit(&af, err, errlen);   /* checks every earlier write too */
}

/* A name that fits in a CSV cell without quoting. */
static bool plain_name(const char *s) {
    if (!s || !*s) return false;
    for (; *s; s++)
        if (*s == ',' || *s == '"' || *s == '\n' || *s == '\r') return false;
    return true;
}

/* ---- training --------------------------------------------------------------------------- */

void da_clf_result_free(da_clf_result *r) {
    free(r->train_loss);
    free(r->train_acc);
    free(r->eval_acc);
    memset(r, 0, sizeof *r);
}

static int check_inputs(const da_dataset *train, int n_eval, const da_eval_set *evals, const da_clf_opts *o,
                        char *err, size_t errlen) {
    if (o->epochs < 1 || o->epochs > 100000) {
        snprintf(err, errlen, "--epochs must be between 1 and 100000, got %d", o->epochs);
        return -1;
    }
    if (o->batch < 1 || o->batch > 65536) {
        snprintf(err, errlen, "--batch must be between 1 and 65536, got %d", o->batch);
        return -1;
    }
    if (!(o->lr > 0) || !isfinite(o->lr)) {
        snprintf(err, errlen, "--lr must be a positive number, got %g", (double)o->lr);
        return -1;
    }
    if (!plain_name(o->train_name)) {
        snprintf(err, errlen, "the training set name '%s' must be non-empty without commas or quotes",
                 o->train_name ? o->train_name : "");
        return -1;
    }
    if (n_eval < 0 || n_eval > DA_CLF_MAX_EVAL) {
        snprintf(err, errlen, "at most %d eval sets, got %d", DA_CLF_MAX_EVAL, n_eval);
        return -1;
    }
    for (int k = 0; k < n_eval; k++) {
        const da_dataset *d = evals[k].data;
        if (!plain_name(evals[k].name)) {
            snprintf(err, errlen, "eval set name '%s' must be non-empty without commas or quotes",
                     evals[k].name ? evals[k].name : "");
            return -1;
        }
        for (int j = 0; j < k; j++)
            if (!strcmp(evals[j].name, evals[k].name)) {
                snprintf(err, errlen, "eval set name '%s' is given twice", evals[k].name);
                return -1;
            }
        if (!d->labels) {
            snprintf(err, errlen, "eval set %s has no labels (it needs labelled images)", evals[k].name);
            return -1;
        }
        if (d->n < 1) {
            snprintf(err, errlen, "eval set %s is empty", evals[k].name);
            return -1;
        }
        if (d->c != train->c || d->h != train->h || d->w != train->w) {
            snprintf(err, errlen, "eval set %s has images %lldx%lldx%lld (CxHxW) but the training set has "
                     "%lldx%lldx%lld; use the same --size/--pad/--channels", evals[k].name, (long long)d->c,
                     (long long)d->h, (long long)d->w, (long long)train->c, (long long)train->h, (long long)train->w);
            return -1;
        }
    }
    return 0;
}

int da_classifier_train(const da_dataset *train, int n_eval, const da_eval_set *evals, const da_clf_opts *o,
                        da_cnn *model_out, da_clf_result *res, char *err, size_t errlen) {
    memset(res, 0, sizeof *res);
    if (check_inputs(train, n_eval, evals, o, err, errlen) != 0) return -1;
    int k = da_clf_classes(train, res->class_values, err, errlen);
    if (k < 0) return -1;
    if (k < 2) {
        snprintf(err, errlen, "every training label is %lld; a classifier needs at least two classes",
                 (long long)res->class_values[0]);
        return -1;
    }
    res->n_classes = k;
    res->epochs = o->epochs;
    res->n_eval = n_eval;

    /* class indices of every set: train then each eval set */
    int64_t total = train->n;
    for (int j = 0; j < n_eval; j++) total += evals[j].data->n;
    int64_t *ys = malloc(sizeof(int64_t) * (size_t)total);
    int64_t *perm = malloc(sizeof(int64_t) * (size_t)train->n);
    res->train_loss = calloc((size_t)o->epochs, sizeof(double));
    res->train_acc = calloc((size_t)o->epochs, sizeof(double));
    res->eval_acc = calloc((size_t)o->epochs * (size_t)(n_eval ? n_eval : 1), sizeof(double));
    if (!ys || !perm || !res->train_loss || !res->train_acc || !res->eval_acc) {
        snprintf(err, errlen, "out of memory");
        free(ys);
        free(perm);
        da_clf_result_free(res);
        return -1;
    }
    int rc = -1;
    int64_t *y_train = ys, *y_eval[DA_CLF_MAX_EVAL];
    da_cnn m;
    memset(&m, 0, sizeof m);
    da_adam opt;
    memset(&opt, 0, sizeof opt);
    da_ctx ctx;
    da_ctx_init(&ctx);
    if (map_labels(train, o->train_name, res->class_values, k, y_train, err, errlen) != 0) goto done;
    int64_t off = train->n;
    for (int j = 0; j < n_eval; j++) {
        y_eval[j] = ys + off;
        off += evals[j].data->n;
        if (map_labels(evals[j].data, evals[j].name, res->class_values, k, y_eval[j], err, errlen) != 0) goto done;
    }
    if (o->metrics_path && da_metrics_prepare(o->metrics_path, err, errlen) != 0) goto done;

    da_cnn_config cfg = {(int)train->c, (int)train->h, (int)train->w, k, o->c1, o->c2, o->c3, o->hidden};
    if (train->c > 64 || train->h > 4096 || train->w > 4096) {
        snprintf(err, errlen, "images of %lldx%lldx%lld (CxHxW) are too large for the CNN", (long long)train->c,
                 (long long)train->h, (long long)train->w);
        goto done;
    }
    if (da_cnn_init(&m, &cfg, o->seed, err, errlen) != 0) goto done;
    da_adam_config ac = da_adam_defaults(DA_ADAM);
    ac.lr = o->lr;
    if (da_adam_init(&opt, &ac, m.params, DA_CNN_N_PARAMS, err, errlen) != 0) goto done;

    /* The shuffling stream is separate from the initialisation stream (same seed, other key). */
    da_rng shuffle;
    da_rng_init(&shuffle, o->seed ^ 0x9e3779b97f4a7c15ULL);
    const int64_t n = train->n, per = train->c * train->h * train->w;
    double t0 = da_now();
    for (int ep = 0; ep < o->epochs; ep++) {
        double te = da_now(), loss_sum = 0;
        int64_t correct = 0;
        da_rng_permutation(&shuffle, perm, n);
        for (int64_t b0 = 0; b0 < n; b0 += o->batch) {
            int64_t bs = n - b0 < o->batch ? n - b0 : o->batch;
            da_ctx_reset(&ctx);
            da_tensor *x = da_new(&ctx, DA_SHAPE(bs, train->c, train->h, train->w));   /* (bs,C,H,W) */
            int64_t *y = da_arena_alloc(&ctx.arena, sizeof(int64_t) * (size_t)bs);   /* (bs) */
            for (int64_t i = 0; i < bs; i++) {
                int64_t s = perm[b0 + i];
                memcpy(x->data + i * per, train->images + s * per, sizeof(float) * (size_t)per);
                y[i] = y_train[s];
            }
            da_tensor *logits = da_cnn_forward(&ctx, &m, x);
            da_tensor *loss = da_cnn_loss(&ctx, &m, logits, y);
            int64_t *pred = da_arena_alloc(&ctx.arena, sizeof(int64_t) * (size_t)bs);
            da_cnn_predict(&m, logits, pred);
            for (int64_t i = 0; i < bs; i++) correct += pred[i] == y[i];
            loss_sum += (double)loss->data[0] * (double)bs;
            da_cnn_zero_grad(&m);
            da_backward(&ctx, loss);
            da_adam_step(&opt);
        }
        res->train_loss[ep] = loss_sum / (double)n;
        res->train_acc[ep] = 100.0 * (double)correct / (double)n;
        for (int j = 0; j < n_eval; j++) res->eval_acc[ep * n_eval + j] = accuracy(&ctx, &m, evals[j].data, y_eval[j]);
        if (o->metrics_path && metrics_append(o->metrics_path, o, ep, ep + 1, res, evals, err, errlen) != 0) goto done;
        if (o->verbose) {   /* one write per line, so lines of jobs running side by side do not mix */
            char line[1024];
            int len = snprintf(line, sizeof line, "%s seed %llu epoch %d/%d  loss %.4f  train %.1f%%", o->train_name,
                               (unsigned long long)o->seed, ep + 1, o->epochs, res->train_loss[ep], res->train_acc[ep]);
            for (int j = 0; j < n_eval && len < (int)sizeof line; j++)
                len += snprintf(line + len, sizeof line - (size_t)len, "  %s %.1f%%", evals[j].name,
                                res->eval_acc[ep * n_eval + j]);
            if (len < (int)sizeof line) snprintf(line + len, sizeof line - (size_t)len, "  (%.1f s)", da_now() - te);
            fprintf(stderr, "%s\n", line);
        }
        if (o->on_epoch) o->on_epoch(o->user, res, ep, da_now() - te, da_now() - t0);
        if (!isfinite(res->train_loss[ep])) {
            snprintf(err, errlen, "the training loss became %g in epoch %d; try a smaller --lr",
                     res->train_loss[ep], ep + 1);
            goto done;
        }
    }
    res->seconds = da_now() - t0;
    rc = 0;
done:
    da_ctx_free(&ctx);
    da_adam_free(&opt);
    if (rc == 0 && model_out) *model_out = m;
    else da_cnn_free(&m);
    if (rc != 0) da_clf_result_free(res);
    free(ys);
    free(perm);
    return rc;
}

int da_metrics_append(const char *path, const da_clf_opts *o, const da_clf_result *r, const da_eval_set *evals,
                      char *err, size_t errlen) {
    return metrics_append(path, o, 0, r->epochs, r, evals, err, errlen);
}

int da_classifier_train_jobs(int n_jobs, da_clf_job *jobs, int parallel) {
    if (parallel <= 0) parallel = da_get_threads();
    if (parallel > n_jobs) parallel = n_jobs;
    if (parallel < 1) parallel = 1;
    /* Each job runs on one thread; OpenBLAS must not start its own threads meanwhile. */
    const int blas_threads = openblas_get_num_threads();
    if (parallel > 1 && blas_threads != 1) openblas_set_num_threads(1);
#pragma omp parallel for schedule(dynamic, 1) num_threads(parallel) if (parallel > 1)
    for (int i = 0; i < n_jobs; i++) {
        da_clf_job *j = &jobs[i];
        da_clf_opts o = j->opts;
        o.metrics_path = NULL;
        j->status = da_classifier_train(j->train, j->n_eval, j->evals, &o, j->model_out, &j->res, j->err,
                                        sizeof j->err);
    }
    if (parallel > 1 && blas_threads != 1) openblas_set_num_threads(blas_threads);
    int failed = 0;
    for (int i = 0; i < n_jobs; i++) {
        da_clf_job *j = &jobs[i];
        if (j->status == 0 && j->opts.metrics_path &&
            (da_metrics_prepare(j->opts.metrics_path, j->err, sizeof j->err) != 0 ||
             da_metrics_append(j->opts.metrics_path, &j->opts, &j->res, j->evals, j->err, sizeof j->err) != 0))
            j->status = -1;
        failed += j->status != 0;
    }
    return failed;
}
