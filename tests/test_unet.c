/* test_unet.c — the DDPM UNet against a float64 PyTorch reference (golden/gen_unet.py) on tiny
 * configs (attention, nin_shortcut, conv and pool/nearest resampling, 1 and 3 channels): forward,
 * input and parameter gradients; config parsing (YAML/JSON), save/load and mismatch errors. */
#include <unistd.h>

#include "gradcheck.h"
#include "io/safetensors.h"
#include "nn/unet.h"
#include "tensor/fused_ops.h"

#include "unet_golden_weights.h"

typedef struct {
    const char *name;
    int in_ch, out_ch, ch, n_mult, mult[4], nrb, n_attn, attn[2], res;
    bool conv;
} golden_cfg;

static const char *GRADS[] = {"conv_in.weight", "temb.dense.0.weight", "mid.attn_1.q.weight", "mid.attn_1.norm.weight",
                              "up.0.block.0.nin_shortcut.weight", "norm_out.bias", "conv_out.bias"};

static void check_golden(const st_file *g, const golden_cfg *gc) {
    da_unet_config c;
    da_unet_config_default(&c);
    c.in_channels = gc->in_ch; c.out_ch = gc->out_ch; c.ch = gc->ch; c.n_levels = gc->n_mult;
    memcpy(c.ch_mult, gc->mult, sizeof gc->mult);
    c.num_res_blocks = gc->nrb; c.n_attn = gc->n_attn;
    memcpy(c.attn_resolutions, gc->attn, sizeof gc->attn);
    c.resolution = gc->res; c.resamp_with_conv = gc->conv; c.dropout = 0;
    da_unet m;
    char err[512], key[128];
    CHECK(da_unet_init(&m, &c, 1, err, sizeof err) == 0, "%s", err);
    set_golden_weights(&m);

    snprintf(key, sizeof key, "%s.n_params", gc->name);
    const st_tensor_info *np = st_find(g, key);
    int64_t counts[2];
    st_read_i64(g, np, counts, err, sizeof err);
    CHECK(m.params.n == counts[0] && da_unet_num_params(&m) == counts[1], "config %s: %d tensors / %lld scalars, reference %lld / %lld",
          gc->name, m.params.n, (long long)da_unet_num_params(&m), (long long)counts[0], (long long)counts[1]);

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
    da_unet_zero_grad(&m);
    da_tensor *xt = da_from_data(&ctx, DA_SHAPE(nt, c.in_channels, c.resolution, c.resolution), x);
    da_require_grad(xt);
    da_tensor *out = da_unet_forward(&ctx, &m, xt, t);
    char what[160];
    snprintf(what, sizeof what, "config %s forward", gc->name);
    CHECK(out->numel == ny, "%s: %lld outputs, expected %lld", what, (long long)out->numel, (long long)ny);
    tu_close(what, out->data, y, (long)ny, 2e-5, 1e-4);
    memcpy(da_grad(&ctx, out), R, sizeof(float) * (size_t)ny);
    da_backward_from(&ctx, out);
    snprintf(what, sizeof what, "config %s d/dx", gc->name);
    tu_close(what, xt->grad, dx, (long)nx, 1e-4, 1e-3);
    int n_checked = golden_check_grads(g, gc->name, &m.params, GRADS, (int)(sizeof GRADS / sizeof GRADS[0]));
    CHECK(n_checked >= 5, "config %s: only %d parameter gradients checked", gc->name, n_checked);
    da_ctx_free(&ctx);
    free(x); free(t); free(y); free(R); free(dx);
    da_unet_free(&m);
}

