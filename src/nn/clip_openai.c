/* clip_openai.c — OpenAI CLIP key layout -> Hugging Face key layout (see clip_openai.h). */
#include "nn/clip_openai.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/errf.h"

/* How one Hugging Face tensor comes from an OpenAI one. */
typedef enum { AS_IS, TRANSPOSED, THIRD_0, THIRD_1, THIRD_2 } how;

typedef struct {
    char dst[200], src[200];
    how how;
} mapping;

typedef struct {
    mapping *m;
    int n, cap;
} mapping_list;

static void add(mapping_list *l, const char *dst, const char *src, how h) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 128;
        mapping *nm = realloc(l->m, sizeof *nm * (size_t)l->cap);
        if (!nm) { fprintf(stderr, "clip_openai: out of memory\n"); abort(); }
        l->m = nm;
    }
    mapping *e = &l->m[l->n++];
    snprintf(e->dst, sizeof e->dst, "%s", dst);
    snprintf(e->src, sizeof e->src, "%s", src);
    e->how = h;
}

/* Layers of a tower: resblocks 0, 1, ... while "<tower>.resblocks.<i>.ln_1.weight" exists. */
static int count_layers(const st_file *f, const char *tower) {
    char key[200];
    int n = 0;
    for (;;) {
        snprintf(key, sizeof key, "%s.resblocks.%d.ln_1.weight", tower, n);
        if (!st_find(f, key)) return n;
        n++;
    }
}

static void add_tower(mapping_list *l, const char *src, const char *dst, int layers) {
    static const char *const P[2] = {"weight", "bias"};
    static const struct { const char *src, *dst; } SAME[] = {
        {"ln_1", "layer_norm1"}, {"ln_2", "layer_norm2"}, {"attn.out_proj", "self_attn.out_proj"},
        {"mlp.c_fc", "mlp.fc1"}, {"mlp.c_proj", "mlp.fc2"},
    };
    char a[200], b[200];
    for (int i = 0; i < layers; i++)
        for (int p = 0; p < 2; p++) {
            for (size_t k = 0; k < sizeof SAME / sizeof SAME[0]; k++) {
                snprintf(a, sizeof a, "%s.resblocks.%d.%s.%s", src, i, SAME[k].src, P[p]);
                snprintf(b, sizeof b, "%s.layers.%d.%s.%s", dst, i, SAME[k].dst, P[p]);
                add(l, b, a, AS_IS);
            }
            /* in_proj stacks q, k and v along dim 0 */
            static const char QKV[3] = {'q', 'k', 'v'};
            snprintf(a, sizeof a, "%s.resblocks.%d.attn.in_proj_%s", src, i, P[p]);
            for (int q = 0; q < 3; q++) {
                snprintf(b, sizeof b, "%s.layers.%d.self_attn.%c_proj.%s", dst, i, QKV[q], P[p]);
                add(l, b, a, (how)(THIRD_0 + q));
            }
        }
}

bool da_clip_is_openai(const st_file *f) {
    return st_find(f, "visual.conv1.weight") && st_find(f, "token_embedding.weight");
}

static void build_mappings(const st_file *f, mapping_list *l) {
    static const struct { const char *src, *dst; how h; } TOP[] = {
        {"visual.class_embedding", "vision_model.embeddings.class_embedding", AS_IS},
        {"visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight", AS_IS},
        {"visual.positional_embedding", "vision_model.embeddings.position_embedding.weight", AS_IS},
        {"visual.ln_pre.weight", "vision_model.pre_layrnorm.weight", AS_IS},
        {"visual.ln_pre.bias", "vision_model.pre_layrnorm.bias", AS_IS},
        {"visual.ln_post.weight", "vision_model.post_layernorm.weight", AS_IS},
        {"visual.ln_post.bias", "vision_model.post_layernorm.bias", AS_IS},
        {"visual.proj", "visual_projection.weight", TRANSPOSED},
        {"token_embedding.weight", "text_model.embeddings.token_embedding.weight", AS_IS},
        {"positional_embedding", "text_model.embeddings.position_embedding.weight", AS_IS},
        {"ln_final.weight", "text_model.final_layer_norm.weight", AS_IS},
        {"ln_final.bias", "text_model.final_layer_norm.bias", AS_IS},
        {"text_projection", "text_projection.weight", TRANSPOSED},
        {"logit_scale", "logit_scale", AS_IS},
    };
    for (size_t i = 0; i < sizeof TOP / sizeof TOP[0]; i++) add(l, TOP[i].dst, TOP[i].src, TOP[i].h);
    add_tower(l, "visual.transformer", "vision_model.encoder", count_layers(f, "visual.transformer"));
    add_tower(l, "transformer", "text_model.encoder", count_layers(f, "transformer"));
}

