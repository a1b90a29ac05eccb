/* scan.c — `experiment --scan-pairs`: the measurement behind the choice of the default pair. For
 * each candidate pair the CNN is trained on originals and evaluated on originals and on the
 * held-out pencil renderer (and, for reference, trained on line drawings and on pencil itself). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/styles.h"
#include "experiment/experiment.h"
#include "experiment/stats.h"
#include "train/classifier_train.h"
#include "util/atomic.h"
#include "util/files.h"
#include "util/progress.h"

/* Rendered copy of d in style s. */
static int render(const da_dataset *d, const char *style, da_dataset *out, char *err, size_t errlen) {
    const da_style *s = da_style_find(style);
    if (!s) {
        snprintf(err, errlen, "the style bank has no \"%s\" renderer", style);
        return -1;
    }
    *out = *d;
    size_t nb = sizeof(float) * (size_t)(d->n * d->c * d->h * d->w);
    out->images = malloc(nb);
    if (!out->images) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    da_style_render_batch(s, d->images, d->n, (int)d->c, (int)d->h, (int)d->w, out->images, 0);
    return 0;
}

#define N_SCAN_TRAIN 3
static const char *const SCAN_TRAIN[N_SCAN_TRAIN] = {"original", "sobel", "pencil"};

int da_exp_scan_pairs(const da_exp_config *cfg, const char *pairs, bool with_styles, char *err, size_t errlen) {
    const int n_train = with_styles ? N_SCAN_TRAIN : 1;
    if (da_exp_kind(cfg->data) != DA_EXP_FASHION) {
        snprintf(err, errlen, "--scan-pairs measures Fashion-MNIST pairs; drop --data");
        return -1;
    }
    if (da_mkdirs(cfg->out, err, errlen) != 0) return -1;
    char metrics[4200], md_path[4200];
    snprintf(metrics, sizeof metrics, "%s/pair_scan_metrics.csv", cfg->out);
    snprintf(md_path, sizeof md_path, "%s/pair_scan.md", cfg->out);
    remove(metrics);
    char list[1024];
    snprintf(list, sizeof list, "%s", pairs);
    char *md = NULL;
    size_t md_len = 0;
    FILE *mf = open_memstream(&md, &md_len);
    if (!mf) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    fprintf(mf, "# Choosing the default pair\n\nCNN of the reference experiment, %d labelled training and %d test "
            "images per pair (seed %d), %d epochs, %d seeds; accuracy (%%) after the last epoch, mean ± std over "
            "seeds. \"pencil\" is the held-out sketch renderer (the experiment's target-heldout)%s.\n\n"
            "| pair | trained on originals: source | trained on originals: pencil | drop |%s\n|---|---|---|---|%s\n",
            cfg->train_n, cfg->test_n, cfg->data_seed, cfg->epochs, cfg->seeds,
            with_styles ? "; \"sobel\" is a line drawing the mini-CLIP was trained on; the pencil-trained column is the "
                          "oracle" : "",
            with_styles ? " trained on sobel: pencil | oracle (trained on pencil): pencil |" : "",
            with_styles ? "---|---|" : "");
    int rc = -1;
    double t0 = da_now();
    char *save = NULL;
    for (char *tok = strtok_r(list, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
        da_exp_config c = *cfg;
        c.task = tok;
        da_experiment e;
        da_exp_init(&e, &c);
        da_dataset sets[N_SCAN_TRAIN], pencil_test;
        memset(sets, 0, sizeof sets);
        memset(&pencil_test, 0, sizeof pencil_test);
        if (da_exp_load_data(&e, err, errlen) != 0) {
            da_exp_free(&e);
            goto done;
        }
        sets[0] = e.train;
        bool ok = render(&e.test, "pencil", &pencil_test, err, errlen) == 0;
        if (ok && with_styles)
            ok = render(&e.train, "sobel", &sets[1], err, errlen) == 0 &&
                 render(&e.train, "pencil", &sets[2], err, errlen) == 0;
        /* (train set, eval set, seed) accuracies after the last epoch */
        double *acc = malloc(sizeof(double) * (size_t)(N_SCAN_TRAIN * 2 * c.seeds));
#define ACC(tr, k, s) acc[((tr) * 2 + (k)) * c.seeds + (s)]
        ok = ok && acc;
        da_eval_set ev[2] = {{"source", &e.test}, {"pencil", &pencil_test}};
        char pair_name[64];
        snprintf(pair_name, sizeof pair_name, "%s", tok);
        for (char *p = pair_name; *p; p++)
            if (*p == ',') *p = '-';
        /* every (training set, seed) is one job, run side by side */
        int n_jobs = ok ? n_train * c.seeds : 0;
        da_clf_job *jobs = calloc((size_t)(n_jobs ? n_jobs : 1), sizeof *jobs);
        char names[N_SCAN_TRAIN][128];
        ok = ok && jobs;
        for (int tr = 0; ok && tr < n_train; tr++) {
            snprintf(names[tr], sizeof names[tr], "%s/%s", pair_name, SCAN_TRAIN[tr]);
            for (int s = 0; s < c.seeds; s++) {
                da_clf_job *j = &jobs[tr * c.seeds + s];
                j->train = &sets[tr];
                j->n_eval = 2;
                j->evals = ev;
                j->opts = da_clf_defaults();
                j->opts.epochs = c.epochs;
                j->opts.batch = c.batch;
                j->opts.lr = c.lr;
                j->opts.seed = (uint64_t)s;
                j->opts.train_name = names[tr];
                j->opts.metrics_path = metrics;
                j->opts.verbose = false;
            }
        }
        if (ok && da_metrics_prepare(metrics, err, errlen) != 0) ok = false;
        if (ok && da_classifier_train_jobs(n_jobs, jobs, 0) != 0) {
            for (int i = 0; i < n_jobs; i++)
                if (jobs[i].status != 0) snprintf(err, errlen, "%s: %s", tok, jobs[i].err);
            ok = false;
        }
        for (int i = 0; ok && i < n_jobs; i++) {
            int tr = i / c.seeds, s = i % c.seeds;
            ACC(tr, 0, s) = jobs[i].res.eval_acc[(c.epochs - 1) * 2];
            ACC(tr, 1, s) = jobs[i].res.eval_acc[(c.epochs - 1) * 2 + 1];
            fprintf(stderr, "[scan] %s trained on %-8s seed %d: source %.1f%%, pencil %.1f%% (%.1f s)\n", tok,
                    SCAN_TRAIN[tr], s, ACC(tr, 0, s), ACC(tr, 1, s), jobs[i].res.seconds);
        }
        for (int i = 0; jobs && i < n_jobs; i++) da_clf_result_free(&jobs[i].res);
        free(jobs);
        if (ok) {
            double m[N_SCAN_TRAIN][2], sd[N_SCAN_TRAIN][2];
            for (int tr = 0; tr < n_train; tr++)
                for (int k = 0; k < 2; k++) da_stat_mean_std(&ACC(tr, k, 0), c.seeds, &m[tr][k], &sd[tr][k]);
            fprintf(mf, "| %s (%s) | %.1f ± %.1f | %.1f ± %.1f | %.1f |", tok, e.class_names, m[0][0], sd[0][0],
                    m[0][1], sd[0][1], m[0][0] - m[0][1]);
            if (with_styles) fprintf(mf, " %.1f ± %.1f | %.1f ± %.1f |\n", m[1][1], sd[1][1], m[2][1], sd[2][1]);
            else fprintf(mf, "\n");
        }
#undef ACC
        free(acc);
        /* the rendered sets share labels and names with the originals: only their pixels are theirs */
        free(sets[1].images);
        free(sets[2].images);
        free(pencil_test.images);
        da_exp_free(&e);
        if (!ok) goto done;
    }
    fprintf(mf, "\nMeasured in %.0f s with %d thread(s) by `diffadapt experiment --scan-pairs`; every run's rows: "
            "`pair_scan_metrics.csv`.\n", da_now() - t0, da_get_threads());
    rc = 0;
done:
    fclose(mf);
    if (rc == 0) {
        rc = da_atomic_write(md_path, md, md_len, err, errlen);
        if (rc == 0) printf("%s", md);
    }
    free(md);
    return rc;
}
