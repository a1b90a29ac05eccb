/* unet_config.c — the UNet config: defaults, validation, and reading/writing it as the
 * reference YAML layout (libyaml, converted to a JSON tree) or JSON (cJSON). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "nn/unet.h"

void da_unet_config_default(da_unet_config *c) {
    memset(c, 0, sizeof *c);
    c->in_channels = 1;
    c->out_ch = 1;
    c->ch = 64;
    c->resolution = 32;
    c->n_levels = 3;
    c->ch_mult[0] = 1; c->ch_mult[1] = 2; c->ch_mult[2] = 2;
    c->num_res_blocks = 2;
    c->n_attn = 1;
    c->attn_resolutions[0] = 16;
    c->dropout = 0.1f;
    c->resamp_with_conv = true;
    snprintf(c->var_type, sizeof c->var_type, "fixedlarge");
    c->ema_rate = 0.999f;
    c->beta_start = 1e-4;
    c->beta_end = 0.02;
    c->num_timesteps = 1000;
}

int da_unet_config_validate(const da_unet_config *c, char *err, size_t errlen) {
#define BAD(...) do { snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)
    if (c->is_adm) {
        if (da_adm_config_validate(&c->adm, err, errlen)) return -1;
        if (c->in_channels != c->adm.in_channels || c->out_ch != c->adm.in_channels || c->resolution != c->adm.image_size)
            BAD("model config: in_channels/out_ch/resolution %d/%d/%d disagree with the ADM settings %d/%d", c->in_channels,
                c->out_ch, c->resolution, c->adm.in_channels, c->adm.image_size);
        if (!(c->beta_start > 0 && c->beta_start <= c->beta_end && c->beta_end < 1) || c->num_timesteps < 2)
            BAD("model config: beta_start %g / beta_end %g / %d timesteps are not a valid schedule", c->beta_start,
                c->beta_end, c->num_timesteps);
        return 0;
    }
    if (c->in_channels < 1 || c->in_channels > 64) BAD("model config: in_channels %d must lie in 1..64", c->in_channels);
    if (c->out_ch < 1 || c->out_ch > 64) BAD("model config: out_ch %d must lie in 1..64", c->out_ch);
    if (c->ch < 32 || c->ch % 32) BAD("model config: ch %d must be a positive multiple of 32 (GroupNorm uses 32 groups)", c->ch);
    if (c->ch > DA_UNET_MAX_CH) BAD("model config: ch %d is larger than %d (the published models use 128)", c->ch, DA_UNET_MAX_CH);
    if (c->n_levels < 1 || c->n_levels > DA_UNET_MAX_LEVELS) BAD("model config: ch_mult needs 1..%d entries, got %d", DA_UNET_MAX_LEVELS, c->n_levels);
    for (int i = 0; i < c->n_levels; i++)
        if (c->ch_mult[i] < 1 || c->ch_mult[i] > 64) BAD("model config: ch_mult[%d] = %d must lie in 1..64", i, c->ch_mult[i]);
    if (c->num_res_blocks < 1 || c->num_res_blocks > DA_UNET_MAX_BLOCKS)
        BAD("model config: num_res_blocks %d must lie in 1..%d", c->num_res_blocks, DA_UNET_MAX_BLOCKS);
    int div = 1 << (c->n_levels - 1);
    if (c->resolution < div || c->resolution % div || c->resolution > 4096)
        BAD("model config: image_size %d must be a multiple of %d (2^(levels-1)) and at most 4096", c->resolution, div);
    /* attention at a resolution that no level runs at would silently mean no attention at all */
    for (int i = 0; i < c->n_attn; i++) {
        bool occurs = false;
        for (int l = 0; l < c->n_levels; l++) occurs |= c->attn_resolutions[i] == c->resolution >> l;
        if (!occurs) {
            char levels[96] = "";
            size_t n = 0;
            for (int l = 0; l < c->n_levels && n < sizeof levels; l++)
                n += (size_t)snprintf(levels + n, sizeof levels - n, l ? ", %d" : "%d", c->resolution >> l);
            BAD("model config: attention resolution %d never occurs: the levels of a %d-pixel model with %d "
                "ch_mult entries run at %s", c->attn_resolutions[i], c->resolution, c->n_levels, levels);
        }
    }
    if (!(c->dropout >= 0 && c->dropout < 1)) BAD("model config: dropout %g must lie in [0,1)", (double)c->dropout);
    if (!(c->beta_start > 0 && c->beta_start <= c->beta_end && c->beta_end < 1))
        BAD("model config: beta_start %g / beta_end %g must satisfy 0 < start <= end < 1", c->beta_start, c->beta_end);
    if (c->num_timesteps < 2 || c->num_timesteps > 4000)
        BAD("model config: num_diffusion_timesteps %d must lie in 2..4000", c->num_timesteps);
    /* the memory the model needs, before anything is allocated (the bounds above keep every
     * product within int64): its weights, and a bound on its largest activation for one image
     * (the widest level at full resolution, three times for the skip concatenation) */
    double limit = da_memory_limit_bytes(), params = (double)da_unet_config_num_params(c) * sizeof(float);
    int cmax = 0, attn_res = 0;
    for (int i = 0; i < c->n_levels; i++) cmax = c->ch * c->ch_mult[i] > cmax ? c->ch * c->ch_mult[i] : cmax;
    for (int i = 0; i < c->n_attn; i++) attn_res = c->attn_resolutions[i] > attn_res ? c->attn_resolutions[i] : attn_res;
    double act = 3.0 * cmax * (double)c->resolution * c->resolution * sizeof(float);
    double attn = (double)attn_res * attn_res * attn_res * attn_res * sizeof(float);      /* (hw x hw) scores */
    double need = params > act ? params : act;
    need = attn > need ? attn : need;
    if (need > limit)
        BAD("model config: the model would need %.1f GiB (%.0f M parameters, %.1f GiB per image for activations and "
            "%.1f GiB for one attention map), more than the limit of %.1f GiB; check ch/ch_mult/image_size, or raise "
            "the limit with DIFFADAPT_MAX_GIB", need / 1073741824.0, params / sizeof(float) / 1e6, act / 1073741824.0,
            attn / 1073741824.0, limit / 1073741824.0);
    return 0;
