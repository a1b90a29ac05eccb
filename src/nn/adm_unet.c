/* adm_unet.c — the improved-DDPM / ADM UNet (see adm_unet.h): parameters under the reference
 * state_dict keys in construction order, PyTorch-default initialisation, and the forward pass
 * from the engine's ops (backward comes from the tape). */
#include "nn/adm_unet.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/fused_ops.h"
#include "tensor/rng.h"
#include "util/errf.h"

#define GN_GROUPS 32
#define GN_EPS 1e-5f

void da_adm_config_default(da_adm_config *c) {
    memset(c, 0, sizeof *c);
    c->image_size = 256;
    c->in_channels = 3;
    c->model_channels = 256;
    c->num_res_blocks = 2;
    static const int mult[6] = {1, 1, 2, 2, 4, 4};
    memcpy(c->channel_mult, mult, sizeof mult);
    c->n_levels = 6;
    c->attention_ds[0] = 8;    /* 32 px */
    c->attention_ds[1] = 16;   /* 16 px */
    c->attention_ds[2] = 32;   /* 8 px */
    c->n_attn = 3;
    c->num_heads = 4;
    c->num_head_channels = 64;
    c->num_heads_upsample = -1;
    c->use_scale_shift_norm = true;
    c->resblock_updown = true;
    c->learn_sigma = true;
    c->conv_resample = true;
}

/* Heads of an attention block over ch channels. */
static int heads_for(const da_adm_config *c, int ch, bool upsample) {
    if (c->num_head_channels > 0) return ch / c->num_head_channels;
    return upsample && c->num_heads_upsample > 0 ? c->num_heads_upsample : c->num_heads;
}

