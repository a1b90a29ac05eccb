/* cmd_experiment.c — `diffadapt experiment`: the whole method end to end (diffusion model, CLIP,
 * DiffusionCLIP fine-tuning, translation, CNN runs over seeds) and a report a reader can trust. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/option_fragments.h"
#include "experiment/experiment.h"
#include "util/atomic.h"
#include "util/files.h"
#include "util/progress.h"

/* The candidate pairs of design.md §5, measured by --scan-pairs. */
#define DEFAULT_SCAN_PAIRS "5,7;2,4;0,3;4,6;0,6;7,9"

static int run(da_exp_config *c) {
    char err[4096];
    da_experiment e;
    da_exp_init(&e, c);
    int status = 1;
    if (c->cache) snprintf(e.cache_dir, sizeof e.cache_dir, "%s", c->cache);
    else snprintf(e.cache_dir, sizeof e.cache_dir, "%s/cache", c->out);
    if (da_mkdirs(c->out, err, sizeof err) != 0 || da_mkdirs(e.cache_dir, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }
    fprintf(stderr, "[experiment] %s run into %s (cache %s), %d thread(s)\n", c->level, c->out, e.cache_dir,
            da_get_threads());
    double t0 = da_now();
    if (da_exp_load_data(&e, err, sizeof err) != 0) goto fail;
    da_exp_add_stage(&e, "data", da_now() - t0, "computed", "%s: %lld training + %lld test images of %lldx%lldx%lld",
                     e.task_desc, (long long)e.train.n, (long long)e.test.n, (long long)e.train.c,
                     (long long)e.train.h, (long long)e.train.w);
    if (da_exp_stage_diffusion(&e, err, sizeof err) != 0) goto fail;
    if (da_exp_stage_clip(&e, err, sizeof err) != 0) goto fail;
    if (da_exp_stage_finetune(&e, err, sizeof err) != 0) goto fail;
    if (da_exp_stage_translate(&e, err, sizeof err) != 0) goto fail;
    if (da_exp_stage_heldout(&e, err, sizeof err) != 0) goto fail;
    char metrics[4200];
    snprintf(metrics, sizeof metrics, "%s/metrics.csv", c->out);
    if (da_exp_classify(&e, metrics, err, sizeof err) != 0) goto fail;
    if (da_exp_diagnostics(&e, err, sizeof err) != 0) goto fail;
    if (da_exp_write_outputs(&e, err, sizeof err) != 0) goto fail;

    /* the headline on stdout */
    const da_exp_runs *r = &e.runs;
    printf("%s, %d seeds x %d epochs; accuracy (%%) after the last epoch, mean over seeds:\n", e.task_desc, r->seeds,
           r->epochs);
    printf("%-10s", "trained on");
    for (int ev = 0; ev < DA_EXP_N_EVAL; ev++) printf(" %*s", (int)strlen(DA_EXP_EVAL_NAMES[ev]) > 8 ? (int)strlen(DA_EXP_EVAL_NAMES[ev]) : 8, DA_EXP_EVAL_NAMES[ev]);
    printf("\n");
    for (int tr = 0; tr < DA_EXP_N_TRAIN; tr++) {
        double m[DA_EXP_N_EVAL] = {0};
        for (int ev = 0; ev < DA_EXP_N_EVAL; ev++) {
            for (int s = 0; s < r->seeds; s++) m[ev] += r->acc[da_exp_acc_index(r, tr, s, r->epochs - 1, ev)];
            m[ev] /= r->seeds;
        }
        printf("%-10s", DA_EXP_TRAIN_NAMES[tr]);
        for (int ev = 0; ev < DA_EXP_N_EVAL; ev++)
            printf(" %*.1f", (int)strlen(DA_EXP_EVAL_NAMES[ev]) > 8 ? (int)strlen(DA_EXP_EVAL_NAMES[ev]) : 8, m[ev]);
        printf("\n");
    }
    printf("total %.1f s; report: %s/report.md\n", da_now() - e.t_start, c->out);
    status = 0;
    goto done;
fail:
    fprintf(stderr, "error: %s\n", err);
done:
    da_exp_free(&e);
    return status;
}

int cmd_experiment(int argc, char **argv) {
    da_exp_config c;
    da_exp_defaults(&c);
    /* the run level first, so that --help shows its defaults and later options override it */
    bool quick = false, smoke = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) break;
        if (!strcmp(argv[i], "--quick")) quick = true;
        if (!strcmp(argv[i], "--smoke")) smoke = true;
    }
    if (smoke) da_exp_smoke(&c);
    else if (quick) da_exp_quick(&c);
    const char *scan = NULL;
    bool scan_default = false, scan_styles = false;
    da_option opts[96] = {
        {"--out", DA_OPT_STRING, &c.out, "DIR", "output folder: metrics.csv, results.json, report.md, plots, example grids", false},
        {"--quick", DA_OPT_FLAG, &quick, NULL, "a small run (about a minute with the shipped models): fewer images, steps, seeds and epochs; every output", false},
        {"--smoke", DA_OPT_FLAG, &smoke, NULL, "an even smaller run with tiny models trained on the spot (for sanitizer builds); results mean nothing", false},
        {"--task", DA_OPT_STRING, &c.task, "PAIR|all", "Fashion-MNIST classes, e.g. 2,4 (binary) or all (ten classes)", false},
        {"--seeds", DA_OPT_INT, &c.seeds, "N", "CNN runs per training set (seeds 0..N-1)", false},
        {"--epochs", DA_OPT_INT, &c.epochs, "N", "CNN training epochs", false},
        {"--cache", DA_OPT_STRING, &c.cache, "DIR", "where trained/translated results are kept for re-use (default OUT/cache)", false},
        {"--models", DA_OPT_STRING, &c.models_dir, "DIR", "shipped default checkpoints (default: $DIFFADAPT_MODELS, ./models, <binary dir>/../share/diffadapt/models, or models/ above the binary)", false},
        {"--data", DA_OPT_STRING, &c.data, "DATA", "fashion-mnist, celeba:DIR (with --attr), or a labelled folder/.safetensors/IDX", false},
        {"--attr", DA_OPT_STRING, &c.attr, "NAME", "CelebA attribute to classify (e.g. Male)", false},
        {"--size", DA_OPT_INT, &c.size, "N", "centre-crop and resize images to NxN (0: as stored; Fashion-MNIST is padded to 32)", false},
        {"--channels", DA_OPT_INT, &c.channels, "N", "1 = grey, 3 = RGB (0 = as stored)", false},
        {"--train-n", DA_OPT_INT, &c.train_n, "N", "labelled training images", false},
        {"--test-n", DA_OPT_INT, &c.test_n, "N", "test images (each target set is made from them)", false},
        {"--val-n", DA_OPT_INT, &c.val_n, "N", "validation images: training images outside the labelled draw, drawn by the validation renderer (recipes are chosen on them)", false},
        {"--data-seed", DA_OPT_INT, &c.data_seed, "N", "seed of the training and test draws", false},
        {"--pool-n", DA_OPT_INT, &c.pool_n, "N", "unlabelled images to train a missing diffusion model / mini-CLIP on (0 = all)", false},
        {"--model", DA_OPT_STRING, &c.model, "M", "diffusion model (default: shipped for Fashion-MNIST, else trained)", false},
        {"--config", DA_OPT_STRING, &c.model_config, "C", "its config (YAML/JSON) when the file carries none", false},
        {"--finetuned", DA_OPT_STRING, &c.finetuned, "M_ft", "a fine-tuned copy of --model (e.g. DiffusionCLIP's released human_sketch_t601.pth): translate with it instead of fine-tuning here", false},
        {"--clip", DA_OPT_STRING, &c.clip, "CLIP", "CLIP model: .safetensors or Hugging Face folder (default: the shipped mini-CLIP, else trained)", false},
        {"--vocab", DA_OPT_STRING, &c.vocab, "V", "CLIP vocabulary when the model carries none", false},
        {"--diff-steps", DA_OPT_INT, &c.diff_steps, "N", "training steps of a diffusion model trained here", false},
        {"--clip-steps", DA_OPT_INT, &c.clip_steps, "N", "training steps of a mini-CLIP trained here", false},
        {"--tgt-images", DA_OPT_STRING, &c.tgt_images, "STYLE:N|DATA", "a few unlabelled target images for an image-guided direction: STYLE:N draws N training images outside the labelled and validation draws with that renderer (e.g. pencil:32), or any --data spec", false},
        {"--translate-batch", DA_OPT_INT, &c.ft.ddim_batch, "N", "images per inversion/generation batch", false},
        {"--batch", DA_OPT_INT, &c.batch, "N", "CNN mini-batch", false},
        {"--lr", DA_OPT_FLOAT, &c.lr, "LR", "CNN Adam learning rate", false},
        {"--scan-pairs", DA_OPT_STRING, &scan, "LIST", "instead of the experiment, measure candidate pairs, e.g. \"5,7;2,4\" (\"default\": the design.md set)", false},
        {"--scan-styles", DA_OPT_FLAG, &scan_styles, NULL, "with --scan-pairs: also train on line drawings and on the held-out renderer (oracle)", false},
    };
    /* --threads and --force as every command has them (copied into c after parsing) */
    da_common co = {.threads = c.threads, .force = c.force};
    static const da_common_words words = {.force = "overwrite the outputs of an earlier run in --out"};
    /* and the method's options, as finetune and translate declare them (the run's with --ft-) */
    const da_fragments shared = {
        .common = &co, .words = &words, .common_parts = DA_COPT_THREADS | DA_COPT_PRECISION | DA_COPT_FORCE,
        .method = &c.ft, .method_parts = DA_MOPT_TEXTS | DA_MOPT_T0 | DA_MOPT_INVERT | DA_MOPT_GENERATE | DA_MOPT_TRAIN,
        .naming = DA_MOPT_EXPERIMENT};
    da_fragments_add(&shared, opts);
    static const da_cmd_info info = {
        "experiment", "[--quick] [--out DIR] [--task PAIR|all] [--seeds N] [--force] [options]",
        "Runs text-guided domain adaptation end to end and reports whether it helps:\n"
        " 1. a diffusion model of the source images (given, shipped in models/, cached, or trained),\n"
        " 2. a CLIP model (given, the shipped mini-CLIP, cached, or trained),\n"
        " 3. DiffusionCLIP fine-tuning \"photo\" -> \"sketch\", 4. translation of the labelled training images,\n"
        " 5. evaluation sets: source (the originals); the target panel of three held-out renderers the\n"
        "    pipeline never sees, target-heldout (pencil), target-hatching, target-stipple; validation\n"
        "    (training images outside the labelled draw, xdog renderer: for choosing recipes); and\n"
        "    target-self (the fine-tuned model's own translation, the reference protocol),\n"
        " 6. the reference CNN trained on original and on adapted images over several seeds.\n"
        "Writes OUT/metrics.csv, results.json, report.md, accuracy_original.png, accuracy_adapted.png and\n"
        "example grids. Every stage is cached by its settings (OUT/cache or --cache), so a re-run is fast.\n"
        "Real data: --data celeba:DIR --attr Male --clip HF_FOLDER --model M --config C --size 256.",
        NULL};
    int rc;
    if (!da_fragments_parse(&info, opts, &shared, argc, argv, &rc)) return rc;
    c.threads = co.threads;
    c.force = co.force;
    char perr[256];
    if (da_precision_from_name(da_common_precision_name(co.precision), &c.precision, perr, sizeof perr)) {
        fprintf(stderr, "diffadapt experiment: --precision: %s\n", perr);
        return 2;
    }
    if (scan) scan_default = strcmp(scan, "default") == 0;
    if (c.seeds < 1 || c.epochs < 1 || c.train_n < 2 || c.test_n < 2 || c.val_n < 2 || c.pool_n < 0 || c.data_seed < 0 ||
        c.size < 0 || c.threads < 0 || (c.channels != 0 && c.channels != 1 && c.channels != 3) || c.batch < 1 ||
        c.ft.ddim_batch < 1 || c.diff_steps < 1 || c.clip_steps < 1 || c.seeds > 1000) {
        fprintf(stderr, "diffadapt experiment: --seeds (1..1000), --epochs, --batch, --translate-batch, --diff-steps and "
                        "--clip-steps must be at least 1, --train-n, --test-n and --val-n at least 2, --pool-n, --data-seed, "
                        "--size and --threads not negative, --channels 0, 1 or 3\n");
        return 2;
    }
    if (da_exp_kind(c.data) != DA_EXP_FASHION) {
        /* the pair applies to Fashion-MNIST only, unless it was given for other labelled data */
        bool task_given = false;
        for (int i = 1; i < argc; i++) task_given |= !strcmp(argv[i], "--task");
        if (!task_given) c.task = NULL;
    }
    da_set_threads(c.threads);
    char err[4096];
    if (scan) {
        if (da_exp_scan_pairs(&c, scan_default ? DEFAULT_SCAN_PAIRS : scan, scan_styles, err, sizeof err) != 0) {
            fprintf(stderr, "error: %s\n", err);
            return 1;
        }
        return 0;
    }
    /* an earlier run's outputs are kept unless --force */
    for (int i = 0; DA_EXP_OUTPUTS[i]; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", c.out, DA_EXP_OUTPUTS[i]);
        if (!c.force && da_is_file(path)) {
            fprintf(stderr, "diffadapt experiment: %s already holds the results of an earlier run (%s); pass --force "
                            "to overwrite them (the cache is kept and re-used), or choose another --out\n", c.out, path);
            return 1;
        }
    }
    return run(&c);
}
