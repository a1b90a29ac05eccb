/* stages.c — the model stages of the experiment: the diffusion model and the CLIP model (given,
 * shipped, cached or trained), DiffusionCLIP fine-tuning, translation and the held-out target. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/styles.h"
#include "diffusion/ddim.h"
#include "diffusion/ddim_set.h"
#include "diffusion/finetune.h"
#include "diffusion/finetune_run.h"
#include "diffusion/schedule.h"
#include "diffusion/train.h"
#include "experiment/experiment.h"
#include "io/safetensors.h"
#include "nn/clip_loss.h"
#include "tensor/optim.h"
#include "train/miniclip_train.h"
#include "util/files.h"
#include "util/progress.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* dst gets src's shape, labels, names and source indices, and an uninitialised image buffer. */
static int dataset_like(const da_dataset *src, da_dataset *dst, char *err, size_t errlen) {
    memset(dst, 0, sizeof *dst);
    dst->n = src->n;
    dst->c = src->c;
    dst->h = src->h;
    dst->w = src->w;
    size_t n = (size_t)src->n;
    dst->images = malloc(sizeof(float) * n * (size_t)(src->c * src->h * src->w));
    dst->labels = src->labels ? malloc(sizeof(int64_t) * n) : NULL;
    dst->names = calloc(n, sizeof(char *));
    dst->source_index = malloc(sizeof(int64_t) * n);
    bool ok = dst->images && dst->names && dst->source_index && (!src->labels || dst->labels);
    for (size_t i = 0; ok && i < n; i++) ok = (dst->names[i] = xstrdup(src->names[i])) != NULL;
    if (!ok) {
        da_dataset_free(dst);
        snprintf(err, errlen, "out of memory copying %lld images", (long long)src->n);
        return -1;
    }
    if (src->labels) memcpy(dst->labels, src->labels, sizeof(int64_t) * n);
    memcpy(dst->source_index, src->source_index, sizeof(int64_t) * n);
    return 0;
}

static int64_t per_image(const da_dataset *d) { return d->c * d->h * d->w; }

/* The images of a cached file into a copy of `like` (same shape and labels), or -1. */
static int load_cached_images(const char *path, const da_dataset *like, da_dataset *out, char *err, size_t errlen) {
    st_file f;
    if (st_open(path, &f, err, errlen) != 0) return -1;
    const st_tensor_info *t = st_find(&f, "images");
    int rc = -1;
    if (!t || t->ndim != 4 || t->shape[0] != like->n || t->shape[1] != like->c || t->shape[2] != like->h ||
        t->shape[3] != like->w) {
        snprintf(err, errlen, "%s: no `images` tensor of shape (%lld,%lld,%lld,%lld); delete the file to recompute it",
                 path, (long long)like->n, (long long)like->c, (long long)like->h, (long long)like->w);
        goto out;
    }
    if (dataset_like(like, out, err, errlen) != 0) goto out;
    if (st_read_f32(&f, t, out->images, err, errlen) != 0) {
        da_dataset_free(out);
        goto out;
    }
    rc = 0;
out:
    st_close(&f);
    return rc;
}

/* Saves the images (and labels) of d with the cache key in the metadata. */
static int save_images(const char *path, const da_dataset *d, int64_t n_done, const char *key, char *err,
                       size_t errlen) {
    st_writer *w = st_writer_new();
    int64_t shape[4] = {n_done, d->c, d->h, d->w}, lshape[1] = {n_done};
    st_writer_add_f32(w, "images", 4, shape, d->images);
    if (d->labels) st_writer_add_i64(w, "labels", 1, lshape, d->labels);
    st_writer_set_meta(w, "cache_key", key);
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)n_done);
    st_writer_set_meta(w, "done", buf);
    int rc = st_writer_save(w, path, err, errlen);
    st_writer_free(w);
    return rc;
}

static int unet_schedule(const da_unet *m, da_schedule *s, char *err, size_t errlen) {
    return da_schedule_linear(s, m->cfg.num_timesteps, m->cfg.beta_start, m->cfg.beta_end, err, errlen);
}

/* A second model with src's config and weights. */
static int copy_unet(const da_unet *src, da_unet *dst, char *err, size_t errlen) {
    if (da_unet_init(dst, &src->cfg, 0, err, errlen) != 0) return -1;
    for (int i = 0; i < src->params.n; i++) {
        da_tensor *a = src->params.items[i].t, *b = dst->params.items[i].t;
        memcpy(b->data, a->data, sizeof(float) * (size_t)a->numel);
    }
    return 0;
}

/* A da_set_progress_fn for a progress line (user) counted in model calls. */
static void progress_in_calls(void *user, const da_set_progress *p) { da_progress_update(user, p->calls_done, NULL); }

/* Checks that a diffusion model fits the experiment's images. */
static int check_model_fits(const da_unet *m, const da_dataset *d, const char *what, char *err, size_t errlen) {
    if (m->cfg.in_channels != d->c || m->cfg.out_ch != d->c || m->cfg.resolution != d->h || d->h != d->w) {
        snprintf(err, errlen, "%s takes %dx%dx%d images (in_channels x resolution^2) but the experiment's images are "
                 "%lldx%lldx%lld; use --size/--channels to match, or another model", what, m->cfg.in_channels,
                 m->cfg.resolution, m->cfg.resolution, (long long)d->c, (long long)d->h, (long long)d->w);
        return -1;
    }
    return 0;
}

