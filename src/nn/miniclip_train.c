/* miniclip_train.c — the built-in mini-CLIP (see miniclip_train.h): caption templates, a BPE
 * vocabulary learned from the captions, contrastive training with checkpoints, zero-shot evaluation. */
#include "nn/miniclip_train.h"

#include <cjson/cJSON.h>
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

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    da_check(p != NULL, "miniclip", "out of memory (%zu x %zu bytes)", n, size);
    return p;
}

/* ---- captions ------------------------------------------------------------------------------ */

/* Our own wording. Neutral framings that name no kind of object and no style: the filled-in
 * style word is the only thing that tells captions apart (tests/test_miniclip.c checks both). */
static const char *const TRAIN_TEMPLATES[] = {
    "{}",
    "a {}.",
    "the {}.",
    "a {} of an object.",
    "a {} of a thing.",
    "a {} of something.",
    "a {} of one object.",
    "a {} of a small object.",
    "an object, {}.",
    "the object, {}.",
    "something in {} style.",
    "one object in {} style.",
    "an example in {} style.",
    "{} style.",
    "this looks {}.",
    "it looks {}.",
    "a {} rendering.",
    "a {} version.",
    "a {} copy.",
    "a {} sample.",
    "a {} view.",
    "shown as a {}.",
    "made to look {}.",
    "a {} on a square canvas.",
};

/* Never used in training: the evaluation asks whether the text tower generalises to them. */
static const char *const EVAL_TEMPLATES[] = {
    "a {} of the object.",
    "a {} of an item.",
    "here is a {}.",
    "a {} of a single thing.",
    "an item in {} style.",
    "the thing, {}.",
    "a centred {}.",
    "look: a {}.",
};

const char *const *da_miniclip_templates(int *n) {
    *n = (int)(sizeof TRAIN_TEMPLATES / sizeof TRAIN_TEMPLATES[0]);
    return TRAIN_TEMPLATES;
}

const char *const *da_miniclip_eval_templates(int *n) {
    *n = (int)(sizeof EVAL_TEMPLATES / sizeof EVAL_TEMPLATES[0]);
    return EVAL_TEMPLATES;
}

int da_miniclip_train_styles(int *idx, int max) {
    int n = 0;
    for (int i = 0; i < da_style_count() && n < max; i++)
        if (!da_style_get(i)->held_out) idx[n++] = i;
    return n;
}

int da_miniclip_style_words(const da_style *s, const char **words, int max) {
    int n = 0;
    if (n < max) words[n++] = s->name;
    for (const char *const *w = s->synonyms; w && *w && n < max; w++) words[n++] = *w;
    return n;
}

char *da_miniclip_fill(const char *tmpl, const char *word, char *buf, size_t len) {
    const char *hole = strstr(tmpl, "{}");
    if (!hole) snprintf(buf, len, "%s", tmpl);
    else snprintf(buf, len, "%.*s%s%s", (int)(hole - tmpl), tmpl, word, hole + 2);
    return buf;
}

/* Calls fn for every training caption in a fixed order: styles, then words, then templates. */
typedef void (*caption_fn)(void *user, int style, const char *caption);

static void for_each_caption(caption_fn fn, void *user) {
    int styles[DA_MINICLIP_MAX_STYLES], nt;
    int ns = da_miniclip_train_styles(styles, DA_MINICLIP_MAX_STYLES);
    const char *const *tmpl = da_miniclip_templates(&nt);
    char buf[256];
    for (int k = 0; k < ns; k++) {
        const char *words[64];
        int nw = da_miniclip_style_words(da_style_get(styles[k]), words, 64);
        for (int w = 0; w < nw; w++)
            for (int t = 0; t < nt; t++) fn(user, styles[k], da_miniclip_fill(tmpl[t], words[w], buf, sizeof buf));
    }
}

/* ---- BPE merges learned from the captions -------------------------------------------------- */

typedef struct {
    char **sym;         /* symbols of the word in the byte-to-unicode alphabet, the last with </w> */
    int n;
    int64_t count;      /* occurrences in the caption corpus */
} bpe_word;

typedef struct {
    da_bpe *bytes;      /* byte-level vocabulary: splits captions into words exactly as da_bpe does */
    bpe_word *w;
    int n, cap;
} word_table;