static const char *CELEBA_YML =
    "data:\n    dataset: \"CelebA_HQ\"\n    image_size: 256\n    channels: 3\n    random_flip: true\n\n"
    "model:\n    type: \"simple\"\n    in_channels: 3\n    out_ch: 3\n    ch: 128\n    ch_mult: [1, 1, 2, 2, 4, 4]\n"
    "    num_res_blocks: 2\n    attn_resolutions: [16, ]\n    dropout: 0.0\n    var_type: fixedsmall\n"
    "    ema_rate: 0.999\n    ema: True\n    resamp_with_conv: True\n\n"
    "diffusion:\n    beta_schedule: linear\n    beta_start: 0.0001\n    beta_end: 0.02\n    num_diffusion_timesteps: 1000\n";

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void check_config_and_files(void) {
    char err[1024], dir[] = "/tmp/test_unet_XXXXXX", path[256], path2[256];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    da_unet_config c;

    /* the reference YAML layout */
    snprintf(path, sizeof path, "%s/celeba.yml", dir);
    write_file(path, CELEBA_YML);
    da_unet_config_default(&c);
    CHECK(da_unet_config_load(path, &c, err, sizeof err) == 0, "%s", err);
    CHECK(c.ch == 128 && c.n_levels == 6 && c.ch_mult[4] == 4 && c.num_res_blocks == 2 && c.n_attn == 1 &&
          c.attn_resolutions[0] == 16 && c.resolution == 256 && c.in_channels == 3 && c.out_ch == 3 &&
          c.dropout == 0 && c.resamp_with_conv && !strcmp(c.var_type, "fixedsmall") && c.num_timesteps == 1000,
          "celeba.yml parsed wrongly");

    /* JSON round trip through to_json */
    c.ch = 32; c.resolution = 16; c.n_levels = 2; c.num_res_blocks = 1; c.resamp_with_conv = false;
    char *js = da_unet_config_to_json(&c);
    da_unet_config d;
    da_unet_config_default(&d);
    CHECK(da_unet_config_from_json(js, "json", &d, err, sizeof err) == 0, "%s", err);
    CHECK(d.ch == 32 && d.resolution == 16 && d.n_levels == 2 && d.num_res_blocks == 1 && !d.resamp_with_conv &&
          d.ch_mult[1] == 1 && d.in_channels == 3, "JSON round trip");
    snprintf(path2, sizeof path2, "%s/c.json", dir);
    write_file(path2, js);
    free(js);

    /* bad configs: clear errors */
    da_unet_config_default(&d);
    CHECK(da_unet_config_from_json("{\"model\": {\"ch\": 48}}", "x", &d, err, sizeof err) != 0 && strstr(err, "ch 48"), "ch 48: %s", err);
    da_unet_config_default(&d);
    CHECK(da_unet_config_from_json("{\"model\": {\"ch_mult\": [1,2,2,2]}, \"data\": {\"image_size\": 12}}", "x", &d, err, sizeof err) != 0 &&
          strstr(err, "image_size 12"), "image_size 12: %s", err);
    da_unet_config_default(&d);
    CHECK(da_unet_config_from_json("{\"model\": {\"ch\": \"big\"}}", "x", &d, err, sizeof err) != 0 && strstr(err, "'ch'"), "%s", err);
    CHECK(da_unet_config_from_json("{\"data\": {}}", "x", &d, err, sizeof err) != 0 && strstr(err, "model"), "%s", err);
    CHECK(da_unet_config_from_json("{\"model\": ", "x", &d, err, sizeof err) != 0 && strstr(err, "malformed"), "%s", err);
    snprintf(path, sizeof path, "%s/bad.yml", dir);
    write_file(path, "model:\n  ch: [1, 2\n");
    CHECK(da_unet_config_load(path, &d, err, sizeof err) != 0 && strstr(err, "YAML"), "%s", err);
    CHECK(da_unet_config_load("/nonexistent/x.yml", &d, err, sizeof err) != 0 && strstr(err, "cannot open"), "%s", err);

    /* save and load: same weights, config from the metadata or from --config */
    da_unet m, m2;
    c.in_channels = 1; c.out_ch = 1;
    CHECK(da_unet_init(&m, &c, 5, err, sizeof err) == 0, "%s", err);
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    CHECK(da_unet_save(&m, path, NULL, 0, err, sizeof err) == 0, "%s", err);
    CHECK(da_unet_load(&m2, path, NULL, err, sizeof err) == 0, "%s", err);
    bool same = m2.params.n == m.params.n;
    for (int i = 0; same && i < m.params.n; i++)
        same = !memcmp(m.params.items[i].t->data, m2.params.items[i].t->data, sizeof(float) * (size_t)m.params.items[i].t->numel);
    CHECK(same, "weights differ after save/load");
    da_unet_free(&m2);
    /* a config that does not match: the first bad key and both shapes */
    c.in_channels = 3; c.out_ch = 3;
    js = da_unet_config_to_json(&c);
    write_file(path2, js);
    free(js);
    CHECK(da_unet_load(&m2, path, path2, err, sizeof err) != 0 && strstr(err, "conv_in.weight") && strstr(err, "(32,1,3,3)") &&
          strstr(err, "(32,3,3,3)"), "mismatch message: %s", err);
    c.in_channels = 1; c.out_ch = 1; c.num_res_blocks = 2;
    js = da_unet_config_to_json(&c);
    write_file(path2, js);
    free(js);
    CHECK(da_unet_load(&m2, path, path2, err, sizeof err) != 0 && strstr(err, "missing key 'down.0.block.1."), "missing key: %s", err);
    c.num_res_blocks = 1; c.n_attn = 0;
    js = da_unet_config_to_json(&c);
    write_file(path2, js);
    free(js);
    CHECK(da_unet_load(&m2, path, path2, err, sizeof err) != 0 && strstr(err, "unexpected") && strstr(err, "attn"), "extra key: %s", err);
    /* a DataParallel-style file ("module." prefixes, no metadata) loads with a YAML config */
    {
        snprintf(path2, sizeof path2, "%s/dp.safetensors", dir);
        st_writer *w = st_writer_new();
        char **keys = malloc(sizeof(char *) * (size_t)m.params.n);
        for (int i = 0; i < m.params.n; i++) {
            size_t len = strlen(m.params.items[i].name) + 8;
            keys[i] = malloc(len);
            snprintf(keys[i], len, "module.%s", m.params.items[i].name);
            st_writer_add_f32(w, keys[i], m.params.items[i].t->ndim, m.params.items[i].t->shape, m.params.items[i].t->data);
        }
        CHECK(st_writer_save(w, path2, err, sizeof err) == 0, "%s", err);
        st_writer_free(w);
        for (int i = 0; i < m.params.n; i++) free(keys[i]);
        free(keys);
        char yml[256];
        snprintf(yml, sizeof yml, "%s/m.yml", dir);
        write_file(yml, "data:\n    image_size: 16\n    channels: 1\nmodel:\n    type: \"simple\"\n    in_channels: 1\n    out_ch: 1\n"
                        "    ch: 32\n    ch_mult: [1, 1]\n    num_res_blocks: 1\n    attn_resolutions: [16, ]\n    dropout: 0.1\n"
                        "    resamp_with_conv: False\n");
        CHECK(da_unet_load(&m2, path2, yml, err, sizeof err) == 0, "module.-prefixed file with YAML config: %s", err);
        if (m2.params.n) {
            bool eq = m2.params.n == m.params.n;
            for (int i = 0; eq && i < m.params.n; i++)
                eq = !memcmp(m.params.items[i].t->data, m2.params.items[i].t->data, sizeof(float) * (size_t)m.params.items[i].t->numel);
            CHECK(eq, "module.-prefixed weights differ");
            da_unet_free(&m2);
        }
    }
    /* not a model file at all */
    snprintf(path2, sizeof path2, "%s/junk.safetensors", dir);
    write_file(path2, "this is not a safetensors file");
    CHECK(da_unet_load(&m2, path2, NULL, err, sizeof err) != 0 && strstr(err, "junk.safetensors"), "junk: %s", err);
    /* a weights file without config metadata needs --config */
    da_params_save(&m.params, path2, NULL, err, sizeof err);
    CHECK(da_unet_load(&m2, path2, NULL, err, sizeof err) != 0 && strstr(err, "--config"), "no config: %s", err);
    da_unet_free(&m);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

/* ---- the fused GroupNorm + swish op --------------------------------------------------------- */
static da_tensor *build_gn_swish(da_ctx *ctx, da_tensor **in, void *u) {
    return da_gn_swish(ctx, in[0], u ? in[3] : NULL, in[1], in[2], 4, 1e-6f, 0.0f);
}

static da_tensor *build_swish(da_ctx *ctx, da_tensor **in, void *u) {
    (void)u;
    return da_swish(ctx, in[0]);
}

/* The fused op against the composition of the engine's ops, forward and backward, with the
 * per-channel shift and dropout in training mode (the same mask stream as da_dropout). */
static void check_fused_vs_composite(void) {
    da_rng rng;
    da_rng_init(&rng, 21);
    int64_t N = 2, C = 8, H = 5, W = 3;
    da_tensor *x = gc_input(&rng, DA_SHAPE(N, C, H, W), 2.0f), *w = gc_input(&rng, DA_SHAPE(C), 1.0f);
    da_tensor *b = gc_input(&rng, DA_SHAPE(C), 1.0f), *sh = gc_input(&rng, DA_SHAPE(N, C), 1.0f);
    da_tensor *R = gc_input(&rng, DA_SHAPE(N, C, H, W), 1.0f);
    float *grads[2][4];
    float *outs[2];
    for (int fused = 0; fused < 2; fused++) {
        da_ctx ctx;
        da_ctx_init(&ctx);
        ctx.training = true;
        ctx.seed = 99;
        da_tensor *ps[4] = {x, w, b, sh};
        for (int i = 0; i < 4; i++) memset(ps[i]->grad, 0, sizeof(float) * (size_t)ps[i]->numel);
        da_tensor *y;
        if (fused) {
            y = da_gn_swish(&ctx, x, sh, w, b, 4, 1e-6f, 0.3f);
        } else {
            da_tensor *xs = da_add(&ctx, x, da_reshape(&ctx, sh, DA_SHAPE(N, C, 1, 1)));
            y = da_dropout(&ctx, da_silu(&ctx, da_group_norm(&ctx, xs, w, b, 4, 1e-6f)), 0.3f);
        }
        da_tensor *loss = da_sum(&ctx, da_mul(&ctx, y, R), 0, NULL, false);
        da_backward(&ctx, loss);
        outs[fused] = malloc(sizeof(float) * (size_t)y->numel);
        memcpy(outs[fused], y->data, sizeof(float) * (size_t)y->numel);
        for (int i = 0; i < 4; i++) {
            grads[fused][i] = malloc(sizeof(float) * (size_t)ps[i]->numel);
            memcpy(grads[fused][i], ps[i]->grad, sizeof(float) * (size_t)ps[i]->numel);
        }
        da_ctx_free(&ctx);
    }
    int zeros = 0;
    for (int64_t i = 0; i < x->numel; i++) zeros += outs[1][i] == 0.0f;
    CHECK(zeros > 40 && zeros < 105, "dropout 0.3 zeroed %d of 240", zeros);
    tu_close("gn_swish forward vs composite", outs[1], outs[0], (long)x->numel, 1e-6, 1e-5);
    const char *names[4] = {"gn_swish d/dx vs composite", "gn_swish d/dw vs composite", "gn_swish d/db vs composite",
                            "gn_swish d/dshift vs composite"};
    da_tensor *ps[4] = {x, w, b, sh};
    for (int i = 0; i < 4; i++) tu_close(names[i], grads[1][i], grads[0][i], (long)ps[i]->numel, 1e-5, 1e-4);
    for (int f = 0; f < 2; f++) {
        free(outs[f]);
        for (int i = 0; i < 4; i++) free(grads[f][i]);
    }
    /* finite differences, with and without the shift */
    da_tensor *in[4] = {x, w, b, sh};
    gradcheck("gn_swish", build_gn_swish, 3, in, NULL, 1e-2f, 2e-3, 2e-3, 200);
    gradcheck("gn_swish with shift", build_gn_swish, 4, in, in, 1e-2f, 2e-3, 2e-3, 200);
    da_tensor *big = gc_input(&rng, DA_SHAPE(3, 50), 6.0f);
    gradcheck("swish", build_swish, 1, &big, NULL, 1e-2f, 2e-3, 2e-3, 200);
    /* the vectorised swish against the exact one, across the range */
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_tensor *v = da_new(&ctx, DA_SHAPE(2001));
    for (int i = 0; i <= 2000; i++) v->data[i] = -100.0f + 0.1f * (float)i;
    da_tensor *a = da_swish(&ctx, v), *e = da_silu(&ctx, v);
    tu_close("swish vs silu", a->data, e->data, 2001, 1e-7, 3e-7);
    /* a NaN input stays NaN (training must see it and stop) */
    v->data[7] = NAN;
    a = da_swish(&ctx, v);
    da_tensor *gs = da_gn_swish(&ctx, da_reshape(&ctx, v, DA_SHAPE(1, 1, 2001)), NULL, da_full(&ctx, DA_SHAPE(1), 1.0f),
                                da_zeros(&ctx, DA_SHAPE(1)), 1, 1e-6f, 0.0f);
    CHECK(isnan(a->data[7]) && !isnan(a->data[8]) && isnan(gs->data[0]), "NaN must propagate through swish");
    da_ctx_free(&ctx);
    da_tensor_free(x); da_tensor_free(w); da_tensor_free(b); da_tensor_free(sh); da_tensor_free(R); da_tensor_free(big);
}

int main(void) {
    check_fused_vs_composite();
    st_file g;
    char err[512];
    if (st_open("golden/unet.safetensors", &g, err, sizeof err)) {
        fprintf(stderr, "FAIL: %s\n", err);
        return 1;
    }
    static const golden_cfg CFGS[] = {
        {"a", 1, 1, 32, 2, {1, 2}, 1, 1, {4}, 8, true},
        {"b", 3, 3, 32, 3, {1, 2, 2}, 1, 1, {8}, 8, false},
        {"c", 3, 6, 32, 2, {1, 1}, 2, 0, {0}, 8, true},
    };
    for (size_t i = 0; i < sizeof CFGS / sizeof CFGS[0]; i++) check_golden(&g, &CFGS[i]);
    st_close(&g);
    check_config_and_files();

    /* the embedding itself: t = 0 gives sin 0 / cos 1; odd widths are zero-padded */
    da_ctx ctx;
    da_ctx_init(&ctx);
    float t2[2] = {0.0f, 10.0f};
    da_tensor *e = da_timestep_embedding(&ctx, t2, 2, 32);
    CHECK(e->data[0] == 0.0f && e->data[16] == 1.0f && fabsf(e->data[32 + 1] - sinf(10.0f * expf(-logf(10000.0f) / 15.0f))) < 1e-6f,
          "timestep embedding");
    da_ctx_free(&ctx);
    return tu_finish("test_unet");
}