/* Scans the models folder for a file of this format that fits; path gets the first by name. */
static bool find_shipped(const da_experiment *e, const char *format, char *path, size_t len) {
    char dir[4096];
    if (e->cfg.tiny_models || e->kind != DA_EXP_FASHION || !da_exp_models_dir(&e->cfg, dir, sizeof dir)) return false;
    struct dirent **list = NULL;
    int n = scandir(dir, &list, NULL, alphasort);
    bool found = false;
    for (int i = 0; i < n; i++) {
        const char *nm = list[i]->d_name;
        size_t l = strlen(nm);
        if (!found && l > 12 && strcmp(nm + l - 12, ".safetensors") == 0) {
            char p[4096 + 256];
            snprintf(p, sizeof p, "%s/%s", dir, nm);
            st_file f;
            char err[512];
            if (st_open(p, &f, err, sizeof err) == 0) {
                const char *fmt = st_meta_get(&f, "format");
                bool ok = fmt && strcmp(fmt, format) == 0;
                /* a fine-tuned model is not a source model */
                for (int k = 0; ok && k < f.n_meta; k++)
                    if (strstr(f.meta[k].key, "finetune") || strstr(f.meta[k].key, "tgt_text") ||
                        strcmp(f.meta[k].key, "ft_src_model") == 0)
                        ok = false;
                if (ok && strcmp(format, "diffadapt-unet") == 0) {
                    const char *js = st_meta_get(&f, "config");
                    da_unet_config uc;
                    da_unet_config_default(&uc);
                    ok = js && da_unet_config_from_json(js, p, &uc, err, sizeof err) == 0 &&
                         uc.in_channels == e->train.c && uc.resolution == e->train.h && e->train.h == e->train.w;
                }
                if (ok) {
                    snprintf(path, len, "%s", p);
                    found = true;
                }
                st_close(&f);
            }
        }
        free(list[i]);
    }
    free(list);
    return found;
}

/* The tail of a stage's detail: " (read from the cache; computing it took 372 s)" when the
 * result came from the cache file at path, "" otherwise. */
static const char *cache_tail(const char *source, const char *path, char *buf, size_t len) {
    buf[0] = 0;
    if (strcmp(source, "cache") == 0) {
        char t[160];
        snprintf(buf, len, " (%s)", da_exp_cache_time_text(path, 0, t, sizeof t));
    }
    return buf;
}

/* ---- stage 1: the diffusion model --------------------------------------------------------- */

/* The architecture of a diffusion model trained here: the one of the shipped Fashion-MNIST model
 * (docs/models.md: ch 32, ch_mult 1,2,2, one res block per level, no attention, no resampling
 * convolutions, no dropout), sized to the images; tiny for --quick/--smoke. */
static void fallback_unet_config(const da_experiment *e, da_unet_config *uc) {
    da_unet_config_default(uc);
    uc->in_channels = uc->out_ch = (int)e->train.c;
    uc->resolution = (int)e->train.h;
    uc->ch = e->cfg.diff_ch >= 32 ? e->cfg.diff_ch : 32;
    uc->num_res_blocks = 1;
    uc->n_attn = 0;
    uc->resamp_with_conv = false;
    uc->dropout = 0;
    uc->ema_rate = 0.995f;
    if (e->cfg.quick || e->cfg.tiny_models) {
        /* a --quick/--smoke run without a shipped model trains a tiny one on the spot */
        uc->n_levels = 2;
        uc->ch_mult[0] = 1;
        uc->ch_mult[1] = 2;
    }
}

/* What training a diffusion model needs (da_exp_cached's user). */
typedef struct {
    da_experiment *e;
    da_unet_config uc;
    da_diff_train_opts o;
} diffusion_job;

/* Trains the diffusion model on the unlabelled pool and saves it at job->path. */
static int train_diffusion(void *user, da_exp_cache_job *job, char *err, size_t errlen) {
    diffusion_job *dj = user;
    const da_exp_config *c = &dj->e->cfg;
    char cfgbuf[256];
    da_dataset pool;
    if (da_exp_load_pool(dj->e, &pool, err, errlen) != 0) return -1;
    fprintf(stderr, "[experiment] training a diffusion model (%s) on %lld unlabelled images, %d steps\n",
            da_unet_config_str(&dj->uc, cfgbuf, sizeof cfgbuf), (long long)pool.n, c->diff_steps);
    da_diff_trainer tr;
    if (da_diff_trainer_init(&tr, &dj->uc, &dj->o, &pool, err, errlen) != 0) {
        da_dataset_free(&pool);
        return -1;
    }
    da_progress pr;
    da_progress_begin(&pr, "diffusion", c->diff_steps, "step");
    int rc = 0;
    float loss = 0, gn = 0, avg = 0;
    for (int s = 0; s < c->diff_steps && rc == 0; s++) {
        rc = da_diff_trainer_step(&tr, &loss, &gn, err, errlen);
        avg = s == 0 ? loss : 0.98f * avg + 0.02f * loss;
        char msg[64];
        snprintf(msg, sizeof msg, "loss %.4f", (double)avg);
        da_progress_update(&pr, s + 1, msg);
    }
    if (rc == 0) {
        char msg[64];
        snprintf(msg, sizeof msg, "loss %.4f", (double)avg);
        da_progress_end(&pr, c->diff_steps, msg);
        rc = da_diff_trainer_save_model(&tr, job->path, err, errlen);
    }
    da_diff_trainer_free(&tr);
    da_dataset_free(&pool);
    return rc;
}