#undef BAD
}

/* ---- JSON tree -> config ------------------------------------------------------------------ */

static int get_int(const cJSON *o, const char *key, int *dst, const char *what, char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble)) {
        snprintf(err, errlen, "%s: '%s' must be an integer", what, key);
        return -1;
    }
    if (fabs(v->valuedouble) > 1e9) {
        snprintf(err, errlen, "%s: '%s' = %.0f is far too large (at most 1000000000)", what, key, v->valuedouble);
        return -1;
    }
    *dst = (int)v->valuedouble;
    return 0;
}

static int get_double(const cJSON *o, const char *key, double *dst, const char *what, char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return 0;
    if (!cJSON_IsNumber(v)) {
        snprintf(err, errlen, "%s: '%s' must be a number", what, key);
        return -1;
    }
    *dst = v->valuedouble;
    return 0;
}

static int get_bool(const cJSON *o, const char *key, bool *dst, const char *what, char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return 0;
    if (!cJSON_IsBool(v)) {
        snprintf(err, errlen, "%s: '%s' must be true or false", what, key);
        return -1;
    }
    *dst = cJSON_IsTrue(v);
    return 0;
}

static int get_int_list(const cJSON *o, const char *key, int *dst, int *n, int cap, const char *what, char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return 0;
    if (cJSON_IsNumber(v)) {   /* a single value written without brackets */
        if (v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > 1e9) {
            snprintf(err, errlen, "%s: '%s' must hold integers of at most 1000000000", what, key);
            return -1;
        }
        *n = 1;
        dst[0] = (int)v->valuedouble;
        return 0;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > cap) {
        snprintf(err, errlen, "%s: '%s' must be a list of at most %d integers", what, key, cap);
        return -1;
    }
    int k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) || fabs(it->valuedouble) > 1e9) {
            snprintf(err, errlen, "%s: '%s' must hold integers (of at most 1000000000) only", what, key);
            return -1;
        }
        dst[k++] = (int)it->valuedouble;
    }
    *n = k;
    return 0;
}

/* A list of integers given as a YAML/JSON list, one number, or a comma-separated string
 * ("32,16,8", as guided-diffusion's flags); "" leaves *n at 0. */
