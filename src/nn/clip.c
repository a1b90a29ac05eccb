/* clip.c — the CLIP ViT model (see clip.h): config handling, parameters under the Hugging Face
 * keys, loading/saving, the image preprocessing and both transformer towers. */
#include "nn/clip.h"
#include "nn/clip_openai.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/errf.h"
#include "util/files.h"

static const float CLIP_MEAN[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float CLIP_STD[3] = {0.26862954f, 0.26130258f, 0.27577711f};

/* ---- config ------------------------------------------------------------------------------- */

void da_clip_config_default(da_clip_config *c) {
    memset(c, 0, sizeof *c);
    c->image_size = 224; c->patch_size = 32; c->channels = 3;
    c->vision_width = 768; c->vision_layers = 12; c->vision_heads = 12; c->vision_mlp = 3072;
    c->vocab_size = 49408; c->context_length = 77;
    c->text_width = 512; c->text_layers = 12; c->text_heads = 8; c->text_mlp = 2048;
    c->embed_dim = 512;
    c->vision_eps = c->text_eps = 1e-5f;
    memcpy(c->mean, CLIP_MEAN, sizeof c->mean);
    memcpy(c->std, CLIP_STD, sizeof c->std);
}

int da_clip_config_validate(const da_clip_config *c, char *err, size_t errlen) {
    struct { const char *name; int v; } pos[] = {
        {"image_size", c->image_size}, {"patch_size", c->patch_size}, {"num_channels", c->channels},
        {"vision hidden_size", c->vision_width}, {"vision num_hidden_layers", c->vision_layers},
        {"vision num_attention_heads", c->vision_heads}, {"vision intermediate_size", c->vision_mlp},
        {"vocab_size", c->vocab_size}, {"max_position_embeddings", c->context_length},
        {"text hidden_size", c->text_width}, {"text num_hidden_layers", c->text_layers},
        {"text num_attention_heads", c->text_heads}, {"text intermediate_size", c->text_mlp},
        {"projection_dim", c->embed_dim},
    };
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        if (pos[i].v <= 0) { da_errf(err, errlen, "CLIP config: %s must be positive, got %d", pos[i].name, pos[i].v); return -1; }
    if (c->image_size % c->patch_size) {
        da_errf(err, errlen, "CLIP config: image_size %d is not a multiple of patch_size %d", c->image_size, c->patch_size);
        return -1;
    }
    if (c->vision_width % c->vision_heads || c->text_width % c->text_heads) {
        da_errf(err, errlen, "CLIP config: widths (vision %d, text %d) must be multiples of the heads (%d, %d)",
                c->vision_width, c->text_width, c->vision_heads, c->text_heads);
        return -1;
    }
    if (c->channels != 1 && c->channels != 3) {
        da_errf(err, errlen, "CLIP config: num_channels must be 1 or 3, got %d", c->channels);
        return -1;
    }
    if (c->context_length < 2) { da_errf(err, errlen, "CLIP config: max_position_embeddings must be at least 2"); return -1; }
    for (int i = 0; i < c->channels; i++)
        if (!(c->std[i] > 0)) { da_errf(err, errlen, "CLIP config: image_std must be positive"); return -1; }
    if (!(c->vision_eps > 0) || !(c->text_eps > 0)) { da_errf(err, errlen, "CLIP config: layer_norm_eps must be positive"); return -1; }
    return 0;
}

static int json_int(const cJSON *o, const char *key, int *out, const char *what, char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > INT_MAX) {
        da_errf(err, errlen, "%s: \"%s\" must be an integer", what, key);
        return -1;
    }
    *out = (int)v->valuedouble;
    return 0;
}

static int json_float(const cJSON *o, const char *key, float *out, const char *what, char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v)) { da_errf(err, errlen, "%s: \"%s\" must be a number", what, key); return -1; }
    *out = (float)v->valuedouble;
    return 0;
}

static int json_act(const cJSON *o, bool *gelu, const char *what, char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "hidden_act");
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsString(v) && !strcmp(v->valuestring, "quick_gelu")) { *gelu = false; return 0; }
    if (cJSON_IsString(v) && !strcmp(v->valuestring, "gelu")) { *gelu = true; return 0; }
    da_errf(err, errlen, "%s: hidden_act must be \"quick_gelu\" or \"gelu\"", what);
    return -1;
}

static int json_triple(const cJSON *o, const char *key, float out[3], const char *what, char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return 0;
    int n = cJSON_GetArraySize(v);
    if (!cJSON_IsArray(v) || (n != 1 && n != 3)) {
        da_errf(err, errlen, "%s: \"%s\" must be a list of 1 or 3 numbers", what, key);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(v, i);
        if (!cJSON_IsNumber(e)) { da_errf(err, errlen, "%s: \"%s\" must hold numbers", what, key); return -1; }
        out[i] = (float)e->valuedouble;
    }
    if (n == 1) out[1] = out[2] = out[0];
    return 0;
}