int da_adm_config_validate(const da_adm_config *c, char *err, size_t errlen) {
#define BAD(...) do { da_errf(err, errlen, __VA_ARGS__); return -1; } while (0)
    if (c->in_channels < 1 || c->in_channels > 64) BAD("ADM config: in_channels %d must lie in 1..64", c->in_channels);
    if (c->model_channels < 1 || c->model_channels > 4096) BAD("ADM config: model_channels %d must lie in 1..4096", c->model_channels);
    if (c->n_levels < 1 || c->n_levels > DA_ADM_MAX_LEVELS) BAD("ADM config: channel_mult needs 1..%d entries", DA_ADM_MAX_LEVELS);
    if (c->num_res_blocks < 1 || c->num_res_blocks > DA_ADM_MAX_BLOCKS) BAD("ADM config: num_res_blocks must lie in 1..%d", DA_ADM_MAX_BLOCKS);
    if (c->image_size < 1 || c->image_size % (1 << (c->n_levels - 1)))
        BAD("ADM config: image_size %d is not divisible by 2^%d (one halving per level)", c->image_size, c->n_levels - 1);
    if (!(c->dropout >= 0 && c->dropout < 1)) BAD("ADM config: dropout %g must lie in [0,1)", (double)c->dropout);
    if (c->n_attn < 0 || c->n_attn > DA_ADM_MAX_LEVELS) BAD("ADM config: too many attention resolutions");
    for (int i = 0; i < c->n_levels; i++) {
        int ch = c->channel_mult[i] * c->model_channels;
        if (c->channel_mult[i] < 1 || c->channel_mult[i] > 64 || ch % GN_GROUPS)
            BAD("ADM config: level %d has %d channels; channel counts must be positive multiples of 32 (GroupNorm)", i, ch);
        for (int up = 0; up < 2; up++) {
            int h = heads_for(c, ch, up);
            if (h < 1 || ch % h) BAD("ADM config: %d channels cannot be split into %d attention heads", ch, h);
        }
    }
    if (c->num_head_channels <= 0 && c->num_heads < 1) BAD("ADM config: num_heads or num_head_channels must be set");
    if (c->image_size > 4096) BAD("ADM config: image_size %d is larger than 4096", c->image_size);
    /* attention at a resolution that no level runs at would silently mean no attention at all */
    for (int i = 0; i < c->n_attn; i++) {
        bool occurs = false;
        for (int l = 0; l < c->n_levels; l++) occurs |= c->attention_ds[i] == 1 << l;
        if (!occurs)
            BAD("ADM config: attention resolution %d px never occurs: the levels of a %d-pixel model with %d "
                "channel_mult entries run at %d down to %d px", c->attention_ds[i] > 0 ? c->image_size / c->attention_ds[i] : 0,
                c->image_size, c->n_levels, c->image_size, c->image_size >> (c->n_levels - 1));
    }
    /* the memory the model needs, before anything is allocated (the bounds above keep every
     * product within int64): its weights, and upper bounds on its largest activation for one
     * image (the widest level at full resolution, three times for the skip concatenation) and on
     * one attention map (heads x (hw x hw) scores) */
    double limit = da_memory_limit_bytes(), params = (double)da_adm_config_num_params(c) * sizeof(float);
    int cmax = 0;
    for (int i = 0; i < c->n_levels; i++)
        cmax = c->channel_mult[i] * c->model_channels > cmax ? c->channel_mult[i] * c->model_channels : cmax;
    double act = 3.0 * cmax * (double)c->image_size * c->image_size * sizeof(float), attn = 0;
    for (int l = 0; l < c->n_levels; l++) {
        bool here = l == c->n_levels - 1;   /* the middle block always attends at the deepest level */
        for (int i = 0; i < c->n_attn; i++) here |= c->attention_ds[i] == 1 << l;
        if (!here) continue;
        int ch = c->channel_mult[l] * c->model_channels, h1 = heads_for(c, ch, false), h2 = heads_for(c, ch, true);
        double hw = (double)(c->image_size >> l) * (c->image_size >> l);
        double a = (double)(h1 > h2 ? h1 : h2) * hw * hw * sizeof(float);
        attn = a > attn ? a : attn;
    }
    double need = params > act ? params : act;
    need = attn > need ? attn : need;
    if (need > limit)
        BAD("ADM config: the model would need %.1f GiB (%.0f M parameters, %.1f GiB per image for activations and "
            "%.1f GiB for one attention map), more than the limit of %.1f GiB; check num_channels/channel_mult/"
            "image_size, or raise the limit with DIFFADAPT_MAX_GIB", need / 1073741824.0, params / sizeof(float) / 1e6,
            act / 1073741824.0, attn / 1073741824.0, limit / 1073741824.0);
#undef BAD
    return 0;
}

/* ---- parameters ---------------------------------------------------------------------------- */

typedef struct {
    da_adm_unet *m;
    da_rng rng;
    char prefix[160];
    bool count_only;   /* only add up the parameter count (sizes are checked before allocating) */
    int64_t count;
} builder;

static void set_prefix(builder *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->prefix, sizeof b->prefix, fmt, ap);
    va_end(ap);
}

/* "<prefix><name>.weight" of the given shape and "<prefix><name>.bias" (n_out). */
static da_adm_layer make_layer(builder *b, const char *name, int ndim, const int64_t *wshape, int64_t n_out, bool norm) {
    char s[400];
    da_adm_layer l = {NULL, NULL};
    if (b->count_only) {
        int64_t n = 1;
        for (int d = 0; d < ndim; d++) n *= wshape[d];   /* validated sizes: no overflow */
        b->count += n + n_out;
        return l;
    }
    snprintf(s, sizeof s, "%s%s.weight", b->prefix, name);
    l.w = da_params_add(&b->m->params, s, ndim, wshape);
    snprintf(s, sizeof s, "%s%s.bias", b->prefix, name);
    l.b = da_params_add(&b->m->params, s, 1, &n_out);
    if (norm) da_init_const(l.w, 1.0f);
    else da_init_torch_default(l.w, l.b, 0, &b->rng);
    return l;
}

static da_adm_layer conv(builder *b, const char *name, int cin, int cout, int k) {
    return make_layer(b, name, DA_SHAPE(cout, cin, k, k), cout, false);
}

