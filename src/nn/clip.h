/* clip.h — the OpenAI CLIP ViT (vision and text towers) as functions over named parameters with
 * the Hugging Face key names; config from file metadata, config.json or tensor shapes; the
 * differentiable image path (resize, crop, normalise) used inside losses. */
#ifndef DA_CLIP_H
#define DA_CLIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nn/params.h"
#include "tensor/ops.h"
#include "text/bpe.h"

/* The model config. Its JSON form is Hugging Face's config.json layout (also stored in our
 * files as the metadata key "clip_config"):
 *   {"projection_dim": 512,
 *    "vision_config": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
 *                      "intermediate_size": 3072, "patch_size": 32, "image_size": 224,
 *                      "num_channels": 3, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5},
 *    "text_config": {"hidden_size": 512, "num_hidden_layers": 12, "num_attention_heads": 8,
 *                    "intermediate_size": 2048, "vocab_size": 49408, "max_position_embeddings": 77,
 *                    "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5},
 *    "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711]}
 * Absent keys keep the values inferred from the tensor shapes (heads: width / 64, at least 1). */
typedef struct {
    int image_size, patch_size, channels;
    int vision_width, vision_layers, vision_heads, vision_mlp;
    int vocab_size, context_length;
    int text_width, text_layers, text_heads, text_mlp;
    int embed_dim;                    /* projection_dim */
    float vision_eps, text_eps;       /* LayerNorm eps (1e-5) */
    bool vision_gelu, text_gelu;      /* hidden_act "gelu" (erf) instead of "quick_gelu" */
    float mean[3], std[3];            /* image normalisation per channel */
} da_clip_config;

/* ViT-B/32 (openai/clip-vit-base-patch32). */
void da_clip_config_default(da_clip_config *c);
int da_clip_config_validate(const da_clip_config *c, char *err, size_t errlen);
/* Applies the JSON form (see above) over c; `what` names the source in messages. */
int da_clip_config_from_json(const char *json, const char *what, da_clip_config *c, char *err, size_t errlen);
char *da_clip_config_to_json(const da_clip_config *c);     /* malloc'ed */
/* "ViT 224/32 width 768 x12 (12 heads), text 512 x12 (8 heads), embed 512" into buf. */
const char *da_clip_config_str(const da_clip_config *c, char *buf, size_t len);

/* ---- the model ---------------------------------------------------------------------------- */
typedef struct { da_tensor *w, *b; } da_clip_lin;             /* linear or layer norm */

typedef struct {
    da_clip_lin q, k, v, out, ln1, fc1, fc2, ln2;
} da_clip_block;

typedef struct {
    da_clip_config cfg;
    /* text tower */
    da_tensor *token_embedding;       /* (V,Wt) */
    da_tensor *text_pos;              /* (context,Wt) */
    da_clip_block *text_blocks;       /* (text_layers) */
    da_clip_lin final_ln;
    da_tensor *text_projection;       /* (E,Wt) */
    /* vision tower */
    da_tensor *class_embedding;       /* (Wv) */
    da_tensor *patch_embedding;       /* (Wv,C,P,P), no bias */
    da_tensor *vision_pos;            /* (1+(S/P)^2,Wv) */
    da_clip_lin pre_ln, post_ln;
    da_clip_block *vision_blocks;     /* (vision_layers) */
    da_tensor *visual_projection;     /* (E,Wv) */
    da_tensor *logit_scale;           /* () */
    da_params params;                 /* every tensor under its HF key, in HF state_dict order */
    /* where a vocabulary may come from when none is given (see da_clip_vocab) */
    char *bpe_merges;                 /* metadata "bpe_merges" (OpenAI merges text), or NULL */
    char *hf_dir;                     /* a HF folder holding vocab.json + merges.txt, or NULL */
} da_clip;

/* Builds the parameters for cfg with random values drawn from `seed`, as CLIP initialises:
 * token embedding and patch conv N(0,0.02), text positions N(0,0.01), vision positions
 * N(0,0.02), class embedding N(0,W^-0.5); q/k/v and fc2 N(0, W^-0.5 (2 layers)^-0.5), out_proj
 * N(0,W^-0.5), fc1 N(0,(2W)^-0.5); projections N(0,W^-0.5); biases 0; norms 1 and 0;
 * logit_scale ln(1/0.07). */
int da_clip_init(da_clip *m, const da_clip_config *cfg, uint64_t seed, char *err, size_t errlen);
void da_clip_free(da_clip *m);
/* Freezes (no gradient buffer at all; the ops then allocate none) or unfreezes every weight. */
void da_clip_requires_grad(da_clip *m, bool on);

/* `path`: a .safetensors file or PyTorch checkpoint (Hugging Face keys, or OpenAI's TorchScript
 * ViT archives such as ViT-B-32.pt, renamed by clip_openai.h), or a Hugging Face folder with
 * model.safetensors or pytorch_model.bin (+ config.json, + vocab.json/merges.txt as the default
 * vocabulary). Config: metadata "clip_config", else
 * config.json, over what the shapes say. Every tensor is checked by key and shape (missing or
 * misshapen ones are named in err); F16/BF16 are converted; integer buffers are ignored. */
int da_clip_load(da_clip *m, const char *path, char *err, size_t errlen);
/* Writes the parameters (F32) with "clip_config" (and "bpe_merges" when the model has it),
 * "format" = "diffadapt-clip" and extra key/value pairs (NULL-terminated list, or NULL). */
int da_clip_save(const da_clip *m, const char *path, const char *const *extra, char *err, size_t errlen);
/* The tokenizer for this model: vocab_path when given (see da_bpe_load), else the model's own
 * (metadata "bpe_merges", or vocab.json + merges.txt of its HF folder). NULL + err otherwise. */
da_bpe *da_clip_vocab(const da_clip *m, const char *vocab_path, char *err, size_t errlen);

/* ---- forward ------------------------------------------------------------------------------ */
/* Images (B,C,H,W) in [-1,1] (C = 1 is repeated to the model's channels) -> (B,channels,S,S)
 * model input: to [0,1], bicubic resize of the short side to S (a = -0.75, no antialias),
 * centre crop, (x - mean) / std. Differentiable. */
da_tensor *da_clip_preprocess(da_ctx *ctx, const da_clip *m, da_tensor *x);
/* Model input (B,channels,S,S) -> projected image embeddings (B,E), not normalised. */
da_tensor *da_clip_encode_image(da_ctx *ctx, const da_clip *m, da_tensor *pixels);
/* Token ids (B,L), L <= context, each row start ... end and padded with anything after the end
 * token (the causal mask keeps padding out) -> projected text embeddings (B,E), taken at the
 * position of each row's largest id (the end token). */
da_tensor *da_clip_encode_text(da_ctx *ctx, const da_clip *m, const int64_t *ids, int64_t B, int64_t L);
/* Tokenizes n texts (over-long: error, or cut when truncate) and encodes them: (n,E). NULL with
 * err set on a tokenizer error or an id the model's vocabulary does not have. */
da_tensor *da_clip_encode_texts(da_ctx *ctx, const da_clip *m, da_bpe *bpe, const char *const *texts, int n,
                                bool truncate, char *err, size_t errlen);
/* da_clip_preprocess + da_clip_encode_image. */
da_tensor *da_clip_image_features(da_ctx *ctx, const da_clip *m, da_tensor *x);

#endif