int da_clip_config_from_json(const char *json, const char *what, da_clip_config *c, char *err, size_t errlen) {
    cJSON *root = cJSON_Parse(json);
    if (!root || !cJSON_IsObject(root)) {
        da_errf(err, errlen, "%s: not a JSON object", what);
        cJSON_Delete(root);
        return -1;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "vision_config");
    if (!v || cJSON_IsNull(v)) v = cJSON_GetObjectItemCaseSensitive(root, "vision_config_dict");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "text_config");
    if (!t || cJSON_IsNull(t)) t = cJSON_GetObjectItemCaseSensitive(root, "text_config_dict");
    int rc = 0;
    if (v && cJSON_IsObject(v)) {
        rc |= json_int(v, "hidden_size", &c->vision_width, what, err, errlen);
        rc |= json_int(v, "num_hidden_layers", &c->vision_layers, what, err, errlen);
        rc |= json_int(v, "num_attention_heads", &c->vision_heads, what, err, errlen);
        rc |= json_int(v, "intermediate_size", &c->vision_mlp, what, err, errlen);
        rc |= json_int(v, "patch_size", &c->patch_size, what, err, errlen);
        rc |= json_int(v, "image_size", &c->image_size, what, err, errlen);
        rc |= json_int(v, "num_channels", &c->channels, what, err, errlen);
        rc |= json_int(v, "projection_dim", &c->embed_dim, what, err, errlen);
        rc |= json_float(v, "layer_norm_eps", &c->vision_eps, what, err, errlen);
        rc |= json_act(v, &c->vision_gelu, what, err, errlen);
    }
    if (t && cJSON_IsObject(t)) {
        rc |= json_int(t, "hidden_size", &c->text_width, what, err, errlen);
        rc |= json_int(t, "num_hidden_layers", &c->text_layers, what, err, errlen);
        rc |= json_int(t, "num_attention_heads", &c->text_heads, what, err, errlen);
        rc |= json_int(t, "intermediate_size", &c->text_mlp, what, err, errlen);
        rc |= json_int(t, "vocab_size", &c->vocab_size, what, err, errlen);
        rc |= json_int(t, "max_position_embeddings", &c->context_length, what, err, errlen);
        rc |= json_float(t, "layer_norm_eps", &c->text_eps, what, err, errlen);
        rc |= json_act(t, &c->text_gelu, what, err, errlen);
    }
    rc |= json_int(root, "projection_dim", &c->embed_dim, what, err, errlen);
    rc |= json_triple(root, "image_mean", c->mean, what, err, errlen);
    rc |= json_triple(root, "image_std", c->std, what, err, errlen);
    cJSON_Delete(root);
    return rc ? -1 : 0;
}