int da_exp_stage_diffusion(da_experiment *e, char *err, size_t errlen) {
    const da_exp_config *c = &e->cfg;
    double t0 = da_now();
    char path[4400], cfgbuf[256];
    const char *source;
    if (c->model) {
        snprintf(path, sizeof path, "%s", c->model);
        source = "given";
    } else if (find_shipped(e, "diffadapt-unet", path, sizeof path)) {
        source = "shipped";
    } else {
        diffusion_job dj = {.e = e};
        fallback_unet_config(e, &dj.uc);
        /* the training settings of the shipped model (docs/models.md) */
        da_diff_train_opts *o = &dj.o;
        da_diff_train_opts_default(o);
        o->batch = c->diff_batch;
        o->lr = 5e-4f;
        o->warmup = c->diff_steps / 10 < 100 ? c->diff_steps / 10 : 100;
        o->ema = 0.995f;
        char *js = da_unet_config_to_json(&dj.uc), desc[4096];
        snprintf(desc, sizeof desc, "diffusion v1|data %s|pool %d seed %d pad %d size %d ch %d|%s|steps %d batch %d "
                 "lr %g warmup %d clip %g ema %g p2 %g/%g seed %llu", c->data, c->pool_n, c->data_seed, c->pad, c->size,
                 c->channels, js ? js : "", c->diff_steps, o->batch, (double)o->lr, o->warmup, (double)o->grad_clip,
                 (double)o->ema, (double)o->p2_gamma, (double)o->p2_k, (unsigned long long)o->seed);
        free(js);
        if (da_exp_cached(e, "diffusion", desc, "trained", train_diffusion, &dj, path, sizeof path, NULL, &source, err,
                          errlen) != 0)
            return -1;
    }
    /* a given model may come with its own config file; shipped and cached ones carry theirs */
    if (da_unet_load(&e->model, path, c->model ? c->model_config : NULL, err, errlen) != 0) return -1;
    e->have_model = true;
    if (check_model_fits(&e->model, &e->train, path, err, errlen) != 0) return -1;
    da_params_hash(&e->model.params, e->model_hash);
    snprintf(e->model_desc, sizeof e->model_desc, "%s (%.2f M parameters)",
             da_unet_config_str(&e->model.cfg, cfgbuf, sizeof cfgbuf), (double)da_unet_num_params(&e->model) / 1e6);
    char tail[192];
    da_exp_add_stage(e, "diffusion model", da_now() - t0, source, "%s: %s%s", path, e->model_desc,
                     cache_tail(source, path, tail, sizeof tail));
    return 0;
}

/* ---- stage 2: the CLIP model ---------------------------------------------------------------- */

static void tiny_miniclip(da_miniclip_opts *mo) {
    mo->patch_size = mo->image_size / 4 > 0 ? mo->image_size / 4 : 1;
    mo->vision_width = mo->text_width = 32;
    mo->vision_layers = mo->text_layers = 1;
    mo->embed_dim = 32;
    mo->merges = 64;
}

/* What training a mini-CLIP needs (da_exp_cached's user). */
typedef struct {
    da_experiment *e;
    da_miniclip_opts mo;
} miniclip_job;

/* Trains a mini-CLIP on the unlabelled pool and saves it at job->path. */
static int train_miniclip(void *user, da_exp_cache_job *job, char *err, size_t errlen) {
    miniclip_job *mj = user;
    const da_miniclip_opts *mo = &mj->mo;
    da_dataset pool;
    if (da_exp_load_pool(mj->e, &pool, err, errlen) != 0) return -1;
    fprintf(stderr, "[experiment] training a mini-CLIP on %lld unlabelled images in %d styles (the held-out "
            "style excluded), %lld steps\n", (long long)pool.n, da_style_count(), (long long)mo->steps);
    da_miniclip_trainer tr;
    if (da_miniclip_trainer_init(&tr, mo, &pool, err, errlen) != 0) {
        da_dataset_free(&pool);
        return -1;
    }
    da_progress pr;
    da_progress_begin(&pr, "mini-CLIP", mo->steps, "step");
    int rc = 0;
    float loss = 0, acc = 0;
    for (int64_t s = 0; s < mo->steps && rc == 0; s++) {
        rc = da_miniclip_trainer_step(&tr, &loss, &acc, err, errlen);
        char msg[96];
        snprintf(msg, sizeof msg, "loss %.4f style acc %.0f%%", (double)loss, 100.0 * acc);
        da_progress_update(&pr, s + 1, msg);
    }
    if (rc == 0) {
        da_progress_end(&pr, mo->steps, NULL);
        rc = da_miniclip_trainer_save_model(&tr, job->path, NULL, err, errlen);
    }
    da_miniclip_trainer_free(&tr);
    da_dataset_free(&pool);
    return rc;
}

