/* cmd_train_classifier.c — `diffadapt train-classifier`: trains the reference CNN on one data
 * set through the library (diffadapt.h), evaluates named sets every epoch, writes metrics.csv,
 * accuracy.png and the model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffadapt.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/option_fragments.h"
#include "data/dataset.h"
#include "util/files.h"
#include "util/plot.h"

/* "5,7" + class values {0,1} -> "5,7"; without --classes the values themselves. */
static void classes_meta(const char *classes_opt, const da_classifier_model *m, char *out, size_t len) {
    const char *items[256];
    int n_items = 0;
    char buf[1024];
    if (classes_opt) {
        snprintf(buf, sizeof buf, "%s", classes_opt);
        for (char *tok = strtok(buf, ","); tok && n_items < 256; tok = strtok(NULL, ",")) items[n_items++] = tok;
    }
    int64_t values[256];
    int n_classes = da_classifier_model_classes(m, values, 256);
    size_t o = 0;
    out[0] = 0;
    for (int i = 0; i < n_classes && o < len; i++) {
        int64_t v = values[i];
        if (v >= 0 && v < n_items) o += (size_t)snprintf(out + o, len - o, "%s%s", i ? "," : "", items[v]);
        else o += (size_t)snprintf(out + o, len - o, "%s%lld", i ? "," : "", (long long)v);
    }
}

#define CMD "train-classifier"

/* The --eval NAME=DATA sets, split into names (in name_buf) and data specs; prints the error and
 * returns 2. */
static int parse_evals(const da_strlist *evals, char name_buf[][128], const char **names, const char **specs) {
    if (evals->n == 0) {
        fprintf(stderr, "diffadapt " CMD ": give at least one --eval NAME=DATA (e.g. --eval test=fashion-mnist:test)\n");
        return 2;
    }
    if (evals->n > DA_CLASSIFIER_MAX_EVAL) {
        fprintf(stderr, "diffadapt " CMD ": at most %d --eval sets\n", DA_CLASSIFIER_MAX_EVAL);
        return 2;
    }
    for (int i = 0; i < evals->n; i++) {
        const char *eq = strchr(evals->items[i], '=');
        size_t len = eq ? (size_t)(eq - evals->items[i]) : 0;
        if (!eq || len == 0 || len >= sizeof name_buf[i] || !eq[1]) {
            fprintf(stderr, "diffadapt " CMD ": --eval expects NAME=DATA (e.g. source=test.safetensors), got '%s'\n",
                    evals->items[i]);
            return 2;
        }
        memcpy(name_buf[i], evals->items[i], len);
        name_buf[i][len] = 0;
        names[i] = name_buf[i];
        specs[i] = eq + 1;
    }
    return 0;
}

/* accuracy.png: the accuracy of every eval set per epoch. Returns 0, or 1 after printing. */
static int write_plot(const char *path, const char *train_name, int seed, int epochs, int n_evals,
                      const char *const *names, const double *eval_acc) {
    double *ep = malloc(sizeof(double) * (size_t)epochs), *acc = malloc(sizeof(double) * (size_t)epochs * (size_t)n_evals);
    da_plot_series series[DA_PLOT_MAX_SERIES];
    int n_series = n_evals < DA_PLOT_MAX_SERIES ? n_evals : DA_PLOT_MAX_SERIES;
    for (int e = 0; e < epochs; e++) ep[e] = e + 1;
    for (int k = 0; k < n_series; k++) {
        for (int e = 0; e < epochs; e++) acc[k * epochs + e] = eval_acc[e * n_evals + k];
        series[k] = (da_plot_series){names[k], epochs, ep, acc + k * epochs, NULL};
    }
    char title[256], err[2048];
    snprintf(title, sizeof title, "CNN trained on %.60s (seed %d): accuracy per epoch", train_name, seed);
    da_plot_opts po = {title, "epoch", "accuracy (%)", 0, 100, 0, 0};
    int prc = da_plot_lines(path, &po, n_series, series, err, sizeof err);
    free(ep);
    free(acc);
    if (prc != 0) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    return 0;
}

