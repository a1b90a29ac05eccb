/* cmd_finetune.c — `diffadapt finetune`: DiffusionCLIP fine-tuning of a diffusion model toward a
 * text (design.md §2) on the library's fine-tuning run (diffadapt.h), one epoch at a time, with
 * cached latents, per-image progress, epoch checkpoints, resume and grids. The options bind to the
 * method's settings (da_ft_config, shared with the other commands), which become the library's. */
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffadapt.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/diffusion_cli.h"
#include "cli/option_fragments.h"
#include "cli/outputs.h"
#include "data/image.h"
#include "diffusion/finetune.h"
#include "io/safetensors.h"
#include "nn/params.h"
#include "util/atomic.h"
#include "util/files.h"

#define CMD "finetune"

/* FNV-1a over the selected images (and labels): identifies the training data in cache keys. */
static uint64_t data_hash(const da_dataset *d, int64_t n) {
    uint64_t h = DA_FNV1A64_INIT;
    int64_t dims[4] = {n, d->c, d->h, d->w};
    h = da_fnv1a64(h, dims, sizeof dims);
    h = da_fnv1a64(h, d->images, sizeof(float) * (size_t)(n * d->c * d->h * d->w));
    if (d->labels) h = da_fnv1a64(h, d->labels, sizeof(int64_t) * (size_t)n);
    return h;
}

/* ---- the latent cache ----------------------------------------------------------------------- */

/* Loads latents (n,C,H,W) from path when it holds them under this key; 0 when loaded. */
static int cache_load(const char *path, const char *key, float *lat, const int64_t shape[4]) {
    st_file f;
    char err[1024];
    if (st_open(path, &f, err, sizeof err)) return -1;
    int rc = -1;
    const char *k = st_meta_get(&f, "key");
    const st_tensor_info *t = st_find(&f, "latents");
    if (k && !strcmp(k, key) && t && t->ndim == 4 && !memcmp(t->shape, shape, sizeof(int64_t) * 4))
        rc = st_read_f32(&f, t, lat, err, sizeof err);
    st_close(&f);
    return rc;
}

/* The latents of every image (n,C,H,W) = shape: from the cache file when its key matches, else
 * computed with the original model (the library's DDIM inversion, as the run's own) and saved.
 * Prints the error and returns -1. */
static int latents(const char *cache_dir, const da_model *m, const da_ft_config *cfg, const float *images,
                   const int64_t shape[4], uint64_t dhash, float *lat) {
    char model_hash[17];
    da_model_hash(m, model_hash);
    uint64_t h = da_fnv1a64(DA_FNV1A64_INIT, "diffadapt-latents-v1", 20);
    h = da_fnv1a64(h, model_hash, strlen(model_hash));
    h = da_fnv1a64(h, &dhash, sizeof dhash);
    int keys[2] = {cfg->t0, cfg->inv_steps};
    h = da_fnv1a64(h, keys, sizeof keys);
    if (cfg->ddim_batch != 8) h = da_fnv1a64(h, &cfg->ddim_batch, sizeof cfg->ddim_batch);   /* 8: older caches stay valid */
    char key[17], path[4400], err[2048];
    snprintf(key, sizeof key, "%016" PRIx64, h);
    snprintf(path, sizeof path, "%s/latents-%s.safetensors", cache_dir, key);
    if (cache_load(path, key, lat, shape) == 0) {
        fprintf(stderr, "latents: reusing %s\n", path);
        return 0;
    }
    fprintf(stderr, "latents: inverting %lld images (t0 %d, %d steps) with the original model\n", (long long)shape[0],
            cfg->t0, cfg->inv_steps);
    const int64_t per = shape[1] * shape[2] * shape[3];
    memcpy(lat, images, sizeof(float) * (size_t)(shape[0] * per));
    const da_ddim_settings ds = {.t0 = cfg->t0, .steps = cfg->inv_steps, .batch = cfg->ddim_batch};
    if (da_cli_ddim("invert", m, NULL, 1.0f, DA_CLI_INVERT, &ds, lat, shape[0])) return -1;
    if (da_mkdirs(cache_dir, err, sizeof err)) {
        fprintf(stderr, "warning: cannot create the latent cache folder: %s\n", err);
        return 0;
    }
    char s_t0[16], s_inv[16];
    snprintf(s_t0, sizeof s_t0, "%d", cfg->t0);
    snprintf(s_inv, sizeof s_inv, "%d", cfg->inv_steps);
    st_writer *w = st_writer_new();
    st_writer_add_f32(w, "latents", 4, shape, lat);
    st_writer_set_meta(w, "key", key);
    st_writer_set_meta(w, "model_hash", model_hash);
    st_writer_set_meta(w, "t0", s_t0);
    st_writer_set_meta(w, "inv_steps", s_inv);
    if (st_writer_save(w, path, err, sizeof err)) fprintf(stderr, "warning: latents not cached: %s\n", err);
    else fprintf(stderr, "latents: cached in %s\n", path);
    st_writer_free(w);
    return 0;
}

