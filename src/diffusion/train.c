/* train.c — the diffusion training loop: seeded per-step batches (epoch permutations), antithetic
 * timesteps, P2-weighted ε-MSE (+ the bound term with learn_sigma), Adam with warmup/clipping,
 * EMA, and exact checkpoints. */
#include "diffusion/train.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffusion/ddim.h"
#include "diffusion/vlb.h"
#include "io/safetensors.h"

/* Streams of the per-step random draws (da_rng_at(seed ^ STREAM, step)). */
#define STREAM_PERM 0x7065726dULL
#define STREAM_STEP 0x73746570ULL
#define STREAM_DROP 0x64726f70ULL

void da_diff_train_opts_default(da_diff_train_opts *o) {
    memset(o, 0, sizeof *o);
    o->batch = 64;
    o->lr = 2e-4f;
    o->warmup = 500;
    o->grad_clip = 1.0f;
    o->ema = 0.999f;
    o->p2_gamma = 0.0f;
    o->p2_k = 1.0f;
    o->seed = 0;
}

uint64_t da_dataset_hash(const da_dataset *d) {
    int64_t dims[4] = {d->n, d->c, d->h, d->w};
    uint64_t h = da_fnv1a64(DA_FNV1A64_INIT, dims, sizeof dims);
    return da_fnv1a64(h, d->images, sizeof(float) * (size_t)(d->n * d->c * d->h * d->w));
}

static int check_opts(const da_diff_train_opts *o, char *err, size_t errlen) {
    if (o->batch < 1 || o->batch > 4096) { snprintf(err, errlen, "--batch %d must lie in 1..4096", o->batch); return -1; }
    if (!(o->lr > 0 && o->lr < 1)) { snprintf(err, errlen, "--lr %g must lie in (0,1)", (double)o->lr); return -1; }
    if (o->warmup < 0) { snprintf(err, errlen, "--warmup %d must be >= 0", o->warmup); return -1; }
    if (!(o->grad_clip >= 0)) { snprintf(err, errlen, "--grad-clip %g must be >= 0 (0 = off)", (double)o->grad_clip); return -1; }
    if (!(o->ema >= 0 && o->ema < 1)) { snprintf(err, errlen, "--ema %g must lie in [0,1)", (double)o->ema); return -1; }
    if (!(o->p2_gamma >= 0 && o->p2_gamma <= 4)) { snprintf(err, errlen, "--p2-gamma %g must lie in [0,4]", (double)o->p2_gamma); return -1; }
    if (!(o->p2_k > 0)) { snprintf(err, errlen, "--p2-k %g must be > 0", (double)o->p2_k); return -1; }
    return 0;
}

/* Everything after the model weights exist: optimiser, buffers, schedule. */
static int setup(da_diff_trainer *tr, const da_dataset *data, char *err, size_t errlen) {
    const da_unet_config *c = &tr->model.cfg;
    if (data->c != c->in_channels || data->h != c->resolution || data->w != c->resolution) {
        snprintf(err, errlen, "the data are %lldx%lldx%lld images but the model takes %dx%dx%d "
                 "(use --size/--pad/--channels, or a matching config)", (long long)data->h, (long long)data->w,
                 (long long)data->c, c->resolution, c->resolution, c->in_channels);
        return -1;
    }
    if (data->n < 1) { snprintf(err, errlen, "the data set is empty"); return -1; }
    if (da_schedule_linear(&tr->sched, c->num_timesteps, c->beta_start, c->beta_end, err, errlen)) return -1;
    tr->data = data;
    tr->n = tr->model.params.n;
    tr->plist = malloc(sizeof(da_tensor *) * (size_t)tr->n);
    for (int i = 0; i < tr->n; i++) tr->plist[i] = tr->model.params.items[i].t;
    da_unet_requires_grad(&tr->model, true);
    da_unet_requires_grad(&tr->ema, false);
    da_adam_config ac = da_adam_defaults(DA_ADAM);
    ac.lr = tr->o.lr;
    if (da_adam_init(&tr->adam, &ac, tr->plist, tr->n, err, errlen)) return -1;
    tr->perm = malloc(sizeof(int64_t) * (size_t)data->n);
    tr->perm_epoch = -1;
    int64_t per = data->c * data->h * data->w;
    tr->x0 = malloc(sizeof(float) * (size_t)(tr->o.batch * per));
    tr->noise = malloc(sizeof(float) * (size_t)(tr->o.batch * per));
    tr->t = malloc(sizeof(int) * (size_t)tr->o.batch);
    da_ctx_init(&tr->ctx);
    return 0;
}

