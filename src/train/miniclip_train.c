/* miniclip_train.c — the mini-CLIP trainer (see miniclip_train.h): tokenized captions, AdamW
 * groups, batches of style renderings with multi-positive InfoNCE, checkpoints and the model file.
 * Captions, the vocabulary and the options have their own files (miniclip_captions.c,
 * miniclip_merges.c, miniclip_opts.c). */
#include "train/miniclip_train.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "nn/clip_loss.h"
#include "nn/params.h"
#include "tensor/rng.h"
#include "util/errf.h"
#include "util/xalloc.h"

/* where an allocation failed, for da_xcalloc's message */
#define OOM "in the mini-CLIP trainer"

uint64_t da_miniclip_data_hash(const da_dataset *d) {
    int64_t dims[4] = {d->n, d->c, d->h, d->w};
    uint64_t h = da_fnv1a64(DA_FNV1A64_INIT, dims, sizeof dims);
    return da_fnv1a64(h, d->images, sizeof(float) * (size_t)(d->n * d->c * d->h * d->w));
}

typedef struct {
    da_miniclip_trainer *tr;
    int i;
    int bad;            /* first caption that did not fit the context, or -1 */
    char err[512];
} tok_state;

static void tokenize_caption(void *user, int style, const char *caption) {
    tok_state *s = user;
    da_miniclip_trainer *tr = s->tr;
    int ctx = tr->o.context;
    if (s->bad < 0) {
        int n = da_bpe_encode(tr->bpe, caption, ctx, false, tr->cap_ids + (size_t)s->i * (size_t)ctx, s->err, sizeof s->err);
        if (n < 0) s->bad = s->i;
        tr->cap_len[s->i] = n;
    }
    tr->cap_style[s->i] = style;
    s->i++;
}

static void count_caption(void *user, int style, const char *caption) {
    (void)style;
    (void)caption;
    (*(int *)user)++;
}

/* Everything but the weights: vocabulary, captions, optimisers, buffers. The model must be built. */
static int setup(da_miniclip_trainer *tr, const da_dataset *data, char *err, size_t errlen) {
    tr->data = data;
    tr->data_hash = da_miniclip_data_hash(data);
    tr->n_train_styles = da_miniclip_train_styles(tr->train_styles, 64);
    tr->n_captions = 0;
    da_miniclip_for_each_caption(count_caption, &tr->n_captions);
    int ctx = tr->o.context;
    tr->cap_ids = da_xcalloc((size_t)tr->n_captions * (size_t)ctx, sizeof *tr->cap_ids, OOM);
    tr->cap_len = da_xcalloc((size_t)tr->n_captions, sizeof *tr->cap_len, OOM);
    tr->cap_style = da_xcalloc((size_t)tr->n_captions, sizeof *tr->cap_style, OOM);
    tok_state ts = {tr, 0, -1, ""};
    da_miniclip_for_each_caption(tokenize_caption, &ts);
    if (ts.bad >= 0) {
        da_errf(err, errlen, "a caption does not fit the context of %d tokens (%s); raise --context", ctx, ts.err);
        return -1;
    }
    int ns = da_style_count();
    tr->style_first = da_xcalloc((size_t)ns, sizeof(int), OOM);
    tr->style_count = da_xcalloc((size_t)ns, sizeof(int), OOM);
    for (int i = tr->n_captions - 1; i >= 0; i--) {
        tr->style_first[tr->cap_style[i]] = i;
        tr->style_count[tr->cap_style[i]]++;
    }
    /* optimiser groups: decay on matrices (linear weights, embeddings, projections, patches) */
    da_params *p = &tr->model.params;
    tr->p_decay = da_xcalloc((size_t)p->n, sizeof(da_tensor *), OOM);
    tr->p_plain = da_xcalloc((size_t)p->n, sizeof(da_tensor *), OOM);
    tr->p_all = da_xcalloc((size_t)p->n, sizeof(da_tensor *), OOM);
    for (int i = 0; i < p->n; i++) {
        da_tensor *t = p->items[i].t;
        tr->p_all[tr->n_all++] = t;
        if (t->ndim >= 2) tr->p_decay[tr->n_decay++] = t;
        else tr->p_plain[tr->n_plain++] = t;
    }
    da_adam_config ac = da_adam_defaults(DA_ADAMW);
    ac.lr = tr->o.lr;
    ac.beta1 = 0.9;
    ac.beta2 = 0.98;
    ac.eps = 1e-6;
    ac.weight_decay = tr->o.weight_decay;
    if (da_adam_init(&tr->adam_decay, &ac, tr->p_decay, tr->n_decay, err, errlen)) return -1;
    ac.weight_decay = 0;
    if (da_adam_init(&tr->adam_plain, &ac, tr->p_plain, tr->n_plain, err, errlen)) return -1;
    size_t img = (size_t)data->c * (size_t)data->h * (size_t)data->w;
    tr->images = da_xcalloc((size_t)tr->o.batch * img, sizeof(float), OOM);
    tr->batch_style = da_xcalloc((size_t)tr->o.batch, sizeof(int), OOM);
    tr->batch_caption = da_xcalloc((size_t)tr->o.batch, sizeof(int), OOM);
    tr->batch_source = da_xcalloc((size_t)tr->o.batch, sizeof(int64_t), OOM);
    da_ctx_init(&tr->ctx);
    return 0;
}

