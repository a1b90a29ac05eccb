/* unet.c — the DDPM UNet (Ho et al.; the SDEdit/DiffusionCLIP "simple" model): parameters under
 * the reference state_dict keys, PyTorch-default initialisation, forward from the engine's ops
 * (backward comes from the tape), and loading/saving with the config in the file metadata. */
#include "nn/unet.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "tensor/fused_ops.h"
#include "tensor/rng.h"

#define GN_GROUPS 32
#define GN_EPS 1e-6f

/* ---- parameters ---------------------------------------------------------------------------- */

typedef struct {
    da_unet *m;
    da_rng rng;
    char prefix[160];
    bool count_only;   /* only add up the parameter count (sizes are checked before allocating) */
    int64_t count;
} builder;

static da_tensor *add_param(builder *b, const char *suffix, int ndim, const int64_t *shape) {
    if (b->count_only) {
        int64_t n = 1;
        for (int d = 0; d < ndim; d++) n *= shape[d];   /* validated sizes: no overflow */
        b->count += n;
        return NULL;
    }
    char name[400];
    snprintf(name, sizeof name, "%s%s", b->prefix, suffix);
    return da_params_add(&b->m->params, name, ndim, shape);
}

static void set_prefix(builder *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->prefix, sizeof b->prefix, fmt, ap);
    va_end(ap);
}

/* Registers "<prefix><name>.weight/.bias". */
static da_unet_layer make_conv(builder *b, const char *name, int cin, int cout, int k) {
    char s[200];
    da_unet_layer l;
    snprintf(s, sizeof s, "%s.weight", name);
    l.w = add_param(b, s, DA_SHAPE(cout, cin, k, k));
    snprintf(s, sizeof s, "%s.bias", name);
    l.b = add_param(b, s, DA_SHAPE(cout));
    if (!b->count_only) da_init_torch_default(l.w, l.b, 0, &b->rng);
    return l;
}

static da_unet_layer make_linear(builder *b, const char *name, int cin, int cout) {
    char s[200];
    da_unet_layer l;
    snprintf(s, sizeof s, "%s.weight", name);
    l.w = add_param(b, s, DA_SHAPE(cout, cin));
    snprintf(s, sizeof s, "%s.bias", name);
    l.b = add_param(b, s, DA_SHAPE(cout));
    if (!b->count_only) da_init_torch_default(l.w, l.b, 0, &b->rng);
    return l;
}

static da_unet_layer make_norm(builder *b, const char *name, int c) {
    char s[200];
    da_unet_layer l;
    snprintf(s, sizeof s, "%s.weight", name);
    l.w = add_param(b, s, DA_SHAPE(c));
    snprintf(s, sizeof s, "%s.bias", name);
    l.b = add_param(b, s, DA_SHAPE(c));
    if (!b->count_only) da_init_const(l.w, 1.0f);   /* bias is already zero */
    return l;
}

static da_unet_resblock make_resblock(builder *b, int cin, int cout, int temb_ch) {
    da_unet_resblock r;
    memset(&r, 0, sizeof r);
    r.cin = cin;
    r.cout = cout;
    r.norm1 = make_norm(b, "norm1", cin);
    r.conv1 = make_conv(b, "conv1", cin, cout, 3);
    r.temb_proj = make_linear(b, "temb_proj", temb_ch, cout);
    r.norm2 = make_norm(b, "norm2", cout);
    r.conv2 = make_conv(b, "conv2", cout, cout, 3);
    if (cin != cout) r.nin_shortcut = make_conv(b, "nin_shortcut", cin, cout, 1);
    return r;
}

static da_unet_attn make_attn(builder *b, int c) {
    da_unet_attn a;
    a.c = c;
    a.norm = make_norm(b, "norm", c);
    a.q = make_conv(b, "q", c, c, 1);
    a.k = make_conv(b, "k", c, c, 1);
    a.v = make_conv(b, "v", c, c, 1);
    a.proj_out = make_conv(b, "proj_out", c, c, 1);
    return a;
}

static bool has_attn(const da_unet_config *c, int res) {
    for (int i = 0; i < c->n_attn; i++)
        if (c->attn_resolutions[i] == res) return true;
    return false;
}

