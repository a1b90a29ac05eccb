/* miniclip_opts.c — the mini-CLIP's options: defaults, the CLIP config they give, their
 * validation, their JSON form in checkpoints and models, and the learning-rate schedule. */
#include "train/miniclip_train.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/errf.h"

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

int da_miniclip_opts_check(const da_miniclip_opts *o, char *err, size_t errlen) {
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

/* The numeric options under their JSON names, in the order they are written; the seed is kept
 * apart (a string). One table for both directions, so writing and reading cannot disagree. */
typedef enum { F_INT, F_INT64, F_FLOAT } field_type;
static const struct {
    const char *key;
    size_t offset;
    field_type type;
} FIELDS[] = {
    {"image_size", offsetof(da_miniclip_opts, image_size), F_INT},
    {"patch_size", offsetof(da_miniclip_opts, patch_size), F_INT},
    {"channels", offsetof(da_miniclip_opts, channels), F_INT},
    {"vision_width", offsetof(da_miniclip_opts, vision_width), F_INT},
    {"vision_layers", offsetof(da_miniclip_opts, vision_layers), F_INT},
    {"text_width", offsetof(da_miniclip_opts, text_width), F_INT},
    {"text_layers", offsetof(da_miniclip_opts, text_layers), F_INT},
    {"heads", offsetof(da_miniclip_opts, heads), F_INT},
    {"embed_dim", offsetof(da_miniclip_opts, embed_dim), F_INT},
    {"context", offsetof(da_miniclip_opts, context), F_INT},
    {"merges", offsetof(da_miniclip_opts, merges), F_INT},
    {"steps", offsetof(da_miniclip_opts, steps), F_INT64},
    {"batch", offsetof(da_miniclip_opts, batch), F_INT},
    {"lr", offsetof(da_miniclip_opts, lr), F_FLOAT},
    {"weight_decay", offsetof(da_miniclip_opts, weight_decay), F_FLOAT},
    {"warmup", offsetof(da_miniclip_opts, warmup), F_INT64},
    {"grad_clip", offsetof(da_miniclip_opts, grad_clip), F_FLOAT},
};
#define N_FIELDS (sizeof FIELDS / sizeof FIELDS[0])

char *da_miniclip_opts_json(const da_miniclip_opts *o) {
    cJSON *j = cJSON_CreateObject();
    for (size_t i = 0; i < N_FIELDS; i++) {
        const char *p = (const char *)o + FIELDS[i].offset;
        double v = FIELDS[i].type == F_INT     ? *(const int *)p
                   : FIELDS[i].type == F_INT64 ? (double)*(const int64_t *)p
                                               : *(const float *)p;
        cJSON_AddNumberToObject(j, FIELDS[i].key, v);
    }
    char seed[32];
    snprintf(seed, sizeof seed, "%" PRIu64, o->seed);   /* a string: 64-bit seeds exceed a double */
    cJSON_AddStringToObject(j, "seed", seed);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

int da_miniclip_opts_from_json(const char *json, da_miniclip_opts *o, char *err, size_t errlen) {
    cJSON *j = cJSON_Parse(json);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        da_errf(err, errlen, "the training options (metadata miniclip_opts) are not a JSON object");
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < N_FIELDS && !rc; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, FIELDS[i].key);
        char *p = (char *)o + FIELDS[i].offset;
        if (!cJSON_IsNumber(v)) {
            da_errf(err, errlen, "the training options lack a number \"%s\"", FIELDS[i].key);
            rc = -1;
        } else if (FIELDS[i].type == F_INT) {
            *(int *)p = (int)v->valuedouble;
        } else if (FIELDS[i].type == F_INT64) {
            *(int64_t *)p = (int64_t)v->valuedouble;
        } else {
            *(float *)p = (float)v->valuedouble;
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