/* What the command keeps of every epoch: its line on stderr and the eval accuracies for the plot. */
typedef struct {
    const char *train_name;
    int seed;
    const char *const *names;
    double *eval_acc;         /* (epochs, n_eval) */
    double elapsed;
} epoch_log;

static void on_epoch(void *user, const da_classifier_epoch_report *r) {
    epoch_log *l = user;
    memcpy(l->eval_acc + (size_t)(r->epoch - 1) * (size_t)r->n_eval, r->eval_acc, sizeof(double) * (size_t)r->n_eval);
    l->elapsed = r->elapsed;
    char line[1024];   /* one write per line */
    int len = snprintf(line, sizeof line, "%s seed %llu epoch %d/%d  loss %.4f  train %.1f%%", l->train_name,
                       (unsigned long long)l->seed, r->epoch, r->epochs, r->train_loss, r->train_acc);
    for (int j = 0; j < r->n_eval && len < (int)sizeof line; j++)
        len += snprintf(line + len, sizeof line - (size_t)len, "  %s %.1f%%", l->names[j], r->eval_acc[j]);
    if (len < (int)sizeof line) snprintf(line + len, sizeof line - (size_t)len, "  (%.1f s)", r->seconds);
    fprintf(stderr, "%s\n", line);
}

int cmd_train_classifier(int argc, char **argv) {
    const char *train_spec = NULL, *train_name = "train";
    da_strlist evals = {0};
    int epochs = 10, eval_take = 0, eval_skip = 0;
    float lr = 1e-3f;
    da_common co = {.seed = 0, .batch = 32};
    da_cli_data dd = {0};
    da_option opts[40] = {
        {"--train", DA_OPT_STRING, &train_spec, "DATA", "labelled training images " DA_DATA_SOURCES, true},
        {"--eval", DA_OPT_LIST, &evals, "NAME=DATA", "a labelled set to evaluate after every epoch, named NAME in metrics.csv", false},
        {"--train-name", DA_OPT_STRING, &train_name, "NAME", "the train_set column of metrics.csv", false},
        {"--epochs", DA_OPT_INT, &epochs, "N", "training epochs", false},
        {"--lr", DA_OPT_FLOAT, &lr, "LR", "Adam learning rate", false},
        {"--eval-take", DA_OPT_INT, &eval_take, "N", "use N images of every eval set (0 = all)", false},
        {"--eval-skip", DA_OPT_INT, &eval_skip, "N", "skip the first N of every eval set's drawn order", false},
    };
    static const da_common_words words = {
        .out_metavar = "DIR", .out = "output folder: metrics.csv (appended), accuracy.png, model.safetensors",
        .seed = "seed of the initialisation and the shuffling", .batch = "mini-batch size",
        .force = "overwrite an existing DIR/model.safetensors and DIR/accuracy.png"};
    const da_fragments shared = {
        .common = &co, .words = &words,
        .common_parts = DA_COPT_OUT | DA_COPT_SEED | DA_COPT_BATCH | DA_COPT_THREADS | DA_COPT_FORCE,
        .data = &dd, .data_parts = DA_DATA_ALL};
    da_fragments_add(&shared, opts);
    static const da_cmd_info info = {
        CMD, "--train DATA --eval NAME=DATA ... --out DIR [options]",
        "Trains the reference CNN (3 conv layers 32/64/128 with max-pool, FC 512, output) with Adam.\n"
        "Two classes: one logit with sigmoid + BCE; more: softmax + cross-entropy. After every epoch\n"
        "every --eval set is evaluated and one row per set is appended to DIR/metrics.csv\n"
        "(" DA_CLASSIFIER_METRICS_HEADER ", accuracy in percent).\n"
        "Writes DIR/accuracy.png (accuracy per epoch, a line per eval set) and DIR/model.safetensors.\n"
        "The data options apply to every set; --eval-take and --eval-skip replace --take and --skip for the eval sets.",
        NULL};
    int rc;
    if (!da_fragments_parse(&info, opts, &shared, argc, argv, &rc)) return rc;
    const char *names[DA_CLASSIFIER_MAX_EVAL], *specs[DA_CLASSIFIER_MAX_EVAL];
    char name_buf[DA_CLASSIFIER_MAX_EVAL][128];
    if ((rc = parse_evals(&evals, name_buf, names, specs))) return rc;
    if (eval_take < 0 || eval_skip < 0) {
        fprintf(stderr, "diffadapt " CMD ": --eval-take and --eval-skip must not be negative\n");
        return 2;
    }
    const char *out_dir = co.out;
    char metrics[4200], plot_path[4200], model_path[4200];
    snprintf(metrics, sizeof metrics, "%s/metrics.csv", out_dir);
    snprintf(plot_path, sizeof plot_path, "%s/accuracy.png", out_dir);
    snprintf(model_path, sizeof model_path, "%s/model.safetensors", out_dir);
    /* metrics.csv is appended to by design; the model and the plot are replaced */
    if (!out_dir[0]) {
        fprintf(stderr, "diffadapt " CMD ": --out is empty; give a folder\n");
        return 2;
    }
    for (const char *p = model_path; !co.force && p; p = p == model_path ? plot_path : NULL)
        if (da_path_exists(p)) {
            fprintf(stderr, "error: %s already exists; pass --force to overwrite it (metrics.csv is appended to)\n", p);
            return 1;
        }
    da_threads_set(co.threads);

    char err[2048];
    if (da_mkdirs(out_dir, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    da_cli_data eval_dd = dd;
    eval_dd.take = eval_take;
    eval_dd.skip = eval_skip;
    da_dataset train, sets[DA_CLASSIFIER_MAX_EVAL];
    memset(&train, 0, sizeof train);
    memset(sets, 0, sizeof sets);
    int n_loaded = 0, status = 1;
    da_classifier_model *model = NULL;
    epoch_log log = {train_name, co.seed, names, NULL, 0};
    if (da_cli_load_data(CMD, "training set", train_spec, &dd, &train)) goto done;
    da_classifier_eval ev[DA_CLASSIFIER_MAX_EVAL];
    for (; n_loaded < evals.n; n_loaded++) {
        char what[160];
        snprintf(what, sizeof what, "eval set %s", names[n_loaded]);
        const da_dataset *e = &sets[n_loaded];
        if (da_cli_load_data(CMD, what, specs[n_loaded], &eval_dd, &sets[n_loaded])) goto done;
        ev[n_loaded] = (da_classifier_eval){names[n_loaded], {e->images, e->labels, e->n, (int)e->c, (int)e->h, (int)e->w}};
    }
    fprintf(stderr, "training on %s: %lld images %lldx%lldx%lld (CxHxW), %d eval set(s)\n", train_spec,
            (long long)train.n, (long long)train.c, (long long)train.h, (long long)train.w, evals.n);

    log.eval_acc = calloc((size_t)(epochs > 0 ? epochs : 1) * (size_t)evals.n, sizeof(double));
    if (!log.eval_acc) {
        fprintf(stderr, "error: out of memory\n");
        goto done;
    }
    da_classifier_settings s;
    da_classifier_defaults(&s);
    s.epochs = epochs;
    s.batch = co.batch;
    s.lr = lr;
    s.seed = (uint64_t)co.seed;
    const da_image_set train_set = {train.images, train.labels, train.n, (int)train.c, (int)train.h, (int)train.w};
    const da_classifier_train_options o = {ev, evals.n, train_name, metrics, on_epoch, &log};
    if (da_classifier_model_train_set(&train_set, &s, &o, &model, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }

    char cls[2048];
    classes_meta(dd.classes, model, cls, sizeof cls);
    if (da_classifier_model_save(model, model_path, cls, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }
    if (write_plot(plot_path, train_name, co.seed, epochs, evals.n, names, log.eval_acc)) goto done;
    printf("trained %d epochs in %.1f s; final accuracy:", epochs, log.elapsed);
    for (int k = 0; k < evals.n; k++) printf(" %s %.2f%%", names[k], log.eval_acc[(epochs - 1) * evals.n + k]);
    printf("\nwrote %s, %s, %s\n", metrics, plot_path, model_path);
    status = 0;
done:
    free(log.eval_acc);
    da_classifier_model_free(model);
    for (int i = 0; i < n_loaded; i++) da_dataset_free(&sets[i]);
    da_dataset_free(&train);
    return status;
}