/* Registers (or, when counting, only counts) every parameter of the model for cfg. */
static void build(builder *b, const da_unet_config *cfg) {
    da_unet *m = b->m;
    const int ch = cfg->ch, L = cfg->n_levels, nrb = cfg->num_res_blocks, temb_ch = 4 * ch;
    int in_mult[DA_UNET_MAX_LEVELS + 1];
    in_mult[0] = 1;
    for (int i = 0; i < L; i++) in_mult[i + 1] = cfg->ch_mult[i];

    set_prefix(b, "temb.dense.");
    m->temb0 = make_linear(b, "0", ch, temb_ch);
    m->temb1 = make_linear(b, "1", temb_ch, temb_ch);
    set_prefix(b, "");
    m->conv_in = make_conv(b, "conv_in", cfg->in_channels, ch, 3);

    /* down path */
    int res = cfg->resolution, block_in = ch;
    for (int i = 0; i < L; i++) {
        da_unet_level *lv = &m->down[i];
        block_in = ch * in_mult[i];
        int block_out = ch * cfg->ch_mult[i];
        bool attn = has_attn(cfg, res);
        for (int j = 0; j < nrb; j++) {
            set_prefix(b, "down.%d.block.%d.", i, j);
            lv->block[j] = make_resblock(b, block_in, block_out, temb_ch);
            block_in = block_out;
        }
        if (attn)
            for (int j = 0; j < nrb; j++) {
                set_prefix(b, "down.%d.attn.%d.", i, j);
                lv->attn[j] = make_attn(b, block_in);
            }
        lv->n_attn = attn ? nrb : 0;
        if (i != L - 1) {
            lv->has_resample = true;
            set_prefix(b, "down.%d.downsample.", i);
            if (cfg->resamp_with_conv) lv->resample = make_conv(b, "conv", block_in, block_in, 3);
            res /= 2;
        }
    }

    /* middle */
    set_prefix(b, "mid.block_1.");
    m->mid_block_1 = make_resblock(b, block_in, block_in, temb_ch);
    set_prefix(b, "mid.attn_1.");
    m->mid_attn_1 = make_attn(b, block_in);
    set_prefix(b, "mid.block_2.");
    m->mid_block_2 = make_resblock(b, block_in, block_in, temb_ch);

    /* up path: channels follow the reference construction (from the lowest level up), but the
     * parameters are registered in state_dict order up.0, up.1, ... */
    int up_cin[DA_UNET_MAX_LEVELS][DA_UNET_MAX_BLOCKS + 1], up_res[DA_UNET_MAX_LEVELS];
    for (int i = L - 1; i >= 0; i--) {
        int block_out = ch * cfg->ch_mult[i], skip_in = ch * cfg->ch_mult[i];
        for (int j = 0; j <= nrb; j++) {
            if (j == nrb) skip_in = ch * in_mult[i];
            up_cin[i][j] = block_in + skip_in;
            block_in = block_out;
        }
        up_res[i] = res;
        if (i != 0) res *= 2;
    }
    for (int i = 0; i < L; i++) {
        da_unet_level *lv = &m->up[i];
        int block_out = ch * cfg->ch_mult[i];
        for (int j = 0; j <= nrb; j++) {
            set_prefix(b, "up.%d.block.%d.", i, j);
            lv->block[j] = make_resblock(b, up_cin[i][j], block_out, temb_ch);
        }
        bool attn = has_attn(cfg, up_res[i]);
        if (attn)
            for (int j = 0; j <= nrb; j++) {
                set_prefix(b, "up.%d.attn.%d.", i, j);
                lv->attn[j] = make_attn(b, block_out);
            }
        lv->n_attn = attn ? nrb + 1 : 0;
        if (i != 0) {
            lv->has_resample = true;
            set_prefix(b, "up.%d.upsample.", i);
            if (cfg->resamp_with_conv) lv->resample = make_conv(b, "conv", block_out, block_out, 3);
        }
    }
    set_prefix(b, "");
    m->norm_out = make_norm(b, "norm_out", ch * cfg->ch_mult[0]);
    m->conv_out = make_conv(b, "conv_out", ch * cfg->ch_mult[0], cfg->out_ch, 3);
}

int64_t da_unet_config_num_params(const da_unet_config *cfg) {
    if (cfg->is_adm) return da_adm_config_num_params(&cfg->adm);
    da_unet *m = calloc(1, sizeof *m);
    if (!m) return -1;
    builder bb = {.m = m, .count_only = true};
    build(&bb, cfg);
    free(m);
    return bb.count;
}