static da_adm_layer norm(builder *b, const char *name, int c) { return make_layer(b, name, DA_SHAPE(c), c, true); }

static da_adm_module resblock(builder *b, const da_adm_config *c, int cin, int cout, bool up, bool down) {
    da_adm_module r;
    memset(&r, 0, sizeof r);
    r.kind = DA_ADM_RES;
    r.cin = cin;
    r.cout = cout;
    r.up = up;
    r.down = down;
    int temb = 4 * c->model_channels, eo = c->use_scale_shift_norm ? 2 * cout : cout;
    r.in_norm = norm(b, "in_layers.0", cin);
    r.in_conv = conv(b, "in_layers.2", cin, cout, 3);
    r.emb = make_layer(b, "emb_layers.1", DA_SHAPE(eo, temb), eo, false);
    r.out_norm = norm(b, "out_layers.0", cout);
    r.out_conv = conv(b, "out_layers.3", cout, cout, 3);
    if (cin != cout) r.skip = conv(b, "skip_connection", cin, cout, 1);
    return r;
}

static da_adm_module attention(builder *b, int ch, int heads) {
    da_adm_module a;
    memset(&a, 0, sizeof a);
    a.kind = DA_ADM_ATTN;
    a.cin = a.cout = ch;
    a.heads = heads;
    a.norm = norm(b, "norm", ch);
    a.qkv = make_layer(b, "qkv", DA_SHAPE(3 * ch, ch, 1), 3 * ch, false);     /* conv1d */
    a.proj = make_layer(b, "proj_out", DA_SHAPE(ch, ch, 1), ch, false);
    return a;
}

/* Downsample ("op") or Upsample ("conv"): a conv when conv_resample, else no parameters. */
static da_adm_module resample(builder *b, const da_adm_config *c, int ch, bool up) {
    da_adm_module r;
    memset(&r, 0, sizeof r);
    r.kind = up ? DA_ADM_UP : DA_ADM_DOWN;
    r.cin = r.cout = ch;
    if (c->conv_resample) r.conv = conv(b, up ? "conv" : "op", ch, ch, 3);
    return r;
}

static bool attn_at(const da_adm_config *c, int ds) {
    for (int i = 0; i < c->n_attn; i++)
        if (c->attention_ds[i] == ds) return true;
    return false;
}

