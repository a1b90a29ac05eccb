/* test_adm_unet.c — the improved-DDPM / ADM UNet against a float64 PyTorch reference
 * (golden/gen_adm_unet.py) on tiny configs (scale-shift norm on/off, resblock_updown, conv and
 * plain resampling, both attention head orders, heads by count and by width, learn_sigma):
 * parameter names (key by key) and counts, forward, input and parameter gradients; the ε half of
 * a learned-variance output; config validation; as a da_unet: a YAML config with
 * guided-diffusion's names, save/load, and the CLI (train-diffusion, sample, invert, generate,
 * translate) on an ADM model. */
#include <unistd.h>

#include "cli_run.h"
#include "io/safetensors.h"
#include "nn/adm_unet.h"
#include "nn/clip.h"
#include "nn/unet.h"
#include "test_util.h"
#include "tmpdir.h"
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
    /* the reference's keys, in its order */
    snprintf(key, sizeof key, "%s.names", gc->name);
    const char *names = st_meta_get(g, key);
    int same = names != NULL, k = 0;
    for (const char *p = names; same && p && *p && k < m.params.n; k++) {
        size_t len = strcspn(p, ",");
        same = strlen(m.params.items[k].name) == len && !strncmp(m.params.items[k].name, p, len);
        if (!same) fprintf(stderr, "  config %s: parameter %d is %s, the reference has %.*s\n", gc->name, k, m.params.items[k].name, (int)len, p);
        p += len + (p[len] == ',');
    }
    CHECK(same && k == m.params.n, "config %s: the parameter names differ from the reference's", gc->name);
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
    /* sizes are checked against the memory limit before anything is allocated */
    da_adm_config_default(&c);
    c.model_channels = 4096;
    c.channel_mult[5] = 64;
    CHECK(da_adm_config_validate(&c, err, sizeof err) != 0 && strstr(err, "GiB") && strstr(err, "DIFFADAPT_MAX_GIB"),
          "a huge ADM: %s", err);
    da_unet_config u;
    da_unet_config_default(&u);
    u.is_adm = true;
    u.adm = c;
    u.in_channels = u.out_ch = c.in_channels;
    u.resolution = c.image_size;
    da_unet m;
    CHECK(da_unet_init(&m, &u, 0, err, sizeof err) != 0 && strstr(err, "GiB"), "da_unet_init of a huge ADM: %s", err);
    CHECK(da_adm_config_num_params(&c) > (int64_t)1 << 34, "parameter count of the huge ADM: %lld",
          (long long)da_adm_config_num_params(&c));
    da_adm_config_default(&c);
    c.image_size = 8192;
    CHECK(da_adm_config_validate(&c, err, sizeof err) != 0 && strstr(err, "4096"), "image size 8192: %s", err);
    /* attention at a resolution no level runs at */
    da_adm_config_default(&c);
    c.attention_ds[0] = 64;
    CHECK(da_adm_config_validate(&c, err, sizeof err) != 0 && strstr(err, "never occurs"), "attention at 4 px: %s", err);
}

/* Config "a" written as a reference-style YAML with guided-diffusion's names. */
static const char *ADM_YML =
    "data:\n    image_size: 8\n    channels: 3\n"
    "model:\n    type: \"adm\"\n    in_channels: 3\n    num_channels: 32\n    num_res_blocks: 1\n"
    "    channel_mult: \"1,2\"\n    attention_resolutions: \"4\"\n    num_heads: 4\n    num_head_channels: 16\n"
    "    num_heads_upsample: -1\n    use_scale_shift_norm: True\n    resblock_updown: True\n    learn_sigma: True\n"
    "    dropout: 0.0\n    conv_resample: True\n    use_new_attention_order: False\n"
    "diffusion:\n    beta_schedule: linear\n    beta_start: 0.0001\n    beta_end: 0.02\n    num_diffusion_timesteps: 1000\n";

