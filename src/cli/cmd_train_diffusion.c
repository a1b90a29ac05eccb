/* cmd_train_diffusion.c — `diffadapt train-diffusion`: trains a DDPM UNet on a data set with
 * progress, atomic checkpoints and exact resume; saves the EMA weights with their config. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/args.h"
#include "cli/checkpoint_options.h"
#include "cli/commands.h"
#include "cli/option_fragments.h"
#include "cli/outputs.h"
#include "diffusion/train.h"
#include "util/atomic.h"
#include "util/files.h"
#include "util/progress.h"

/* "1,2,2" -> ints; "none" or "" -> 0 entries. Returns -1 on a malformed list. */
static int parse_int_list(const char *s, int *out, int cap, int *n) {
    *n = 0;
    if (!strcmp(s, "none") || !*s) return 0;
    const char *p = s;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > 100000 || *n >= cap) return -1;
        out[(*n)++] = (int)v;
        p = end;
        if (*p == ',') p++;
        else if (*p) return -1;
    }
    return 0;
}

#define CMD "train-diffusion"

/* Whether an option was given on the command line (its default cannot tell). */
static bool given(int argc, char **argv, const char *name) {
    size_t n = strlen(name);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) break;
        if (!strncmp(argv[i], name, n) && (argv[i][n] == 0 || argv[i][n] == '=')) return true;
    }
    return false;
}

/* A log row that cannot be written (full disk) stops the run loudly: a log with rows missing
 * and exit 0 would look complete. fprintf's result is passed in; returns true on failure. */
static bool log_failed(FILE *log, int printed, const char *path, const char *ckpt) {
    if (printed >= 0 && fflush(log) == 0) return false;
    fprintf(stderr, "\nerror: writing --log %s failed: %s; training stopped (the checkpoint %s holds the last saved "
            "state)\n", path, strerror(errno), ckpt);
    return true;
}

/* Keeps the header and the rows of steps <= step of an existing log (rewritten atomically). */
static int log_keep_until(const char *path, int64_t step, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;   /* no log yet */
    da_atomic_file af;
    if (da_atomic_open(&af, path, err, errlen)) {
        fclose(f);
        return -1;
    }
    char line[1024];
    int dropped = 0;
    for (bool first = true; fgets(line, sizeof line, f); first = false) {
        char *end;
        long long s = strtoll(line, &end, 10);
        if (!first && end != line && *end == ',' && s > step) {
            dropped++;
            continue;
        }
        fputs(line, af.f);
    }
    fclose(f);
    if (!dropped) {
        da_atomic_abort(&af);
        return 0;
    }
    fprintf(stderr, "dropped %d row%s of --log %s after step %" PRId64 " (the checkpoint's step)\n", dropped,
            dropped > 1 ? "s" : "", path, step);
    return da_atomic_commit(&af, err, errlen);
}

/* Every setting of a run, as parsed. The model options (--ch ...) shape a fresh model only. */
typedef struct {
    const char *data_spec, *config, *log_path, *ch_mult, *attn;
    int ch, nrb, steps, warmup, log_every;
    float dropout, lr, grad_clip, ema, p2_gamma, p2_k;
    bool no_resamp_conv, flip;
    da_common co;         /* --out --seed --batch --threads --force */
    da_cli_ckpt ckpt;     /* --resume --checkpoint --checkpoint-every */
    da_cli_data dd;
    int argc;             /* the command line, to tell which options were given */
    char **argv;
} run_settings;

static bool was_given(const run_settings *s, const char *name) { return given(s->argc, s->argv, name); }

/* Checks the outputs before any compute and clears what a killed run left; 0, or 1 after printing. */
static int prepare_outputs(const run_settings *s) {
    const char *out = s->co.out, *ckpt = s->ckpt.path, *log_path = s->log_path;
    if (da_check_output(out, s->co.force) || da_check_output_folder(ckpt) || (log_path && da_check_output_folder(log_path)))
        return 1;
    /* a killed run leaves its checkpoint's temporary (megabytes) behind: ours, so remove it */
    da_remove_stale_tmp_of(ckpt);
    da_remove_stale_tmp_of(out);
    if (!s->ckpt.resume && log_path && da_is_file(log_path)) {
        /* a new run appended to an old log would repeat its steps */
        if (!s->co.force) {
            fprintf(stderr, "error: --log %s already exists; continue its run with --resume, or pass --force to start "
                            "the log anew\n", log_path);
            return 1;
        }
        char err[1024];
        if (da_atomic_write(log_path, "", 0, err, sizeof err)) {
            fprintf(stderr, "error: %s\n", err);
            return 1;
        }
    }
    return da_check_checkpoint(ckpt, s->ckpt.resume != NULL, s->co.force);
}

