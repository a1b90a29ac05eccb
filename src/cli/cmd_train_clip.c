/* cmd_train_clip.c — `diffadapt train-clip`: trains the built-in mini-CLIP contrastively on style
 * renderings of unlabelled images with style captions; checkpoints, resume, zero-shot evaluation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/checkpoint_options.h"
#include "cli/commands.h"
#include "cli/option_fragments.h"
#include "cli/outputs.h"
#include "cli/miniclip_cli.h"
#include "data/dataset.h"
#include "tensor/tensor.h"
#include "train/miniclip_train.h"
#include "util/atomic.h"
#include "util/files.h"
#include "util/progress.h"

/* Trains up to the run's step count with a progress line, writing the checkpoint every
 * ckpt_every steps and at the end. Returns 0, or 1 after printing. */
static int train_steps(da_miniclip_trainer *tr, const char *ckpt, int ckpt_every) {
    char err[2048];
    da_progress pg;
    da_progress_begin(&pg, "train-clip", tr->o.steps, "step");
    double t0 = da_now(), loss_sum = 0, acc_sum = 0;
    int64_t start = tr->step, window = 0;
    while (tr->step < tr->o.steps) {
        float loss, acc;
        if (da_miniclip_trainer_step(tr, &loss, &acc, err, sizeof err)) {
            fprintf(stderr, "\nerror: %s\n", err);
            return 1;
        }
        loss_sum += loss;
        acc_sum += acc;
        window++;
        bool save = tr->step == tr->o.steps || (ckpt_every > 0 && tr->step % ckpt_every == 0);
        if (save && da_miniclip_trainer_save_checkpoint(tr, ckpt, err, sizeof err)) {
            fprintf(stderr, "\nerror: checkpoint: %s\n", err);
            return 1;
        }
        if (tr->step % 25 == 0 || tr->step == tr->o.steps) {
            char msg[256];
            double el = da_now() - t0;
            snprintf(msg, sizeof msg, "loss %.4f  batch acc %.1f%%  T %.1f  lr %.2e  %.1f img/s",
                     loss_sum / (double)window, 100.0 * acc_sum / (double)window,
                     (double)expf(tr->model.logit_scale->data[0]), da_miniclip_lr(&tr->o, tr->step - 1),
                     el > 0 ? (double)(tr->step - start) * tr->o.batch / el : 0.0);
            da_progress_update(&pg, tr->step, msg);
            loss_sum = acc_sum = 0;
            window = 0;
        }
    }
    da_progress_end(&pg, tr->step, NULL);
    double train_s = da_now() - t0;
    fprintf(stderr, "trained %lld steps in %.1f s (%.1f img/s)\n", (long long)(tr->step - start), train_s,
            train_s > 0 ? (double)(tr->step - start) * tr->o.batch / train_s : 0.0);
    return 0;
}

/* What the run is: the model, its vocabulary and the training settings. */
static void print_plan(const da_miniclip_trainer *tr) {
    char cfg[512];
    fprintf(stderr, "model: %s, %lld parameters (%.1f MB as F32)\n", da_clip_config_str(&tr->model.cfg, cfg, sizeof cfg),
            (long long)da_params_count(&tr->model.params), 4e-6 * (double)da_params_count(&tr->model.params));
    int n_tmpl;
    da_miniclip_templates(&n_tmpl);
    fprintf(stderr, "vocabulary: %d ids, %d BPE merges learned from %d captions (%d training styles x their words x %d templates)\n",
            da_bpe_vocab_size(tr->bpe), da_bpe_n_merges(tr->bpe), tr->n_captions, tr->n_train_styles, n_tmpl);
    fprintf(stderr, "training: %lld steps (from %lld), batch %d, AdamW lr %g wd %g, warm-up %lld, seed %llu, %d threads\n",
            (long long)tr->o.steps, (long long)tr->step, tr->o.batch, tr->o.lr, tr->o.weight_decay, (long long)tr->o.warmup,
            (unsigned long long)tr->o.seed, da_get_threads());
}

#define CMD "train-clip"