/* Registers (or, when counting, only counts) every parameter of the model for cfg. */
static void build(builder *b, const da_adm_config *cfg) {
    da_adm_unet *m = b->m;
    m->cfg = *cfg;
    m->out_channels = cfg->learn_sigma ? 2 * cfg->in_channels : cfg->in_channels;
    const int mc = cfg->model_channels, temb = 4 * mc, L = cfg->n_levels, nrb = cfg->num_res_blocks;

    set_prefix(b, "time_embed.");
    m->temb0 = make_layer(b, "0", DA_SHAPE(temb, mc), temb, false);
    m->temb1 = make_layer(b, "2", DA_SHAPE(temb, temb), temb, false);

    int ch = cfg->channel_mult[0] * mc, ds = 1, chans[1 + DA_ADM_MAX_LEVELS * (DA_ADM_MAX_BLOCKS + 1)], n_chans = 0;
    set_prefix(b, "input_blocks.0.");
    m->input[0].m[0].kind = DA_ADM_DOWN;   /* placeholder kind; the first block is the input conv */
    m->input[0].m[0].conv = conv(b, "0", cfg->in_channels, ch, 3);
    m->input[0].n = 1;
    m->n_input = 1;
    chans[n_chans++] = ch;
    for (int level = 0; level < L; level++) {
        for (int j = 0; j < nrb; j++) {
            da_adm_seq *s = &m->input[m->n_input];
            int out = cfg->channel_mult[level] * mc;
            set_prefix(b, "input_blocks.%d.0.", m->n_input);
            s->m[s->n++] = resblock(b, cfg, ch, out, false, false);
            ch = out;
            if (attn_at(cfg, ds)) {
                set_prefix(b, "input_blocks.%d.1.", m->n_input);
                s->m[s->n++] = attention(b, ch, heads_for(cfg, ch, false));
            }
            m->n_input++;
            chans[n_chans++] = ch;
        }
        if (level != L - 1) {
            da_adm_seq *s = &m->input[m->n_input];
            set_prefix(b, "input_blocks.%d.0.", m->n_input);
            s->m[s->n++] = cfg->resblock_updown ? resblock(b, cfg, ch, ch, false, true) : resample(b, cfg, ch, false);
            m->n_input++;
            chans[n_chans++] = ch;
            ds *= 2;
        }
    }
    set_prefix(b, "middle_block.0.");
    m->middle.m[0] = resblock(b, cfg, ch, ch, false, false);
    set_prefix(b, "middle_block.1.");
    m->middle.m[1] = attention(b, ch, heads_for(cfg, ch, false));
    set_prefix(b, "middle_block.2.");
    m->middle.m[2] = resblock(b, cfg, ch, ch, false, false);
    m->middle.n = 3;
    for (int level = L - 1; level >= 0; level--)
        for (int j = 0; j <= nrb; j++) {
            da_adm_seq *s = &m->output[m->n_output];
            int ich = chans[--n_chans], out = cfg->channel_mult[level] * mc;
            set_prefix(b, "output_blocks.%d.%d.", m->n_output, s->n);
            s->m[s->n++] = resblock(b, cfg, ch + ich, out, false, false);
            ch = out;
            if (attn_at(cfg, ds)) {
                set_prefix(b, "output_blocks.%d.%d.", m->n_output, s->n);
                s->m[s->n++] = attention(b, ch, heads_for(cfg, ch, true));
            }
            if (level && j == nrb) {
                set_prefix(b, "output_blocks.%d.%d.", m->n_output, s->n);
                s->m[s->n++] = cfg->resblock_updown ? resblock(b, cfg, ch, ch, true, false) : resample(b, cfg, ch, true);
                ds /= 2;
            }
            m->n_output++;
        }
    set_prefix(b, "out.");
    m->out_norm = norm(b, "0", ch);
    m->out_conv = conv(b, "2", ch, m->out_channels, 3);
}

int64_t da_adm_config_num_params(const da_adm_config *cfg) {
    da_adm_unet *m = calloc(1, sizeof *m);
    if (!m) return -1;
    builder bb = {.m = m, .count_only = true};
    build(&bb, cfg);
    free(m);
    return bb.count;
}

int da_adm_init(da_adm_unet *m, const da_adm_config *cfg, uint64_t seed, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    if (da_adm_config_validate(cfg, err, errlen)) return -1;
    da_params_init(&m->params);
    builder bb = {.m = m};
    da_rng_init(&bb.rng, seed);
    build(&bb, cfg);
    return 0;
}

void da_adm_free(da_adm_unet *m) { da_params_free(&m->params); }

/* ---- forward ------------------------------------------------------------------------------- */

da_tensor *da_adm_timestep_embedding(da_ctx *ctx, const float *t, int64_t B, int dim) {
    da_tensor *e = da_zeros(ctx, DA_SHAPE(B, dim));   /* (B,dim), zero-padded when dim is odd */
    int half = dim / 2;
    for (int i = 0; i < half; i++) {
        /* float32 like the reference: exp(-ln(10000)·i/half) */
        float f = expf(-logf(10000.0f) * (float)i / (float)half);
        for (int64_t b = 0; b < B; b++) {
            float a = t[b] * f;
            e->data[b * dim + i] = cosf(a);
            e->data[b * dim + half + i] = sinf(a);
        }
    }
    return e;
}

/* Nearest ×2 or 2×2 average pool (the parameter-free halves of Upsample / Downsample). */
static da_tensor *rescale(da_ctx *ctx, da_tensor *x, bool up) {
    return up ? da_upsample_nearest2x(ctx, x) : da_avg_pool2d(ctx, x, 2, 2);
}