static char *xstrdup(const char *s) {
    char *d = strdup(s);
    da_check(d != NULL, "miniclip", "out of memory");
    return d;
}

static void add_word(word_table *t, char **sym, int n) {
    for (int i = 0; i < t->n; i++) {
        if (t->w[i].n != n) continue;
        int k = 0;
        while (k < n && !strcmp(t->w[i].sym[k], sym[k])) k++;
        if (k == n) {
            t->w[i].count++;
            for (k = 0; k < n; k++) free(sym[k]);
            return;
        }
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->w = realloc(t->w, sizeof *t->w * (size_t)t->cap);
        da_check(t->w != NULL, "miniclip", "out of memory");
    }
    bpe_word *w = &t->w[t->n++];
    w->sym = xcalloc((size_t)n, sizeof *w->sym);
    memcpy(w->sym, sym, sizeof *sym * (size_t)n);
    w->n = n;
    w->count = 1;
}

static void collect_words(void *user, int style, const char *caption) {
    (void)style;
    word_table *t = user;
    int64_t *ids = NULL;
    int n = da_bpe_encode_raw(t->bytes, caption, &ids);
    char **sym = xcalloc((size_t)n, sizeof *sym);
    int k = 0;
    for (int i = 0; i < n; i++) {
        const char *tok = da_bpe_token(t->bytes, ids[i]);
        da_check(tok != NULL, "miniclip", "byte token %lld has no string", (long long)ids[i]);
        sym[k++] = xstrdup(tok);
        size_t len = strlen(tok);
        if (len >= 4 && !strcmp(tok + len - 4, "</w>")) {   /* end of a pre-split word */
            add_word(t, sym, k);
            k = 0;
        }
    }
    for (int i = 0; i < k; i++) free(sym[i]);   /* never happens: the last byte carries </w> */
    free(sym);
    free(ids);
}

/* Pair counts in an open-addressing table keyed by "left right". */
typedef struct {
    char **key;
    int64_t *count;
    size_t cap;
} pair_table;

static size_t pair_slot(const pair_table *p, const char *key) {
    size_t h = (size_t)da_fnv1a64(DA_FNV1A64_INIT, key, strlen(key)) & (p->cap - 1);
    while (p->key[h] && strcmp(p->key[h], key)) h = (h + 1) & (p->cap - 1);
    return h;
}