static int check_data(const da_dataset *data, char *err, size_t errlen) {
    if (!data || data->n < 1 || (data->c != 1 && data->c != 3)) {
        da_errf(err, errlen, "mini-CLIP training needs at least one image with 1 or 3 channels");
        return -1;
    }
    return 0;
}

int da_miniclip_trainer_init(da_miniclip_trainer *tr, const da_miniclip_opts *o, const da_dataset *data,
                             char *err, size_t errlen) {
    memset(tr, 0, sizeof *tr);
    if (da_miniclip_opts_check(o, err, errlen) || check_data(data, err, errlen)) return -1;
    tr->o = *o;
    char *merges = da_miniclip_learn_merges(o->merges);
    char inner[512];
    tr->bpe = da_bpe_from_openai(merges, strlen(merges), INT32_MAX, inner, sizeof inner);
    if (!tr->bpe) {
        da_errf(err, errlen, "mini-CLIP vocabulary: %s", inner);
        free(merges);
        return -1;
    }
    da_clip_config c;
    da_miniclip_config(o, da_bpe_vocab_size(tr->bpe), &c);
    if (da_clip_init(&tr->model, &c, o->seed, err, errlen)) {
        free(merges);
        da_miniclip_trainer_free(tr);
        return -1;
    }
    tr->model.bpe_merges = merges;
    if (setup(tr, data, err, errlen)) {
        da_miniclip_trainer_free(tr);
        return -1;
    }
    return 0;
}

#define CKPT_FORMAT "diffadapt-miniclip-checkpoint"