static int get_int_list_or_csv(const cJSON *o, const char *key, int *dst, int *n, int cap, const char *what, char *err,
                               size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v)) return get_int_list(o, key, dst, n, cap, what, err, errlen);
    int k = 0;
    for (const char *p = v->valuestring; *p;) {
        char *end;
        long x = strtol(p, &end, 10);
        if (end == p || k == cap || x < 1 || x > 100000 || (*end && *end != ',')) {
            snprintf(err, errlen, "%s: '%s' must be comma-separated positive integers (at most %d), got \"%.60s\"", what,
                     key, cap, v->valuestring);
            return -1;
        }
        dst[k++] = (int)x;
        p = *end ? end + 1 : end;
    }
    *n = k;
    return 0;
}

/* The ADM family's "model" block (guided-diffusion's argument names); image_size is known. */
static int adm_from_tree(const cJSON *model, const char *what, da_unet_config *c, char *err, size_t errlen) {
    da_adm_config *a = &c->adm;
    int res = c->resolution, in = c->in_channels, n_res = 0, res_px[DA_ADM_MAX_LEVELS];
    da_adm_config_default(a);
    double dropout = 0;
    a->n_levels = 0;
    if (get_int(model, "in_channels", &in, what, err, errlen) ||
        get_int(model, "num_channels", &a->model_channels, what, err, errlen) ||
        get_int(model, "num_res_blocks", &a->num_res_blocks, what, err, errlen) ||
        get_int_list_or_csv(model, "channel_mult", a->channel_mult, &a->n_levels, DA_ADM_MAX_LEVELS, what, err, errlen) ||
        get_int_list_or_csv(model, "attention_resolutions", res_px, &n_res, DA_ADM_MAX_LEVELS, what, err, errlen) ||
        get_int(model, "num_heads", &a->num_heads, what, err, errlen) ||
        get_int(model, "num_head_channels", &a->num_head_channels, what, err, errlen) ||
        get_int(model, "num_heads_upsample", &a->num_heads_upsample, what, err, errlen) ||
        get_bool(model, "use_scale_shift_norm", &a->use_scale_shift_norm, what, err, errlen) ||
        get_bool(model, "resblock_updown", &a->resblock_updown, what, err, errlen) ||
        get_bool(model, "learn_sigma", &a->learn_sigma, what, err, errlen) ||
        get_bool(model, "conv_resample", &a->conv_resample, what, err, errlen) ||
        get_bool(model, "use_new_attention_order", &a->use_new_attention_order, what, err, errlen) ||
        get_double(model, "dropout", &dropout, what, err, errlen))
        return -1;
    bool class_cond = false;
    if (get_bool(model, "class_cond", &class_cond, what, err, errlen)) return -1;
    if (class_cond) {
        snprintf(err, errlen, "%s: class-conditional ADM models (class_cond) are not supported", what);
        return -1;
    }
    if (!a->n_levels) {
        /* guided-diffusion's defaults by image size */
        static const int m256[] = {1, 1, 2, 2, 4, 4}, m128[] = {1, 1, 2, 3, 4}, m64[] = {1, 2, 3, 4};
        const int *m = res == 256 ? m256 : res == 128 ? m128 : res == 64 ? m64 : NULL;
        if (!m) {
            snprintf(err, errlen, "%s: give channel_mult for image_size %d (defaults exist for 64, 128 and 256)", what, res);
            return -1;
        }
        a->n_levels = res == 256 ? 6 : res == 128 ? 5 : 4;
        memcpy(a->channel_mult, m, sizeof(int) * (size_t)a->n_levels);
    }
    a->n_attn = n_res;
    for (int i = 0; i < n_res; i++) {
        if (res % res_px[i]) {
            snprintf(err, errlen, "%s: attention resolution %d does not divide image_size %d", what, res_px[i], res);
            return -1;
        }
        a->attention_ds[i] = res / res_px[i];
    }
    a->image_size = res;
    a->in_channels = in;
    a->dropout = (float)dropout;
    c->is_adm = true;
    c->in_channels = c->out_ch = in;
    c->dropout = a->dropout;
    return 0;
}