/* The ADM family: its layers in m->adm, its parameters moved into m->params. */
static int init_adm(da_unet *m, const da_unet_config *cfg, uint64_t seed, char *err, size_t errlen) {
    m->cfg = *cfg;
    m->adm = calloc(1, sizeof *m->adm);
    if (!m->adm) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (da_adm_init(m->adm, &cfg->adm, seed, err, errlen)) {
        free(m->adm);
        m->adm = NULL;
        return -1;
    }
    m->params = m->adm->params;
    memset(&m->adm->params, 0, sizeof m->adm->params);
    return 0;
}

int da_unet_init(da_unet *m, const da_unet_config *cfg, uint64_t seed, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    if (da_unet_config_validate(cfg, err, errlen)) return -1;
    if (cfg->is_adm) return init_adm(m, cfg, seed, err, errlen);
    m->cfg = *cfg;
    da_params_init(&m->params);
    builder bb = {.m = m};
    da_rng_init(&bb.rng, seed);
    build(&bb, cfg);
    return 0;
}

void da_unet_free(da_unet *m) {
    da_params_free(&m->params);
    free(m->adm);
    m->adm = NULL;
}

int64_t da_unet_num_params(const da_unet *m) { return da_params_count(&m->params); }

void da_unet_requires_grad(da_unet *m, bool on) {
    for (int i = 0; i < m->params.n; i++) m->params.items[i].t->requires_grad = on;
}

void da_unet_zero_grad(da_unet *m) { da_params_zero_grad(&m->params); }

da_tensor *da_unet_param(const da_unet *m, const char *name) { return da_params_find(&m->params, name); }

/* ---- forward ------------------------------------------------------------------------------- */

da_tensor *da_timestep_embedding(da_ctx *ctx, const float *t, int64_t B, int dim) {
    da_tensor *e = da_zeros(ctx, DA_SHAPE(B, dim));   /* (B,dim) */
    int half = dim / 2;
    /* float32 like the reference: f_i = exp(-i·ln(10000)/(half-1)) */
    float scale = (float)(log(10000.0) / (double)(half - 1));
    for (int i = 0; i < half; i++) {
        float f = expf((float)i * -scale);
        for (int64_t b = 0; b < B; b++) {
            float a = t[b] * f;
            e->data[b * dim + i] = sinf(a);
            e->data[b * dim + half + i] = cosf(a);
        }
    }
    return e;
}

/* swish(group_norm(x)) as one fused op (tensor/fused_ops.h) */
static da_tensor *norm_silu(da_ctx *ctx, const da_unet_layer *n, da_tensor *x) {
    return da_gn_swish(ctx, x, NULL, n->w, n->b, GN_GROUPS, GN_EPS, 0.0f);
}

/* temb_act = swish(temb) (B,4ch), shared by every block (the reference applies the same
 * swish in each block). The timestep projection is added to conv1's output per channel; the
 * fused op adds it before norm2, then applies swish and dropout. */
static da_tensor *resblock(da_ctx *ctx, const da_unet_resblock *r, da_tensor *x, da_tensor *temb_act, float dropout) {
    da_tensor *h = da_conv2d(ctx, norm_silu(ctx, &r->norm1, x), r->conv1.w, r->conv1.b, 1, 1);   /* (B,cout,H,W) */
    da_tensor *tp = da_linear(ctx, temb_act, r->temb_proj.w, r->temb_proj.b);                    /* (B,cout) */
    h = da_gn_swish(ctx, h, tp, r->norm2.w, r->norm2.b, GN_GROUPS, GN_EPS, dropout);
    h = da_conv2d(ctx, h, r->conv2.w, r->conv2.b, 1, 1);
    da_tensor *sc = r->cin != r->cout ? da_conv2d(ctx, x, r->nin_shortcut.w, r->nin_shortcut.b, 1, 0) : x;
    return da_add(ctx, sc, h);
}

/* Single-head self-attention over the H·W positions, computed in the (B,C,HW) layout so no
 * permutes are needed: W = softmax_j(q^T k · C^-1/2) (B,HW,HW), out = v W^T (B,C,HW). */