int cmd_train_clip(int argc, char **argv) {
    da_miniclip_opts o;
    da_miniclip_defaults(&o);
    const char *data_spec = "fashion-mnist:train", *eval_spec = "fashion-mnist:test";
    int steps = 0, warmup = (int)o.warmup, eval_take = 1000;
    bool no_eval = false;
    float lr = o.lr, wd = o.weight_decay, clip = o.grad_clip;
    da_common co = {.seed = 0, .batch = o.batch};
    da_cli_ckpt ck = {.every = 100};
    da_cli_data dd = {.pad = 2};
    da_option opts[56] = {
        {"--data", DA_OPT_STRING, &data_spec, "DATA", "source images, labels ignored " DA_DATA_SOURCES, false},
        {"--steps", DA_OPT_INT, &steps, "N", "optimiser steps (0 = 1000; with --resume: the checkpoint's total)", false},
        {"--lr", DA_OPT_FLOAT, &lr, "LR", "AdamW peak learning rate, cosine decay to 0", false},
        {"--wd", DA_OPT_FLOAT, &wd, "W", "AdamW weight decay on matrices", false},
        {"--warmup", DA_OPT_INT, &warmup, "N", "linear warm-up steps", false},
        {"--grad-clip", DA_OPT_FLOAT, &clip, "X", "clip the global gradient norm to X, 0 = off", false},
        {"--image-size", DA_OPT_INT, &o.image_size, "N", "model input size", false},
        {"--patch", DA_OPT_INT, &o.patch_size, "N", "patch size", false},
        {"--image-channels", DA_OPT_INT, &o.channels, "N", "model input channels, 1 or 3", false},
        {"--width", DA_OPT_INT, &o.vision_width, "N", "vision width", false},
        {"--layers", DA_OPT_INT, &o.vision_layers, "N", "vision layers", false},
        {"--text-width", DA_OPT_INT, &o.text_width, "N", "text width", false},
        {"--text-layers", DA_OPT_INT, &o.text_layers, "N", "text layers", false},
        {"--heads", DA_OPT_INT, &o.heads, "N", "attention heads of both towers", false},
        {"--embed", DA_OPT_INT, &o.embed_dim, "N", "joint embedding size", false},
        {"--context", DA_OPT_INT, &o.context, "N", "text context in tokens", false},
        {"--merges", DA_OPT_INT, &o.merges, "N", "at most N BPE merges learned from the captions, 0 = bytes", false},
        {"--eval-data", DA_OPT_STRING, &eval_spec, "DATA", "held-out images of the final evaluation", false},
        {"--eval-take", DA_OPT_INT, &eval_take, "N", "evaluation images per style", false},
        {"--no-eval", DA_OPT_FLAG, &no_eval, NULL, "skip the final evaluation", false},
    };
    static const da_common_words words = {
        .out_metavar = "M.safetensors", .out = "the trained model (config, vocabulary and evaluation in its metadata)",
        .seed = "seed of the initialisation, images, styles and captions", .batch = "image-caption pairs per step",
        .force = "overwrite an existing --out (and the checkpoint of a fresh run)"};
    const da_fragments shared = {
        .common = &co, .words = &words,
        .common_parts = DA_COPT_OUT | DA_COPT_SEED | DA_COPT_BATCH | DA_COPT_THREADS | DA_COPT_FORCE,
        .data = &dd, .data_parts = DA_DATA_DRAW | DA_DATA_SHAPE};
    da_ckpt_options(&ck, "continue from a checkpoint (model, vocabulary, optimiser, step, settings)", opts + da_option_count(opts));
    da_fragments_add(&shared, opts);
    static const da_cmd_info info = {
        CMD, "--out M.safetensors [--data D] [options]",
        "Trains the built-in mini-CLIP: the CLIP ViT architecture with a small config, contrastively\n"
        "(symmetric InfoNCE with a learnable temperature, AdamW, warm-up + cosine decay) on source\n"
        "images rendered in random styles of the style bank and captioned from templates x style words\n"
        "(\"a blurry of an object.\", \"a sketch view.\"). Pairs that share a style are positives of\n"
        "each other (multi-positive InfoNCE). Captions name the style only; the images' labels are\n"
        "never read; the held-out style (pencil) is never rendered or named in training.\n"
        "The vocabulary (BPE merges learned from the captions) is stored in the model file.\n"
        "At the end the model is evaluated zero-shot on --eval-data (see `diffadapt eval-clip`); the\n"
        "table goes to stdout, the figures into the model's metadata and OUT with .eval.json.",
        NULL};
    int rc;
    if (!da_fragments_parse(&info, opts, &shared, argc, argv, &rc)) return rc;
    if (steps < 0 || co.batch < 2 || warmup < 0 || eval_take < 1) {
        fprintf(stderr, "diffadapt " CMD ": --steps and --warmup must not be negative, --batch must be at least 2 "
                        "(a contrastive batch) and --eval-take at least 1\n");
        return 2;
    }
    char ckpt_buf[4200], json_path[4200];
    if ((rc = da_ckpt_resolve(CMD, &ck, co.out, ckpt_buf, sizeof ckpt_buf))) return rc;
    const char *out = co.out, *ckpt = ck.path;
    da_sibling_path(json_path, sizeof json_path, out, ".eval.json");
    if (da_check_output(out, co.force) || da_check_checkpoint(ckpt, ck.resume != NULL, co.force)) return 1;
    da_set_threads(co.threads);
    o.batch = co.batch;
    o.lr = lr;
    o.weight_decay = wd;
    o.warmup = warmup;
    o.grad_clip = clip;
    o.seed = (uint64_t)co.seed;
    if (steps > 0) o.steps = steps;

    char err[2048];
    da_dataset data = {0};
    da_miniclip_trainer tr;
    memset(&tr, 0, sizeof tr);
    int status = 1;
    char *eval_json = NULL;
    /* unlabelled: any labels the source carries are dropped right away, so no code after this could use them */
    if (da_cli_load_data(CMD, "--data", data_spec, &dd, &data)) return 1;
    free(data.labels);
    data.labels = NULL;
    fprintf(stderr, "source images: %s, %lld images %lldx%lldx%lld (CxHxW), labels not used\n", data_spec,
            (long long)data.n, (long long)data.c, (long long)data.h, (long long)data.w);
    if (ck.resume ? da_miniclip_trainer_resume(&tr, ck.resume, &data, steps, err, sizeof err)
                  : da_miniclip_trainer_init(&tr, &o, &data, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }
    print_plan(&tr);
    if (train_steps(&tr, ckpt, ck.every)) goto done;
    if (!no_eval) {
        double te = da_now();
        if (da_miniclip_run_eval(&tr.model, NULL, eval_spec, eval_take, dd.pad, tr.o.seed, json_path, &eval_json)) goto done;
        fprintf(stderr, "evaluated in %.1f s; wrote %s\n", da_now() - te, json_path);
    }
    if (da_miniclip_trainer_save_model(&tr, out, eval_json, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }
    printf("wrote %s (checkpoint %s)\n", out, ckpt);
    status = 0;
done:
    free(eval_json);
    da_miniclip_trainer_free(&tr);
    da_dataset_free(&data);
    return status;
}
