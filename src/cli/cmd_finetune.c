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
#include "data/image.h"
#include "diffusion/ddim.h"
#include "diffusion/finetune.h"
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

/* Inverts the images (n,C,H,W) to their latents with the frozen model, 8 at a time. */
static int invert_all(const da_unet *m, const da_ft_config *cfg, const float *images, float *lat, int64_t n) {
    char err[1024];
    da_schedule s;
    if (da_schedule_linear(&s, m->cfg.num_timesteps, m->cfg.beta_start, m->cfg.beta_end, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        return -1;
    }
    int64_t C = m->cfg.in_channels, R = m->cfg.resolution, per = C * R * R;
    memcpy(lat, images, sizeof(float) * (size_t)(n * per));
    da_progress prog;
    da_progress_begin(&prog, "invert", n, "img");
    for (int64_t b0 = 0; b0 < n; b0 += 8) {
        int64_t nb = n - b0 < 8 ? n - b0 : 8;
        int64_t shape[4] = {nb, C, R, R};
        if (da_ddim_invert(&s, da_unet_eps, (void *)m, lat + b0 * per, shape, cfg->inv_steps, cfg->t0, NULL, NULL, err,
                           sizeof err)) {
            fprintf(stderr, "\nerror: %s\n", err);
            return -1;
        }
        da_progress_update(&prog, b0 + nb, NULL);
    }
    da_progress_end(&prog, n, NULL);
    return 0;
}

/* The latents of every image: from the cache file when its key matches, else computed and saved. */
static int latents(const char *cache_dir, const da_unet *m, const char *model_hash, const da_ft_config *cfg,
                   const float *images, const int64_t shape[4], uint64_t dhash, float *lat) {
    uint64_t h = da_fnv1a64(DA_FNV1A64_INIT, "diffadapt-latents-v1", 20);
    h = da_fnv1a64(h, model_hash, strlen(model_hash));
    h = da_fnv1a64(h, &dhash, sizeof dhash);
    int keys[2] = {cfg->t0, cfg->inv_steps};
    h = da_fnv1a64(h, keys, sizeof keys);
    char key[17], path[4400], err[2048];
    snprintf(key, sizeof key, "%016" PRIx64, h);
    snprintf(path, sizeof path, "%s/latents-%s.safetensors", cache_dir, key);
    if (cache_load(path, key, lat, shape) == 0) {
        fprintf(stderr, "latents: reusing %s\n", path);
        return 0;
    }
    fprintf(stderr, "latents: inverting %lld images (t0 %d, %d steps) with the original model\n", (long long)shape[0],
            cfg->t0, cfg->inv_steps);
    if (invert_all(m, cfg, images, lat, shape[0])) return -1;
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

/* "out.safetensors" -> "out" + suffix */
static void with_suffix(char *buf, size_t len, const char *out, const char *suffix) {
    size_t n = strlen(out);
    if (da_ends_with(out, ".safetensors")) n -= strlen(".safetensors");
    snprintf(buf, len, "%.*s%s", (int)n, out, suffix);
}

int cmd_finetune(int argc, char **argv) {
    const char *model = NULL, *config = NULL, *clip_path = NULL, *vocab = NULL, *src_text = NULL, *tgt_text = NULL;
    const char *data_spec = NULL, *out = NULL, *id_path = NULL, *mode_s = "chain", *cache_dir = NULL;
    const char *tgt_images = NULL, *identity = "pixels";
    int views = 0;
    float view_scale = 0.6f, tgt_weight = 1.0f;
    int t0 = 500, inv_steps = 40, train_steps = 6, images = 50, epochs = 5, batch = 1, seed = 0, threads = 0;
    int grid_images = 4;
    float lr = 8e-6f, gamma = 1.3f, clip_w = 3.0f, l1_w = 1.0f, id_w = 0.0f;
    bool resume = false, force = false, recompute = false;
    da_cli_data dd = {0};
    da_option opts[48] = {
        {"--model", DA_OPT_STRING, &model, "M.safetensors", "the diffusion model trained on the source images", true},
        {"--config", DA_OPT_STRING, &config, "FILE", "model config (YAML/JSON) when the file has none", false},
        {"--clip", DA_OPT_STRING, &clip_path, "CLIP", "CLIP model (.safetensors or a Hugging Face folder)", true},
        {"--vocab", DA_OPT_STRING, &vocab, "V", "CLIP vocabulary when the model carries none (bpe_simple_vocab_16e6.txt.gz or a HF folder)", false},
        {"--src-text", DA_OPT_STRING, &src_text, "TEXT", "a word for the source domain, e.g. photo", true},
        {"--tgt-text", DA_OPT_STRING, &tgt_text, "TEXT", "a word for the target domain, e.g. sketch", true},
        {"--data", DA_OPT_STRING, &data_spec, "DATA", "source images (folder, IDX, .safetensors, fashion-mnist[:train|:test], celeba:DIR)", true},
        {"--out", DA_OPT_STRING, &out, "M_ft.safetensors", "the fine-tuned model", true},
        {"--t0", DA_OPT_INT, &t0, "T", "return step: images are inverted up to this timestep", false},
        {"--inv-steps", DA_OPT_INT, &inv_steps, "N", "inversion sequence length (N-1 model calls)", false},
        {"--train-steps", DA_OPT_INT, &train_steps, "N", "generation steps while training", false},
        {"--images", DA_OPT_INT, &images, "N", "training images (the first N of the data)", false},
        {"--grid-images", DA_OPT_INT, &grid_images, "N", "held-back images (after the training ones) shown in each epoch's grid", false},
        {"--epochs", DA_OPT_INT, &epochs, "N", "passes over the training images", false},
        {"--batch", DA_OPT_INT, &batch, "N", "images per batch", false},
        {"--lr", DA_OPT_FLOAT, &lr, "LR", "Adam learning rate of the first epoch", false},
        {"--lr-gamma", DA_OPT_FLOAT, &gamma, "G", "learning rate factor after every epoch", false},
        {"--clip-weight", DA_OPT_FLOAT, &clip_w, "W", "weight of the directional CLIP loss", false},
        {"--l1-weight", DA_OPT_FLOAT, &l1_w, "W", "weight of the L1 distance to the source image", false},
        {"--id-model", DA_OPT_STRING, &id_path, "FILE", "identity network: a CLIP model whose image embedding of x0 should stay put", false},
        {"--id-weight", DA_OPT_FLOAT, &id_w, "W", "weight of 1 - cos(identity embeddings of x0 and the output)", false},
        {"--identity", DA_OPT_STRING, &identity, "pixels|edges|coarse-edges", "what the L1 identity term compares: the pixels (DiffusionCLIP), the edge magnitudes (outlines stay, paper colour and polarity may change) or their 4x4 block maxima (an outline may also become a stroke)", false},
        {"--views", DA_OPT_INT, &views, "N", "average the directional loss over the image and N random views (crop, low-pass, mirror) of the output and the source alike (0 = the image only)", false},
        {"--view-scale", DA_OPT_FLOAT, &view_scale, "S", "smallest crop side of a view, as a share of the image side (0 < S <= 1)", false},
        {"--tgt-images", DA_OPT_STRING, &tgt_images, "DATA", "a few unlabelled target images: the direction becomes their mean CLIP embedding minus the training images' (mixed with the text direction by --tgt-weight)", false},
        {"--tgt-weight", DA_OPT_FLOAT, &tgt_weight, "W", "with --tgt-images: weight of the image direction against the text direction (1 = images only)", false},
        {"--mode", DA_OPT_STRING, &mode_s, "MODE", "chain (gradient through all steps, one Adam step per batch) or per-step (loss on each step's x0_t, one Adam step per step)", false},
        {"--recompute", DA_OPT_FLAG, &recompute, NULL, "chain: rebuild each step's tape during backward (memory of one step, one extra forward)", false},
        {"--seed", DA_OPT_INT, &seed, "N", "seed of the dropout masks", false},
        {"--cache-dir", DA_OPT_STRING, &cache_dir, "DIR", "where the latents are cached (default: diffadapt-cache next to --out)", false},
        {"--threads", DA_OPT_INT, &threads, "N", "worker threads (0 = all cores)", false},
        {"--resume", DA_OPT_FLAG, &resume, NULL, "continue from the checkpoint of an interrupted run (<out>.ckpt.safetensors)", false},
        {"--force", DA_OPT_FLAG, &force, NULL, "overwrite an existing --out and start over", false},
    };
    int n_opts = 0;
    while (opts[n_opts].name) n_opts++;
    da_cli_data_options(&dd, opts + n_opts);
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
    int rc = da_parse_args(&info, opts, argc, argv, NULL, NULL);
    if (rc) return da_args_exit(rc);

    da_ft_config cfg;
    da_ft_config_default(&cfg);
    cfg.t0 = t0;
    cfg.inv_steps = inv_steps;
    cfg.train_steps = train_steps;
    cfg.clip_weight = clip_w;
    cfg.l1_weight = l1_w;
    cfg.id_weight = id_w;
    cfg.recompute = recompute;
    cfg.views = views;
    if (da_ft_identity_parse(identity, &cfg.identity) != 0) {
        fprintf(stderr, "diffadapt " CMD ": --identity is pixels, edges or coarse-edges, got '%s'\n", identity);
        return 2;
    }
    cfg.view_min_scale = view_scale;
    if (tgt_images && !(tgt_weight >= 0.0f && tgt_weight <= 1.0f)) {
        fprintf(stderr, "diffadapt " CMD ": --tgt-weight must be between 0 and 1, got %g\n", (double)tgt_weight);
        return 2;
    }
    if (!strcmp(mode_s, "chain")) cfg.mode = DA_FT_CHAIN;
    else if (!strcmp(mode_s, "per-step")) cfg.mode = DA_FT_PER_STEP;
    else {
        fprintf(stderr, "diffadapt " CMD ": --mode is chain or per-step, got '%s'\n", mode_s);
        return 2;
    }
    if (!da_ends_with(out, ".safetensors")) {
        fprintf(stderr, "diffadapt " CMD ": --out must end in .safetensors, got '%s'\n", out);
        return 2;
    }
    if (images < 1 || epochs < 1 || batch < 1 || grid_images < 0 || seed < 0) {
        fprintf(stderr, "diffadapt " CMD ": --images, --epochs and --batch must be at least 1, --grid-images and --seed not negative\n");
        return 2;
    }
    if (!(lr > 0) || !(gamma > 0)) {
        fprintf(stderr, "diffadapt " CMD ": --lr and --lr-gamma must be positive\n");
        return 2;
    }
    if (!src_text[strspn(src_text, " \t\n")] || !tgt_text[strspn(tgt_text, " \t\n")] || !strcmp(src_text, tgt_text)) {
        /* an empty or repeated text gives no direction to move along */
        fprintf(stderr, "diffadapt " CMD ": --src-text and --tgt-text must be two different, non-empty texts, got \"%s\" "
                        "and \"%s\"\n", src_text, tgt_text);
        return 2;
    }
    if (id_w > 0 && !id_path) {
        fprintf(stderr, "diffadapt " CMD ": --id-weight %g needs --id-model FILE\n", (double)id_w);
        return 2;
    }
    char ckpt[4200], log_path[4200], cache_buf[4200];
    with_suffix(ckpt, sizeof ckpt, out, ".ckpt.safetensors");
    with_suffix(log_path, sizeof log_path, out, ".log.csv");
    if (!cache_dir) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s", out);
        snprintf(cache_buf, sizeof cache_buf, "%s/diffadapt-cache", dirname(tmp));
        cache_dir = cache_buf;
    }
    if (da_check_output_folder(out)) return 1;   /* found now, not after the first epoch */
    if (da_path_exists(out) && !force && !(resume && da_path_exists(ckpt))) {
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
    for (int e = 1; e <= epochs; e++) {
        char suffix[32], grid[4200];
        snprintf(suffix, sizeof suffix, ".epoch%d.png", e);
        with_suffix(grid, sizeof grid, out, suffix);
        da_remove_stale_tmp_of(grid);
    }
    /* without a checkpoint to continue, the log and the grids would be written anew: they may be
     * the only record of an earlier run */
    if (!force && !(resume && da_path_exists(ckpt))) {
        char grid[4200];
        const char *found = da_path_exists(log_path) ? log_path : NULL;
        for (int e = 1; e <= epochs && !found; e++) {
            char suffix[32];
            snprintf(suffix, sizeof suffix, ".epoch%d.png", e);
            with_suffix(grid, sizeof grid, out, suffix);
            if (da_path_exists(grid)) found = grid;
        }
        if (found) {
            fprintf(stderr, "error: %s exists (an earlier run's, with no checkpoint to continue); pass --force to "
                    "overwrite it, or choose another --out\n", found);
            return 1;
        }
    }
    da_set_threads(threads);

    int status = 1;
    da_unet m;
    da_clip clip, idm;
    bool have_clip = false, have_id = false, have_ft = false, have_opt = false;
    da_bpe *bpe = NULL;
    da_dataset d = {0};
    float *dir = NULL, *lat = NULL, *hold = NULL;
    da_finetuner f;
    da_adam opt;
    da_ctx ctx;
    da_ctx_init(&ctx);
    strbuf log = {0};
    char err[16384];
    if (da_cli_load_unet(model, config, &m)) { da_ctx_free(&ctx); return 1; }
    char model_hash[17];
    da_params_hash(&m.params, model_hash);

    if (da_clip_load(&clip, clip_path, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }
    have_clip = true;
    char cs[256];
    fprintf(stderr, "clip %s: %s\n", clip_path, da_clip_config_str(&clip.cfg, cs, sizeof cs));
    bpe = da_clip_vocab(&clip, vocab, err, sizeof err);
    if (!bpe) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }
    dir = malloc(sizeof(float) * (size_t)clip.cfg.embed_dim);
    if (da_clip_text_direction(&clip, bpe, src_text, tgt_text, NULL, 0, dir, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }
    if (id_path) {
        if (da_clip_load(&idm, id_path, err, sizeof err)) {
            fprintf(stderr, "error: --id-model: %s\n", err);
            goto done;
        }
        have_id = true;
    }
    if (da_ft_init(&f, &cfg, &m, &clip, dir, have_id ? &idm : NULL, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }
    have_ft = true;

    if (da_cli_load_data(CMD, "--data", data_spec, &dd, &d)) goto done;
    if (d.c != m.cfg.in_channels || d.h != m.cfg.resolution || d.w != m.cfg.resolution) {
        fprintf(stderr, "error: the images are %lldx%lldx%lld (HxWxC) but the model takes %dx%dx%d; use --size, --pad or --channels\n",
                (long long)d.h, (long long)d.w, (long long)d.c, m.cfg.resolution, m.cfg.resolution, m.cfg.in_channels);
        goto done;
    }
    if (d.n < images) {
        fprintf(stderr, "error: the data hold %lld images but --images is %d: lower --images or select more images\n",
                (long long)d.n, images);
        goto done;
    }
    uint64_t tgt_hash = 0;
    if (tgt_images) {
        /* the image-guided direction: target images shaped like the data (no class or draw selection) */
        da_cli_data td = dd;
        td.classes = td.attr = td.split = NULL;
        td.take = td.skip = 0;
        da_dataset t;
        memset(&t, 0, sizeof t);
        if (da_cli_load_data(CMD, "--tgt-images", tgt_images, &td, &t)) goto done;
        float *img_dir = malloc(sizeof(float) * (size_t)clip.cfg.embed_dim);
        da_check(img_dir != NULL, CMD, "out of memory");
        int r1 = t.c == d.c && t.h == d.h && t.w == d.w ? 0 : -1;
        if (r1) snprintf(err, sizeof err, "--tgt-images holds %lldx%lldx%lld images, --data %lldx%lldx%lld (CxHxW)",
                         (long long)t.c, (long long)t.h, (long long)t.w, (long long)d.c, (long long)d.h, (long long)d.w);
        if (!r1) r1 = da_clip_image_direction(&clip, d.images, images, t.images, t.n, d.c, d.h, d.w, img_dir, err, sizeof err);
        if (!r1 && da_clip_mix_directions(dir, img_dir, tgt_weight, clip.cfg.embed_dim, f.text_dir) != 0) {
            snprintf(err, sizeof err, "the text and image directions cancel at --tgt-weight %g", (double)tgt_weight);
            r1 = -1;
        }
        if (!r1) fprintf(stderr, "image-guided direction from %lld target images, weight %g\n", (long long)t.n, (double)tgt_weight);
        tgt_hash = da_dataset_hash(&t);
        free(img_dir);
        da_dataset_free(&t);
        if (r1) {
            fprintf(stderr, "error: %s\n", err);
            goto done;
        }
    }
    int64_t n_hold = d.n - images < grid_images ? d.n - images : grid_images;
    if (n_hold < grid_images)
        fprintf(stderr, "note: only %lld images are left after the %d training images, so the grids show %lld\n",
                (long long)(d.n - images), images, (long long)n_hold);
    int64_t n_all = images + n_hold, per = d.c * d.h * d.w;
    uint64_t dhash = data_hash(&d, n_all);

    /* latents of the training and held-back images, from the original model */
    lat = malloc(sizeof(float) * (size_t)(n_all * per));
    hold = malloc(sizeof(float) * (size_t)((2 * n_hold + 1) * per));
    da_check(lat && hold, CMD, "out of memory");
    int64_t lshape[4] = {n_all, d.c, d.h, d.w};
    if (latents(cache_dir, &m, model_hash, &cfg, d.images, lshape, dhash, lat)) goto done;

    /* what a checkpoint must agree with to be resumed */
    char clip_hash[17], id_hash[17] = "none", settings[2048];
    da_params_hash(&clip.params, clip_hash);
    if (have_id) da_params_hash(&idm.params, id_hash);
    snprintf(settings, sizeof settings,
             "mode=%s src=\"%s\" tgt=\"%s\" t0=%d inv_steps=%d train_steps=%d images=%d batch=%d lr=%.9g "
             "lr_gamma=%.9g clip_weight=%.9g l1_weight=%.9g id_weight=%.9g seed=%d model=%s data=%016" PRIx64
             " clip=%s id=%s",
             mode_s, src_text, tgt_text, t0, inv_steps, train_steps, images, batch, (double)lr, (double)gamma,
             (double)clip_w, (double)l1_w, (double)id_w, seed, model_hash, dhash, clip_hash, id_hash);
    /* later settings are named only when used, so earlier checkpoints still resume */
    size_t sl = strlen(settings);
    if (cfg.identity != DA_FT_ID_PIXELS) sl += (size_t)snprintf(settings + sl, sizeof settings - sl, " identity=%s", identity);
    if (views > 0) sl += (size_t)snprintf(settings + sl, sizeof settings - sl, " views=%d view_scale=%.9g", views, (double)view_scale);
    if (tgt_images)
        snprintf(settings + sl, sizeof settings - sl, " tgt=%016" PRIx64 " tgt_weight=%.9g", tgt_hash, (double)tgt_weight);

    da_adam_config ac = da_adam_defaults(DA_ADAM);
    ac.lr = lr;
    ac.weight_decay = 0;
    if (da_adam_init(&opt, &ac, f.params, f.n_params, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }
    have_opt = true;
    int start = 0;
    if (resume && da_path_exists(ckpt) && !force) {
        start = ckpt_load(ckpt, &m, &opt, settings, err, sizeof err);
        if (start < 0) {
            fprintf(stderr, "error: %s\n", err);
            goto done;
        }
        fprintf(stderr, "resuming from %s: %d of %d epochs done\n", ckpt, start, epochs);
        log_reload(&log, log_path, start);
    } else if (resume) {
        fprintf(stderr, "note: no checkpoint at %s; starting from the first epoch\n", ckpt);
    }

    fprintf(stderr,
            "fine-tuning: \"%s\" -> \"%s\", %d images, %d epochs, batch %d, mode %s%s, t0 %d, %d train steps, lr %g "
            "(x%g per epoch), weights clip %g l1 %g id %g\n",
            src_text, tgt_text, images, epochs, batch, mode_s, recompute && cfg.mode == DA_FT_CHAIN ? " (recompute)" : "",
            t0, train_steps, (double)lr, (double)gamma, (double)clip_w, (double)l1_w, (double)id_w);
    int64_t model_bytes = da_ft_model_bytes(&f), frozen_bytes = da_ft_frozen_bytes(&f);
    for (int e = start; e < epochs; e++) {
        opt.cfg.lr = (double)lr * pow((double)gamma, (double)e);
        da_ft_terms sum = {0};
        double t_epoch = da_now();
        for (int64_t b0 = 0; b0 < images; b0 += batch) {
            int64_t nb = images - b0 < batch ? images - b0 : batch;
            double t_img = da_now();
            da_ft_terms t;
            uint64_t bseed = da_rng_at((uint64_t)seed, (uint64_t)e * (uint64_t)images + (uint64_t)b0);
            if (da_ft_train_batch(&f, &opt, &ctx, d.images + b0 * per, lat + b0 * per, nb, bseed, NULL, &t, err,
                                  sizeof err)) {
                fprintf(stderr,
                        "error: epoch %d, image %lld: %s.\nTraining stopped; the model was not changed by this step. "
                        "A lower --lr (now %g) usually helps; %s\n",
                        e + 1, (long long)b0 + 1, err, opt.cfg.lr,
                        e > 0 ? "--resume continues from the last checkpoint" : "no epoch was completed");
                goto done;
            }
            double secs = da_now() - t_img;
            char first[32] = "";
            if (nb > 1) snprintf(first, sizeof first, "%lld-", (long long)b0 + 1);
            fprintf(stderr,
                    "epoch %d/%d  image %s%lld/%d  loss %.4f  clip %.4f (dir %.4f)  l1 %.4f  id %.4f  lr %.3g  %.2f s\n",
                    e + 1, epochs, first, (long long)(b0 + nb), images, t.loss, t.clip, t.dir, t.l1, t.id, opt.cfg.lr,
                    secs);
            char row[512];
            snprintf(row, sizeof row, "%d,%lld,%lld,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.3f\n", e + 1, (long long)b0,
                     (long long)nb, t.loss, t.clip, t.dir, t.l1, t.id, opt.cfg.lr, secs);
            sb_add(&log, row);
            sum.loss += t.loss * (double)nb;
            sum.clip += t.clip * (double)nb;
            sum.dir += t.dir * (double)nb;
            sum.l1 += t.l1 * (double)nb;
            sum.id += t.id * (double)nb;
        }
        fprintf(stderr,
                "epoch %d/%d done in %.1f s: mean loss %.4f  clip %.4f (dir %.4f)  l1 %.4f  id %.4f; "
                "peak memory %.1f MB step arena + %.1f MB model/grads/Adam + %.1f MB frozen nets\n",
                e + 1, epochs, da_now() - t_epoch, sum.loss / images, sum.clip / images, sum.dir / images,
                sum.l1 / images, sum.id / images, (double)ctx.arena.peak / 1e6, (double)model_bytes / 1e6,
                (double)frozen_bytes / 1e6);

        if (n_hold > 0) {
            /* sources on the top row, their translations below */
            char grid[4300];
            char suffix[64];
            snprintf(suffix, sizeof suffix, ".epoch%d.png", e + 1);
            with_suffix(grid, sizeof grid, out, suffix);
            memcpy(hold, d.images + images * per, sizeof(float) * (size_t)(n_hold * per));
            memcpy(hold + n_hold * per, lat + images * per, sizeof(float) * (size_t)(n_hold * per));
            da_ft_generate(&f, hold + n_hold * per, n_hold);
            /* a full disk must not pass as a finished run: stop, the previous checkpoint resumes */
            if (da_image_write_grid(grid, hold, 2 * n_hold, (int)d.c, (int)d.h, (int)d.w, (int)n_hold, err, sizeof err)) {
                fprintf(stderr, "error: %s\n", err);
                goto done;
            }
            fprintf(stderr, "grid: %s\n", grid);
        }
        if (ckpt_save(ckpt, &m, &opt, e + 1, settings, err, sizeof err)) {
            fprintf(stderr, "error: checkpoint: %s\n", err);
            goto done;
        }
        da_atomic_file af;
        if (da_atomic_open(&af, log_path, err, sizeof err) == 0) {
            fputs(LOG_HEADER, af.f);
            if (log.buf) fputs(log.buf, af.f);
            if (da_atomic_commit(&af, err, sizeof err)) {
                fprintf(stderr, "error: %s (the checkpoint of epoch %d is saved: --resume continues)\n", err, e + 1);
                goto done;
            }
        } else {
            fprintf(stderr, "error: %s\n", err);
            goto done;
        }
    }

    char s_epochs[16], base[4200];
    snprintf(s_epochs, sizeof s_epochs, "%d", epochs);
    snprintf(base, sizeof base, "%s (%s)", model, model_hash);
    const char *extra[] = {"finetune_src_text", src_text, "finetune_tgt_text", tgt_text, "finetune_settings", settings,
                           "finetune_epochs", s_epochs, "base_model", base};
    if (da_unet_save(&m, out, extra, 5, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }
    fprintf(stderr, "wrote %s\n", out);
    status = 0;
done:
    free(log.buf);
    free(dir);
    free(lat);
    free(hold);
    if (have_opt) da_adam_free(&opt);
    if (have_ft) da_ft_free(&f);
    da_bpe_free(bpe);
    if (have_id) da_clip_free(&idm);
    if (have_clip) da_clip_free(&clip);
    da_dataset_free(&d);
    da_unet_free(&m);
    da_ctx_free(&ctx);
    return status;
}