int da_diff_trainer_init(da_diff_trainer *tr, const da_unet_config *cfg, const da_diff_train_opts *o,
                         const da_dataset *data, char *err, size_t errlen) {
    memset(tr, 0, sizeof *tr);
    if (check_opts(o, err, errlen)) return -1;
    tr->o = *o;
    if (da_unet_init(&tr->model, cfg, o->seed, err, errlen)) return -1;
    if (da_unet_init(&tr->ema, cfg, o->seed, err, errlen)) { da_unet_free(&tr->model); return -1; }
    tr->data_hash = da_dataset_hash(data);
    if (setup(tr, data, err, errlen)) { da_diff_trainer_free(tr); return -1; }
    return 0;
}

/* ---- one step ------------------------------------------------------------------------------ */

bool da_diff_trainer_learns_sigma(const da_diff_trainer *tr) {
    return tr->model.cfg.is_adm && tr->model.cfg.adm.learn_sigma;
}

/* The model's whole output (a learned-variance ADM: ε and v) for the hybrid loss. */
static da_tensor *unet_out_batch(da_ctx *ctx, da_tensor *x, const int *t, void *user) {
    int64_t B = x->shape[0];
    float *tf = da_arena_alloc(&ctx->arena, sizeof(float) * (size_t)B);
    for (int64_t b = 0; b < B; b++) tf[b] = (float)t[b];
    return da_unet_forward(ctx, user, x, tf);
}

static void fill_batch(da_diff_trainer *tr) {
    const da_dataset *d = tr->data;
    int64_t B = tr->o.batch, per = d->c * d->h * d->w, N = d->n;
    da_rng rng;
    da_rng_init(&rng, da_rng_at(tr->o.seed ^ STREAM_STEP, (uint64_t)tr->step));
    for (int64_t b = 0; b < B; b++) {
        /* sample (step*B + b) of an endless sequence of seeded epoch permutations */
        int64_t pos = tr->step * B + b, epoch = pos / N;
        if (epoch != tr->perm_epoch) {
            da_rng pr;
            da_rng_init(&pr, da_rng_at(tr->o.seed ^ STREAM_PERM, (uint64_t)epoch));
            da_rng_permutation(&pr, tr->perm, N);
            tr->perm_epoch = epoch;
        }
        const float *src = d->images + tr->perm[pos % N] * per;
        float *dst = tr->x0 + b * per;
        bool flip = tr->o.flip && (da_rng_u64(&rng) & 1);
        if (!flip) {
            memcpy(dst, src, sizeof(float) * (size_t)per);
        } else {
            for (int64_t r = 0; r < d->c * d->h; r++)
                for (int64_t x = 0; x < d->w; x++) dst[r * d->w + x] = src[r * d->w + d->w - 1 - x];
        }
    }
    /* antithetic timesteps t and T-1-t over the batch (as the reference trainer) */
    int T = tr->sched.T;
    for (int64_t b = 0; b < (B + 1) / 2; b++) {
        int t = (int)da_rng_int(&rng, T);
        tr->t[b] = t;
        if (b + (B + 1) / 2 < B) tr->t[b + (B + 1) / 2] = T - 1 - t;
    }
    da_rng_normal(&rng, tr->noise, B * per, 0.0f, 1.0f);
}

int da_diff_trainer_step(da_diff_trainer *tr, float *loss_out, float *gnorm_out, char *err, size_t errlen) {
    const da_dataset *d = tr->data;
    fill_batch(tr);
    da_ctx *ctx = &tr->ctx;
    da_ctx_reset(ctx);
    ctx->training = true;
    ctx->seed = da_rng_at(tr->o.seed ^ STREAM_DROP, (uint64_t)tr->step);
    ctx->dropout_calls = 0;
    int64_t shape[4] = {tr->o.batch, d->c, d->h, d->w};
    da_unet_zero_grad(&tr->model);
    da_tensor *loss;
    tr->vb = NAN;
    if (da_diff_trainer_learns_sigma(tr))   /* ε by the MSE, the variance channels by the bound */
        loss = da_hybrid_loss(ctx, &tr->sched, unet_out_batch, &tr->model, tr->x0, tr->noise, tr->t, shape,
                              tr->o.p2_k, tr->o.p2_gamma, &tr->vb);
    else
        loss = da_diffusion_loss(ctx, &tr->sched, da_unet_eps_batch, &tr->model, tr->x0, tr->noise, tr->t,
                                 shape, tr->o.p2_k, tr->o.p2_gamma);
    float lv = loss->data[0];
    if (loss_out) *loss_out = lv;
    if (!isfinite(lv)) {
        snprintf(err, errlen, "the loss is %s at step %" PRId64 "; lower --lr (now %g) or --grad-clip", isnan(lv) ? "NaN" : "infinite",
                 tr->step + 1, (double)tr->o.lr);
        return -1;
    }
    da_backward(ctx, loss);
    float gn = da_clip_grad_norm(tr->plist, tr->n, tr->o.grad_clip > 0 ? tr->o.grad_clip : INFINITY);
    if (gnorm_out) *gnorm_out = gn;
    if (!isfinite(gn)) {
        snprintf(err, errlen, "the gradient norm is not finite at step %" PRId64 "; lower --lr (now %g)", tr->step + 1,
                 (double)tr->o.lr);
        return -1;
    }
    da_lr_schedule ls = {.base_lr = tr->o.lr, .warmup_steps = tr->o.warmup, .decay_every = 0, .gamma = 1.0};
    tr->adam.cfg.lr = da_lr_at(&ls, tr->step);
    da_adam_step(&tr->adam);
    /* EMA with a warm-up so early averages are not dominated by the random initialisation */
    float decay = tr->o.ema, warm = (float)((1.0 + (double)tr->step) / (10.0 + (double)tr->step));
    if (warm < decay) decay = warm;
    float omd = 1.0f - decay;
    for (int i = 0; i < tr->n; i++) {
        const float *p = tr->plist[i]->data;
        float *s = tr->ema.params.items[i].t->data;
        int64_t n = tr->plist[i]->numel;
        #pragma omp parallel for schedule(static) if (n > 65536)
        for (int64_t j = 0; j < n; j++) s[j] = omd * p[j] + decay * s[j];
    }
    tr->step++;
    return 0;
}