char *da_miniclip_learn_merges(int max_merges) {
    static const char header[] = "#version: diffadapt mini-CLIP merges learned from its caption templates\n";
    char err[256];
    word_table t = {0};
    t.bytes = da_bpe_from_openai(header, sizeof header - 1, 0, err, sizeof err);
    da_check(t.bytes != NULL, "miniclip", "byte-level vocabulary: %s", err);
    for_each_caption(collect_words, &t);
    da_bpe_free(t.bytes);

    size_t out_cap = 4096, out_len = strlen(header);
    char *out = xcalloc(out_cap, 1);
    memcpy(out, header, out_len);
    int n_sym = 0;
    for (int i = 0; i < t.n; i++) n_sym += t.w[i].n;
    pair_table p = {0};
    p.cap = 1;
    while (p.cap < 4 * (size_t)n_sym + 16) p.cap <<= 1;
    p.key = xcalloc(p.cap, sizeof *p.key);
    p.count = xcalloc(p.cap, sizeof *p.count);
    for (int m = 0; m < max_merges; m++) {
        for (size_t i = 0; i < p.cap; i++) { free(p.key[i]); p.key[i] = NULL; p.count[i] = 0; }
        const char *best = NULL;
        int64_t best_count = 0;
        char key[512];
        for (int i = 0; i < t.n; i++)
            for (int k = 0; k + 1 < t.w[i].n; k++) {
                snprintf(key, sizeof key, "%s %s", t.w[i].sym[k], t.w[i].sym[k + 1]);
                size_t h = pair_slot(&p, key);
                if (!p.key[h]) p.key[h] = xstrdup(key);
                p.count[h] += t.w[i].count;
            }
        for (size_t i = 0; i < p.cap; i++)
            if (p.key[i] && (p.count[i] > best_count || (p.count[i] == best_count && strcmp(p.key[i], best) < 0))) {
                best = p.key[i];
                best_count = p.count[i];
            }
        if (!best || best_count < 2) break;
        size_t len = strlen(best);
        if (out_len + len + 2 > out_cap) {
            while (out_len + len + 2 > out_cap) out_cap *= 2;
            out = realloc(out, out_cap);
            da_check(out != NULL, "miniclip", "out of memory");
        }
        memcpy(out + out_len, best, len);
        out_len += len;
        out[out_len++] = '\n';
        out[out_len] = '\0';
        /* apply the merge to every word */
        const char *space = strchr(best, ' ');
        size_t ll = (size_t)(space - best);
        for (int i = 0; i < t.n; i++) {
            bpe_word *w = &t.w[i];
            int o = 0;
            for (int k = 0; k < w->n; k++) {
                if (k + 1 < w->n && strlen(w->sym[k]) == ll && !strncmp(w->sym[k], best, ll) &&
                    !strcmp(w->sym[k + 1], space + 1)) {
                    size_t a = strlen(w->sym[k]), b = strlen(w->sym[k + 1]);
                    char *joined = xcalloc(a + b + 1, 1);
                    memcpy(joined, w->sym[k], a);
                    memcpy(joined + a, w->sym[k + 1], b);
                    free(w->sym[k]);
                    free(w->sym[k + 1]);
                    w->sym[o++] = joined;
                    k++;
                } else {
                    w->sym[o++] = w->sym[k];
                }
            }
            w->n = o;
        }
    }
    for (size_t i = 0; i < p.cap; i++) free(p.key[i]);
    free(p.key);
    free(p.count);
    for (int i = 0; i < t.n; i++) {
        for (int k = 0; k < t.w[i].n; k++) free(t.w[i].sym[k]);
        free(t.w[i].sym);
    }
    free(t.w);
    return out;
}

/* ---- options ------------------------------------------------------------------------------- */

void da_miniclip_defaults(da_miniclip_opts *o) {
    memset(o, 0, sizeof *o);
    o->image_size = 32; o->patch_size = 4; o->channels = 1;
    o->vision_width = 128; o->vision_layers = 4;
    o->text_width = 128; o->text_layers = 4;
    o->heads = 4; o->embed_dim = 128; o->context = 32; o->merges = 1000;
    o->steps = 1000; o->batch = 64; o->lr = 1e-3f; o->weight_decay = 0.1f; o->warmup = 50;
    o->grad_clip = 1.0f; o->seed = 0;
}

void da_miniclip_config(const da_miniclip_opts *o, int vocab_size, da_clip_config *c) {
    da_clip_config_default(c);
    c->image_size = o->image_size; c->patch_size = o->patch_size; c->channels = o->channels;
    c->vision_width = o->vision_width; c->vision_layers = o->vision_layers;
    c->vision_heads = o->heads; c->vision_mlp = 4 * o->vision_width;
    c->text_width = o->text_width; c->text_layers = o->text_layers;
    c->text_heads = o->heads; c->text_mlp = 4 * o->text_width;
    c->vocab_size = vocab_size; c->context_length = o->context; c->embed_dim = o->embed_dim;
    /* images in [-1,1] enter the towers unchanged: ((x+1)/2 - 0.5) / 0.5 = x */
    for (int i = 0; i < 3; i++) { c->mean[i] = 0.5f; c->std[i] = 0.5f; }
}

static int check_opts(const da_miniclip_opts *o, char *err, size_t errlen) {
    if (o->steps < 1 || o->batch < 2 || !(o->lr > 0) || o->weight_decay < 0 || o->warmup < 0 || o->grad_clip < 0 ||
        o->merges < 0 || o->context < 4) {
        da_errf(err, errlen, "mini-CLIP: need steps >= 1, batch >= 2, lr > 0, weight decay >= 0, warmup >= 0, "
                "grad clip >= 0, merges >= 0 and context >= 4");
        return -1;
    }
    if (o->heads < 1 || o->vision_width % o->heads || o->text_width % o->heads) {
        da_errf(err, errlen, "mini-CLIP: the widths (vision %d, text %d) must be multiples of --heads %d",
                o->vision_width, o->text_width, o->heads);
        return -1;
    }
    da_clip_config c;
    da_miniclip_config(o, 600, &c);
    char inner[256];
    if (da_clip_config_validate(&c, inner, sizeof inner)) {
        da_errf(err, errlen, "mini-CLIP: %s", inner);
        return -1;
    }
    return 0;
}