/* ---- outputs ---------------------------------------------------------------------------------- */

/* ---- the per-image log (CSV, rewritten after every epoch) ---------------------------------- */

typedef struct {
    char *buf;
    size_t len, cap;
} strbuf;

static void sb_add(strbuf *s, const char *text) {
    size_t n = strlen(text);
    if (s->len + n + 1 > s->cap) {
        s->cap = (s->len + n + 1) * 2;
        s->buf = realloc(s->buf, s->cap);
        da_check(s->buf != NULL, CMD, "out of memory");
    }
    memcpy(s->buf + s->len, text, n + 1);
    s->len += n;
}

#define LOG_HEADER "epoch,first_image,images,loss,clip,dir,l1,id,lr,seconds\n"

/* Keeps the rows of epochs <= epochs_done from an earlier log (for a resumed run). */
static void log_reload(strbuf *log, const char *path, int epochs_done) {
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[1024];
    bool first = true;
    while (fgets(line, sizeof line, f)) {
        if (first) { first = false; continue; }   /* header */
        if (atoi(line) >= 1 && atoi(line) <= epochs_done) sb_add(log, line);
    }
    fclose(f);
}

/* out.epochN.png */
static void grid_path(char *buf, size_t len, const char *out, int epoch) {
    char suffix[32];
    snprintf(suffix, sizeof suffix, ".epoch%d.png", epoch);
    da_sibling_path(buf, len, out, suffix);
}

/* Checks the outputs before any work: the model, its checkpoint, the log and the grids of an
 * earlier run are kept unless --force (or --resume with a checkpoint). Prints why and returns 1. */
static int check_outputs(const char *out, const char *ckpt, const char *log_path, int epochs, bool resume, bool force) {
    if (da_check_output_folder(out)) return 1;   /* found now, not after the first epoch */
    bool continuing = resume && da_path_exists(ckpt);
    if (da_path_exists(out) && !force && !continuing) {
        fprintf(stderr, "error: %s already exists; pass --force to overwrite it\n", out);
        return 1;
    }
    if (da_path_exists(ckpt) && !resume && !force) {
        fprintf(stderr, "error: %s holds the checkpoint of an earlier run: pass --resume to continue it, or --force to start over\n",
                ckpt);
        return 1;
    }
    /* a killed run leaves the temporaries of what it was writing (the checkpoint: megabytes) */
    da_remove_stale_tmp_of(out);
    da_remove_stale_tmp_of(ckpt);
    da_remove_stale_tmp_of(log_path);
    char grid[4200];
    for (int e = 1; e <= epochs; e++) {
        grid_path(grid, sizeof grid, out, e);
        da_remove_stale_tmp_of(grid);
    }
    /* without a checkpoint to continue, the log and the grids would be written anew: they may be
     * the only record of an earlier run */
    if (!force && !continuing) {
        const char *found = da_path_exists(log_path) ? log_path : NULL;
        for (int e = 1; e <= epochs && !found; e++) {
            grid_path(grid, sizeof grid, out, e);
            if (da_path_exists(grid)) found = grid;
        }
        if (found) {
            fprintf(stderr, "error: %s exists (an earlier run's, with no checkpoint to continue); pass --force to "
                    "overwrite it, or choose another --out\n", found);
            return 1;
        }
    }
    return 0;
}

/* ---- what the command keeps after every batch and epoch ------------------------------------ */

typedef struct {
    const char *out, *ckpt, *log_path;
    da_finetune_run *run;
    const da_dataset *d;
    int64_t images, n_hold;   /* the grid shows the n_hold images after the training ones */
    const float *lat;         /* (images + n_hold, C,H,W) */
    float *hold;              /* (2·n_hold + 1, C,H,W) grid scratch */
    strbuf log;
} run_state;