int da_exp_stage_clip(da_experiment *e, char *err, size_t errlen) {
    const da_exp_config *c = &e->cfg;
    double t0 = da_now();
    char path[4400];
    const char *source;
    if (c->clip) {
        snprintf(path, sizeof path, "%s", c->clip);
        source = "given";
    } else if (find_shipped(e, "diffadapt-clip", path, sizeof path)) {
        source = "shipped";
    } else {
        miniclip_job mj = {.e = e};
        da_miniclip_opts *mo = &mj.mo;
        da_miniclip_defaults(mo);
        mo->steps = c->clip_steps;
        mo->batch = c->clip_batch;
        mo->warmup = c->clip_steps / 10 < mo->warmup ? c->clip_steps / 10 : mo->warmup;
        mo->image_size = (int)e->train.h;
        mo->channels = (int)e->train.c;
        if (mo->image_size != 32) mo->patch_size = mo->image_size / 8 > 0 ? mo->image_size / 8 : 1;
        if (c->quick || c->tiny_models) tiny_miniclip(mo);
        char desc[2048];
        snprintf(desc, sizeof desc, "miniclip v1|data %s|pool %d seed %d pad %d size %d ch %d|img %d patch %d ch %d "
                 "v %dx%d t %dx%d heads %d embed %d ctx %d merges %d|steps %lld batch %d lr %g wd %g warmup %lld clip %g "
                 "seed %llu", c->data, c->pool_n, c->data_seed, c->pad, c->size, c->channels, mo->image_size,
                 mo->patch_size, mo->channels, mo->vision_width, mo->vision_layers, mo->text_width, mo->text_layers,
                 mo->heads, mo->embed_dim, mo->context, mo->merges, (long long)mo->steps, mo->batch, (double)mo->lr,
                 (double)mo->weight_decay, (long long)mo->warmup, (double)mo->grad_clip, (unsigned long long)mo->seed);
        if (da_exp_cached(e, "miniclip", desc, "trained", train_miniclip, &mj, path, sizeof path, NULL, &source, err,
                          errlen) != 0)
            return -1;
    }
    if (da_clip_load(&e->clip, path, err, errlen) != 0) return -1;
    e->have_clip = true;
    da_clip_requires_grad(&e->clip, false);
    da_params_hash(&e->clip.params, e->clip_hash);
    char cb[256];
    snprintf(e->clip_desc, sizeof e->clip_desc, "%s", da_clip_config_str(&e->clip.cfg, cb, sizeof cb));
    char tail[192];
    da_exp_add_stage(e, "CLIP model", da_now() - t0, source, "%s: %s%s", path, e->clip_desc,
                     cache_tail(source, path, tail, sizeof tail));
    return 0;
}

/* ---- stage 3: DiffusionCLIP fine-tuning ------------------------------------------------------ */

/* The cache key of the fine-tuned model from every setting that changes it. Settings added later
 * extend the key only when used, so earlier cache files stay valid. */
static void finetune_key(const da_experiment *e, int n, const da_dataset *tgt, char desc[2048], char key[17]) {
    const da_exp_config *c = &e->cfg;
    const da_ft_config *f = &c->ft;
    uint64_t dh = da_fnv1a64(DA_FNV1A64_INIT, e->train.images, sizeof(float) * (size_t)(n * per_image(&e->train)));
    const size_t len = 2048;
    size_t dl = (size_t)snprintf(desc, len, "finetune v1|model %s|clip %s|vocab %s|'%s'->'%s'|images %d %016llx|"
             "t0 %d inv %d train %d|epochs %d batch %d lr %g gamma %g|w %g %g|mode %s", e->model_hash, e->clip_hash,
             c->vocab ? c->vocab : "-", f->src_text, f->tgt_text, n, (unsigned long long)dh, f->t0, f->inv_steps,
             f->train_steps, f->epochs, f->batch, (double)f->lr, (double)f->lr_gamma, (double)f->clip_weight,
             (double)f->l1_weight, DA_FT_MODE_NAMES[f->mode]);
    if (f->identity != DA_FT_ID_PIXELS)
        dl += (size_t)snprintf(desc + dl, len - dl, "|identity %s", DA_FT_IDENTITY_NAMES[f->identity]);
    if (f->views > 0) dl += (size_t)snprintf(desc + dl, len - dl, "|views %d %g", f->views, (double)f->view_min_scale);
    /* the image direction is taken from the fine-tuning images (as `finetune` does), no longer
     * from all labelled ones */
    if (tgt)
        dl += (size_t)snprintf(desc + dl, len - dl, "|tgt %lld %016llx w %g|imgdir ft", (long long)tgt->n,
                               (unsigned long long)da_dataset_hash(tgt), (double)f->tgt_weight);
    /* the dropout seeds of the one fine-tuning run (finetune_run.h); they matter only with dropout */
    if (e->model.cfg.dropout > 0) dl += (size_t)snprintf(desc + dl, len - dl, "|seeds v2 %d", f->seed);
    if (f->ddim_batch != 50) snprintf(desc + dl, len - dl, "|ddim batch %d", f->ddim_batch);
    da_exp_key(desc, key);
}

