/* test_adm_unet.c — the improved-DDPM / ADM UNet against a float64 PyTorch reference
 * (golden/gen_adm_unet.py) on tiny configs (scale-shift norm on/off, resblock_updown, conv and
 * plain resampling, both attention head orders, heads by count and by width, learn_sigma):
 * parameter names and counts, forward, input and parameter gradients; the ε half of a
 * learned-variance output; config validation. */
#include "io/safetensors.h"
#include "nn/adm_unet.h"
#include "test_util.h"
#include "unet_golden_weights.h"

typedef struct {
    const char *name;
    int in_ch, mc, n_mult, mult[4], nrb, n_attn, attn_ds[2], res, heads, head_ch, heads_up;
    bool ss, updown, sigma, conv, new_order;
} golden_cfg;

/* the CONFIGS of gen_adm_unet.py */
static const golden_cfg CONFIGS[] = {
    {"a", 3, 32, 2, {1, 2}, 1, 1, {2}, 8, 4, 16, -1, true, true, true, true, false},
    {"b", 1, 32, 3, {1, 1, 2}, 1, 2, {1, 4}, 8, 2, -1, 4, false, false, false, false, true},
    {"c", 3, 32, 2, {1, 2}, 2, 1, {2}, 8, 4, 32, -1, true, false, true, true, false},
};
static const char *GRADS[] = {"time_embed.0.weight", "input_blocks.0.0.weight", "input_blocks.1.0.emb_layers.1.weight",
                              "middle_block.1.qkv.weight", "middle_block.1.proj_out.bias",
                              "output_blocks.0.0.skip_connection.weight", "out.0.weight", "out.2.bias"};


static void to_config(const golden_cfg *gc, da_adm_config *c) {
    da_adm_config_default(c);
    c->image_size = gc->res;
    c->in_channels = gc->in_ch;
    c->model_channels = gc->mc;
    c->n_levels = gc->n_mult;
    memcpy(c->channel_mult, gc->mult, sizeof(int) * (size_t)gc->n_mult);
    c->num_res_blocks = gc->nrb;
    c->n_attn = gc->n_attn;
    memcpy(c->attention_ds, gc->attn_ds, sizeof(int) * (size_t)gc->n_attn);
    c->num_heads = gc->heads;
    c->num_head_channels = gc->head_ch;
    c->num_heads_upsample = gc->heads_up;
    c->use_scale_shift_norm = gc->ss;
    c->resblock_updown = gc->updown;
    c->learn_sigma = gc->sigma;
    c->conv_resample = gc->conv;
    c->use_new_attention_order = gc->new_order;
    c->dropout = 0;
}

static void check_golden(const st_file *g, const golden_cfg *gc) {
    da_adm_config c;
    to_config(gc, &c);
    da_adm_unet m;
    char err[512], key[160], what[200];
    int rc = da_adm_init(&m, &c, 1, err, sizeof err);
    CHECK(rc == 0, "config %s: %s", gc->name, err);
    if (rc) return;
    set_golden_params(&m.params);
    snprintf(key, sizeof key, "%s.n_params", gc->name);
    int64_t counts[2];
    CHECK(st_read_i64(g, st_find(g, key), counts, err, sizeof err) == 0, "%s", err);
    CHECK(m.params.n == counts[0] && da_params_count(&m.params) == counts[1], "config %s: %d tensors / %lld scalars, "
          "reference %lld / %lld", gc->name, m.params.n, (long long)da_params_count(&m.params), (long long)counts[0],
          (long long)counts[1]);

    int64_t nx, ny, nt;
    snprintf(key, sizeof key, "%s.x", gc->name);
    float *x = golden_f32(g, key, &nx);
    snprintf(key, sizeof key, "%s.t", gc->name);
    float *t = golden_f32(g, key, &nt);
    snprintf(key, sizeof key, "%s.y", gc->name);
    float *y = golden_f32(g, key, &ny);
    snprintf(key, sizeof key, "%s.R", gc->name);
    float *R = golden_f32(g, key, NULL);
    snprintf(key, sizeof key, "%s.dx", gc->name);
    float *dx = golden_f32(g, key, NULL);

    da_ctx ctx;
    da_ctx_init(&ctx);
    da_params_zero_grad(&m.params);
    da_tensor *xt = da_from_data(&ctx, DA_SHAPE(nt, c.in_channels, c.image_size, c.image_size), x);
    da_require_grad(xt);
    da_tensor *out = da_adm_forward(&ctx, &m, xt, t);
    snprintf(what, sizeof what, "config %s forward", gc->name);
    CHECK(out->numel == ny && out->shape[1] == (gc->sigma ? 2 : 1) * gc->in_ch, "%s: %lld outputs, expected %lld", what,
          (long long)out->numel, (long long)ny);
    if (out->numel == ny) tu_close(what, out->data, y, (long)ny, 2e-5, 1e-4);
    memcpy(da_grad(&ctx, out), R, sizeof(float) * (size_t)ny);
    da_backward_from(&ctx, out);
    snprintf(what, sizeof what, "config %s d/dx", gc->name);
    tu_close(what, xt->grad, dx, (long)nx, 1e-4, 1e-3);
    int n_checked = golden_check_grads(g, gc->name, &m.params, GRADS, (int)(sizeof GRADS / sizeof GRADS[0]));
    CHECK(n_checked >= 7, "config %s: only %d parameter gradients checked", gc->name, n_checked);

    /* ε for DDIM: the first in_channels channels of the output */
    da_set_grad(&ctx, false);
    da_tensor *x1 = da_from_data(&ctx, DA_SHAPE(1, c.in_channels, c.image_size, c.image_size), x);
    da_tensor *eps = da_adm_eps(&ctx, x1, (int)t[0], &m);
    int64_t per = (int64_t)c.in_channels * c.image_size * c.image_size;
    snprintf(what, sizeof what, "config %s eps = first %d channels", gc->name, c.in_channels);
    CHECK(eps->ndim == 4 && eps->shape[1] == c.in_channels, "%s: shape", what);
    tu_close(what, eps->data, y, (long)per, 2e-5, 1e-4);
    da_ctx_free(&ctx);
    free(x); free(t); free(y); free(R); free(dx);
    da_adm_free(&m);
}

static void check_config(void) {
    da_adm_config c;
    char err[512];
    da_adm_config_default(&c);
    CHECK(da_adm_config_validate(&c, err, sizeof err) == 0, "default config: %s", err);
    c.model_channels = 48;
    CHECK(da_adm_config_validate(&c, err, sizeof err) != 0 && strstr(err, "multiples of 32"), "48 channels: %s", err);
    da_adm_config_default(&c);
    c.num_head_channels = 48;
    CHECK(da_adm_config_validate(&c, err, sizeof err) != 0 && strstr(err, "heads"), "48-channel heads: %s", err);
    da_adm_config_default(&c);
    c.image_size = 100;
    CHECK(da_adm_config_validate(&c, err, sizeof err) != 0 && strstr(err, "image_size"), "image size 100: %s", err);
}

int main(void) {
    st_file g;
    char err[512];
    if (st_open("golden/adm_unet.safetensors", &g, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    for (size_t i = 0; i < sizeof CONFIGS / sizeof CONFIGS[0]; i++) check_golden(&g, &CONFIGS[i]);
    st_close(&g);
    check_config();
    return tu_finish("test_adm_unet");
}