/* Continues the checkpoint's run; its settings must not be changed on the command line.
 * Returns 0, or 1 after printing. */
static int resume_run(const run_settings *s, const da_dataset *data, da_diff_trainer *tr) {
    if (s->config || was_given(s, "--ch") || was_given(s, "--num-res-blocks") || was_given(s, "--ch-mult") ||
        was_given(s, "--attn") || was_given(s, "--dropout") || s->no_resamp_conv)
        fprintf(stderr, "note: --resume takes the model config from the checkpoint; model options are ignored\n");
    char err[4096];
    if (da_diff_trainer_resume(tr, s->ckpt.resume, data, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    /* the settings are part of the run: a different value would break the exact resume */
    const da_diff_train_opts *o = &tr->o;
#define DIFFERS(opt, cond) (was_given(s, opt) && (cond))
    const char *bad = DIFFERS("--batch", s->co.batch != o->batch) ? "--batch" : DIFFERS("--lr", s->lr != o->lr) ? "--lr"
                    : DIFFERS("--warmup", s->warmup != o->warmup) ? "--warmup"
                    : DIFFERS("--grad-clip", s->grad_clip != o->grad_clip) ? "--grad-clip"
                    : DIFFERS("--ema", s->ema != o->ema) ? "--ema" : DIFFERS("--p2-gamma", s->p2_gamma != o->p2_gamma) ? "--p2-gamma"
                    : DIFFERS("--p2-k", s->p2_k != o->p2_k) ? "--p2-k" : DIFFERS("--seed", (uint64_t)s->co.seed != o->seed) ? "--seed"
                    : s->flip && !o->flip ? "--flip" : NULL;
#undef DIFFERS
    if (bad) {
        fprintf(stderr, "error: %s differs from the checkpoint's setting; a resumed run keeps the settings it was "
                        "started with (leave %s out)\n", bad, bad);
        da_diff_trainer_free(tr);
        return 1;
    }
    fprintf(stderr, "resuming %s at step %" PRId64 "\n", s->ckpt.resume, tr->step);
    return 0;
}

/* A new model: the config from --config (options given explicitly override it) or from the options
 * and the data's shape. Returns 0, 1 after an error or 2 after a usage error, printed. */
static int start_run(const run_settings *s, const da_dataset *data, da_diff_trainer *tr) {
    char err[4096];
    da_unet_config cfg;
    da_unet_config_default(&cfg);
    const char *config = s->config;
    if (config && da_unet_config_load(config, &cfg, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    if (!config) {
        cfg.in_channels = cfg.out_ch = (int)data->c;
        cfg.resolution = (int)data->h;
    }
    bool use = !config;
    if (use || was_given(s, "--ch")) cfg.ch = s->ch;
    if (use || was_given(s, "--num-res-blocks")) cfg.num_res_blocks = s->nrb;
    if (use || was_given(s, "--dropout")) cfg.dropout = s->dropout;
    if (s->no_resamp_conv) cfg.resamp_with_conv = false;
    if ((use || was_given(s, "--ch-mult")) &&
        (parse_int_list(s->ch_mult, cfg.ch_mult, DA_UNET_MAX_LEVELS, &cfg.n_levels) || cfg.n_levels == 0)) {
        fprintf(stderr, "diffadapt " CMD ": --ch-mult expects a list like 1,2,2 (at most %d entries), got '%s'\n", DA_UNET_MAX_LEVELS, s->ch_mult);
        return 2;
    }
    if ((use || was_given(s, "--attn")) && parse_int_list(s->attn, cfg.attn_resolutions, DA_UNET_MAX_LEVELS, &cfg.n_attn)) {
        fprintf(stderr, "diffadapt " CMD ": --attn expects resolutions like 16 or 16,8, or none; got '%s'\n", s->attn);
        return 2;
    }
    da_diff_train_opts o;
    da_diff_train_opts_default(&o);
    o.batch = s->co.batch;
    o.lr = s->lr;
    o.warmup = s->warmup;
    o.grad_clip = s->grad_clip;
    o.ema = config && !was_given(s, "--ema") ? cfg.ema_rate : s->ema;
    cfg.ema_rate = o.ema;
    o.p2_gamma = s->p2_gamma;
    o.p2_k = s->p2_k;
    o.seed = (uint64_t)s->co.seed;
    o.flip = s->flip;
    if (da_diff_trainer_init(tr, &cfg, &o, data, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    return 0;
}

/* Opens --log for appending (NULL without --log); after a resume the rows written after the
 * checkpoint are dropped first. *failed is set after printing an error. */
static FILE *open_log(const run_settings *s, const da_diff_trainer *tr, bool learns_sigma, bool *failed) {
    const char *log_path = s->log_path;
    *failed = false;
    if (!log_path) return NULL;
    char err[4096];
    /* rows written after the checkpoint were lost with the run: drop them, or they repeat */
    if (s->ckpt.resume && log_keep_until(log_path, tr->step, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        *failed = true;
        return NULL;
    }
    struct stat st;
    bool has_header = stat(log_path, &st) == 0 && st.st_size > 0;
    FILE *log = fopen(log_path, "a");
    if (!log) {
        fprintf(stderr, "error: cannot open --log %s for appending: %s\n", log_path, strerror(errno));
        *failed = true;
        return NULL;
    }
    /* learned-variance models log their bound term too (the loss then includes it) */
    if (!has_header && log_failed(log, fprintf(log, "step,loss,grad_norm,lr,img_per_s,elapsed_s%s\n",
                                               learns_sigma ? ",vlb_bpd" : ""), log_path, s->ckpt.path)) {
        fclose(log);
        *failed = true;
        return NULL;
    }
    return log;
}

/* Trains up to --steps with progress, --log rows and checkpoints, then saves the model and the
 * final checkpoint. Returns 0, or 1 after printing. */
static int train(const run_settings *s, da_diff_trainer *tr, FILE *log, bool learns_sigma) {
    const char *ckpt = s->ckpt.path, *log_path = s->log_path;
    const int steps = s->steps, log_every = s->log_every, ckpt_every = s->ckpt.every;
    char err[4096];
    int64_t start = tr->step;
    da_progress prog;
    da_progress_begin(&prog, "train", (steps > start ? steps - start : 0) * (int64_t)tr->o.batch, "img");
    double loss_sum = 0, gn_sum = 0, vb_sum = 0, t_last = da_now(), shown_loss = NAN;
    int n_sum = 0;
    while (tr->step < steps) {
        float loss, gn;
        if (da_diff_trainer_step(tr, &loss, &gn, err, sizeof err)) {
            fprintf(stderr, "\nerror: %s. Training stopped; the last checkpoint (%s) holds the state before the failure\n", err, ckpt);
            return 1;
        }
        loss_sum += loss;
        gn_sum += gn;
        vb_sum += learns_sigma ? tr->vb : 0;
        n_sum++;
        shown_loss = isnan(shown_loss) ? loss : 0.98 * shown_loss + 0.02 * loss;
        if (tr->step % log_every == 0 || tr->step == steps) {
            double now = da_now();
            char vb_col[32] = "";
            if (learns_sigma) snprintf(vb_col, sizeof vb_col, ",%.6f", vb_sum / n_sum);
            if (log && log_failed(log, fprintf(log, "%" PRId64 ",%.6f,%.4f,%.3g,%.2f,%.1f%s\n", tr->step, loss_sum / n_sum,
                                               gn_sum / n_sum, tr->adam.cfg.lr, (double)n_sum * tr->o.batch / (now - t_last),
                                               now - prog.start, vb_col), log_path, ckpt))
                return 1;
            loss_sum = gn_sum = vb_sum = 0;
            n_sum = 0;
            t_last = now;
        }
        if (ckpt_every && tr->step % ckpt_every == 0 && tr->step < steps &&
            da_diff_trainer_save_checkpoint(tr, ckpt, err, sizeof err)) {
            fprintf(stderr, "\nerror: writing the checkpoint: %s\n", err);
            return 1;
        }
        char msg[160];
        snprintf(msg, sizeof msg, "step %" PRId64 "/%d loss %.4f lr %.2g", tr->step, steps, shown_loss, tr->adam.cfg.lr);
        da_progress_update(&prog, (tr->step - start) * tr->o.batch, msg);
    }
    {
        char msg[160];
        if (isnan(shown_loss)) snprintf(msg, sizeof msg, "step %" PRId64 " (no steps run)", tr->step);
        else snprintf(msg, sizeof msg, "step %" PRId64 " loss %.4f", tr->step, shown_loss);
        da_progress_end(&prog, (tr->step - start) * tr->o.batch, msg);
    }
    if (da_diff_trainer_save_checkpoint(tr, ckpt, err, sizeof err) || da_diff_trainer_save_model(tr, s->co.out, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    fprintf(stderr, "saved %s (EMA weights, step %" PRId64 ") and checkpoint %s\n", s->co.out, tr->step, ckpt);
    return 0;
}

int cmd_train_diffusion(int argc, char **argv) {
    run_settings s = {.ch_mult = "1,2,2", .attn = "16", .ch = 64, .nrb = 2, .steps = 10000, .warmup = 500,
                      .log_every = 50, .dropout = 0.1f, .lr = 2e-4f, .grad_clip = 1.0f, .ema = 0.999f, .p2_k = 1.0f,
                      .co = {.seed = 0, .batch = 64}, .ckpt = {.every = 500}, .argc = argc, .argv = argv};
    da_option opts[56] = {
        {"--data", DA_OPT_STRING, &s.data_spec, "DATA", "training images " DA_DATA_SOURCES, true},
        {"--config", DA_OPT_STRING, &s.config, "FILE", "model config, YAML (reference layout, e.g. configs/celeba.yml) or JSON; options below override it", false},
        {"--ch", DA_OPT_INT, &s.ch, "N", "base channels, a multiple of 32", false},
        {"--ch-mult", DA_OPT_STRING, &s.ch_mult, "LIST", "channel multipliers per level", false},
        {"--num-res-blocks", DA_OPT_INT, &s.nrb, "N", "res blocks per level", false},
        {"--attn", DA_OPT_STRING, &s.attn, "LIST", "resolutions with self-attention, or none", false},
        {"--dropout", DA_OPT_FLOAT, &s.dropout, "P", "dropout in the res blocks", false},
        {"--no-resamp-conv", DA_OPT_FLAG, &s.no_resamp_conv, NULL, "resample with average pooling / nearest only (no 3x3 convs)", false},
        {"--steps", DA_OPT_INT, &s.steps, "N", "total optimiser steps", false},
        {"--lr", DA_OPT_FLOAT, &s.lr, "LR", "Adam learning rate", false},
        {"--warmup", DA_OPT_INT, &s.warmup, "N", "linear learning-rate warmup steps", false},
        {"--grad-clip", DA_OPT_FLOAT, &s.grad_clip, "X", "clip the global gradient norm to X, 0 = off", false},
        {"--ema", DA_OPT_FLOAT, &s.ema, "RATE", "EMA decay of the saved weights (a --config ema_rate wins over the default)", false},
        {"--p2-gamma", DA_OPT_FLOAT, &s.p2_gamma, "G", "P2 weighting exponent: loss weight 1/(k+SNR)^G, 0 = plain eps-MSE", false},
        {"--p2-k", DA_OPT_FLOAT, &s.p2_k, "K", "P2 weighting k", false},
        {"--flip", DA_OPT_FLAG, &s.flip, NULL, "random horizontal flips", false},
        {"--log", DA_OPT_STRING, &s.log_path, "FILE.csv", "append step,loss,grad_norm,lr,img_per_s,elapsed_s rows (+ vlb_bpd for learn_sigma)", false},
        {"--log-every", DA_OPT_INT, &s.log_every, "N", "steps per --log row (mean loss over them)", false},
    };
    static const da_common_words words = {
        .out_metavar = "M.safetensors", .out = "the trained model (EMA weights + config)",
        .seed = "seed of the initialisation, batches, noise and dropout", .batch = "images per step",
        .force = "overwrite an existing --out (and a checkpoint of a fresh run)"};
    const da_fragments shared = {
        .common = &s.co, .words = &words,
        .common_parts = DA_COPT_OUT | DA_COPT_SEED | DA_COPT_BATCH | DA_COPT_THREADS | DA_COPT_FORCE,
        .data = &s.dd, .data_parts = DA_DATA_ALL};
    da_ckpt_options(&s.ckpt, "continue from a checkpoint (model, EMA, optimiser, step, settings)", opts + da_option_count(opts));
    da_fragments_add(&shared, opts);
    static const da_cmd_info info = {
        CMD, "--data DATA --out M.safetensors [--config C] [options]",
        "Trains a DDPM UNet (epsilon prediction, linear betas 1e-4..0.02 over 1000 steps) with Adam,\n"
        "learning-rate warmup, gradient clipping and an EMA copy of the weights. Batches, noise,\n"
        "timesteps (antithetic pairs t, T-1-t) and dropout depend only on (--seed, step), so --resume\n"
        "from a checkpoint repeats an uninterrupted run exactly (with the same --threads). The model\n"
        "input size and channels follow the data (--size/--pad/--channels). A NaN or infinite loss\n"
        "stops training with an error; the last checkpoint is kept.",
        NULL};
    int rc;
    if (!da_fragments_parse(&info, opts, &shared, argc, argv, &rc)) return rc;
    if (s.steps < 1 || s.log_every < 1) {
        fprintf(stderr, "diffadapt " CMD ": --steps and --log-every must be >= 1\n");
        return 2;
    }
    char ckpt_buf[4200];
    if ((rc = da_ckpt_resolve(CMD, &s.ckpt, s.co.out, ckpt_buf, sizeof ckpt_buf))) return rc;
    if (prepare_outputs(&s)) return 1;
    da_set_threads(s.co.threads);

    da_dataset data;
    if (da_cli_load_data(CMD, "training data", s.data_spec, &s.dd, &data)) return 1;
    fprintf(stderr, "training data %s: %lld images %lldx%lldx%lld (CxHxW)\n", s.data_spec, (long long)data.n,
            (long long)data.c, (long long)data.h, (long long)data.w);
    da_diff_trainer tr;
    int status = s.ckpt.resume ? resume_run(&s, &data, &tr) : start_run(&s, &data, &tr);
    if (status) {
        da_dataset_free(&data);
        return status;
    }
    char cs[256];
    fprintf(stderr, "model: %s, %.2f M parameters; batch %d, lr %g, warmup %d, grad-clip %g, ema %g, p2 gamma %g k %g, "
                    "seed %" PRIu64 "%s, %d threads\n",
            da_unet_config_str(&tr.model.cfg, cs, sizeof cs), (double)da_unet_num_params(&tr.model) / 1e6, tr.o.batch,
            (double)tr.o.lr, tr.o.warmup, (double)tr.o.grad_clip, (double)tr.o.ema, (double)tr.o.p2_gamma,
            (double)tr.o.p2_k, tr.o.seed, tr.o.flip ? ", flips" : "", da_get_threads());
    if (tr.step >= s.steps)
        fprintf(stderr, "the checkpoint is already at step %" PRId64 " >= --steps %d; raise --steps to train more\n",
                tr.step, s.steps);
    bool learns_sigma = da_diff_trainer_learns_sigma(&tr), log_error;
    if (learns_sigma)
        fprintf(stderr, "learned variance: loss = eps-MSE + (T/1000) * L_vlb term (bits/dim), as improved-DDPM's hybrid loss\n");
    FILE *log = open_log(&s, &tr, learns_sigma, &log_error);
    status = log_error ? 1 : train(&s, &tr, log, learns_sigma);
    if (log && fclose(log) != 0 && status == 0) {
        fprintf(stderr, "error: writing --log %s failed: %s\n", s.log_path, strerror(errno));
        status = 1;
    }
    da_diff_trainer_free(&tr);
    da_dataset_free(&data);
    return status;
}
