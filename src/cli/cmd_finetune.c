/* cmd_finetune.c — `diffadapt finetune`: DiffusionCLIP fine-tuning of a diffusion model toward a
 * text (design.md §2) with cached latents, per-image progress, epoch checkpoints, resume and grids. */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/diffusion_cli.h"
#include "cli/option_fragments.h"
#include "cli/outputs.h"
#include "data/image.h"
#include "diffusion/ddim.h"
#include "diffusion/finetune.h"
#include "diffusion/finetune_run.h"
#include "diffusion/train.h"
#include "io/safetensors.h"
#include "nn/clip_loss.h"
#include "util/atomic.h"
#include "util/files.h"
#include "util/progress.h"

#define CMD "finetune"
#define CKPT_FORMAT "diffadapt-finetune-checkpoint"
#define ADAM_KEY "optimizer.adam_state"

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

/* The latents of every image: from the cache file when its key matches, else computed (with the
 * method's own inversion, da_ft_latents) and saved. */
static int latents(const char *cache_dir, const da_unet *m, const char *model_hash, const da_ft_config *cfg,
                   const float *images, const int64_t shape[4], uint64_t dhash, float *lat) {
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
    da_progress prog;
    da_progress_begin(&prog, "invert", shape[0], "img");
    if (da_ft_latents(m, cfg, images, shape, lat, da_cli_set_progress, &prog, err, sizeof err)) {
        fprintf(stderr, "\nerror: %s\n", err);
        return -1;
    }
    da_progress_end(&prog, shape[0], NULL);
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

/* ---- checkpoints ---------------------------------------------------------------------------- */

static int ckpt_save(const char *path, const da_unet *m, const da_adam *opt, int epochs_done, const char *settings,
                     char *err, size_t errlen) {
    int64_t n = da_adam_state_size(opt);
    float *state = malloc(sizeof(float) * (size_t)(n ? n : 1));
    da_check(state != NULL, CMD, "out of memory");
    da_adam_export(opt, state);
    st_writer *w = st_writer_new();
    for (int i = 0; i < m->params.n; i++) {
        const da_tensor *t = m->params.items[i].t;
        st_writer_add_f32(w, m->params.items[i].name, t->ndim, t->shape, t->data);
    }
    st_writer_add_f32(w, ADAM_KEY, 1, &n, state);
    char s_epoch[16];
    snprintf(s_epoch, sizeof s_epoch, "%d", epochs_done);
    char *js = da_unet_config_to_json(&m->cfg);
    st_writer_set_meta(w, "format", CKPT_FORMAT);
    st_writer_set_meta(w, "epochs_done", s_epoch);
    st_writer_set_meta(w, "settings", settings);
    st_writer_set_meta(w, "config", js);
    int rc = st_writer_save(w, path, err, errlen);
    st_writer_free(w);
    free(js);
    free(state);
    return rc;
}

/* Restores model and optimiser; returns the epochs already done, or -1 with err set. */
static int ckpt_load(const char *path, da_unet *m, da_adam *opt, const char *settings, char *err, size_t errlen) {
    st_file f;
    if (st_open(path, &f, err, errlen)) return -1;
    int rc = -1;
    const char *fmt = st_meta_get(&f, "format"), *s = st_meta_get(&f, "settings"), *ep = st_meta_get(&f, "epochs_done");
    const st_tensor_info *ta = st_find(&f, ADAM_KEY);
    if (!fmt || strcmp(fmt, CKPT_FORMAT) || !s || !ep || !ta) {
        snprintf(err, errlen, "%s is not a fine-tuning checkpoint of diffadapt (remove it, or run without --resume)", path);
        goto out;
    }
    if (strcmp(s, settings)) {
        snprintf(err, errlen,
                 "%s was made with other settings, so it cannot be resumed:\n  checkpoint: %s\n  now:        %s\n"
                 "use the same options (only --epochs, --threads and --recompute may change), or --force to start over",
                 path, s, settings);
        goto out;
    }
    char e2[2048];
    if (da_params_load(&m->params, &f, NULL, DA_LOAD_ALLOW_EXTRA | DA_LOAD_QUIET, NULL, e2, sizeof e2)) {
        snprintf(err, errlen, "%s: %s", path, e2);
        goto out;
    }
    float *state = malloc(sizeof(float) * (size_t)(ta->numel ? ta->numel : 1));
    da_check(state != NULL, CMD, "out of memory");
    if (st_read_f32(&f, ta, state, e2, sizeof e2) || da_adam_import(opt, state, ta->numel, e2, sizeof e2)) {
        snprintf(err, errlen, "%s: optimiser state: %s", path, e2);
        free(state);
        goto out;
    }
    free(state);
    rc = atoi(ep);
out:
    st_close(&f);
    return rc;
}

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

/* ---- the command ---------------------------------------------------------------------------- */

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

/* ---- what the run keeps after every batch and epoch ------------------------------------------ */

typedef struct {
    const char *out, *ckpt, *log_path, *settings;
    da_finetuner *f;
    da_adam *opt;
    const da_dataset *d;
    int64_t images, n_hold;   /* the grid shows the n_hold images after the training ones */
    const float *lat;         /* (images + n_hold, C,H,W) */
    float *hold;              /* (2·n_hold + 1, C,H,W) grid scratch */
    strbuf log;
    int64_t model_bytes, frozen_bytes;
    int epochs_done;
    bool hook_failed;         /* the run stopped in a hook (not in training) */
} run_state;

static void on_batch(void *user, const da_ft_batch_report *r) {
    run_state *st = user;
    char first[32] = "";
    if (r->n > 1) snprintf(first, sizeof first, "%lld-", (long long)r->first + 1);
    const da_ft_terms *t = &r->terms;
    fprintf(stderr, "epoch %d/%d  image %s%lld/%lld  loss %.4f  clip %.4f (dir %.4f)  l1 %.4f  id %.4f  lr %.3g  %.2f s\n",
            r->epoch, r->epochs, first, (long long)(r->first + r->n), (long long)r->images, t->loss, t->clip, t->dir,
            t->l1, t->id, r->lr, r->seconds);
    char row[512];
    snprintf(row, sizeof row, "%d,%lld,%lld,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.3f\n", r->epoch, (long long)r->first,
             (long long)r->n, t->loss, t->clip, t->dir, t->l1, t->id, r->lr, r->seconds);
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
    da_ft_generate(st->f, st->hold + k * per, k);
    if (da_image_write_grid(grid, st->hold, 2 * k, (int)d->c, (int)d->h, (int)d->w, (int)k, err, errlen)) return -1;
    fprintf(stderr, "grid: %s\n", grid);
    return 0;
}

static int on_epoch(void *user, const da_ft_epoch_report *r, char *err, size_t errlen) {
    run_state *st = user;
    const da_ft_terms *m = &r->mean;
    fprintf(stderr,
            "epoch %d/%d done in %.1f s: mean loss %.4f  clip %.4f (dir %.4f)  l1 %.4f  id %.4f; "
            "peak memory %.1f MB step arena + %.1f MB model/grads/Adam + %.1f MB frozen nets\n",
            r->epoch, r->epochs, r->seconds, m->loss, m->clip, m->dir, m->l1, m->id, (double)r->arena_peak / 1e6,
            (double)st->model_bytes / 1e6, (double)st->frozen_bytes / 1e6);
    st->hook_failed = true;
    /* a full disk must not pass as a finished run: stop, the previous checkpoint resumes */
    if (st->n_hold > 0 && write_grid(st, r->epoch, err, errlen)) return -1;
    char e2[2048];
    if (ckpt_save(st->ckpt, st->f->model, st->opt, r->epoch, st->settings, e2, sizeof e2)) {
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
    st->hook_failed = false;
    st->epochs_done = r->epoch;
    return 0;
}

/* ---- the command ---------------------------------------------------------------------------- */

/* The direction to move along: the text direction, with --tgt-images mixed with the image
 * direction from the training images to those (loaded shaped like the data, no class or draw
 * selection). *tgt_hash gets the target images' hash (0 without). Prints the error. */
static int direction(const da_clip *clip, da_bpe *bpe, const da_ft_config *cfg, const da_dataset *d,
                     const char *tgt_images, const da_cli_data *dd, float *dir, uint64_t *tgt_hash) {
    char err[4096];
    da_dataset t;
    memset(&t, 0, sizeof t);
    *tgt_hash = 0;
    if (tgt_images) {
        da_cli_data td = *dd;
        td.classes = td.attr = td.split = NULL;
        td.take = td.skip = 0;
        if (da_cli_load_data(CMD, "--tgt-images", tgt_images, &td, &t)) return -1;
        if (t.c != d->c || t.h != d->h || t.w != d->w) {
            fprintf(stderr, "error: --tgt-images holds %lldx%lldx%lld images, --data %lldx%lldx%lld (CxHxW)\n",
                    (long long)t.c, (long long)t.h, (long long)t.w, (long long)d->c, (long long)d->h, (long long)d->w);
            da_dataset_free(&t);
            return -1;
        }
        *tgt_hash = da_dataset_hash(&t);
    }
    int rc = da_ft_direction(clip, bpe, cfg, d->images, cfg->images, t.images, t.n, d->c, d->h, d->w, dir, NULL, err,
                             sizeof err);
    if (rc) fprintf(stderr, "error: %s\n", err);
    else if (tgt_images)
        fprintf(stderr, "image-guided direction from %lld target images, weight %g\n", (long long)t.n, (double)cfg->tgt_weight);
    da_dataset_free(&t);
    return rc;
}

/* What a checkpoint must agree with to be resumed. Later settings are named only when used, so
 * earlier checkpoints still resume. */
static void settings_text(char *s, size_t len, const da_ft_config *cfg, const char *model_hash, uint64_t dhash,
                          const char *clip_hash, const char *id_hash, bool tgt, uint64_t tgt_hash) {
    size_t n = (size_t)snprintf(s, len,
             "mode=%s src=\"%s\" tgt=\"%s\" t0=%d inv_steps=%d train_steps=%d images=%d batch=%d lr=%.9g "
             "lr_gamma=%.9g clip_weight=%.9g l1_weight=%.9g id_weight=%.9g seed=%d model=%s data=%016" PRIx64
             " clip=%s id=%s", DA_FT_MODE_NAMES[cfg->mode], cfg->src_text, cfg->tgt_text, cfg->t0, cfg->inv_steps,
             cfg->train_steps, cfg->images, cfg->batch, (double)cfg->lr, (double)cfg->lr_gamma, (double)cfg->clip_weight,
             (double)cfg->l1_weight, (double)cfg->id_weight, cfg->seed, model_hash, dhash, clip_hash, id_hash);
    if (cfg->identity != DA_FT_ID_PIXELS && n < len)
        n += (size_t)snprintf(s + n, len - n, " identity=%s", DA_FT_IDENTITY_NAMES[cfg->identity]);
    if (cfg->views > 0 && n < len)
        n += (size_t)snprintf(s + n, len - n, " views=%d view_scale=%.9g", cfg->views, (double)cfg->view_min_scale);
    if (tgt && n < len)
        n += (size_t)snprintf(s + n, len - n, " tgt=%016" PRIx64 " tgt_weight=%.9g", tgt_hash, (double)cfg->tgt_weight);
    if (cfg->ddim_batch != 8 && n < len) snprintf(s + n, len - n, " ddim_batch=%d", cfg->ddim_batch);
}

/* The models and data of a run, loaded and checked; everything the command frees. */
typedef struct {
    da_unet m;
    da_clip clip, idm;
    bool have_m, have_clip, have_id, have_ft, have_opt;
    da_bpe *bpe;
    da_dataset d;
    float *dir, *lat, *hold;
    da_finetuner f;
    da_adam opt;
    char model_hash[17];
} run_inputs;

static void inputs_free(run_inputs *in) {
    free(in->dir);
    free(in->lat);
    free(in->hold);
    if (in->have_opt) da_adam_free(&in->opt);
    if (in->have_ft) da_ft_free(&in->f);
    da_bpe_free(in->bpe);
    if (in->have_id) da_clip_free(&in->idm);
    if (in->have_clip) da_clip_free(&in->clip);
    da_dataset_free(&in->d);
    if (in->have_m) da_unet_free(&in->m);
}

/* Loads the model, CLIP (+ vocabulary), the identity model and the data; checks their shapes. */
static int load_inputs(run_inputs *in, const da_common *co, const char *id_path, const char *data_spec,
                       const da_cli_data *dd, const da_ft_config *cfg) {
    char err[4096];
    const char *clip_path = co->clip;
    if (da_cli_load_unet(co->model, co->config, &in->m)) return -1;
    in->have_m = true;
    da_params_hash(&in->m.params, in->model_hash);
    if (da_clip_load(&in->clip, clip_path, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        return -1;
    }
    in->have_clip = true;
    char cs[256];
    fprintf(stderr, "clip %s: %s\n", clip_path, da_clip_config_str(&in->clip.cfg, cs, sizeof cs));
    in->bpe = da_clip_vocab(&in->clip, co->vocab, err, sizeof err);
    if (!in->bpe) {
        fprintf(stderr, "error: %s\n", err);
        return -1;
    }
    if (id_path) {
        if (da_clip_load(&in->idm, id_path, err, sizeof err)) {
            fprintf(stderr, "error: --id-model: %s\n", err);
            return -1;
        }
        in->have_id = true;
    }
    if (da_cli_load_data(CMD, "--data", data_spec, dd, &in->d)) return -1;
    const da_dataset *d = &in->d;
    if (da_cli_check_images_fit(d, &in->m)) return -1;
    if (d->n < cfg->images) {
        fprintf(stderr, "error: the data hold %lld images but --images is %d: lower --images or select more images\n",
                (long long)d->n, cfg->images);
        return -1;
    }
    return 0;
}

/* The fine-tuned model with what it was made from in its metadata; 0, or 1 after printing. */
static int save_model(const da_unet *m, const char *out, const char *model, const char *model_hash,
                      const da_ft_config *cfg, const char *settings) {
    char s_epochs[16], base[4200], err[4096];
    snprintf(s_epochs, sizeof s_epochs, "%d", cfg->epochs);
    snprintf(base, sizeof base, "%s (%s)", model, model_hash);
    const char *extra[] = {"finetune_src_text", cfg->src_text, "finetune_tgt_text", cfg->tgt_text, "finetune_settings",
                           settings, "finetune_epochs", s_epochs, "base_model", base};
    if (da_unet_save(m, out, extra, 5, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    fprintf(stderr, "wrote %s\n", out);
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
    da_set_threads(co.threads);

    int status = 1;
    run_inputs in;
    memset(&in, 0, sizeof in);
    run_state st = {.out = out, .ckpt = ckpt, .log_path = log_path, .f = &in.f, .opt = &in.opt, .d = &in.d,
                    .images = cfg.images};
    char err[16384];
    if (load_inputs(&in, &co, id_path, data_spec, &dd, &cfg)) goto done;
    in.dir = malloc(sizeof(float) * (size_t)in.clip.cfg.embed_dim);
    da_check(in.dir != NULL, CMD, "out of memory");
    uint64_t tgt_hash;
    if (direction(&in.clip, in.bpe, &cfg, &in.d, tgt_images, &dd, in.dir, &tgt_hash)) goto done;
    if (da_ft_init(&in.f, &cfg, &in.m, &in.clip, in.dir, in.have_id ? &in.idm : NULL, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }
    in.have_ft = true;

    const da_dataset *d = &in.d;
    int64_t n_hold = d->n - cfg.images < grid_images ? d->n - cfg.images : grid_images;
    if (n_hold < grid_images)
        fprintf(stderr, "note: only %lld images are left after the %d training images, so the grids show %lld\n",
                (long long)(d->n - cfg.images), cfg.images, (long long)n_hold);
    int64_t n_all = cfg.images + n_hold, per = d->c * d->h * d->w;
    uint64_t dhash = data_hash(d, n_all);

    /* latents of the training and held-back images, from the original model */
    in.lat = malloc(sizeof(float) * (size_t)(n_all * per));
    in.hold = malloc(sizeof(float) * (size_t)((2 * n_hold + 1) * per));
    da_check(in.lat && in.hold, CMD, "out of memory");
    int64_t lshape[4] = {n_all, d->c, d->h, d->w};
    if (latents(cache_dir, &in.m, in.model_hash, &cfg, d->images, lshape, dhash, in.lat)) goto done;

    char clip_hash[17], id_hash[17] = "none", settings[2048];
    da_params_hash(&in.clip.params, clip_hash);
    if (in.have_id) da_params_hash(&in.idm.params, id_hash);
    settings_text(settings, sizeof settings, &cfg, in.model_hash, dhash, clip_hash, id_hash, tgt_images != NULL, tgt_hash);
    if (da_ft_optimizer_init(&in.f, &in.opt, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }
    in.have_opt = true;
    int start = 0;
    if (resume && da_path_exists(ckpt) && !force) {
        start = ckpt_load(ckpt, &in.m, &in.opt, settings, err, sizeof err);
        if (start < 0) {
            fprintf(stderr, "error: %s\n", err);
            goto done;
        }
        fprintf(stderr, "resuming from %s: %d of %d epochs done\n", ckpt, start, cfg.epochs);
        log_reload(&st.log, log_path, start);
    } else if (resume) {
        fprintf(stderr, "note: no checkpoint at %s; starting from the first epoch\n", ckpt);
    }

    print_plan(&cfg);
    st.settings = settings;
    st.lat = in.lat;
    st.hold = in.hold;
    st.n_hold = n_hold;
    st.epochs_done = start;
    st.model_bytes = da_ft_model_bytes(&in.f);
    st.frozen_bytes = da_ft_frozen_bytes(&in.f);
    da_ft_hooks hooks = {on_batch, on_epoch, &st};
    if (da_ft_run(&in.f, &in.opt, d->images, in.lat, cfg.images, start, &hooks, err, sizeof err)) {
        if (st.hook_failed) fprintf(stderr, "error: %s\n", err);
        else
            fprintf(stderr, "error: %s.\nTraining stopped; the model was not changed by this step. A lower --lr (now %g) "
                    "usually helps; %s\n", err, in.opt.cfg.lr,
                    st.epochs_done > 0 ? "--resume continues from the last checkpoint" : "no epoch was completed");
        goto done;
    }

    status = save_model(&in.m, out, co.model, in.model_hash, &cfg, settings);
done:
    free(st.log.buf);
    inputs_free(&in);
    return status;
}