/* ---- checkpoints --------------------------------------------------------------------------- */

static void opts_to_meta(const da_diff_trainer *tr, char buf[][64]) {
    const da_diff_train_opts *o = &tr->o;
    snprintf(buf[0], 64, "%" PRId64, tr->step);
    snprintf(buf[1], 64, "%d", o->batch);
    snprintf(buf[2], 64, "%.9g", (double)o->lr);
    snprintf(buf[3], 64, "%d", o->warmup);
    snprintf(buf[4], 64, "%.9g", (double)o->grad_clip);
    snprintf(buf[5], 64, "%.9g", (double)o->ema);
    snprintf(buf[6], 64, "%.9g", (double)o->p2_gamma);
    snprintf(buf[7], 64, "%.9g", (double)o->p2_k);
    snprintf(buf[8], 64, "%" PRIu64, o->seed);
    snprintf(buf[9], 64, "%d", o->flip ? 1 : 0);
    snprintf(buf[10], 64, "%016" PRIx64, tr->data_hash);
}

static const char *META_KEYS[] = {"step", "batch", "lr", "warmup", "grad_clip", "ema", "p2_gamma", "p2_k", "seed", "flip", "data_hash"};
#define N_META_KEYS 11

int da_diff_trainer_save_checkpoint(const da_diff_trainer *tr, const char *path, char *err, size_t errlen) {
    st_writer *w = st_writer_new();
    char **keys = malloc(sizeof(char *) * (size_t)(2 * tr->n));
    for (int i = 0; i < tr->n; i++) {
        const da_param *p = &tr->model.params.items[i], *e = &tr->ema.params.items[i];
        size_t len = strlen(p->name) + 8;
        keys[2 * i] = malloc(len);
        keys[2 * i + 1] = malloc(len);
        snprintf(keys[2 * i], len, "model.%s", p->name);
        snprintf(keys[2 * i + 1], len, "ema.%s", e->name);
        st_writer_add_f32(w, keys[2 * i], p->t->ndim, p->t->shape, p->t->data);
    }
    for (int i = 0; i < tr->n; i++) {
        const da_tensor *e = tr->ema.params.items[i].t;
        st_writer_add_f32(w, keys[2 * i + 1], e->ndim, e->shape, e->data);
    }
    int64_t ns = da_adam_state_size(&tr->adam);
    float *state = malloc(sizeof(float) * (size_t)ns);
    da_adam_export(&tr->adam, state);
    st_writer_add_f32(w, "optim.state", 1, &ns, state);
    char vals[N_META_KEYS][64];
    opts_to_meta(tr, vals);
    for (int i = 0; i < N_META_KEYS; i++) st_writer_set_meta(w, META_KEYS[i], vals[i]);
    char *js = da_unet_config_to_json(&tr->model.cfg);
    st_writer_set_meta(w, "config", js);
    st_writer_set_meta(w, "format", "diffadapt-train-checkpoint");
    int rc = st_writer_save(w, path, err, errlen);
    st_writer_free(w);
    free(js);
    free(state);
    for (int i = 0; i < 2 * tr->n; i++) free(keys[i]);
    free(keys);
    return rc;
}

static int meta_num(const st_file *f, const char *path, const char *key, double *out, char *err, size_t errlen) {
    const char *v = st_meta_get(f, key);
    char *end = NULL;
    if (v) *out = strtod(v, &end);
    if (!v || end == v || *end) {
        snprintf(err, errlen, "%s is not a training checkpoint: metadata '%s' is %s", path, key, v ? "malformed" : "missing");
        return -1;
    }
    return 0;
}