static int config_from_tree(const cJSON *root, const char *what, da_unet_config *c, char *err, size_t errlen) {
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "%s: the config must be a mapping with a 'model' block", what);
        return -1;
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model)) {
        snprintf(err, errlen, "%s: no 'model:' block (expected the layout of the reference configs, e.g. configs/celeba.yml)", what);
        return -1;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    bool adm = cJSON_IsString(type) && !strcmp(type->valuestring, "adm");
    if (type && !adm && (!cJSON_IsString(type) || strcmp(type->valuestring, "simple"))) {
        snprintf(err, errlen, "%s: model type '%s' is not supported (\"simple\": the DDPM UNet, \"adm\": the "
                 "improved-DDPM / ADM UNet)", what, cJSON_IsString(type) ? type->valuestring : "?");
        return -1;
    }
    c->is_adm = false;
    double dropout = c->dropout, ema = c->ema_rate;
    if (get_int(model, "in_channels", &c->in_channels, what, err, errlen) ||
        get_int(model, "out_ch", &c->out_ch, what, err, errlen) ||
        get_int(model, "ch", &c->ch, what, err, errlen) ||
        get_int_list(model, "ch_mult", c->ch_mult, &c->n_levels, DA_UNET_MAX_LEVELS, what, err, errlen) ||
        get_int(model, "num_res_blocks", &c->num_res_blocks, what, err, errlen) ||
        get_int_list(model, "attn_resolutions", c->attn_resolutions, &c->n_attn, DA_UNET_MAX_LEVELS, what, err, errlen) ||
        get_double(model, "dropout", &dropout, what, err, errlen) ||
        get_double(model, "ema_rate", &ema, what, err, errlen) ||
        get_bool(model, "resamp_with_conv", &c->resamp_with_conv, what, err, errlen))
        return -1;
    c->dropout = (float)dropout;
    c->ema_rate = (float)ema;
    const cJSON *vt = cJSON_GetObjectItemCaseSensitive(model, "var_type");
    if (cJSON_IsString(vt)) snprintf(c->var_type, sizeof c->var_type, "%s", vt->valuestring);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    if (data) {
        int channels = 0;
        if (get_int(data, "image_size", &c->resolution, what, err, errlen) ||
            get_int(data, "channels", &channels, what, err, errlen))
            return -1;
        if (channels && channels != c->in_channels) {
            snprintf(err, errlen, "%s: data.channels %d differs from model.in_channels %d", what, channels, c->in_channels);
            return -1;
        }
    }
    if (adm && adm_from_tree(model, what, c, err, errlen)) return -1;
    const cJSON *diff = cJSON_GetObjectItemCaseSensitive(root, "diffusion");
    if (diff) {
        const cJSON *bs = cJSON_GetObjectItemCaseSensitive(diff, "beta_schedule");
        if (bs && (!cJSON_IsString(bs) || strcmp(bs->valuestring, "linear"))) {
            snprintf(err, errlen, "%s: beta_schedule '%s' is not supported (only \"linear\")", what,
                     cJSON_IsString(bs) ? bs->valuestring : "?");
            return -1;
        }
        if (get_double(diff, "beta_start", &c->beta_start, what, err, errlen) ||
            get_double(diff, "beta_end", &c->beta_end, what, err, errlen) ||
            get_int(diff, "num_diffusion_timesteps", &c->num_timesteps, what, err, errlen))
            return -1;
    }
    return da_unet_config_validate(c, err, errlen);
}

int da_unet_config_from_json(const char *json, const char *what, da_unet_config *c, char *err, size_t errlen) {
    cJSON *root = cJSON_Parse(json);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        snprintf(err, errlen, "%s: malformed JSON near '%.20s'", what, at ? at : "?");
        return -1;
    }
    int rc = config_from_tree(root, what, c, err, errlen);
    cJSON_Delete(root);
    return rc;
}

/* ---- YAML -> JSON tree -------------------------------------------------------------------- */

/* A plain scalar becomes a number, a boolean or null when it reads as one (YAML 1.1 core
 * words the reference files use: true/false/True/False, null/~); quoted scalars stay strings. */
static cJSON *yaml_scalar(const yaml_node_t *n) {
    const char *s = (const char *)n->data.scalar.value;
    if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) return cJSON_CreateTrue();
        if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) return cJSON_CreateFalse();
        if (!strcmp(s, "null") || !strcmp(s, "~") || !*s) return cJSON_CreateNull();
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (end != s && !*end && !errno) return cJSON_CreateNumber(v);
    }
    return cJSON_CreateString(s);
}

/* Aliases are references: a 300-byte file can name 10^9 nodes ("billion laughs"). Expanding
 * stops after this many, far beyond any real config (celeba.yml has under 100). */
#define YAML_MAX_NODES 100000
#define CONFIG_MAX_BYTES (1 << 20)