/* emb_act = SiLU(emb) (B,4mc), the first half of every emb_layers. */
static da_tensor *res_forward(da_ctx *ctx, const da_adm_config *c, const da_adm_module *r, da_tensor *x, da_tensor *emb_act) {
    da_tensor *h = da_gn_swish(ctx, x, NULL, r->in_norm.w, r->in_norm.b, GN_GROUPS, GN_EPS, 0.0f);   /* (B,cin,H,W) */
    if (r->up || r->down) {
        h = rescale(ctx, h, r->up);
        x = rescale(ctx, x, r->up);
    }
    h = da_conv2d(ctx, h, r->in_conv.w, r->in_conv.b, 1, 1);                                          /* (B,cout,H,W) */
    da_tensor *eo = da_linear(ctx, emb_act, r->emb.w, r->emb.b);                                       /* (B,cout|2cout) */
    int64_t B = x->shape[0];
    if (c->use_scale_shift_norm) {
        da_tensor *scale = da_reshape(ctx, da_slice(ctx, eo, 1, 0, r->cout), DA_SHAPE(B, r->cout, 1, 1));
        da_tensor *shift = da_reshape(ctx, da_slice(ctx, eo, 1, r->cout, 2 * r->cout), DA_SHAPE(B, r->cout, 1, 1));
        h = da_group_norm(ctx, h, r->out_norm.w, r->out_norm.b, GN_GROUPS, GN_EPS);
        h = da_add(ctx, da_mul(ctx, h, da_add_scalar(ctx, scale, 1.0f)), shift);
        h = da_dropout(ctx, da_swish(ctx, h), c->dropout);
    } else {
        h = da_gn_swish(ctx, h, eo, r->out_norm.w, r->out_norm.b, GN_GROUPS, GN_EPS, c->dropout);
    }
    h = da_conv2d(ctx, h, r->out_conv.w, r->out_conv.b, 1, 1);
    da_tensor *skip = r->skip.w ? da_conv2d(ctx, x, r->skip.w, r->skip.b, 1, 0) : x;
    return da_add(ctx, skip, h);
}

/* A conv1d-with-kernel-1 weight (out,in,1) applied to (B,C,H,W) as a 1x1 conv. */
static da_tensor *conv1x1(da_ctx *ctx, const da_adm_layer *l, da_tensor *x) {
    da_tensor *w = da_reshape(ctx, l->w, DA_SHAPE(l->w->shape[0], l->w->shape[1], 1, 1));
    return da_conv2d(ctx, x, w, l->b, 1, 0);
}

static da_tensor *attn_forward(da_ctx *ctx, const da_adm_config *c, const da_adm_module *a, da_tensor *x) {
    int64_t B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3], T = H * W, nh = a->heads, d = C / nh;
    da_tensor *qkv = conv1x1(ctx, &a->qkv, da_group_norm(ctx, x, a->norm.w, a->norm.b, GN_GROUPS, GN_EPS));   /* (B,3C,H,W) */
    /* legacy order: channels [head][q|k|v][d]; new order: [q|k|v][head][d] */
    bool legacy = !c->use_new_attention_order;
    da_tensor *r = legacy ? da_reshape(ctx, qkv, DA_SHAPE(B, nh, 3, d, T)) : da_reshape(ctx, qkv, DA_SHAPE(B, 3, nh, d, T));
    da_tensor *part[3];
    for (int k = 0; k < 3; k++) {
        da_tensor *s = da_slice(ctx, r, legacy ? 2 : 1, k, k + 1);
        s = da_reshape(ctx, s, DA_SHAPE(B, nh, d, T));
        part[k] = da_permute(ctx, s, (const int[]){0, 1, 3, 2});                   /* (B,nh,T,d) */
    }
    da_tensor *o = da_attention(ctx, part[0], part[1], part[2], false, 1.0f / sqrtf((float)d));   /* (B,nh,T,d) */
    o = da_reshape(ctx, da_permute(ctx, o, (const int[]){0, 1, 3, 2}), DA_SHAPE(B, C, H, W));   /* channel h·d + i */
    return da_add(ctx, x, conv1x1(ctx, &a->proj, o));
}