static char *opts_json(const da_miniclip_opts *o) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "image_size", o->image_size);
    cJSON_AddNumberToObject(j, "patch_size", o->patch_size);
    cJSON_AddNumberToObject(j, "channels", o->channels);
    cJSON_AddNumberToObject(j, "vision_width", o->vision_width);
    cJSON_AddNumberToObject(j, "vision_layers", o->vision_layers);
    cJSON_AddNumberToObject(j, "text_width", o->text_width);
    cJSON_AddNumberToObject(j, "text_layers", o->text_layers);
    cJSON_AddNumberToObject(j, "heads", o->heads);
    cJSON_AddNumberToObject(j, "embed_dim", o->embed_dim);
    cJSON_AddNumberToObject(j, "context", o->context);
    cJSON_AddNumberToObject(j, "merges", o->merges);
    cJSON_AddNumberToObject(j, "steps", (double)o->steps);
    cJSON_AddNumberToObject(j, "batch", o->batch);
    cJSON_AddNumberToObject(j, "lr", o->lr);
    cJSON_AddNumberToObject(j, "weight_decay", o->weight_decay);
    cJSON_AddNumberToObject(j, "warmup", (double)o->warmup);
    cJSON_AddNumberToObject(j, "grad_clip", o->grad_clip);
    char seed[32];
    snprintf(seed, sizeof seed, "%" PRIu64, o->seed);   /* a string: 64-bit seeds exceed a double */
    cJSON_AddStringToObject(j, "seed", seed);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static int opts_from_json(const char *json, da_miniclip_opts *o, char *err, size_t errlen) {
    cJSON *j = cJSON_Parse(json);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        da_errf(err, errlen, "the training options (metadata miniclip_opts) are not a JSON object");
        return -1;
    }
    struct { const char *key; int *i; int64_t *l; float *f; } fields[] = {
        {"image_size", &o->image_size, NULL, NULL}, {"patch_size", &o->patch_size, NULL, NULL},
        {"channels", &o->channels, NULL, NULL}, {"vision_width", &o->vision_width, NULL, NULL},
        {"vision_layers", &o->vision_layers, NULL, NULL}, {"text_width", &o->text_width, NULL, NULL},
        {"text_layers", &o->text_layers, NULL, NULL}, {"heads", &o->heads, NULL, NULL},
        {"embed_dim", &o->embed_dim, NULL, NULL}, {"context", &o->context, NULL, NULL},
        {"merges", &o->merges, NULL, NULL}, {"steps", NULL, &o->steps, NULL}, {"batch", &o->batch, NULL, NULL},
        {"lr", NULL, NULL, &o->lr}, {"weight_decay", NULL, NULL, &o->weight_decay},
        {"warmup", NULL, &o->warmup, NULL}, {"grad_clip", NULL, NULL, &o->grad_clip},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0] && !rc; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, fields[i].key);
        if (!cJSON_IsNumber(v)) {
            da_errf(err, errlen, "the training options lack a number \"%s\"", fields[i].key);
            rc = -1;
        } else if (fields[i].i) {
            *fields[i].i = (int)v->valuedouble;
        } else if (fields[i].l) {
            *fields[i].l = (int64_t)v->valuedouble;
        } else {
            *fields[i].f = (float)v->valuedouble;
        }
    }
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(j, "seed");
    if (!rc && !cJSON_IsString(seed)) {
        da_errf(err, errlen, "the training options lack the seed");
        rc = -1;
    }
    if (!rc) o->seed = strtoull(seed->valuestring, NULL, 10);
    cJSON_Delete(j);
    return rc;
}