int da_miniclip_trainer_resume(da_miniclip_trainer *tr, const char *path, const da_dataset *data, int64_t steps,
                               char *err, size_t errlen) {
    memset(tr, 0, sizeof *tr);
    if (check_data(data, err, errlen)) return -1;
    st_file f;
    char inner[1024];
    if (st_open(path, &f, inner, sizeof inner)) {
        da_errf(err, errlen, "%s", inner);
        return -1;
    }
    int rc = -1;
    const char *fmt = st_meta_get(&f, "format"), *oj = st_meta_get(&f, "miniclip_opts");
    const char *merges = st_meta_get(&f, "bpe_merges"), *st = st_meta_get(&f, "step");
    const char *dh = st_meta_get(&f, "data_hash");
    const st_tensor_info *od = st_find(&f, "optim.decay"), *op = st_find(&f, "optim.plain");
    if (!fmt || strcmp(fmt, CKPT_FORMAT) || !oj || !merges || !st || !dh || !od || !op) {
        da_errf(err, errlen, "%s is not a mini-CLIP training checkpoint (format '%s'); --resume takes the "
                "checkpoint that train-clip writes (OUT with .ckpt.safetensors)", path, fmt ? fmt : "none");
        goto done;
    }
    char *end = NULL;
    long long step = strtoll(st, &end, 10);
    if (!end || *end || step < 0) {
        da_errf(err, errlen, "%s: bad step '%s' in the metadata", path, st);
        goto done;
    }
    if (da_miniclip_opts_from_json(oj, &tr->o, inner, sizeof inner)) {
        da_errf(err, errlen, "%s: %s", path, inner);
        goto done;
    }
    if (steps > 0) tr->o.steps = steps;
    if (da_miniclip_opts_check(&tr->o, err, errlen)) goto done;
    char mine[32];
    snprintf(mine, sizeof mine, "%016" PRIx64, da_miniclip_data_hash(data));
    if (strcmp(mine, dh)) {
        da_errf(err, errlen, "the training images (%lld, hash %s) are not the ones %s was trained on (hash %s); "
                "pass the same --data and data options to resume", (long long)data->n, mine, path, dh);
        goto done;
    }
    tr->bpe = da_bpe_from_openai(merges, strlen(merges), INT32_MAX, inner, sizeof inner);
    if (!tr->bpe) {
        da_errf(err, errlen, "%s: vocabulary: %s", path, inner);
        goto done;
    }
    da_clip_config c;
    da_miniclip_config(&tr->o, da_bpe_vocab_size(tr->bpe), &c);
    if (da_clip_init(&tr->model, &c, tr->o.seed, err, errlen)) goto done;
    tr->model.bpe_merges = da_xstrdup(merges, OOM);
    if (da_params_load(&tr->model.params, &f, NULL, DA_LOAD_ALLOW_EXTRA | DA_LOAD_QUIET, NULL, inner, sizeof inner)) {
        da_errf(err, errlen, "%s: %s", path, inner);
        goto done;
    }
    if (setup(tr, data, err, errlen)) goto done;
    const st_tensor_info *infos[2] = {od, op};
    da_adam *opts[2] = {&tr->adam_decay, &tr->adam_plain};
    for (int k = 0; k < 2; k++) {
        float *buf = da_xcalloc((size_t)infos[k]->numel, sizeof(float), OOM);
        int bad = st_read_f32(&f, infos[k], buf, inner, sizeof inner) ||
                  da_adam_import(opts[k], buf, infos[k]->numel, inner, sizeof inner);
        free(buf);
        if (bad) {
            da_errf(err, errlen, "%s: optimiser state %s: %s", path, infos[k]->name, inner);
            goto done;
        }
    }
    tr->step = step;
    rc = 0;
done:
    st_close(&f);
    if (rc) da_miniclip_trainer_free(tr);
    return rc;
}

/* log softmax over the last dim of x (R,N): x - max - log(sum exp(x - max)). The row max is a
 * constant (the result does not depend on it), so exp never overflows and log never sees 0. */
static da_tensor *log_softmax_rows(da_ctx *ctx, da_tensor *x) {
    int64_t R = x->shape[0], N = x->shape[1];
    da_tensor *mx = da_new(ctx, DA_SHAPE(R, 1));
    for (int64_t r = 0; r < R; r++) {
        float m = x->data[r * N];
        for (int64_t j = 1; j < N; j++) m = fmaxf(m, x->data[r * N + j]);
        mx->data[r] = m;
    }
    da_tensor *z = da_sub(ctx, x, mx);
    const int ax[1] = {1};
    return da_sub(ctx, z, da_log(ctx, da_sum(ctx, da_exp(ctx, z), 1, ax, true)));
}

/* Builds the batch of step index `step` into tr's batch buffers and returns its loss (0-d, in
 * tr->ctx, on the tape when the context records gradients). */
