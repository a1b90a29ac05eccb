/* classify.c — stage 6 of the experiment: the reference CNN trained on `original` and on `adapted`
 * images with several seeds, evaluated after every epoch on every evaluation set of experiment.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "experiment/experiment.h"
#include "train/classifier_train.h"
#include "util/progress.h"

int da_exp_classify(da_experiment *e, const char *metrics_path, char *err, size_t errlen) {
    const da_exp_config *c = &e->cfg;
    double t0 = da_now();
    if (c->seeds < 1 || c->epochs < 1) {
        snprintf(err, errlen, "--seeds and --epochs must be at least 1");
        return -1;
    }
    da_exp_runs *r = &e->runs;
    da_exp_runs_free(r);
    r->seeds = c->seeds;
    r->epochs = c->epochs;
    size_t n_runs = (size_t)DA_EXP_N_TRAIN * (size_t)c->seeds * (size_t)c->epochs;
    r->acc = calloc(n_runs * DA_EXP_N_EVAL, sizeof(double));
    r->train_acc = calloc(n_runs, sizeof(double));
    r->train_loss = calloc(n_runs, sizeof(double));
    if (!r->acc || !r->train_acc || !r->train_loss) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const da_dataset *train_sets[DA_EXP_N_TRAIN] = {&e->train, &e->adapted};
    const da_dataset *eval_sets[DA_EXP_N_EVAL] = {&e->test,           &e->target_heldout, &e->target_hatching,
                                                  &e->target_stipple, &e->validation,     &e->target_self};
    da_eval_set ev[DA_EXP_N_EVAL];
    for (int k = 0; k < DA_EXP_N_EVAL; k++) ev[k] = (da_eval_set){DA_EXP_EVAL_NAMES[k], eval_sets[k]};
    /* a fresh file: the run's rows only */
    remove(metrics_path);
    if (da_metrics_prepare(metrics_path, err, errlen) != 0) return -1;
    /* every (training set, seed) is one job; jobs run side by side, one thread each (the CNN's layers
     * are small, so this scales better than threads inside one training) */
    int n_jobs = DA_EXP_N_TRAIN * c->seeds;
    da_clf_job *jobs = calloc((size_t)n_jobs, sizeof *jobs);
    if (!jobs) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int tr = 0; tr < DA_EXP_N_TRAIN; tr++)
        for (int s = 0; s < c->seeds; s++) {
            da_clf_job *j = &jobs[tr * c->seeds + s];
            j->train = train_sets[tr];
            j->n_eval = DA_EXP_N_EVAL;
            j->evals = ev;
            j->opts = da_clf_defaults();
            j->opts.epochs = c->epochs;
            j->opts.batch = c->batch;
            j->opts.lr = c->lr;
            /* the same seed for both training sets: same initialisation and shuffling, so the
             * per-seed difference adapted - original is a paired comparison */
            j->opts.seed = (uint64_t)s;
            j->opts.train_name = DA_EXP_TRAIN_NAMES[tr];
            j->opts.metrics_path = metrics_path;
            j->opts.verbose = false;
            j->opts.c1 = c->cnn_c1;
            j->opts.c2 = c->cnn_c2;
            j->opts.c3 = c->cnn_c3;
            j->opts.hidden = c->cnn_hidden;
        }
    fprintf(stderr, "[experiment] training %d CNNs (%d seeds x %d training sets, %d epochs), %d at a time\n", n_jobs,
            c->seeds, DA_EXP_N_TRAIN, c->epochs, da_get_threads());
    int failed = da_classifier_train_jobs(n_jobs, jobs, 0);
    double secs[DA_EXP_N_TRAIN] = {0, 0};
    for (int i = 0; i < n_jobs; i++) {
        da_clf_job *j = &jobs[i];
        int tr = i / c->seeds, s = i % c->seeds;
        if (j->status != 0) {
            if (failed) snprintf(err, errlen, "CNN on %s, seed %d: %s", DA_EXP_TRAIN_NAMES[tr], s, j->err);
            continue;
        }
        r->n_classes = j->res.n_classes;
        for (int ep = 0; ep < c->epochs; ep++) {
            size_t k = ((size_t)tr * (size_t)c->seeds + (size_t)s) * (size_t)c->epochs + (size_t)ep;
            r->train_acc[k] = j->res.train_acc[ep];
            r->train_loss[k] = j->res.train_loss[ep];
            for (int v = 0; v < DA_EXP_N_EVAL; v++)
                r->acc[da_exp_acc_index(r, tr, s, ep, v)] = j->res.eval_acc[ep * DA_EXP_N_EVAL + v];
        }
        const double *last = j->res.eval_acc + (c->epochs - 1) * DA_EXP_N_EVAL;
        fprintf(stderr, "[experiment] CNN on %-8s seed %d: %5.1f s, last epoch: source %.1f%%, panel %.1f / %.1f / %.1f%%, "
                "validation %.1f%%, target-self %.1f%%\n", DA_EXP_TRAIN_NAMES[tr], s, j->res.seconds,
                last[DA_EXP_EV_SOURCE], last[DA_EXP_EV_PENCIL], last[DA_EXP_EV_HATCHING], last[DA_EXP_EV_STIPPLE],
                last[DA_EXP_EV_VALIDATION], last[DA_EXP_EV_SELF]);
        secs[tr] += j->res.seconds;
    }
    for (int i = 0; i < n_jobs; i++) da_clf_result_free(&jobs[i].res);
    free(jobs);
    if (failed) return -1;
    da_exp_add_stage(e, "CNN runs", da_now() - t0, "computed",
                     "%d seeds x %d epochs on each training set (%lld images), batch %d, Adam lr %g; %.1f s on original, "
                     "%.1f s on adapted (summed over jobs)", c->seeds, c->epochs, (long long)e->train.n, c->batch, (double)c->lr, secs[0],
                     secs[1]);
    return 0;
}