int da_diff_trainer_resume(da_diff_trainer *tr, const char *path, const da_dataset *data, char *err, size_t errlen) {
    memset(tr, 0, sizeof *tr);
    st_file f;
    char e2[DA_ERR_LEN];
    if (st_open(path, &f, e2, sizeof e2)) {
        snprintf(err, errlen, "cannot read checkpoint %s: %s", path, e2);
        return -1;
    }
    int rc = -1;
    const char *fmt = st_meta_get(&f, "format"), *js = st_meta_get(&f, "config");
    if (!fmt || strcmp(fmt, "diffadapt-train-checkpoint") || !js) {
        snprintf(err, errlen, "%s is not a diffadapt training checkpoint (format '%s'); --resume takes the "
                 "checkpoint file written during training, not the final model", path, fmt ? fmt : "none");
        st_close(&f);
        return -1;
    }
    da_unet_config cfg;
    da_unet_config_default(&cfg);
    double v[N_META_KEYS];
    for (int i = 0; i < N_META_KEYS - 1; i++)
        if (meta_num(&f, path, META_KEYS[i], &v[i], err, errlen)) goto out;
    if (da_unet_config_from_json(js, path, &cfg, err, errlen)) goto out;
    da_diff_train_opts o;
    o.batch = (int)v[1]; o.lr = (float)v[2]; o.warmup = (int)v[3]; o.grad_clip = (float)v[4];
    o.ema = (float)v[5]; o.p2_gamma = (float)v[6]; o.p2_k = (float)v[7]; o.seed = strtoull(st_meta_get(&f, "seed"), NULL, 10);
    o.flip = v[9] != 0;
    if (check_opts(&o, err, errlen)) goto out;
    tr->o = o;
    tr->step = (int64_t)v[0];
    if (da_unet_init(&tr->model, &cfg, 0, err, errlen)) goto out;
    if (da_unet_init(&tr->ema, &cfg, 0, err, errlen)) goto out;
    if (da_params_load(&tr->model.params, &f, "model.", DA_LOAD_ALLOW_EXTRA | DA_LOAD_QUIET, NULL, e2, sizeof e2) ||
        da_params_load(&tr->ema.params, &f, "ema.", DA_LOAD_ALLOW_EXTRA | DA_LOAD_QUIET, NULL, e2, sizeof e2)) {
        snprintf(err, errlen, "checkpoint %s: %s", path, e2);
        goto out;
    }
    tr->data_hash = da_dataset_hash(data);
    const char *dh = st_meta_get(&f, "data_hash");
    char mine[32];
    snprintf(mine, sizeof mine, "%016" PRIx64, tr->data_hash);
    if (!dh || strcmp(dh, mine)) {
        snprintf(err, errlen, "the data (%lld images, hash %s) are not those checkpoint %s was trained on (hash %s); "
                 "pass the same --data and data options to resume", (long long)data->n, mine, path, dh ? dh : "none");
        goto out;
    }
    if (setup(tr, data, err, errlen)) goto out;
    const st_tensor_info *si = st_find(&f, "optim.state");
    if (!si || si->ndim != 1) {
        snprintf(err, errlen, "checkpoint %s has no optimiser state ('optim.state')", path);
        goto out;
    }
    float *state = malloc(sizeof(float) * (size_t)si->numel);
    if (st_read_f32(&f, si, state, e2, sizeof e2) || da_adam_import(&tr->adam, state, si->numel, e2, sizeof e2)) {
        snprintf(err, errlen, "checkpoint %s: optimiser state: %s", path, e2);
        free(state);
        goto out;
    }
    free(state);
    rc = 0;
out:
    st_close(&f);
    if (rc) da_diff_trainer_free(tr);
    return rc;
}

int da_diff_trainer_save_model(const da_diff_trainer *tr, const char *path, char *err, size_t errlen) {
    char vals[N_META_KEYS][64];
    opts_to_meta(tr, vals);
    const char *extra[2 * N_META_KEYS];
    for (int i = 0; i < N_META_KEYS; i++) {
        extra[2 * i] = META_KEYS[i];
        extra[2 * i + 1] = vals[i];
    }
    /* the saved model holds the EMA weights */
    return da_unet_save(&tr->ema, path, extra, N_META_KEYS, err, errlen);
}

void da_diff_trainer_free(da_diff_trainer *tr) {
    da_adam_free(&tr->adam);
    da_unet_free(&tr->model);
    da_unet_free(&tr->ema);
    free(tr->plist);
    free(tr->perm);
    free(tr->x0);
    free(tr->noise);
    free(tr->t);
    da_ctx_free(&tr->ctx);   /* safe on a zeroed context */
    memset(tr, 0, sizeof *tr);
}