static void on_batch(void *user, const da_finetune_batch_report *r) {
    run_state *st = user;
    char first[32] = "";
    if (r->n > 1) snprintf(first, sizeof first, "%lld-", (long long)r->first + 1);
    fprintf(stderr, "epoch %d/%d  image %s%lld/%lld  loss %.4f  clip %.4f (dir %.4f)  l1 %.4f  id %.4f  lr %.3g  %.2f s\n",
            r->epoch, r->epochs, first, (long long)(r->first + r->n), (long long)r->images, r->loss, r->clip, r->dir,
            r->l1, r->id, r->lr, r->seconds);
    char row[512];
    snprintf(row, sizeof row, "%d,%lld,%lld,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.3f\n", r->epoch, (long long)r->first,
             (long long)r->n, r->loss, r->clip, r->dir, r->l1, r->id, r->lr, r->seconds);
    sb_add(&st->log, row);
}

/* The held-back sources on the top row, their translations below. */
static int write_grid(run_state *st, int epoch, char *err, size_t errlen) {
    const da_dataset *d = st->d;
    const int64_t per = d->c * d->h * d->w, k = st->n_hold;
    char grid[4300];
    grid_path(grid, sizeof grid, st->out, epoch);
    memcpy(st->hold, d->images + st->images * per, sizeof(float) * (size_t)(k * per));
    memcpy(st->hold + k * per, st->lat + st->images * per, sizeof(float) * (size_t)(k * per));
    if (da_finetune_run_generate(st->run, st->hold + k * per, k, err, errlen) ||
        da_image_write_grid(grid, st->hold, 2 * k, (int)d->c, (int)d->h, (int)d->w, (int)k, err, errlen))
        return -1;
    fprintf(stderr, "grid: %s\n", grid);
    return 0;
}

/* After every epoch: its line, the grid, the checkpoint and the log. A full disk must not pass as
 * a finished run: an error stops the command, and the previous checkpoint resumes. */
static int after_epoch(run_state *st, const da_finetune_epoch_report *r, char *err, size_t errlen) {
    fprintf(stderr,
            "epoch %d/%d done in %.1f s: mean loss %.4f  clip %.4f (dir %.4f)  l1 %.4f  id %.4f; "
            "peak memory %.1f MB step arena + %.1f MB model/grads/Adam + %.1f MB frozen nets\n",
            r->epoch, r->epochs, r->seconds, r->loss, r->clip, r->dir, r->l1, r->id, (double)r->arena_peak_bytes / 1e6,
            (double)r->model_bytes / 1e6, (double)r->frozen_bytes / 1e6);
    if (st->n_hold > 0 && write_grid(st, r->epoch, err, errlen)) return -1;
    char e2[2048];
    if (da_finetune_run_save_state(st->run, st->ckpt, e2, sizeof e2)) {
        snprintf(err, errlen, "checkpoint: %s", e2);
        return -1;
    }
    da_atomic_file af;
    if (da_atomic_open(&af, st->log_path, err, errlen)) return -1;
    fputs(LOG_HEADER, af.f);
    if (st->log.buf) fputs(st->log.buf, af.f);
    if (da_atomic_commit(&af, e2, sizeof e2)) {
        snprintf(err, errlen, "%s (the checkpoint of epoch %d is saved: --resume continues)", e2, r->epoch);
        return -1;
    }
    return 0;
}

/* ---- the run's inputs --------------------------------------------------------------------------- */

/* The library's settings from the options (bound to the method's da_ft_config); the texts go to
 * the run separately. */
static void library_settings(const da_ft_config *c, da_finetune_settings *s) {
    da_finetune_defaults(s);
    s->t0 = c->t0;
    s->inv_steps = c->inv_steps;
    s->train_steps = c->train_steps;
    s->epochs = c->epochs;
    s->batch = c->batch;
    s->images = c->images;
    s->lr = c->lr;
    s->lr_gamma = c->lr_gamma;
    s->clip_weight = c->clip_weight;
    s->l1_weight = c->l1_weight;
    s->per_step = c->mode == DA_FT_PER_STEP;
    s->seed = (uint64_t)c->seed;   /* the options keep it >= 0 */
    s->tgt_weight = c->tgt_weight;
    s->ddim_batch = c->ddim_batch;
    s->identity = (int)c->identity;
    s->id_weight = c->id_weight;
    s->recompute = c->recompute;
    s->views = c->views;
    s->view_min_scale = c->view_min_scale;
}