/* Reads a cached fine-tuned model and the loss figures in its metadata. */
static int load_finetuned(da_experiment *e, const char *path, char *err, size_t errlen) {
    if (da_unet_load(&e->finetuned, path, NULL, err, errlen) != 0) return -1;
    e->have_finetuned = true;
    st_file f;
    if (st_open(path, &f, err, errlen) == 0) {
        const char *v[4] = {st_meta_get(&f, "ft_first_dir"), st_meta_get(&f, "ft_last_dir"),
                            st_meta_get(&f, "ft_first_l1"), st_meta_get(&f, "ft_last_l1")};
        double *dst[4] = {&e->ft_first_dir, &e->ft_last_dir, &e->ft_first_l1, &e->ft_last_l1};
        for (int i = 0; i < 4; i++) *dst[i] = v[i] ? atof(v[i]) : NAN;
        st_close(&f);
    }
    return 0;
}

/* The run's hooks: a progress line in batches, the first and last epoch's mean losses. */
typedef struct {
    da_experiment *e;
    da_progress pr;
    int64_t batches_done;
} ft_log;

static void ft_on_batch(void *user, const da_ft_batch_report *r) {
    ft_log *l = user;
    char msg[128];
    snprintf(msg, sizeof msg, "epoch %d  L_dir %.4f  L1 %.4f", r->epoch, r->terms.dir, r->terms.l1);
    da_progress_update(&l->pr, ++l->batches_done, msg);
}

static int ft_on_epoch(void *user, const da_ft_epoch_report *r, char *err, size_t errlen) {
    ft_log *l = user;
    if (r->epoch == 1) {
        l->e->ft_first_dir = r->mean.dir;
        l->e->ft_first_l1 = r->mean.l1;
    }
    l->e->ft_last_dir = r->mean.dir;
    l->e->ft_last_l1 = r->mean.l1;
    fprintf(stderr, "[experiment] fine-tuning epoch %d/%d: mean L_dir %.4f, L1 %.4f\n", r->epoch, r->epochs, r->mean.dir,
            r->mean.l1);
    return 0;
}

/* Fine-tunes a copy of the source model on the first n training images (their labels unused)
 * with the method's one run (diffusion/finetune_run.h), toward tgt too when given. */
static int finetune(da_experiment *e, int n, const da_dataset *tgt, char *err, size_t errlen) {
    const da_exp_config *c = &e->cfg;
    da_ft_config fc = c->ft;
    fc.images = n;
    const int64_t per = per_image(&e->train), shape[4] = {n, e->train.c, e->train.h, e->train.w};
    da_bpe *bpe = da_clip_vocab(&e->clip, c->vocab, err, errlen);
    if (!bpe) return -1;
    float *dir = malloc(sizeof(float) * (size_t)e->clip.cfg.embed_dim), *lat = malloc(sizeof(float) * (size_t)(n * per));
    int rc = -1;
    bool f_init = false, opt_init = false;
    da_finetuner f;
    da_adam opt;
    if (!dir || !lat) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    double cos;
    if (da_ft_direction(&e->clip, bpe, &fc, e->train.images, n, tgt ? tgt->images : NULL, tgt ? tgt->n : 0, e->train.c,
                        e->train.h, e->train.w, dir, &cos, err, errlen) != 0)
        goto done;
    if (tgt)
        fprintf(stderr, "[experiment] image-guided direction from %lld target images (%s), weight %g; cos(text, image "
                "direction) %.3f\n", (long long)tgt->n, c->tgt_images, (double)fc.tgt_weight, cos);
    {
        /* latents of the fine-tuning images, once, with the frozen source model */
        da_progress pr;
        da_progress_begin(&pr, "fine-tune latents", (int64_t)(fc.inv_steps - 1) * ((n + fc.ddim_batch - 1) / fc.ddim_batch),
                          "call");
        if (da_ft_latents(&e->model, &fc, e->train.images, shape, lat, progress_in_calls, &pr, err, errlen) != 0) goto done;
        da_progress_end(&pr, pr.total, NULL);
    }
    if (copy_unet(&e->model, &e->finetuned, err, errlen) != 0) goto done;
    e->have_finetuned = true;
    if (da_ft_init(&f, &fc, &e->finetuned, &e->clip, dir, NULL, err, errlen) != 0) goto done;
    f_init = true;
    if (da_ft_optimizer_init(&f, &opt, err, errlen) != 0) goto done;
    opt_init = true;
    fprintf(stderr, "[experiment] fine-tuning '%s' -> '%s' on %d images, %d epochs, %s mode, lr %g x %g per epoch\n",
            fc.src_text, fc.tgt_text, n, fc.epochs, DA_FT_MODE_NAMES[fc.mode], (double)fc.lr, (double)fc.lr_gamma);
    ft_log log = {.e = e};
    da_progress_begin(&log.pr, "fine-tuning", (int64_t)fc.epochs * ((n + fc.batch - 1) / fc.batch), "batch");
    da_ft_hooks hooks = {ft_on_batch, ft_on_epoch, &log};
    if (da_ft_run(&f, &opt, e->train.images, lat, n, 0, &hooks, err, errlen) != 0) goto done;
    da_progress_end(&log.pr, log.batches_done, NULL);
    rc = 0;
done:
    if (opt_init) da_adam_free(&opt);
    if (f_init) da_ft_free(&f);
    free(dir);
    free(lat);
    da_bpe_free(bpe);
    return rc;
}