static cJSON *yaml_to_json(yaml_document_t *doc, yaml_node_t *n, int depth, long *budget) {
    if (!n || depth > 32 || --*budget < 0) return NULL;
    switch (n->type) {
    case YAML_SCALAR_NODE: return yaml_scalar(n);
    case YAML_SEQUENCE_NODE: {
        cJSON *a = cJSON_CreateArray();
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
            cJSON *v = yaml_to_json(doc, yaml_document_get_node(doc, *it), depth + 1, budget);
            if (!v) { cJSON_Delete(a); return NULL; }
            cJSON_AddItemToArray(a, v);
        }
        return a;
    }
    case YAML_MAPPING_NODE: {
        cJSON *o = cJSON_CreateObject();
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(doc, p->key);
            cJSON *v = yaml_to_json(doc, yaml_document_get_node(doc, p->value), depth + 1, budget);
            if (!k || k->type != YAML_SCALAR_NODE || !v) { cJSON_Delete(v); cJSON_Delete(o); return NULL; }
            cJSON_AddItemToObject(o, (const char *)k->data.scalar.value, v);
        }
        return o;
    }
    default: return NULL;
    }
}

static int load_yaml(const char *path, FILE *f, da_unet_config *c, char *err, size_t errlen) {
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "%s: cannot start the YAML parser", path);
        return -1;
    }
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, errlen, "%s: malformed YAML at line %zu: %s", path, parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "parse error");
        yaml_parser_delete(&parser);
        return -1;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    long budget = YAML_MAX_NODES;
    cJSON *tree = root ? yaml_to_json(&doc, root, 0, &budget) : NULL;
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (budget < 0) {
        cJSON_Delete(tree);
        snprintf(err, errlen, "%s: the YAML expands to more than %d nodes (aliases repeated over and over?); "
                 "a model config has fewer than a hundred", path, YAML_MAX_NODES);
        return -1;
    }
    if (!tree) {
        snprintf(err, errlen, "%s: empty or unsupported YAML (expected mappings, lists and scalars)", path);
        return -1;
    }
    int rc = config_from_tree(tree, path, c, err, errlen);
    cJSON_Delete(tree);
    return rc;
}

int da_unet_config_load(const char *path, da_unet_config *c, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open config %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st = {0};
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > CONFIG_MAX_BYTES) {
        fclose(f);
        if (S_ISDIR(st.st_mode)) snprintf(err, errlen, "config %s is a folder; pass the YAML or JSON file itself", path);
        else snprintf(err, errlen, "config %s is not a config file (%s)", path,
                      S_ISREG(st.st_mode) ? "larger than 1 MiB" : "not a regular file");
        return -1;
    }
    /* JSON when the first non-blank character opens an object, YAML otherwise */
    int ch;
    do ch = fgetc(f); while (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r');
    rewind(f);
    int rc;
    if (ch == '{') {
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        rewind(f);
        if (size < 0 || size > (1 << 24)) {
            fclose(f);
            snprintf(err, errlen, "%s: not a config file (size %ld)", path, size);
            return -1;
        }
        char *buf = malloc((size_t)size + 1);
        size_t got = fread(buf, 1, (size_t)size, f);
        buf[got] = 0;
        rc = da_unet_config_from_json(buf, path, c, err, errlen);
        free(buf);
    } else {
        rc = load_yaml(path, f, c, err, errlen);
    }
    fclose(f);
    return rc;
}

/* The ADM "model" block (the inverse of adm_from_tree). */
static void adm_to_json(cJSON *m, const da_adm_config *a) {
    cJSON_AddStringToObject(m, "type", "adm");
    cJSON_AddNumberToObject(m, "in_channels", a->in_channels);
    cJSON_AddNumberToObject(m, "num_channels", a->model_channels);
    cJSON_AddNumberToObject(m, "num_res_blocks", a->num_res_blocks);
    cJSON_AddItemToObject(m, "channel_mult", cJSON_CreateIntArray(a->channel_mult, a->n_levels));
    int px[DA_ADM_MAX_LEVELS];
    for (int i = 0; i < a->n_attn; i++) px[i] = a->image_size / a->attention_ds[i];
    cJSON_AddItemToObject(m, "attention_resolutions", cJSON_CreateIntArray(px, a->n_attn));
    cJSON_AddNumberToObject(m, "num_heads", a->num_heads);
    cJSON_AddNumberToObject(m, "num_head_channels", a->num_head_channels);
    cJSON_AddNumberToObject(m, "num_heads_upsample", a->num_heads_upsample);
    cJSON_AddBoolToObject(m, "use_scale_shift_norm", a->use_scale_shift_norm);
    cJSON_AddBoolToObject(m, "resblock_updown", a->resblock_updown);
    cJSON_AddBoolToObject(m, "learn_sigma", a->learn_sigma);
    cJSON_AddBoolToObject(m, "conv_resample", a->conv_resample);
    cJSON_AddBoolToObject(m, "use_new_attention_order", a->use_new_attention_order);
    cJSON_AddNumberToObject(m, "dropout", a->dropout);
}