/* The ADM as a da_unet: YAML config, forward through da_unet_eps, save/load. */
static void check_as_unet(const st_file *g, const char *dir) {
    char path[4200], saved[4200], err[1024];
    td_write_text(dir, "adm.yml", ADM_YML);
    td_path(path, sizeof path, dir, "adm.yml");
    da_unet_config c;
    da_unet_config_default(&c);
    int rc = da_unet_config_load(path, &c, err, sizeof err);
    CHECK(rc == 0 && c.is_adm && c.adm.n_levels == 2 && c.adm.channel_mult[1] == 2 && c.adm.n_attn == 1 &&
          c.adm.attention_ds[0] == 2 && c.adm.num_head_channels == 16 && c.adm.learn_sigma && c.in_channels == 3 &&
          c.out_ch == 3 && c.resolution == 8, "ADM YAML: %s", rc ? err : "parsed wrongly");
    if (rc) return;
    da_unet m, m2;
    CHECK(da_unet_init(&m, &c, 3, err, sizeof err) == 0, "%s", err);
    set_golden_params(&m.params);
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_set_grad(&ctx, false);
    float *x = golden_f32(g, "a.x", NULL), *t = golden_f32(g, "a.t", NULL), *y = golden_f32(g, "a.y", NULL);
    da_tensor *xt = da_from_data(&ctx, DA_SHAPE(1, 3, 8, 8), x);
    da_tensor *e = da_unet_eps(&ctx, xt, (int)t[0], &m);
    CHECK(e->shape[1] == 3, "da_unet_eps of an ADM: %lld channels", (long long)e->shape[1]);
    tu_close("da_unet_eps of the ADM from YAML = golden eps", e->data, y, 192, 2e-5, 1e-4);
    td_path(saved, sizeof saved, dir, "adm.safetensors");
    CHECK(da_unet_save(&m, saved, NULL, 0, err, sizeof err) == 0, "%s", err);
    rc = da_unet_load(&m2, saved, NULL, err, sizeof err);
    CHECK(rc == 0 && m2.adm && m2.params.n == m.params.n, "reload: %s", rc ? err : "not an ADM");
    if (!rc) {
        da_tensor *e2 = da_unet_eps(&ctx, xt, (int)t[0], &m2);
        CHECK(!memcmp(e->data, e2->data, sizeof(float) * 192), "the reloaded ADM differs");
        char a[512], b[512];
        CHECK(!strcmp(da_unet_config_str(&m.cfg, a, sizeof a), da_unet_config_str(&m2.cfg, b, sizeof b)) && strstr(a, "ADM"),
              "config after reload: '%s' vs '%s'", a, b);
        da_unet_free(&m2);
    }
    /* a non-finite weight is refused at load, as for the DDPM UNet */
    da_unet_param(&m, "out.2.bias")->data[1] = NAN;
    char nan_path[4200];
    td_path(nan_path, sizeof nan_path, dir, "adm_nan.safetensors");
    CHECK(da_unet_save(&m, nan_path, NULL, 0, err, sizeof err) == 0, "%s", err);
    da_unet_param(&m, "out.2.bias")->data[1] = 0.0f;
    rc = da_unet_load(&m2, nan_path, NULL, err, sizeof err);
    CHECK(rc != 0 && strstr(err, "non-finite") && strstr(err, "out.2.bias"), "ADM with a NaN weight: %s", rc ? err : "loaded");
    if (!rc) da_unet_free(&m2);
    /* a DDPM config does not load ADM weights, with a message naming a key */
    da_unet_config dc;
    da_unet_config_default(&dc);
    char *js = da_unet_config_to_json(&dc);
    td_write_text(dir, "ddpm.json", js);
    free(js);
    td_path(path, sizeof path, dir, "ddpm.json");
    CHECK(da_unet_load(&m2, saved, path, err, sizeof err) != 0 && strstr(err, "temb.dense.0.weight"), "ADM file, DDPM config: %s", err);
    free(x); free(t); free(y);
    da_ctx_free(&ctx);
    da_unet_free(&m);
}

static char OUT[1 << 16];

/* The commands on an ADM model: train-diffusion from the YAML, then sample, invert, generate,
 * fine-tuning (with the golden tiny CLIP and a byte-level vocabulary) and translate with it. */