static da_tensor *batch_loss(da_miniclip_trainer *tr, int64_t step, float *acc_out) {
    const da_miniclip_opts *o = &tr->o;
    const da_dataset *d = tr->data;
    int64_t B = o->batch, C = d->c, H = d->h, W = d->w, ctxlen = o->context;
    size_t img = (size_t)(C * H * W);
    da_ctx *ctx = &tr->ctx;
    /* the batch: a function of (seed, step) only */
    uint64_t step_seed = da_rng_at(o->seed ^ 0x6d696e69636c6970ULL, (uint64_t)step);
    da_rng r;
    da_rng_init(&r, step_seed);
    int64_t L = 1;
    for (int64_t i = 0; i < B; i++) {
        tr->batch_source[i] = da_rng_int(&r, d->n);
        int s = tr->train_styles[da_rng_int(&r, tr->n_train_styles)];
        tr->batch_style[i] = s;
        tr->batch_caption[i] = tr->style_first[s] + (int)da_rng_int(&r, tr->style_count[s]);
        if (tr->cap_len[tr->batch_caption[i]] > L) L = tr->cap_len[tr->batch_caption[i]];
    }
    #pragma omp parallel for schedule(dynamic)
    for (int64_t i = 0; i < B; i++) {
        da_rng ri;
        da_rng_init(&ri, da_rng_at(step_seed, (uint64_t)i));
        da_style_render(da_style_get(tr->batch_style[i]), d->images + (size_t)tr->batch_source[i] * img, (int)C,
                        (int)H, (int)W, tr->images + (size_t)i * img, &ri);
    }
    /* (B,L) ids, each row padded with 0 after its end token */
    int64_t *ids = da_arena_alloc(&ctx->arena, sizeof(int64_t) * (size_t)(B * L));
    for (int64_t i = 0; i < B; i++) {
        const int64_t *cap = tr->cap_ids + (size_t)tr->batch_caption[i] * (size_t)ctxlen;
        int n = tr->cap_len[tr->batch_caption[i]];
        for (int64_t k = 0; k < L; k++) ids[i * L + k] = k < n ? cap[k] : 0;
    }
    da_tensor *x = da_from_data(ctx, DA_SHAPE(B, C, H, W), tr->images);                  /* (B,C,H,W) */
    da_tensor *fi = da_l2_normalize(ctx, da_clip_image_features(ctx, &tr->model, x), 1e-12f);  /* (B,E) */
    da_tensor *ft = da_l2_normalize(ctx, da_clip_encode_text(ctx, &tr->model, ids, B, L), 1e-12f);
    da_tensor *logits = da_mul(ctx, da_matmul(ctx, fi, ft, false, true), da_exp(ctx, tr->model.logit_scale)); /* (B,B) */
    /* multi-positive targets: row i is uniform over the pairs that share its style */
    da_tensor *y = da_zeros(ctx, DA_SHAPE(B, B));
    int correct = 0;
    for (int64_t i = 0; i < B; i++) {
        int same = 0;
        for (int64_t j = 0; j < B; j++) same += tr->batch_style[j] == tr->batch_style[i];
        for (int64_t j = 0; j < B; j++)
            if (tr->batch_style[j] == tr->batch_style[i]) y->data[i * B + j] = 1.0f / (float)same;
        int64_t best = 0;
        for (int64_t j = 1; j < B; j++)
            if (logits->data[i * B + j] > logits->data[i * B + best]) best = j;
        correct += tr->batch_style[best] == tr->batch_style[i];
    }
    if (acc_out) *acc_out = (float)correct / (float)B;
    const int tr_perm[2] = {1, 0};
    da_tensor *l_img = da_sum(ctx, da_mul(ctx, y, log_softmax_rows(ctx, logits)), 0, NULL, false);
    da_tensor *l_txt = da_sum(ctx, da_mul(ctx, y, log_softmax_rows(ctx, da_permute(ctx, logits, tr_perm))), 0, NULL, false);
    return da_scale(ctx, da_add(ctx, l_img, l_txt), -0.5f / (float)B);
}

void da_miniclip_trainer_batch_loss(da_miniclip_trainer *tr, int64_t step, float *loss, float *acc) {
    da_ctx_reset(&tr->ctx);
    bool old = da_set_grad(&tr->ctx, false);
    da_tensor *l = batch_loss(tr, step, acc);
    if (loss) *loss = l->data[0];
    da_set_grad(&tr->ctx, old);
    da_ctx_reset(&tr->ctx);
}

int da_miniclip_trainer_step(da_miniclip_trainer *tr, float *loss_out, float *acc_out, char *err, size_t errlen) {
    const da_miniclip_opts *o = &tr->o;
    da_ctx_reset(&tr->ctx);
    da_tensor *loss = batch_loss(tr, tr->step, acc_out);
    float lv = loss->data[0];
    if (loss_out) *loss_out = lv;
    if (!isfinite(lv)) {
        da_errf(err, errlen, "mini-CLIP step %lld: the loss is not finite (%g); lower --lr", (long long)tr->step, lv);
        return -1;
    }
    da_zero_grads(tr->p_all, tr->n_all);
    da_backward(&tr->ctx, loss);
    float norm = da_clip_grad_norm(tr->p_all, tr->n_all, o->grad_clip > 0 ? o->grad_clip : FLT_MAX);
    if (!isfinite(norm)) {
        da_errf(err, errlen, "mini-CLIP step %lld: the gradient is not finite; lower --lr", (long long)tr->step);
        return -1;
    }
    double lr = da_miniclip_lr(o, tr->step);
    tr->adam_decay.cfg.lr = lr;
    tr->adam_plain.cfg.lr = lr;
    da_adam_step(&tr->adam_decay);
    da_adam_step(&tr->adam_plain);
    /* CLIP's clamp: the temperature never goes below 1/100 */
    float *ls = tr->model.logit_scale->data;
    if (*ls > logf(100.0f)) *ls = logf(100.0f);
    if (*ls < 0.0f) *ls = 0.0f;
    tr->step++;
    return 0;
}