/* The computation behind the fine-tuning cache file: the run, then the model with its loss
 * figures and description in the metadata. */
typedef struct {
    da_experiment *e;
    int n;
    const da_dataset *tgt;
    const char *desc;
} finetune_job;

static int compute_finetuned(void *user, da_exp_cache_job *job, char *err, size_t errlen) {
    finetune_job *j = user;
    da_experiment *e = j->e;
    if (finetune(e, j->n, j->tgt, err, errlen) != 0) return -1;
    char vals[4][64];
    snprintf(vals[0], 64, "%.6f", e->ft_first_dir);
    snprintf(vals[1], 64, "%.6f", e->ft_last_dir);
    snprintf(vals[2], 64, "%.6f", e->ft_first_l1);
    snprintf(vals[3], 64, "%.6f", e->ft_last_l1);
    const char *extra[] = {"ft_first_dir", vals[0], "ft_last_dir", vals[1], "ft_first_l1", vals[2],
                           "ft_last_l1", vals[3], "ft_src_model", e->model_hash, "ft_description", j->desc};
    if (da_unet_save(&e->finetuned, job->path, extra, 6, err, errlen) != 0) return -1;
    fprintf(stderr, "[experiment] fine-tuned model saved: %s\n", job->path);
    return 0;
}

/* A given fine-tuned model (--finetuned): loaded with the model's config when its file has none,
 * and checked to be a copy of the source model's architecture. */
static int given_finetuned(da_experiment *e, double t0, char *err, size_t errlen) {
    const da_exp_config *c = &e->cfg;
    char e2[2048];
    if (da_unet_load(&e->finetuned, c->finetuned, c->model_config, e2, sizeof e2) != 0) {
        snprintf(err, errlen, "--finetuned: %s", e2);
        return -1;
    }
    e->have_finetuned = true;
    const da_unet_config *a = &e->model.cfg, *b = &e->finetuned.cfg;
    if (a->in_channels != b->in_channels || a->out_ch != b->out_ch || a->resolution != b->resolution ||
        e->model.params.n != e->finetuned.params.n) {
        snprintf(err, errlen, "--finetuned %s is not a fine-tuned copy of the diffusion model (another architecture)",
                 c->finetuned);
        return -1;
    }
    e->ft_first_dir = e->ft_last_dir = e->ft_first_l1 = e->ft_last_l1 = NAN;
    da_params_hash(&e->finetuned.params, e->finetuned_hash);
    da_exp_add_stage(e, "fine-tuning", da_now() - t0, "given", "%s (not fine-tuned here)", c->finetuned);
    return 0;
}

int da_exp_stage_finetune(da_experiment *e, char *err, size_t errlen) {
    const da_exp_config *c = &e->cfg;
    double t0 = da_now();
    if (c->finetuned) return given_finetuned(e, t0, err, errlen);
    int n = c->ft.images < e->train.n ? c->ft.images : (int)e->train.n;
    if (da_ft_run_config_validate(&c->ft, err, errlen) != 0 || da_ft_config_validate(&c->ft, &e->model, err, errlen) != 0)
        return -1;
    da_dataset tgt;
    memset(&tgt, 0, sizeof tgt);
    if (c->tgt_images && da_exp_load_target_images(e, &tgt, err, errlen) != 0) return -1;
    char desc[2048], key[17], path[4400], tail[192];
    finetune_key(e, n, c->tgt_images ? &tgt : NULL, desc, key);
    finetune_job job = {e, n, c->tgt_images ? &tgt : NULL, desc};
    const char *source;
    int rc = da_exp_cached(e, "finetuned", desc, "computed", compute_finetuned, &job, path, sizeof path, NULL, &source,
                           err, errlen);
    da_dataset_free(&tgt);
    if (rc != 0) return -1;
    bool cached = strcmp(source, "cache") == 0;
    if (cached && load_finetuned(e, path, err, errlen) != 0) return -1;
    da_params_hash(&e->finetuned.params, e->finetuned_hash);
    if (cached) {
        da_exp_add_stage(e, "fine-tuning", da_now() - t0, source, "%s%s", path, cache_tail(source, path, tail, sizeof tail));
        return 0;
    }
    const da_ft_config *f = &c->ft;
    da_exp_add_stage(e, "fine-tuning", da_now() - t0, source,
                     "'%s' -> '%s', %d images x %d epochs, %s mode, lr %g (x%g per epoch), t0 %d, %d inversion / %d "
                     "generation steps; L_dir %.4f -> %.4f, L1 %.4f -> %.4f",
                     f->src_text, f->tgt_text, n, f->epochs, DA_FT_MODE_NAMES[f->mode], (double)f->lr,
                     (double)f->lr_gamma, f->t0, f->inv_steps, f->train_steps, e->ft_first_dir, e->ft_last_dir,
                     e->ft_first_l1, e->ft_last_l1);
    return 0;
}

/* ---- stages 4 and 5: translation ------------------------------------------------------------ */