double da_miniclip_lr(const da_miniclip_opts *o, int64_t s) {
    if (o->warmup > 0 && s < o->warmup) return o->lr * (double)(s + 1) / (double)o->warmup;
    int64_t span = o->steps - o->warmup;
    if (span <= 0) return o->lr;
    double t = (double)(s - o->warmup) / (double)span;
    if (t > 1) t = 1;
    return o->lr * 0.5 * (1.0 + cos(M_PI * t));
}

uint64_t da_miniclip_data_hash(const da_dataset *d) {
    int64_t dims[4] = {d->n, d->c, d->h, d->w};
    uint64_t h = da_fnv1a64(DA_FNV1A64_INIT, dims, sizeof dims);
    return da_fnv1a64(h, d->images, sizeof(float) * (size_t)(d->n * d->c * d->h * d->w));
}

/* ---- trainer ------------------------------------------------------------------------------- */

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
    for_each_caption(count_caption, &tr->n_captions);
    int ctx = tr->o.context;
    tr->cap_ids = xcalloc((size_t)tr->n_captions * (size_t)ctx, sizeof *tr->cap_ids);
    tr->cap_len = xcalloc((size_t)tr->n_captions, sizeof *tr->cap_len);
    tr->cap_style = xcalloc((size_t)tr->n_captions, sizeof *tr->cap_style);
    tok_state ts = {tr, 0, -1, ""};
    for_each_caption(tokenize_caption, &ts);
    if (ts.bad >= 0) {
        da_errf(err, errlen, "a caption does not fit the context of %d tokens (%s); raise --context", ctx, ts.err);
        return -1;
    }
    int ns = da_style_count();
    tr->style_first = xcalloc((size_t)ns, sizeof(int));
    tr->style_count = xcalloc((size_t)ns, sizeof(int));
    for (int i = tr->n_captions - 1; i >= 0; i--) {
        tr->style_first[tr->cap_style[i]] = i;
        tr->style_count[tr->cap_style[i]]++;
    }
    /* optimiser groups: decay on matrices (linear weights, embeddings, projections, patches) */
    da_params *p = &tr->model.params;
    tr->p_decay = xcalloc((size_t)p->n, sizeof(da_tensor *));
    tr->p_plain = xcalloc((size_t)p->n, sizeof(da_tensor *));
    tr->p_all = xcalloc((size_t)p->n, sizeof(da_tensor *));
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
    tr->images = xcalloc((size_t)tr->o.batch * img, sizeof(float));
    tr->batch_style = xcalloc((size_t)tr->o.batch, sizeof(int));
    tr->batch_caption = xcalloc((size_t)tr->o.batch, sizeof(int));
    tr->batch_source = xcalloc((size_t)tr->o.batch, sizeof(int64_t));
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
    if (check_opts(o, err, errlen) || check_data(data, err, errlen)) return -1;
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
    if (opts_from_json(oj, &tr->o, inner, sizeof inner)) {
        da_errf(err, errlen, "%s: %s", path, inner);
        goto done;
    }
    if (steps > 0) tr->o.steps = steps;
    if (check_opts(&tr->o, err, errlen)) goto done;
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
    tr->model.bpe_merges = xstrdup(merges);
    if (da_params_load(&tr->model.params, &f, NULL, DA_LOAD_ALLOW_EXTRA | DA_LOAD_QUIET, NULL, inner, sizeof inner)) {
        da_errf(err, errlen, "%s: %s", path, inner);
        goto done;
    }
    if (setup(tr, data, err, errlen)) goto done;
    const st_tensor_info *infos[2] = {od, op};
    da_adam *opts[2] = {&tr->adam_decay, &tr->adam_plain};
    for (int k = 0; k < 2; k++) {
        float *buf = xcalloc((size_t)infos[k]->numel, sizeof(float));
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
    float *sd = xcalloc((size_t)nd, sizeof(float)), *sp = xcalloc((size_t)np, sizeof(float));
    da_adam_export(&tr->adam_decay, sd);
    da_adam_export(&tr->adam_plain, sp);
    st_writer_add_f32(w, "optim.decay", 1, &nd, sd);
    st_writer_add_f32(w, "optim.plain", 1, &np, sp);
    char *cfg = da_clip_config_to_json(&tr->model.cfg), *oj = opts_json(&tr->o);
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
    char *oj = opts_json(&tr->o);
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