/* The models, data and run of the command; everything it frees. */
typedef struct {
    da_model *m;
    da_clip_model *clip, *idm;
    da_dataset d, tgt;
    da_finetune_run *run;
    float *lat, *hold;
} run_inputs;

static void inputs_free(run_inputs *in) {
    da_finetune_run_free(in->run);
    free(in->lat);
    free(in->hold);
    da_clip_model_free(in->idm);
    da_clip_model_free(in->clip);
    da_dataset_free(&in->tgt);
    da_dataset_free(&in->d);
    da_model_free(in->m);
}

/* Loads the model, CLIP (+ vocabulary), the identity model, the data and the target images
 * (shaped like the data, no class or draw selection); checks their shapes. Prints the error. */
static int load_inputs(run_inputs *in, const da_common *co, const char *id_path, const char *data_spec,
                       const char *tgt_images, const da_cli_data *dd, const da_ft_config *cfg) {
    char err[4096];
    /* float32 inversion: the latents are where the fine-tuning gradients start (docs/precision.md) */
    if (da_cli_load_model(co->model, co->config, DA_CLI_PRECISION_FP32, &in->m)) return -1;
    if (da_clip_model_load_vocab(co->clip, co->vocab, &in->clip, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        return -1;
    }
    char cs[256];
    fprintf(stderr, "clip %s: %s\n", co->clip, da_clip_model_describe(in->clip, cs, sizeof cs));
    if (id_path && da_clip_model_load_image_only(id_path, &in->idm, err, sizeof err)) {
        fprintf(stderr, "error: --id-model: %s\n", err);
        return -1;
    }
    if (da_cli_load_data(CMD, "--data", data_spec, dd, &in->d)) return -1;
    const da_dataset *d = &in->d;
    if (da_cli_check_images_fit_model(d, in->m)) return -1;
    if (d->n < cfg->images) {
        fprintf(stderr, "error: the data hold %lld images but --images is %d: lower --images or select more images\n",
                (long long)d->n, cfg->images);
        return -1;
    }
    if (!tgt_images) return 0;
    da_cli_data td = *dd;
    td.classes = td.attr = td.split = NULL;
    td.take = td.skip = 0;
    if (da_cli_load_data(CMD, "--tgt-images", tgt_images, &td, &in->tgt)) return -1;
    const da_dataset *t = &in->tgt;
    if (t->c != d->c || t->h != d->h || t->w != d->w) {
        fprintf(stderr, "error: --tgt-images holds %lldx%lldx%lld images, --data %lldx%lldx%lld (CxHxW)\n",
                (long long)t->c, (long long)t->h, (long long)t->w, (long long)d->c, (long long)d->h, (long long)d->w);
        return -1;
    }
    return 0;
}

/* The run over the first cfg->images images, moving along the text direction (with --tgt-images
 * mixed with the image direction from the training images to those). data_id names the data
 * in the checkpoint's settings. Prints the error. */
static int create_run(run_inputs *in, const da_ft_config *cfg, uint64_t data_id) {
    char err[16384];
    da_finetune_settings s;
    library_settings(cfg, &s);
    const da_finetune_data data = {.images = in->d.images, .n = cfg->images, .tgt_images = in->tgt.images,
                                   .n_tgt = in->tgt.n, .data_id = data_id};
    if (da_finetune_run_create(in->m, in->clip, in->idm, cfg->src_text, cfg->tgt_text, &data, &s, &in->run, err,
                               sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        return -1;
    }
    if (in->tgt.images)
        fprintf(stderr, "image-guided direction from %lld target images, weight %g\n", (long long)in->tgt.n,
                (double)cfg->tgt_weight);
    return 0;
}

/* With --resume and a checkpoint: the model, Adam and the epochs done from it, and the log rows
 * of those epochs. Prints the error. */
static int resume_run(run_state *st, const da_ft_config *cfg, bool resume, bool force) {
    if (resume && da_path_exists(st->ckpt) && !force) {
        char err[16384];
        if (da_finetune_run_load_state(st->run, st->ckpt, err, sizeof err)) {
            fprintf(stderr, "error: %s\nuse the same options (only --epochs, --threads and --recompute may change), "
                    "or --force to start over\n", err);
            return -1;
        }
        int start = da_finetune_run_epochs_done(st->run);
        fprintf(stderr, "resuming from %s: %d of %d epochs done\n", st->ckpt, start, cfg->epochs);
        log_reload(&st->log, st->log_path, start);
    } else if (resume) {
        fprintf(stderr, "note: no checkpoint at %s; starting from the first epoch\n", st->ckpt);
    }
    return 0;
}

/* The epochs left, each followed by what the command keeps of it. Prints the error. */
static int train(run_state *st, const da_ft_config *cfg) {
    char err[16384];
    while (da_finetune_run_epochs_done(st->run) < cfg->epochs) {
        da_finetune_epoch_report r;
        if (da_finetune_run_epoch(st->run, on_batch, st, &r, err, sizeof err)) {
            fprintf(stderr, "error: %s.\nTraining stopped; the model was not changed by this step. A lower --lr (now %g) "
                    "usually helps; %s\n", err, da_finetune_run_learning_rate(st->run),
                    da_finetune_run_epochs_done(st->run) > 0 ? "--resume continues from the last checkpoint"
                                                             : "no epoch was completed");
            return -1;
        }
        if (after_epoch(st, &r, err, sizeof err)) {
            fprintf(stderr, "error: %s\n", err);
            return -1;
        }
    }
    return 0;
}

static void print_plan(const da_ft_config *c) {
    fprintf(stderr,
            "fine-tuning: \"%s\" -> \"%s\", %d images, %d epochs, batch %d, mode %s%s, t0 %d, %d train steps, lr %g "
            "(x%g per epoch), weights clip %g l1 %g id %g\n",
            c->src_text, c->tgt_text, c->images, c->epochs, c->batch, DA_FT_MODE_NAMES[c->mode],
            c->recompute && c->mode == DA_FT_CHAIN ? " (recompute)" : "", c->t0, c->train_steps, (double)c->lr,
            (double)c->lr_gamma, (double)c->clip_weight, (double)c->l1_weight, (double)c->id_weight);
}

/* ---- the command ---------------------------------------------------------------------------- */

int cmd_finetune(int argc, char **argv) {
    const char *data_spec = NULL, *id_path = NULL, *cache_dir = NULL, *tgt_images = NULL;
    int grid_images = 4;
    bool resume = false;
    da_common co = {0};
    da_ft_config cfg;
    da_ft_config_default(&cfg);
    da_cli_data dd = {0};
    da_option opts[64] = {
        {"--data", DA_OPT_STRING, &data_spec, "DATA", "source images " DA_DATA_SOURCES, true},
        {"--id-model", DA_OPT_STRING, &id_path, "FILE", "identity network: a CLIP model whose image embedding of x0 should stay put", false},
        {"--tgt-images", DA_OPT_STRING, &tgt_images, "DATA", "a few unlabelled target images: the direction becomes their mean CLIP embedding minus the training images' (mixed with the text direction by --tgt-weight)", false},
        {"--ddim-batch", DA_OPT_INT, &cfg.ddim_batch, "N", "images per model call when inverting the training images and drawing the grids", false},
        {"--grid-images", DA_OPT_INT, &grid_images, "N", "held-back images (after the training ones) shown in each epoch's grid", false},
        {"--cache-dir", DA_OPT_STRING, &cache_dir, "DIR", "where the latents are cached (default: diffadapt-cache next to --out)", false},
        {"--resume", DA_OPT_FLAG, &resume, NULL, "continue from the checkpoint of an interrupted run (<out>.ckpt.safetensors)", false},
    };
    static const da_common_words words = {
        .model = "the diffusion model trained on the source images", .out_metavar = "M_ft.safetensors",
        .out = "the fine-tuned model", .force = "overwrite an existing --out and start over"};
    const da_fragments shared = {
        .common = &co, .words = &words,
        .common_parts = DA_COPT_MODEL | DA_COPT_CLIP | DA_COPT_OUT | DA_COPT_THREADS | DA_COPT_FORCE,
        .method = &cfg, .method_parts = DA_MOPT_TEXTS | DA_MOPT_T0 | DA_MOPT_INVERT | DA_MOPT_TRAIN | DA_MOPT_ID_MODEL,
        .texts_required = true,
        .data = &dd, .data_parts = DA_DATA_ALL};
    da_fragments_add(&shared, opts);
    static const da_cmd_info info = {
        CMD, "--model M --clip C --src-text photo --tgt-text sketch --data D --out M_ft.safetensors [options]",
        "DiffusionCLIP fine-tuning. The first --images images are inverted with the original model (DDIM,\n"
        "eta 0, up to --t0; cached) and a copy of the model learns to generate from those latents, in\n"
        "--train-steps steps, images moved along the CLIP direction from --src-text to --tgt-text:\n"
        "loss = clip-weight * -log((2 - L_dir)/2) + l1-weight * |x0 - x^0| (+ id-weight * identity).\n"
        "After every epoch: <out>.ckpt.safetensors (model + Adam + epoch, for --resume),\n"
        "<out>.epochN.png (held-back sources over their translations) and <out>.log.csv.\n"
        "The learning rate is multiplied by --lr-gamma after every epoch; CLIP stays frozen.",
        NULL};
    int rc;
    if (!da_fragments_parse(&info, opts, &shared, argc, argv, &rc)) return rc;
    if ((rc = da_check_suffix(CMD, "--out", co.out, ".safetensors"))) return rc;
    const char *out = co.out;
    const bool force = co.force;
    if (grid_images < 0 || cfg.ddim_batch < 1) {
        fprintf(stderr, "diffadapt " CMD ": --grid-images must not be negative and --ddim-batch must be at least 1\n");
        return 2;
    }
    if (cfg.id_weight > 0 && !id_path) {
        fprintf(stderr, "diffadapt " CMD ": --id-weight %g needs --id-model FILE\n", (double)cfg.id_weight);
        return 2;
    }
    char ckpt[4200], log_path[4200], cache_buf[4200];
    da_sibling_path(ckpt, sizeof ckpt, out, ".ckpt.safetensors");
    da_sibling_path(log_path, sizeof log_path, out, ".log.csv");
    if (!cache_dir) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s", out);
        snprintf(cache_buf, sizeof cache_buf, "%s/diffadapt-cache", dirname(tmp));
        cache_dir = cache_buf;
    }
    if (check_outputs(out, ckpt, log_path, cfg.epochs, resume, force)) return 1;
    da_threads_set(co.threads);

    int status = 1;
    run_inputs in;
    memset(&in, 0, sizeof in);
    run_state st = {.out = out, .ckpt = ckpt, .log_path = log_path, .d = &in.d, .images = cfg.images};
    if (load_inputs(&in, &co, id_path, data_spec, tgt_images, &dd, &cfg)) goto done;
    const da_dataset *d = &in.d;
    int64_t n_hold = d->n - cfg.images < grid_images ? d->n - cfg.images : grid_images;
    int64_t n_all = cfg.images + n_hold, per = d->c * d->h * d->w;
    uint64_t dhash = data_hash(d, n_all);
    if (create_run(&in, &cfg, dhash)) goto done;
    if (n_hold < grid_images)
        fprintf(stderr, "note: only %lld images are left after the %d training images, so the grids show %lld\n",
                (long long)(d->n - cfg.images), cfg.images, (long long)n_hold);

    /* latents of the training and held-back images, from the original model */
    in.lat = malloc(sizeof(float) * (size_t)(n_all * per));
    in.hold = malloc(sizeof(float) * (size_t)((2 * n_hold + 1) * per));
    da_check(in.lat && in.hold, CMD, "out of memory");
    int64_t lshape[4] = {n_all, d->c, d->h, d->w};
    char err[4096];
    if (latents(cache_dir, in.m, &cfg, d->images, lshape, dhash, in.lat)) goto done;
    if (da_finetune_run_set_latents(in.run, in.lat, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }
    st.run = in.run;
    st.lat = in.lat;
    st.hold = in.hold;
    st.n_hold = n_hold;
    if (resume_run(&st, &cfg, resume, force)) goto done;
    print_plan(&cfg);
    if (train(&st, &cfg)) goto done;
    if (da_finetune_run_save_model(in.run, out, co.model, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }
    fprintf(stderr, "wrote %s\n", out);
    status = 0;
done:
    free(st.log.buf);
    inputs_free(&in);
    return status;
}