/* The shape of the mapped tensor, or -1 when the source cannot be mapped that way. */
static int mapped_shape(const st_tensor_info *s, how h, st_tensor_info *d) {
    d->dtype = s->dtype;
    d->ndim = s->ndim;
    memcpy(d->shape, s->shape, sizeof d->shape);
    if (h == TRANSPOSED) {
        if (s->ndim != 2) return -1;
        d->shape[0] = s->shape[1];
        d->shape[1] = s->shape[0];
    } else if (h != AS_IS) {
        if (s->ndim < 1 || s->shape[0] % 3) return -1;
        d->shape[0] = s->shape[0] / 3;
    }
    d->numel = 1;
    for (int k = 0; k < d->ndim; k++) d->numel *= d->shape[k];
    return 0;
}

/* Copies the mapped bytes of s (in src) to out. */
static void copy_mapped(const st_file *src, const st_tensor_info *s, how h, const st_tensor_info *d, unsigned char *out) {
    size_t es = st_dtype_size(s->dtype), bytes = (size_t)d->numel * es;
    const unsigned char *p = src->data + s->begin;
    if (h == AS_IS) {
        memcpy(out, p, bytes);
    } else if (h == TRANSPOSED) {
        /* s (r, c) -> d (c, r) */
        int64_t r = s->shape[0], c = s->shape[1];
        for (int64_t i = 0; i < c; i++)
            for (int64_t j = 0; j < r; j++) memcpy(out + (size_t)(i * r + j) * es, p + (size_t)(j * c + i) * es, es);
    } else {
        memcpy(out, p + (size_t)(h - THIRD_0) * bytes, bytes);
    }
}

int da_clip_openai_to_hf(const st_file *src, st_file *dst, char *err, size_t errlen) {
    memset(dst, 0, sizeof *dst);
    if (st_find(src, "visual.layer1.0.conv1.weight")) {
        da_errf(err, errlen, "this is an OpenAI ResNet CLIP (RN50, ...), which is not supported; use a ViT model "
                "(ViT-B-32.pt, ViT-B-16.pt, ViT-L-14.pt)");
        return -1;
    }
    mapping_list l = {0};
    build_mappings(src, &l);
    int rc = -1;
    dst->tensors = calloc((size_t)l.n, sizeof *dst->tensors);
    size_t total = 0;
    if (!dst->tensors) { da_errf(err, errlen, "out of memory"); goto done; }
    for (int i = 0; i < l.n; i++) {
        const st_tensor_info *s = st_find(src, l.m[i].src);
        st_tensor_info *d = &dst->tensors[i];
        if (!s) {
            da_errf(err, errlen, "an OpenAI CLIP file without '%s' (needed for %s)", l.m[i].src, l.m[i].dst);
            goto done;
        }
        if (mapped_shape(s, l.m[i].how, d)) {
            da_errf(err, errlen, "OpenAI CLIP tensor '%s' has an unexpected shape for %s", l.m[i].src, l.m[i].dst);
            goto done;
        }
        d->begin = total;
        total += (size_t)d->numel * st_dtype_size(d->dtype);
        d->end = total;
    }
    dst->owned = malloc(total ? total : 1);
    if (!dst->owned) { da_errf(err, errlen, "out of memory (%zu bytes)", total); goto done; }
    for (int i = 0; i < l.n; i++) {
        st_tensor_info *d = &dst->tensors[i];
        d->name = strdup(l.m[i].dst);
        if (!d->name) { da_errf(err, errlen, "out of memory"); goto done; }
        dst->n_tensors = i + 1;
        copy_mapped(src, st_find(src, l.m[i].src), l.m[i].how, d, (unsigned char *)dst->owned + d->begin);
    }
    dst->data = dst->owned;
    dst->data_size = total;
    dst->meta = calloc((size_t)src->n_meta + 1, sizeof *dst->meta);
    if (!dst->meta) { da_errf(err, errlen, "out of memory"); goto done; }
    for (int i = 0; i <= src->n_meta; i++) {
        const char *k = i < src->n_meta ? src->meta[i].key : "layout", *v = i < src->n_meta ? src->meta[i].value : "OpenAI CLIP, renamed to Hugging Face keys";
        dst->meta[i].key = strdup(k);
        dst->meta[i].value = strdup(v);
        dst->n_meta = i + 1;
        if (!dst->meta[i].key || !dst->meta[i].value) { da_errf(err, errlen, "out of memory"); goto done; }
    }
    rc = 0;
done:
    free(l.m);
    if (rc) st_close(dst);
    return rc;
}