static da_tensor *attnblock(da_ctx *ctx, const da_unet_attn *a, da_tensor *x) {
    int64_t B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    da_tensor *hn = da_group_norm(ctx, x, a->norm.w, a->norm.b, GN_GROUPS, GN_EPS);
    da_tensor *q = da_conv2d(ctx, hn, a->q.w, a->q.b, 1, 0);
    da_tensor *k = da_conv2d(ctx, hn, a->k.w, a->k.b, 1, 0);
    da_tensor *v = da_conv2d(ctx, hn, a->v.w, a->v.b, 1, 0);
    q = da_scale(ctx, da_reshape(ctx, q, DA_SHAPE(B, C, H * W)), 1.0f / sqrtf((float)C));
    k = da_reshape(ctx, k, DA_SHAPE(B, C, H * W));
    v = da_reshape(ctx, v, DA_SHAPE(B, C, H * W));
    da_tensor *w = da_softmax(ctx, da_matmul(ctx, q, k, true, false), false);   /* (B,HW,HW) */
    da_tensor *h = da_matmul(ctx, v, w, false, true);                             /* (B,C,HW) */
    h = da_conv2d(ctx, da_reshape(ctx, h, DA_SHAPE(B, C, H, W)), a->proj_out.w, a->proj_out.b, 1, 0);
    return da_add(ctx, x, h);
}

static da_tensor *ddpm_forward(da_ctx *ctx, const da_unet *m, da_tensor *x, const float *t) {
    const da_unet_config *c = &m->cfg;
    da_check(x->ndim == 4 && x->shape[1] == c->in_channels && x->shape[2] == c->resolution &&
             x->shape[3] == c->resolution, "unet", "input must be (B,%d,%d,%d)", c->in_channels, c->resolution,
             c->resolution);
    const int L = c->n_levels, nrb = c->num_res_blocks;
    int64_t B = x->shape[0];

    da_tensor *temb = da_timestep_embedding(ctx, t, B, c->ch);                      /* (B,ch) */
    temb = da_linear(ctx, temb, m->temb0.w, m->temb0.b);
    temb = da_linear(ctx, da_swish(ctx, temb), m->temb1.w, m->temb1.b);             /* (B,4ch) */
    da_tensor *temb_act = da_swish(ctx, temb);

    da_tensor *hs[DA_UNET_MAX_LEVELS * (DA_UNET_MAX_BLOCKS + 1) + 1];
    int n_hs = 0;
    hs[n_hs++] = da_conv2d(ctx, x, m->conv_in.w, m->conv_in.b, 1, 1);
    for (int i = 0; i < L; i++) {
        const da_unet_level *lv = &m->down[i];
        for (int j = 0; j < nrb; j++) {
            da_tensor *h = resblock(ctx, &lv->block[j], hs[n_hs - 1], temb_act, c->dropout);
            if (lv->n_attn) h = attnblock(ctx, &lv->attn[j], h);
            hs[n_hs++] = h;
        }
        if (lv->has_resample) {
            da_tensor *h = hs[n_hs - 1];
            /* pad right and bottom by one, 3x3 stride 2 — or a 2x2 average */
            h = lv->resample.w ? da_conv2d_ex(ctx, h, lv->resample.w, lv->resample.b, 2, 0, 1, 0, 1)
                               : da_avg_pool2d(ctx, h, 2, 2);
            hs[n_hs++] = h;
        }
    }
    da_tensor *h = hs[n_hs - 1];
    h = resblock(ctx, &m->mid_block_1, h, temb_act, c->dropout);
    h = attnblock(ctx, &m->mid_attn_1, h);
    h = resblock(ctx, &m->mid_block_2, h, temb_act, c->dropout);
    for (int i = L - 1; i >= 0; i--) {
        const da_unet_level *lv = &m->up[i];
        for (int j = 0; j <= nrb; j++) {
            da_tensor *cat[2] = {h, hs[--n_hs]};
            h = resblock(ctx, &lv->block[j], da_concat(ctx, 2, cat, 1), temb_act, c->dropout);
            if (lv->n_attn) h = attnblock(ctx, &lv->attn[j], h);
        }
        if (lv->has_resample) {
            h = da_upsample_nearest2x(ctx, h);
            if (lv->resample.w) h = da_conv2d(ctx, h, lv->resample.w, lv->resample.b, 1, 1);
        }
    }
    da_check(n_hs == 0, "unet", "skip bookkeeping is off (%d left)", n_hs);
    h = norm_silu(ctx, &m->norm_out, h);
    return da_conv2d(ctx, h, m->conv_out.w, m->conv_out.b, 1, 1);
}