static void check_cli(const char *dir) {
    const char *bin = getenv("DA_BIN");
    if (!bin || access(bin, X_OK)) {
        printf("note: DA_BIN not set, CLI checks skipped\n");
        return;
    }
    float img[6 * 3 * 64];
    for (int i = 0; i < 6 * 3 * 64; i++) img[i] = sinf(0.21f * (float)i) * 0.8f;
    int64_t labels[6] = {0, 1, 0, 1, 0, 1};
    st_writer *w = st_writer_new();
    st_writer_add_f32(w, "images", DA_SHAPE(6, 3, 8, 8), img);
    st_writer_add_i64(w, "labels", DA_SHAPE(6), labels);
    char path[4200], err[512], cmd[16384];
    CHECK(st_writer_save(w, td_path(path, sizeof path, dir, "d.safetensors"), err, sizeof err) == 0, "%s", err);
    st_writer_free(w);
    /* a tiny random CLIP with a byte-level vocabulary and room for the prompt templates */
    da_clip clip;
    da_clip_config cc;
    da_clip_config_default(&cc);
    CHECK(da_clip_config_from_json("{\"projection_dim\": 16, \"text_config\": {\"hidden_size\": 32, \"num_hidden_layers\": 1,"
                                   " \"num_attention_heads\": 2, \"intermediate_size\": 64, \"vocab_size\": 514},"
                                   " \"vision_config\": {\"hidden_size\": 32, \"num_hidden_layers\": 1, \"num_attention_heads\": 2,"
                                   " \"intermediate_size\": 64, \"image_size\": 16, \"patch_size\": 8}}",
                                   "tiny CLIP", &cc, err, sizeof err) == 0, "%s", err);
    CHECK(da_clip_init(&clip, &cc, 5, err, sizeof err) == 0, "%s", err);
    clip.bpe_merges = strdup("#version: 0.2\n");
    CHECK(da_clip_save(&clip, td_path(path, sizeof path, dir, "clip.safetensors"), NULL, err, sizeof err) == 0, "%s", err);
    da_clip_free(&clip);
    struct { const char *args, *expect; } runs[] = {
        {"train-diffusion --data d.safetensors --config adm.yml --out t.safetensors --steps 2 --batch 3 --threads 1", "t.safetensors"},
        {"sample --model t.safetensors --n 2 --steps 3 --out s.safetensors --threads 1", "s.safetensors"},
        {"invert --model t.safetensors --input d.safetensors --t0 200 --steps 4 --out l.safetensors --threads 1", "l.safetensors"},
        {"generate --model adm.safetensors --original t.safetensors --model-ratio 0.5 --latents l.safetensors --steps 3 "
         "--out g --threads 1", "g/000005.png"},
        {"finetune --model t.safetensors --clip clip.safetensors --src-text photo --tgt-text sketch --data d.safetensors "
         "--t0 200 --inv-steps 4 --train-steps 2 --images 2 --batch 1 --epochs 1 --lr 1e-3 --threads 1 --out ft.safetensors",
         "ft.safetensors"},
        {"translate --model t.safetensors --finetuned ft.safetensors --data d.safetensors --t0 200 --inv-steps 4 "
         "--gen-steps 3 --batch 3 --threads 1 --out tr", "tr/000005.png"},
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s 2>&1", dir, bin, runs[i].args);
        int rc = cli_run(cmd, OUT, sizeof OUT);
        CHECK(rc == 0 && access(td_path(path, sizeof path, dir, runs[i].expect), F_OK) == 0, "%s: exit %d\n%s",
              runs[i].args, rc, OUT);
    }
    da_unet m, f;
    CHECK(da_unet_load(&m, td_path(path, sizeof path, dir, "t.safetensors"), NULL, err, sizeof err) == 0 && m.adm,
          "the trained model is not an ADM: %s", err);
    CHECK(da_unet_load(&f, td_path(path, sizeof path, dir, "ft.safetensors"), NULL, err, sizeof err) == 0 && f.adm,
          "the fine-tuned model is not an ADM: %s", err);
    if (m.params.n && f.params.n) {
        char hm[17], hf[17];
        CHECK(strcmp(da_params_hash(&m.params, hm), da_params_hash(&f.params, hf)) != 0, "fine-tuning changed nothing");
    }
    if (m.params.n) da_unet_free(&m);
    if (f.params.n) da_unet_free(&f);
}

int main(void) {
    st_file g;
    char err[512];
    if (st_open("golden/adm_unet.safetensors", &g, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    for (size_t i = 0; i < sizeof CONFIGS / sizeof CONFIGS[0]; i++) check_golden(&g, &CONFIGS[i]);
    check_config();
    char dir[4096];
    td_make(dir, sizeof dir, "adm_unet");
    check_as_unet(&g, dir);
    check_cli(dir);
    td_remove(dir);
    st_close(&g);
    return tu_finish("test_adm_unet");
}