int da_miniclip_trainer_save_checkpoint(const da_miniclip_trainer *tr, const char *path, char *err, size_t errlen) {
    st_writer *w = st_writer_new();
    const da_params *p = &tr->model.params;
    for (int i = 0; i < p->n; i++) st_writer_add_f32(w, p->items[i].name, p->items[i].t->ndim, p->items[i].t->shape, p->items[i].t->data);
    int64_t nd = da_adam_state_size(&tr->adam_decay), np = da_adam_state_size(&tr->adam_plain);
    float *sd = da_xcalloc((size_t)nd, sizeof(float), OOM), *sp = da_xcalloc((size_t)np, sizeof(float), OOM);
    da_adam_export(&tr->adam_decay, sd);
    da_adam_export(&tr->adam_plain, sp);
    st_writer_add_f32(w, "optim.decay", 1, &nd, sd);
    st_writer_add_f32(w, "optim.plain", 1, &np, sp);
    char *cfg = da_clip_config_to_json(&tr->model.cfg), *oj = da_miniclip_opts_json(&tr->o);
    char step[32], hash[32];
    snprintf(step, sizeof step, "%lld", (long long)tr->step);
    snprintf(hash, sizeof hash, "%016" PRIx64, tr->data_hash);
    st_writer_set_meta(w, "format", CKPT_FORMAT);
    st_writer_set_meta(w, "clip_config", cfg);
    st_writer_set_meta(w, "bpe_merges", tr->model.bpe_merges);
    st_writer_set_meta(w, "miniclip_opts", oj);
    st_writer_set_meta(w, "step", step);
    st_writer_set_meta(w, "data_hash", hash);
    int rc = st_writer_save(w, path, err, errlen);
    st_writer_free(w);
    free(sd);
    free(sp);
    free(cfg);
    free(oj);
    return rc;
}

int da_miniclip_trainer_save_model(const da_miniclip_trainer *tr, const char *path, const char *eval_json,
                                   char *err, size_t errlen) {
    char *oj = da_miniclip_opts_json(&tr->o);
    char step[32], hash[32];
    snprintf(step, sizeof step, "%lld", (long long)tr->step);
    snprintf(hash, sizeof hash, "%016" PRIx64, tr->data_hash);
    char held[256] = "";
    size_t k = 0;
    for (int i = 0; i < da_style_count(); i++)
        if (da_style_get(i)->held_out && k < sizeof held)
            k += (size_t)snprintf(held + k, sizeof held - k, "%s%s", k ? "," : "", da_style_get(i)->name);
    const char *extra[16];
    int n = 0;
    extra[n++] = "model"; extra[n++] = "diffadapt mini-CLIP (contrastive, procedurally captioned styles)";
    extra[n++] = "miniclip_opts"; extra[n++] = oj;
    extra[n++] = "step"; extra[n++] = step;
    extra[n++] = "data_hash"; extra[n++] = hash;
    extra[n++] = "held_out_styles"; extra[n++] = held;
    if (eval_json) { extra[n++] = "miniclip_eval"; extra[n++] = eval_json; }
    extra[n] = NULL;
    int rc = da_clip_save(&tr->model, path, extra, err, errlen);
    free(oj);
    return rc;
}

void da_miniclip_trainer_free(da_miniclip_trainer *tr) {
    if (!tr) return;
    da_clip_free(&tr->model);
    if (tr->bpe) da_bpe_free(tr->bpe);
    free(tr->cap_ids);
    free(tr->cap_len);
    free(tr->cap_style);
    free(tr->style_first);
    free(tr->style_count);
    if (tr->p_decay) {
        da_adam_free(&tr->adam_decay);
        da_adam_free(&tr->adam_plain);
    }
    free(tr->p_decay);
    free(tr->p_plain);
    free(tr->p_all);
    if (tr->images) da_ctx_free(&tr->ctx);
    free(tr->images);
    free(tr->batch_style);
    free(tr->batch_caption);
    free(tr->batch_source);
    memset(tr, 0, sizeof *tr);
}