/* The hook of a translation: the batches so far go to a partial cache file, so that a killed run
 * resumes from them. */
typedef struct {
    const char *partial, *key;
    da_dataset *out;
} partial_saver;

static int save_partial(void *user, int64_t first, int64_t n, const float *x, char *err, size_t errlen) {
    (void)x;   /* already in out->images */
    partial_saver *p = user;
    if (first + n >= p->out->n) return 0;   /* the last batch: the whole set is saved next */
    return save_images(p->partial, p->out, first + n, p->key, err, errlen);
}

/* The set job of translation with the experiment's models and settings. */
/* The models as a translation runs them: copies of the handles (the weights are shared and only
 * read) that compute in the run's precision, and their mix. */
typedef struct {
    da_unet model, finetuned;
    da_eps_mix mix;
} translate_models;

static da_set_job translate_job(const da_experiment *e, const da_schedule *s, translate_models *tm) {
    const da_ft_config *f = &e->cfg.ft;
    tm->model = e->model;
    tm->finetuned = e->finetuned;
    tm->model.infer_precision = tm->finetuned.infer_precision = e->cfg.precision;
    da_set_job job = da_set_job_plain(da_unet_eps, &tm->model, s);
    tm->mix = (da_eps_mix){da_unet_eps, &tm->finetuned, da_unet_eps, &tm->model, f->model_ratio};
    da_eps_mix_use(&tm->mix, &job.gen.eps, &job.gen.user);
    job.t0 = f->t0;
    job.inv_steps = f->inv_steps;
    job.gen_steps = f->gen_steps;
    job.batch = f->ddim_batch;
    return job;
}

/* The computation behind a translation's cache file; out gets the images (shaped like src). */
typedef struct {
    da_experiment *e;
    const da_dataset *src;
    const char *stem;
    da_dataset *out;
} translate_job_state;

/* Translates src into out (invert with the source model, generate with the fine-tuned one),
 * resuming from and saving to a partial file beside the result every batch. */
static int compute_translation(void *user, da_exp_cache_job *cj, char *err, size_t errlen) {
    translate_job_state *j = user;
    const da_ft_config *f = &j->e->cfg.ft;
    const da_dataset *src = j->src;
    da_dataset *out = j->out;
    if (dataset_like(src, out, err, errlen) != 0) return -1;
    const int64_t per = per_image(src), n = src->n;
    char partial[4500];
    snprintf(partial, sizeof partial, "%s.partial", cj->path);
    int64_t done = 0;
    /* a killed run resumes from the batches it finished (whole batches: the partition is fixed) */
    st_file pf;
    char sub[512];
    if (da_is_file(partial) && st_open(partial, &pf, sub, sizeof sub) == 0) {
        const char *k = st_meta_get(&pf, "cache_key"), *d = st_meta_get(&pf, "done");
        const st_tensor_info *t = st_find(&pf, "images");
        int64_t nd = d ? atoll(d) : 0;
        if (k && strcmp(k, cj->key) == 0 && t && t->ndim == 4 && t->shape[0] == nd && nd <= n &&
            nd % f->ddim_batch == 0 && t->numel == nd * per && st_read_f32(&pf, t, out->images, sub, sizeof sub) == 0)
            done = nd;
        st_close(&pf);
        if (done) fprintf(stderr, "[experiment] %s: resuming after %lld translated images\n", j->stem, (long long)done);
    }
    /* a resumed run saw only part of the work, so its time would mislead */
    cj->time_is_partial = done > 0;
    da_schedule sched;
    if (unet_schedule(&j->e->model, &sched, err, errlen) != 0) goto fail;
    translate_models tm;
    da_set_job job = translate_job(j->e, &sched, &tm);
    job.first_batch = done / f->ddim_batch;
    partial_saver ps = {partial, cj->key, out};
    job.on_batch = save_partial;
    job.user = &ps;
    da_progress pr;
    char label[64];
    snprintf(label, sizeof label, "translate %s", j->stem);
    int64_t n_batches = (n - done + f->ddim_batch - 1) / f->ddim_batch;
    da_progress_begin(&pr, label, n_batches * ((f->inv_steps - 1) + f->gen_steps), "call");
    job.progress = progress_in_calls;
    job.progress_user = &pr;
    const int64_t shape[4] = {n, src->c, src->h, src->w};
    if (da_set_run(&job, src->images, out->images, shape, err, errlen) != 0) goto fail;
    da_progress_end(&pr, pr.total, NULL);
    if (save_images(cj->path, out, n, cj->key, err, errlen) != 0) goto fail;
    remove(partial);
    return 0;
fail:
    da_dataset_free(out);
    return -1;
}