char *da_clip_config_to_json(const da_clip_config *c) {
    cJSON *root = cJSON_CreateObject(), *v = cJSON_CreateObject(), *t = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "projection_dim", c->embed_dim);
    cJSON_AddNumberToObject(v, "hidden_size", c->vision_width);
    cJSON_AddNumberToObject(v, "num_hidden_layers", c->vision_layers);
    cJSON_AddNumberToObject(v, "num_attention_heads", c->vision_heads);
    cJSON_AddNumberToObject(v, "intermediate_size", c->vision_mlp);
    cJSON_AddNumberToObject(v, "patch_size", c->patch_size);
    cJSON_AddNumberToObject(v, "image_size", c->image_size);
    cJSON_AddNumberToObject(v, "num_channels", c->channels);
    cJSON_AddStringToObject(v, "hidden_act", c->vision_gelu ? "gelu" : "quick_gelu");
    cJSON_AddNumberToObject(v, "layer_norm_eps", c->vision_eps);
    cJSON_AddNumberToObject(t, "hidden_size", c->text_width);
    cJSON_AddNumberToObject(t, "num_hidden_layers", c->text_layers);
    cJSON_AddNumberToObject(t, "num_attention_heads", c->text_heads);
    cJSON_AddNumberToObject(t, "intermediate_size", c->text_mlp);
    cJSON_AddNumberToObject(t, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(t, "max_position_embeddings", c->context_length);
    cJSON_AddStringToObject(t, "hidden_act", c->text_gelu ? "gelu" : "quick_gelu");
    cJSON_AddNumberToObject(t, "layer_norm_eps", c->text_eps);
    cJSON_AddItemToObject(root, "vision_config", v);
    cJSON_AddItemToObject(root, "text_config", t);
    cJSON_AddItemToObject(root, "image_mean", cJSON_CreateFloatArray(c->mean, 3));
    cJSON_AddItemToObject(root, "image_std", cJSON_CreateFloatArray(c->std, 3));
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

const char *da_clip_config_str(const da_clip_config *c, char *buf, size_t len) {
    snprintf(buf, len, "ViT %dx%dx%d/%d width %d x%d (%d heads), text %d x%d (%d heads, context %d, vocab %d), embed %d",
             c->image_size, c->image_size, c->channels, c->patch_size, c->vision_width, c->vision_layers,
             c->vision_heads, c->text_width, c->text_layers, c->text_heads, c->context_length, c->vocab_size,
             c->embed_dim);
    return buf;
}

/* ---- parameters --------------------------------------------------------------------------- */

static da_tensor *add(da_clip *m, const char *name, int ndim, const int64_t *shape) {
    return da_params_add(&m->params, name, ndim, shape);
}

static da_clip_lin add_lin(da_clip *m, const char *prefix, const char *name, int64_t out, int64_t in, bool bias) {
    char key[256];
    da_clip_lin l = {0};
    snprintf(key, sizeof key, "%s.%s.weight", prefix, name);
    l.w = in > 0 ? add(m, key, DA_SHAPE(out, in)) : add(m, key, DA_SHAPE(out));
    if (bias) {
        snprintf(key, sizeof key, "%s.%s.bias", prefix, name);
        l.b = add(m, key, DA_SHAPE(out));
    }
    return l;
}

/* One encoder layer in the HF module order: self_attn (k, v, q, out), layer_norm1, mlp, layer_norm2. */
static void add_block(da_clip *m, da_clip_block *b, const char *tower, int i, int64_t W, int64_t mlp) {
    char p[128];
    snprintf(p, sizeof p, "%s.encoder.layers.%d", tower, i);
    char a[160];
    snprintf(a, sizeof a, "%s.self_attn", p);
    b->k = add_lin(m, a, "k_proj", W, W, true);
    b->v = add_lin(m, a, "v_proj", W, W, true);
    b->q = add_lin(m, a, "q_proj", W, W, true);
    b->out = add_lin(m, a, "out_proj", W, W, true);
    b->ln1 = add_lin(m, p, "layer_norm1", W, 0, true);
    char f[160];
    snprintf(f, sizeof f, "%s.mlp", p);
    b->fc1 = add_lin(m, f, "fc1", mlp, W, true);
    b->fc2 = add_lin(m, f, "fc2", W, mlp, true);
    b->ln2 = add_lin(m, p, "layer_norm2", W, 0, true);
}

static void build(da_clip *m, const da_clip_config *c) {
    m->cfg = *c;
    da_params_init(&m->params);
    int64_t Wt = c->text_width, Wv = c->vision_width, E = c->embed_dim;
    int64_t grid = c->image_size / c->patch_size;
    m->token_embedding = add(m, "text_model.embeddings.token_embedding.weight", DA_SHAPE(c->vocab_size, Wt));
    m->text_pos = add(m, "text_model.embeddings.position_embedding.weight", DA_SHAPE(c->context_length, Wt));
    m->text_blocks = calloc((size_t)c->text_layers, sizeof *m->text_blocks);
    m->vision_blocks = calloc((size_t)c->vision_layers, sizeof *m->vision_blocks);
    da_check(m->text_blocks && m->vision_blocks, "clip", "out of memory");
    for (int i = 0; i < c->text_layers; i++) add_block(m, &m->text_blocks[i], "text_model", i, Wt, c->text_mlp);
    m->final_ln = add_lin(m, "text_model", "final_layer_norm", Wt, 0, true);
    m->class_embedding = add(m, "vision_model.embeddings.class_embedding", DA_SHAPE(Wv));
    m->patch_embedding = add(m, "vision_model.embeddings.patch_embedding.weight",
                             DA_SHAPE(Wv, c->channels, c->patch_size, c->patch_size));
    m->vision_pos = add(m, "vision_model.embeddings.position_embedding.weight", DA_SHAPE(grid * grid + 1, Wv));
    m->pre_ln = add_lin(m, "vision_model", "pre_layrnorm", Wv, 0, true);   /* sic: the HF key */
    for (int i = 0; i < c->vision_layers; i++) add_block(m, &m->vision_blocks[i], "vision_model", i, Wv, c->vision_mlp);
    m->post_ln = add_lin(m, "vision_model", "post_layernorm", Wv, 0, true);
    m->visual_projection = add(m, "visual_projection.weight", DA_SHAPE(E, Wv));
    m->text_projection = add(m, "text_projection.weight", DA_SHAPE(E, Wt));
    m->logit_scale = add(m, "logit_scale", 0, NULL);
}

static void init_block(da_clip_block *b, da_rng *r, int64_t W, int layers) {
    float in_std = powf((float)W, -0.5f) * powf(2.0f * (float)layers, -0.5f);
    float out_std = powf((float)W, -0.5f);
    float fc_std = powf(2.0f * (float)W, -0.5f);
    da_init_normal(b->q.w, r, 0, in_std);
    da_init_normal(b->k.w, r, 0, in_std);
    da_init_normal(b->v.w, r, 0, in_std);
    da_init_normal(b->out.w, r, 0, out_std);
    da_init_normal(b->fc1.w, r, 0, fc_std);
    da_init_normal(b->fc2.w, r, 0, in_std);
    da_init_const(b->ln1.w, 1.0f);
    da_init_const(b->ln2.w, 1.0f);
    /* biases stay zero (da_params_add zero-fills) */
}

int da_clip_init(da_clip *m, const da_clip_config *cfg, uint64_t seed, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    if (da_clip_config_validate(cfg, err, errlen)) return -1;
    build(m, cfg);
    da_rng r;
    da_rng_init(&r, seed);
    da_init_normal(m->token_embedding, &r, 0, 0.02f);
    da_init_normal(m->text_pos, &r, 0, 0.01f);
    for (int i = 0; i < cfg->text_layers; i++) init_block(&m->text_blocks[i], &r, cfg->text_width, cfg->text_layers);
    da_init_const(m->final_ln.w, 1.0f);
    da_init_normal(m->class_embedding, &r, 0, powf((float)cfg->vision_width, -0.5f));
    da_init_normal(m->patch_embedding, &r, 0, 0.02f);
    da_init_normal(m->vision_pos, &r, 0, 0.02f);
    da_init_const(m->pre_ln.w, 1.0f);
    for (int i = 0; i < cfg->vision_layers; i++) init_block(&m->vision_blocks[i], &r, cfg->vision_width, cfg->vision_layers);
    da_init_const(m->post_ln.w, 1.0f);
    da_init_normal(m->visual_projection, &r, 0, powf((float)cfg->vision_width, -0.5f));
    da_init_normal(m->text_projection, &r, 0, powf((float)cfg->text_width, -0.5f));
    da_init_const(m->logit_scale, logf(1.0f / 0.07f));
    return 0;
}

void da_clip_free(da_clip *m) {
    if (!m) return;
    da_params_free(&m->params);
    free(m->text_blocks);
    free(m->vision_blocks);
    free(m->bpe_merges);
    free(m->hf_dir);
    memset(m, 0, sizeof *m);
}

void da_clip_requires_grad(da_clip *m, bool on) {
    for (int i = 0; i < m->params.n; i++) {
        da_tensor *t = m->params.items[i].t;
        t->requires_grad = on;
        if (!on) {
            free(t->grad);   /* frozen weights keep no gradient memory at all */
            t->grad = NULL;
        } else if (!t->grad) {
            t->grad = calloc((size_t)(t->numel ? t->numel : 1), sizeof(float));
            da_check(t->grad != NULL, "clip", "out of memory for gradients");
        }
    }
}

/* ---- loading ------------------------------------------------------------------------------ */

static const st_tensor_info *need(const st_file *f, const char *key, int ndim, const char *path, char *err, size_t errlen) {
    const st_tensor_info *t = st_find(f, key);
    if (!t) {
        da_errf(err, errlen, "%s: missing key '%s'; is this a CLIP model with Hugging Face key names?", path, key);
        return NULL;
    }
    if (t->ndim != ndim) {
        da_errf(err, errlen, "%s: '%s' has %d dimensions, a CLIP model has %d there", path, key, t->ndim, ndim);
        return NULL;
    }
    return t;
}

static int count_layers(const st_file *f, const char *tower) {
    int n = 0;
    char key[160];
    for (;; n++) {
        snprintf(key, sizeof key, "%s.encoder.layers.%d.layer_norm1.weight", tower, n);
        if (!st_find(f, key)) return n;
    }
}

/* The config as far as the shapes tell; heads = width / 64 (at least 1). */
static int infer_config(const st_file *f, const char *path, da_clip_config *c, char *err, size_t errlen) {
    da_clip_config_default(c);
    const st_tensor_info *cls, *patch, *vpos, *vproj, *tok, *tpos, *tproj, *fc;
    if (!(cls = need(f, "vision_model.embeddings.class_embedding", 1, path, err, errlen))) return -1;
    if (!(patch = need(f, "vision_model.embeddings.patch_embedding.weight", 4, path, err, errlen))) return -1;
    if (!(vpos = need(f, "vision_model.embeddings.position_embedding.weight", 2, path, err, errlen))) return -1;
    if (!(vproj = need(f, "visual_projection.weight", 2, path, err, errlen))) return -1;
    if (!(tok = need(f, "text_model.embeddings.token_embedding.weight", 2, path, err, errlen))) return -1;
    if (!(tpos = need(f, "text_model.embeddings.position_embedding.weight", 2, path, err, errlen))) return -1;
    if (!(tproj = need(f, "text_projection.weight", 2, path, err, errlen))) return -1;
    c->vision_width = (int)cls->shape[0];
    c->channels = (int)patch->shape[1];
    c->patch_size = (int)patch->shape[2];
    int64_t tokens = vpos->shape[0] - 1, grid = (int64_t)llround(sqrt((double)(tokens > 0 ? tokens : 0)));
    if (tokens < 1 || grid * grid != tokens) {
        da_errf(err, errlen, "%s: the vision position embedding has %lld rows, not 1 + a square number of patches",
                path, (long long)vpos->shape[0]);
        return -1;
    }
    c->image_size = (int)(grid * c->patch_size);
    c->embed_dim = (int)vproj->shape[0];
    c->vocab_size = (int)tok->shape[0];
    c->text_width = (int)tok->shape[1];
    c->context_length = (int)tpos->shape[0];
    c->vision_layers = count_layers(f, "vision_model");
    c->text_layers = count_layers(f, "text_model");
    if (c->vision_layers > 0) {
        if (!(fc = need(f, "vision_model.encoder.layers.0.mlp.fc1.weight", 2, path, err, errlen))) return -1;
        c->vision_mlp = (int)fc->shape[0];
    }
    if (c->text_layers > 0) {
        if (!(fc = need(f, "text_model.encoder.layers.0.mlp.fc1.weight", 2, path, err, errlen))) return -1;
        c->text_mlp = (int)fc->shape[0];
    }
    if (c->vision_layers == 0 || c->text_layers == 0) {
        da_errf(err, errlen, "%s: missing key '%s.encoder.layers.0.layer_norm1.weight' (no transformer layers found)",
                path, c->vision_layers == 0 ? "vision_model" : "text_model");
        return -1;
    }
    c->vision_heads = c->vision_width / 64 > 0 ? c->vision_width / 64 : 1;
    c->text_heads = c->text_width / 64 > 0 ? c->text_width / 64 : 1;
    (void)tproj;
    return 0;
}

/* A config file or metadata may not claim sizes other than the weights have: the model is built
 * from the config before the weights are checked, so 1,000,000 claimed layers would all be
 * allocated first. */
static int check_against_file(const da_clip_config *c, const da_clip_config *f, const char *path, char *err,
                              size_t errlen) {
    struct { const char *name; int cfg, file; } v[] = {
        {"vision num_hidden_layers", c->vision_layers, f->vision_layers}, {"text num_hidden_layers", c->text_layers, f->text_layers},
        {"vision hidden_size", c->vision_width, f->vision_width}, {"text hidden_size", c->text_width, f->text_width},
        {"vision intermediate_size", c->vision_mlp, f->vision_mlp}, {"text intermediate_size", c->text_mlp, f->text_mlp},
        {"image_size", c->image_size, f->image_size}, {"patch_size", c->patch_size, f->patch_size},
        {"num_channels", c->channels, f->channels}, {"vocab_size", c->vocab_size, f->vocab_size},
        {"max_position_embeddings", c->context_length, f->context_length}, {"projection_dim", c->embed_dim, f->embed_dim},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (v[i].cfg != v[i].file) {
            da_errf(err, errlen, "%s: its config says %s = %d but the weights in the file have %d; the config does not "
                    "belong to these weights", path, v[i].name, v[i].cfg, v[i].file);
            return -1;
        }
    return 0;
}

int da_clip_load(da_clip *m, const char *path, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    struct stat st;
    if (stat(path, &st) != 0) {
        da_errf(err, errlen, "CLIP model %s does not exist (pass a .safetensors or PyTorch .bin/.pth file, or a Hugging Face folder)", path);
        return -1;
    }
    char file[4200], cfg_path[4200] = "";
    char *dir = NULL;
    if (S_ISDIR(st.st_mode)) {
        snprintf(file, sizeof file, "%s/model.safetensors", path);
        snprintf(cfg_path, sizeof cfg_path, "%s/config.json", path);
        /* older Hugging Face folders hold only the torch.save file */
        if (!da_is_file(file)) snprintf(file, sizeof file, "%s/pytorch_model.bin", path);
        if (!da_is_file(file)) {
            da_errf(err, errlen, "%s: neither model.safetensors nor pytorch_model.bin in this folder (a Hugging "
                    "Face CLIP folder holds one of them and config.json)", path);
            return -1;
        }
        char v[4200], mg[4200];
        snprintf(v, sizeof v, "%s/vocab.json", path);
        snprintf(mg, sizeof mg, "%s/merges.txt", path);
        if (da_is_file(v) && da_is_file(mg)) dir = strdup(path);
    } else {
        snprintf(file, sizeof file, "%s", path);
    }
    st_file f;
    char inner[1024];
    if (st_open(file, &f, inner, sizeof inner)) {
        da_errf(err, errlen, "%s", inner);
        free(dir);
        return -1;
    }
    if (da_clip_is_openai(&f)) {
        /* OpenAI's TorchScript archives (ViT-B-32.pt, ...) use their own names and layout */
        st_file hf;
        int bad = da_clip_openai_to_hf(&f, &hf, inner, sizeof inner);
        st_close(&f);
        if (bad) {
            da_errf(err, errlen, "%s: %s", file, inner);
            free(dir);
            return -1;
        }
        f = hf;
    }
    /* the config-vs-weights check below sees the renamed tensors, so it covers these archives too */
    da_clip_config c, shapes;
    int rc = infer_config(&f, file, &c, err, errlen);
    shapes = c;
    if (!rc) {
        const char *meta = st_meta_get(&f, "clip_config");
        char *json = NULL;
        const char *src = file;
        if (!meta && cfg_path[0] && da_is_file(cfg_path)) {
            json = da_read_file(cfg_path, NULL, NULL, 0);
            src = cfg_path;
            if (!json) { da_errf(err, errlen, "cannot read %s", cfg_path); rc = -1; }
        }
        if (!rc && (meta || json)) {
            char what[4300];
            snprintf(what, sizeof what, meta ? "%s (metadata clip_config)" : "%s", src);
            rc = da_clip_config_from_json(meta ? meta : json, what, &c, err, errlen);
        }
        free(json);
    }
    if (!rc && check_against_file(&c, &shapes, file, err, errlen)) rc = -1;
    if (!rc && da_clip_config_validate(&c, inner, sizeof inner)) {
        da_errf(err, errlen, "%s: %s", file, inner);
        rc = -1;
    }
    if (!rc) {
        build(m, &c);
        if (da_params_load(&m->params, &f, NULL, DA_LOAD_ALLOW_EXTRA, NULL, inner, sizeof inner)) {
            da_errf(err, errlen, "%s: %s", file, inner);
            rc = -1;
        }
    }
    if (!rc) {
        const char *merges = st_meta_get(&f, "bpe_merges");
        if (merges) m->bpe_merges = strdup(merges);
        m->hf_dir = dir;
        dir = NULL;
    }
    free(dir);
    st_close(&f);
    if (rc) da_clip_free(m);
    return rc;
}

int da_clip_save(const da_clip *m, const char *path, const char *const *extra, char *err, size_t errlen) {
    char *json = da_clip_config_to_json(&m->cfg);
    const char *meta[64];
    int n = 0;
    meta[n++] = "format"; meta[n++] = "diffadapt-clip";
    meta[n++] = "clip_config"; meta[n++] = json;
    if (m->bpe_merges) { meta[n++] = "bpe_merges"; meta[n++] = m->bpe_merges; }
    for (int i = 0; extra && extra[i] && extra[i + 1] && n < 62; i += 2) { meta[n++] = extra[i]; meta[n++] = extra[i + 1]; }
    meta[n] = NULL;
    int rc = da_params_save(&m->params, path, meta, err, errlen);
    free(json);
    return rc;
}

/* The vocabulary must give exactly one id per row of the token embedding: fewer means merges
 * were lost (a file cut short), more would index past the embedding. */
static da_bpe *match_vocab(const da_clip *m, da_bpe *b, const char *src, char *err, size_t errlen) {
    if (b && da_bpe_vocab_size(b) != m->cfg.vocab_size) {
        da_errf(err, errlen, "%s has %d tokens (%d merges) but the model's token embedding has %d rows; the "
                "vocabulary is cut short or belongs to another model", src, da_bpe_vocab_size(b), da_bpe_n_merges(b),
                m->cfg.vocab_size);
        da_bpe_free(b);
        return NULL;
    }
    return b;
}

da_bpe *da_clip_vocab(const da_clip *m, const char *vocab_path, char *err, size_t errlen) {
    if (vocab_path) return match_vocab(m, da_bpe_load(vocab_path, err, errlen), vocab_path, err, errlen);
    if (m->bpe_merges) {
        char inner[512];
        da_bpe *b = da_bpe_from_openai(m->bpe_merges, strlen(m->bpe_merges), INT_MAX, inner, sizeof inner);
        if (!b) da_errf(err, errlen, "the model's own vocabulary (metadata bpe_merges): %s", inner);
        return match_vocab(m, b, "the model's own vocabulary (metadata bpe_merges)", err, errlen);
    }
    if (m->hf_dir) return match_vocab(m, da_bpe_load(m->hf_dir, err, errlen), m->hf_dir, err, errlen);
    da_errf(err, errlen, "the CLIP model carries no vocabulary; pass --vocab bpe_simple_vocab_16e6.txt.gz "
            "(or a folder with vocab.json and merges.txt)");
    return NULL;
}

/* ---- forward ------------------------------------------------------------------------------ */

static da_tensor *lin(da_ctx *ctx, da_tensor *x, const da_clip_lin *l) { return da_linear(ctx, x, l->w, l->b); }

/* One pre-LN transformer layer over x (B,T,W). */
static da_tensor *block(da_ctx *ctx, const da_clip_block *b, da_tensor *x, int heads, float eps, bool gelu, bool causal) {
    int64_t B = x->shape[0], T = x->shape[1], W = x->shape[2], D = W / heads;
    const int to_heads[4] = {0, 2, 1, 3};
    da_tensor *h = da_layer_norm(ctx, x, b->ln1.w, b->ln1.b, eps);
    /* (B,T,W) -> (B,T,H,D) -> (B,H,T,D) */
    da_tensor *q = da_permute(ctx, da_reshape(ctx, lin(ctx, h, &b->q), DA_SHAPE(B, T, heads, D)), to_heads);
    da_tensor *k = da_permute(ctx, da_reshape(ctx, lin(ctx, h, &b->k), DA_SHAPE(B, T, heads, D)), to_heads);
    da_tensor *v = da_permute(ctx, da_reshape(ctx, lin(ctx, h, &b->v), DA_SHAPE(B, T, heads, D)), to_heads);
    da_tensor *a = da_attention(ctx, q, k, v, causal, 1.0f / sqrtf((float)D));      /* (B,H,T,D) */
    a = da_reshape(ctx, da_permute(ctx, a, to_heads), DA_SHAPE(B, T, W));
    x = da_add(ctx, x, lin(ctx, a, &b->out));
    h = da_layer_norm(ctx, x, b->ln2.w, b->ln2.b, eps);
    h = lin(ctx, h, &b->fc1);
    h = gelu ? da_gelu(ctx, h) : da_quick_gelu(ctx, h);
    return da_add(ctx, x, lin(ctx, h, &b->fc2));
}

da_tensor *da_clip_preprocess(da_ctx *ctx, const da_clip *m, da_tensor *x) {
    const da_clip_config *c = &m->cfg;
    da_check(x->ndim == 4 && (x->shape[1] == 1 || x->shape[1] == 3), "clip_preprocess",
             "images must be (B,1|3,H,W)");
    if (x->shape[1] == 1 && c->channels == 3) {
        da_tensor *rep[3] = {x, x, x};
        x = da_concat(ctx, 3, rep, 1);
    } else if (x->shape[1] == 3 && c->channels == 1) {
        const int ax[1] = {1};
        x = da_mean(ctx, x, 1, ax, true);
    }
    int64_t H = x->shape[2], W = x->shape[3], S = c->image_size;
    /* torchvision Resize(S): the short side becomes S, the long one int(S * long / short) */
    int64_t nh = H <= W ? S : (int64_t)((double)S * (double)H / (double)W);
    int64_t nw = H <= W ? (int64_t)((double)S * (double)W / (double)H) : S;
    if (nh != H || nw != W) x = da_resize_bicubic(ctx, x, nh, nw);
    if (nh != S || nw != S) {
        /* CenterCrop: int(round((size - S) / 2)), Python rounding half to even */
        int64_t top = (int64_t)nearbyint((double)(nh - S) / 2.0), left = (int64_t)nearbyint((double)(nw - S) / 2.0);
        x = da_crop(ctx, x, top, left, S, S);
    }
    /* [-1,1] -> [0,1] -> (x - mean) / std, as one affine map per channel; resizing and
     * cropping commute with it (bicubic weights sum to one) */
    int64_t C = c->channels;
    da_tensor *scale = da_new(ctx, DA_SHAPE(1, C, 1, 1)), *shift = da_new(ctx, DA_SHAPE(1, C, 1, 1));
    for (int64_t i = 0; i < C; i++) {
        scale->data[i] = 0.5f / c->std[i];
        shift->data[i] = (0.5f - c->mean[i]) / c->std[i];
    }
    return da_add(ctx, da_mul(ctx, x, scale), shift);
}

da_tensor *da_clip_encode_image(da_ctx *ctx, const da_clip *m, da_tensor *pixels) {
    const da_clip_config *c = &m->cfg;
    int64_t B = pixels->shape[0], Wv = c->vision_width, P = c->patch_size, S = c->image_size;
    da_check(pixels->ndim == 4 && pixels->shape[1] == c->channels && pixels->shape[2] == S && pixels->shape[3] == S,
             "clip_encode_image", "pixels must be (B,%d,%lld,%lld)", c->channels, (long long)S, (long long)S);
    int64_t grid = S / P, N = grid * grid;
    da_tensor *p = da_conv2d(ctx, pixels, m->patch_embedding, NULL, (int)P, 0);      /* (B,Wv,g,g) */
    const int tok_last[3] = {0, 2, 1};
    p = da_permute(ctx, da_reshape(ctx, p, DA_SHAPE(B, Wv, N)), tok_last);            /* (B,N,Wv) */
    da_tensor *cls = da_add(ctx, da_zeros(ctx, DA_SHAPE(B, 1, Wv)),
                            da_reshape(ctx, m->class_embedding, DA_SHAPE(1, 1, Wv)));  /* (B,1,Wv) */
    da_tensor *parts[2] = {cls, p};
    da_tensor *x = da_add(ctx, da_concat(ctx, 2, parts, 1), m->vision_pos);           /* (B,1+N,Wv) */
    x = da_layer_norm(ctx, x, m->pre_ln.w, m->pre_ln.b, c->vision_eps);
    for (int i = 0; i < c->vision_layers; i++)
        x = block(ctx, &m->vision_blocks[i], x, c->vision_heads, c->vision_eps, c->vision_gelu, false);
    x = da_reshape(ctx, da_slice(ctx, x, 1, 0, 1), DA_SHAPE(B, Wv));                  /* class token */
    x = da_layer_norm(ctx, x, m->post_ln.w, m->post_ln.b, c->vision_eps);
    return da_linear(ctx, x, m->visual_projection, NULL);                             /* (B,E) */
}

da_tensor *da_clip_encode_text(da_ctx *ctx, const da_clip *m, const int64_t *ids, int64_t B, int64_t L) {
    const da_clip_config *c = &m->cfg;
    int64_t Wt = c->text_width;
    da_check(B >= 1 && L >= 1 && L <= c->context_length, "clip_encode_text", "ids (%lld,%lld) exceed the context %d",
             (long long)B, (long long)L, c->context_length);
    for (int64_t i = 0; i < B * L; i++)
        da_check(ids[i] >= 0 && ids[i] < c->vocab_size, "clip_encode_text", "token id %lld outside the vocabulary (%d)",
                 (long long)ids[i], c->vocab_size);
    da_tensor *x = da_embedding(ctx, m->token_embedding, DA_SHAPE(B, L), ids);    /* (B,L,Wt) */
    x = da_add(ctx, x, da_slice(ctx, m->text_pos, 0, 0, L));
    for (int i = 0; i < c->text_layers; i++)
        x = block(ctx, &m->text_blocks[i], x, c->text_heads, c->text_eps, c->text_gelu, true);
    /* the end token's hidden state: the first position of each row's largest id */
    int64_t *rows = da_arena_alloc(&ctx->arena, sizeof(int64_t) * (size_t)B);
    for (int64_t b = 0; b < B; b++) {
        int64_t best = 0;
        for (int64_t j = 1; j < L; j++)
            if (ids[b * L + j] > ids[b * L + best]) best = j;
        rows[b] = b * L + best;
    }
    x = da_index_select(ctx, da_reshape(ctx, x, DA_SHAPE(B * L, Wt)), 0, B, rows);   /* (B,Wt) */
    x = da_layer_norm(ctx, x, m->final_ln.w, m->final_ln.b, c->text_eps);            /* per token: after the pick */
    return da_linear(ctx, x, m->text_projection, NULL);                               /* (B,E) */
}

da_tensor *da_clip_encode_texts(da_ctx *ctx, const da_clip *m, da_bpe *bpe, const char *const *texts, int n,
                                bool truncate, char *err, size_t errlen) {
    int ctxlen = m->cfg.context_length;
    int64_t *ids = calloc((size_t)n * (size_t)ctxlen, sizeof(int64_t));
    int *len = calloc((size_t)n, sizeof(int));
    da_check(ids && len, "clip_encode_texts", "out of memory");
    int L = 1;
    for (int i = 0; i < n; i++) {
        len[i] = da_bpe_encode(bpe, texts[i], ctxlen, truncate, ids + (size_t)i * (size_t)ctxlen, err, errlen);
        if (len[i] < 0) { free(ids); free(len); return NULL; }
        for (int k = 0; k < len[i]; k++) {
            int64_t id = ids[(size_t)i * (size_t)ctxlen + (size_t)k];
            if (id >= m->cfg.vocab_size) {
                da_errf(err, errlen, "token id %lld of \"%.40s\" is outside the model's vocabulary of %d tokens: "
                        "the vocabulary does not belong to this model (pass the right --vocab)",
                        (long long)id, texts[i], m->cfg.vocab_size);
                free(ids); free(len);
                return NULL;
            }
        }
        if (len[i] > L) L = len[i];
    }
    /* (n,L): rows padded with 0 after their end token */
    int64_t *packed = da_arena_alloc(&ctx->arena, sizeof(int64_t) * (size_t)n * (size_t)L);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < L; k++) packed[(size_t)i * (size_t)L + (size_t)k] = k < len[i] ? ids[(size_t)i * (size_t)ctxlen + (size_t)k] : 0;
    free(ids);
    free(len);
    return da_clip_encode_text(ctx, m, packed, n, L);
}

da_tensor *da_clip_image_features(da_ctx *ctx, const da_clip *m, da_tensor *x) {
    return da_clip_encode_image(ctx, m, da_clip_preprocess(ctx, m, x));
}