static da_tensor *seq_forward(da_ctx *ctx, const da_adm_unet *m, const da_adm_seq *s, da_tensor *h, da_tensor *emb_act) {
    for (int i = 0; i < s->n; i++) {
        const da_adm_module *mod = &s->m[i];
        switch (mod->kind) {
        case DA_ADM_RES:
            h = res_forward(ctx, &m->cfg, mod, h, emb_act);
            break;
        case DA_ADM_ATTN:
            h = attn_forward(ctx, &m->cfg, mod, h);
            break;
        case DA_ADM_DOWN:
            h = mod->conv.w ? da_conv2d(ctx, h, mod->conv.w, mod->conv.b, 2, 1) : rescale(ctx, h, false);
            break;
        case DA_ADM_UP:
            h = rescale(ctx, h, true);
            if (mod->conv.w) h = da_conv2d(ctx, h, mod->conv.w, mod->conv.b, 1, 1);
            break;
        }
    }
    return h;
}

da_tensor *da_adm_forward(da_ctx *ctx, const da_adm_unet *m, da_tensor *x, const float *t) {
    const da_adm_config *c = &m->cfg;
    int64_t B = x->shape[0];
    da_check(x->ndim == 4 && x->shape[1] == c->in_channels && x->shape[2] == c->image_size && x->shape[3] == c->image_size,
             "adm_forward", "x must be (B,%d,%d,%d)", c->in_channels, c->image_size, c->image_size);
    da_tensor *emb = da_adm_timestep_embedding(ctx, t, B, c->model_channels);              /* (B,mc) */
    emb = da_linear(ctx, emb, m->temb0.w, m->temb0.b);
    emb = da_linear(ctx, da_swish(ctx, emb), m->temb1.w, m->temb1.b);                     /* (B,4mc) */
    da_tensor *emb_act = da_swish(ctx, emb);
    da_tensor *hs[1 + DA_ADM_MAX_LEVELS * (DA_ADM_MAX_BLOCKS + 1)];
    int n_hs = 0;
    /* input_blocks.0 is the input conv */
    da_tensor *h = da_conv2d(ctx, x, m->input[0].m[0].conv.w, m->input[0].m[0].conv.b, 1, 1);
    hs[n_hs++] = h;
    for (int i = 1; i < m->n_input; i++) hs[n_hs++] = h = seq_forward(ctx, m, &m->input[i], h, emb_act);
    h = seq_forward(ctx, m, &m->middle, h, emb_act);
    for (int i = 0; i < m->n_output; i++) {
        da_tensor *cat[2] = {h, hs[--n_hs]};
        h = seq_forward(ctx, m, &m->output[i], da_concat(ctx, 2, cat, 1), emb_act);
    }
    h = da_gn_swish(ctx, h, NULL, m->out_norm.w, m->out_norm.b, GN_GROUPS, GN_EPS, 0.0f);
    return da_conv2d(ctx, h, m->out_conv.w, m->out_conv.b, 1, 1);                           /* (B,out,R,R) */
}

da_tensor *da_adm_eps(da_ctx *ctx, da_tensor *x, int t, void *user) {
    const da_adm_unet *m = user;
    int64_t B = x->shape[0];
    float *tf = da_arena_alloc(&ctx->arena, sizeof(float) * (size_t)B);
    for (int64_t b = 0; b < B; b++) tf[b] = (float)t;
    da_tensor *out = da_adm_forward(ctx, m, x, tf);
    /* learned variance: the second half is the interpolation of the log-variance, unused by DDIM */
    return m->out_channels == m->cfg.in_channels ? out : da_slice(ctx, out, 1, 0, m->cfg.in_channels);
}