/* src translated into out, from the cache or computed (compute_translation). */
static int translate_set(da_experiment *e, const da_dataset *src, const char *stem, da_dataset *out,
                         const char **source, char *path, size_t path_len, char *err, size_t errlen) {
    const da_ft_config *f = &e->cfg.ft;
    char desc[1024];
    int dl = snprintf(desc, sizeof desc, "translate v1|model %s|finetuned %s|data %016llx n %lld|t0 %d inv %d gen %d",
                      e->model_hash, e->finetuned_hash, (unsigned long long)da_dataset_hash(src), (long long)src->n,
                      f->t0, f->inv_steps, f->gen_steps);
    /* appended only when used, so earlier caches stay valid */
    if (f->model_ratio != 1.0f) dl += snprintf(desc + dl, sizeof desc - dl, "|ratio %.9g", (double)f->model_ratio);
    if (f->ddim_batch != 50) dl += snprintf(desc + dl, sizeof desc - dl, "|batch %d", f->ddim_batch);
    if (e->cfg.precision != DA_PRECISION_FP32)
        snprintf(desc + dl, sizeof desc - dl, "|precision %s", da_precision_name(e->cfg.precision));
    translate_job_state j = {e, src, stem, out};
    if (da_exp_cached(e, stem, desc, "computed", compute_translation, &j, path, path_len, NULL, source, err, errlen) != 0)
        return -1;
    return strcmp(*source, "cache") == 0 ? load_cached_images(path, src, out, err, errlen) : 0;
}

int da_exp_reconstruct(const da_experiment *e, const float *x, int64_t n, float *out, char *err, size_t errlen) {
    da_schedule sched;
    if (unet_schedule(&e->model, &sched, err, errlen) != 0) return -1;
    translate_models tm;
    da_set_job job = translate_job(e, &sched, &tm);
    job.gen = job.inv;   /* the source model both ways */
    const int64_t shape[4] = {n, e->train.c, e->train.h, e->train.w};
    return da_set_run(&job, x, out, shape, err, errlen);
}

/* "(0.31 s per image)" for a computed stage; for one read from the cache file at path, what
 * computing it took. */
static const char *rate_text(const char *source, double seconds, const char *path, int64_t n, char *buf, size_t len) {
    char t[160];
    if (strcmp(source, "cache") == 0) snprintf(buf, len, "(%s)", da_exp_cache_time_text(path, n, t, sizeof t));
    else snprintf(buf, len, "(%.2f s per image)", seconds / (double)(n > 0 ? n : 1));
    return buf;
}

int da_exp_stage_translate(da_experiment *e, char *err, size_t errlen) {
    const da_exp_config *c = &e->cfg;
    const char *source;
    char rate[192], path[4400];
    double t0 = da_now();
    if (translate_set(e, &e->train, "adapted", &e->adapted, &source, path, sizeof path, err, errlen) != 0) return -1;
    double dt = da_now() - t0;
    da_exp_add_stage(e, "translate train", dt, source,
                     "%lld training images -> adapted: %d inversion + %d generation steps, t0 %d %s",
                     (long long)e->train.n, c->ft.inv_steps, c->ft.gen_steps, c->ft.t0,
                     rate_text(source, dt, path, e->train.n, rate, sizeof rate));
    t0 = da_now();
    if (translate_set(e, &e->test, "target-self", &e->target_self, &source, path, sizeof path, err, errlen) != 0)
        return -1;
    dt = da_now() - t0;
    da_exp_add_stage(e, "translate test", dt, source, "%lld test images -> target-self (the reference protocol), same steps %s",
                     (long long)e->test.n, rate_text(source, dt, path, e->test.n, rate, sizeof rate));
    return 0;
}

/* dst = src drawn by style s (the images seeded by data_seed, as in every run). */
static int render_set(const da_experiment *e, const da_style *s, const da_dataset *src, da_dataset *dst, char *err,
                      size_t errlen) {
    if (dataset_like(src, dst, err, errlen) != 0) return -1;
    da_style_render_batch(s, src->images, src->n, (int)src->c, (int)src->h, (int)src->w, dst->images,
                          (uint64_t)e->cfg.data_seed);
    return 0;
}

int da_exp_stage_heldout(da_experiment *e, char *err, size_t errlen) {
    double t0 = da_now();
    const da_style *panel[DA_EXP_PANEL_N];
    const da_style *val = da_style_validation();
    if (da_style_test_panel(panel, DA_EXP_PANEL_N) != DA_EXP_PANEL_N || strcmp(panel[0]->name, "pencil") != 0 || !val) {
        snprintf(err, errlen, "the style bank lacks its test panel (pencil, hatching, stipple) or its validation style "
                 "(data/styles.c)");
        return -1;
    }
    da_dataset *dst[DA_EXP_PANEL_N] = {&e->target_heldout, &e->target_hatching, &e->target_stipple};
    for (int k = 0; k < DA_EXP_PANEL_N; k++)
        if (render_set(e, panel[k], &e->test, dst[k], err, errlen) != 0) return -1;
    /* the validation images are replaced by their rendering: nothing else uses the originals */
    da_dataset drawn;
    if (render_set(e, val, &e->validation, &drawn, err, errlen) != 0) return -1;
    da_dataset_free(&e->validation);
    e->validation = drawn;
    da_exp_add_stage(e, "held-out targets", da_now() - t0, "computed",
                     "%lld test images -> target-heldout (%s), target-hatching (%s), target-stipple (%s)%s; %lld "
                     "training images outside the labelled draw -> validation (%s)",
                     (long long)e->test.n, panel[0]->name, panel[1]->name, panel[2]->name,
                     e->cfg.clip ? "" : ", renderers the mini-CLIP never saw", (long long)e->validation.n, val->name);
    return 0;
}