da_tensor *da_unet_forward(da_ctx *ctx, const da_unet *m, da_tensor *x, const float *t) {
    da_precision old = ctx->precision;
    if (!ctx->grad_enabled) ctx->precision = m->infer_precision;
    da_tensor *y = m->adm ? da_adm_forward(ctx, m->adm, x, t) : ddpm_forward(ctx, m, x, t);
    ctx->precision = old;
    return y;
}

/* ε: the DDPM UNet's output, or the first in_channels channels of the ADM's (the rest is the
 * learned variance, which DDIM does not use). */
static da_tensor *eps_of(da_ctx *ctx, const da_unet *m, da_tensor *x, const float *t) {
    da_tensor *y = da_unet_forward(ctx, m, x, t);
    return y->shape[1] == m->cfg.out_ch ? y : da_slice(ctx, y, 1, 0, m->cfg.out_ch);
}

da_tensor *da_unet_eps(da_ctx *ctx, da_tensor *x, int t, void *user) {
    int64_t B = x->shape[0];
    float *tf = da_arena_alloc(&ctx->arena, sizeof(float) * (size_t)B);
    for (int64_t b = 0; b < B; b++) tf[b] = (float)t;
    return eps_of(ctx, user, x, tf);
}

da_tensor *da_unet_eps_batch(da_ctx *ctx, da_tensor *x, const int *t, void *user) {
    int64_t B = x->shape[0];
    float *tf = da_arena_alloc(&ctx->arena, sizeof(float) * (size_t)B);
    for (int64_t b = 0; b < B; b++) tf[b] = (float)t[b];
    return eps_of(ctx, user, x, tf);
}

/* ---- files --------------------------------------------------------------------------------- */

int da_unet_load(da_unet *m, const char *path, const char *config_path, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    st_file f;
    char e2[DA_ERR_LEN];
    if (st_open(path, &f, e2, sizeof e2)) {
        snprintf(err, errlen, "cannot read model %s: %s", path, e2);
        return -1;
    }
    da_unet_config cfg;
    da_unet_config_default(&cfg);
    int rc = -1;
    if (config_path) {
        if (da_unet_config_load(config_path, &cfg, err, errlen)) goto done;
    } else {
        const char *js = st_meta_get(&f, "config");
        if (!js) {
            snprintf(err, errlen, "%s holds no model config (no \"config\" metadata); pass --config FILE "
                     "(a YAML like the reference configs/celeba.yml, or JSON)", path);
            goto done;
        }
        char what[600];
        snprintf(what, sizeof what, "the config stored in %s", path);
        if (da_unet_config_from_json(js, what, &cfg, err, errlen)) goto done;
    }
    if (da_unet_init(m, &cfg, 0, err, errlen)) goto done;
    const char *cfg_src = config_path ? config_path : "its stored config";
    /* strict: every tensor the config implies, with its shape, and nothing else */
    int lrc = da_params_load(&m->params, &f, NULL, 0, NULL, e2, sizeof e2);
    if (lrc == -2) {
        snprintf(err, errlen, "model %s: %s", path, e2);
        goto fail;
    }
    if (lrc) {
        char cs[256];
        snprintf(err, errlen, "model %s does not match %s (%s): %s", path, cfg_src,
                 da_unet_config_str(&cfg, cs, sizeof cs), e2);
        goto fail;
    }
    rc = 0;
    goto done;
fail:
    da_unet_free(m);
done:
    st_close(&f);
    return rc;
}

int da_unet_save(const da_unet *m, const char *path, const char *const *extra, int n_extra, char *err, size_t errlen) {
    char *js = da_unet_config_to_json(&m->cfg);
    const char **meta = calloc((size_t)(2 * n_extra + 5), sizeof *meta);
    int k = 0;
    meta[k++] = "format";
    meta[k++] = "diffadapt-unet";
    meta[k++] = "config";
    meta[k++] = js;
    for (int i = 0; i < 2 * n_extra; i++) meta[k++] = extra[i];
    meta[k] = NULL;
    int rc = da_params_save(&m->params, path, meta, err, errlen);
    free(meta);
    free(js);
    return rc;
}