char *da_unet_config_to_json(const da_unet_config *c) {
    cJSON *root = cJSON_CreateObject();
    cJSON *m = cJSON_AddObjectToObject(root, "model");
    if (c->is_adm) {
        adm_to_json(m, &c->adm);
        goto data;
    }
    cJSON_AddStringToObject(m, "type", "simple");
    cJSON_AddNumberToObject(m, "in_channels", c->in_channels);
    cJSON_AddNumberToObject(m, "out_ch", c->out_ch);
    cJSON_AddNumberToObject(m, "ch", c->ch);
    cJSON_AddItemToObject(m, "ch_mult", cJSON_CreateIntArray(c->ch_mult, c->n_levels));
    cJSON_AddNumberToObject(m, "num_res_blocks", c->num_res_blocks);
    cJSON_AddItemToObject(m, "attn_resolutions", cJSON_CreateIntArray(c->attn_resolutions, c->n_attn));
    cJSON_AddNumberToObject(m, "dropout", c->dropout);
    cJSON_AddStringToObject(m, "var_type", c->var_type);
    cJSON_AddNumberToObject(m, "ema_rate", c->ema_rate);
    cJSON_AddTrueToObject(m, "ema");
    cJSON_AddBoolToObject(m, "resamp_with_conv", c->resamp_with_conv);
data:;
    cJSON *d = cJSON_AddObjectToObject(root, "data");
    cJSON_AddNumberToObject(d, "image_size", c->resolution);
    cJSON_AddNumberToObject(d, "channels", c->in_channels);
    cJSON *df = cJSON_AddObjectToObject(root, "diffusion");
    cJSON_AddStringToObject(df, "beta_schedule", "linear");
    cJSON_AddNumberToObject(df, "beta_start", c->beta_start);
    cJSON_AddNumberToObject(df, "beta_end", c->beta_end);
    cJSON_AddNumberToObject(df, "num_diffusion_timesteps", c->num_timesteps);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

const char *da_unet_config_str(const da_unet_config *c, char *buf, size_t len) {
    char mult[64] = "", attn[64] = "";
    size_t n = 0;
    if (c->is_adm) {
        const da_adm_config *a = &c->adm;
        for (int i = 0; i < a->n_levels; i++) n += (size_t)snprintf(mult + n, sizeof mult - n, i ? ",%d" : "%d", a->channel_mult[i]);
        n = 0;
        for (int i = 0; i < a->n_attn; i++)
            n += (size_t)snprintf(attn + n, sizeof attn - n, i ? ",%d" : "%d", a->image_size / a->attention_ds[i]);
        snprintf(buf, len, "ADM: %d channels, mult %s, %d res blocks, attention at %s, %s%s%s%dx%dx%d -> %d%s", a->model_channels,
                 mult, a->num_res_blocks, a->n_attn ? attn : "none", a->use_scale_shift_norm ? "scale-shift norm, " : "",
                 a->resblock_updown ? "resblock up/down, " : "", a->use_new_attention_order ? "new head order, " : "",
                 a->image_size, a->image_size, a->in_channels, a->in_channels, a->learn_sigma ? " (+ learned variance)" : "");
        return buf;
    }
    for (int i = 0; i < c->n_levels; i++) n += (size_t)snprintf(mult + n, sizeof mult - n, i ? ",%d" : "%d", c->ch_mult[i]);
    n = 0;
    for (int i = 0; i < c->n_attn; i++) n += (size_t)snprintf(attn + n, sizeof attn - n, i ? ",%d" : "%d", c->attn_resolutions[i]);
    snprintf(buf, len, "ch %d, ch_mult %s, %d res blocks, attention at %s, dropout %g, %s resampling, %dx%dx%d -> %d",
             c->ch, mult, c->num_res_blocks, c->n_attn ? attn : "none", (double)c->dropout,
             c->resamp_with_conv ? "conv" : "pool/nearest", c->resolution, c->resolution, c->in_channels, c->out_ch);
    return buf;
}
