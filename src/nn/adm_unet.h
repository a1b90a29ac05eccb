/* adm_unet.h — the improved-DDPM / ADM UNet (Nichol & Dhariwal; "models/improved_ddpm/unet.py" of
 * the reference code, guided-diffusion's UNetModel): the second diffusion model family, used by
 * DiffusionCLIP's AFHQ and ImageNet models and the P2-weighting models. Parameters live under
 * its state_dict keys (time_embed.*, input_blocks.*, middle_block.*, output_blocks.*, out.*), so
 * its checkpoints load without renaming; a learned-variance model (learn_sigma) predicts
 * 2·in_channels channels, of which the first in_channels are ε.
 *
 * Architecture (guided-diffusion, class-unconditional):
 *   emb = Linear(4mc) ∘ SiLU ∘ Linear(mc→4mc) of [cos(t·f), sin(t·f)], f_i = 10000^(-i/half)
 *   input_blocks: conv3x3(in → mult[0]·mc); per level: nrb × (ResBlock [+ Attention at ds in
 *   attention_ds]) and, but at the last level, a Downsample (conv 3x3 stride 2 pad 1, or avg
 *   pool) or a down-sampling ResBlock (resblock_updown); middle_block: Res, Attention, Res;
 *   output_blocks: per level from the deepest, nrb+1 × (ResBlock on [h, skip] [+ Attention]),
 *   the last of each level but the first with an Upsample (nearest ×2 [+ conv]) or up-ResBlock;
 *   out: GroupNorm, SiLU, conv3x3.
 *   ResBlock: in_layers (GroupNorm, SiLU, conv3x3), emb_layers (SiLU, Linear to cout or 2·cout),
 *   out_layers (GroupNorm, SiLU, Dropout, conv3x3); with use_scale_shift_norm
 *   h = norm(h)·(1 + scale) + shift, else h + emb before the norm; skip = identity or conv1x1.
 *   Attention: GroupNorm, qkv conv1x1 (3C), multi-head softmax(q·k/sqrt(d)) v ("legacy" head
 *   order [q k v] per head, or the new order q|k|v), proj_out conv1x1, residual.
 *   GroupNorm: 32 groups, eps 1e-5. */
#ifndef DA_ADM_UNET_H
#define DA_ADM_UNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nn/params.h"
#include "tensor/ops.h"

#define DA_ADM_MAX_LEVELS 8
#define DA_ADM_MAX_BLOCKS 4

typedef struct {
    int image_size, in_channels, model_channels, num_res_blocks;
    int channel_mult[DA_ADM_MAX_LEVELS];
    int n_levels;
    int attention_ds[DA_ADM_MAX_LEVELS];   /* downsample rates image_size / resolution with attention */
    int n_attn;
    float dropout;
    int num_heads, num_head_channels, num_heads_upsample;   /* -1: unset, as in the reference */
    bool use_scale_shift_norm, resblock_updown, learn_sigma, conv_resample, use_new_attention_order;
} da_adm_config;

typedef struct { da_tensor *w, *b; } da_adm_layer;

typedef enum { DA_ADM_RES, DA_ADM_ATTN, DA_ADM_DOWN, DA_ADM_UP } da_adm_kind;

/* One module of a TimestepEmbedSequential. */
typedef struct {
    da_adm_kind kind;
    int cin, cout;
    bool up, down;                /* RES with resblock_updown */
    da_adm_layer in_norm, in_conv, emb, out_norm, out_conv, skip;   /* RES (skip.w NULL: identity) */
    int heads;
    da_adm_layer norm, qkv, proj; /* ATTN */
    da_adm_layer conv;            /* DOWN / UP (w NULL: avg pool / plain nearest) */
} da_adm_module;

typedef struct {
    da_adm_module m[3];
    int n;
} da_adm_seq;

typedef struct {
    da_adm_config cfg;
    int out_channels;             /* in_channels, or twice that with learn_sigma */
    da_adm_layer temb0, temb1, out_norm, out_conv;
    da_adm_seq input[1 + DA_ADM_MAX_LEVELS * (DA_ADM_MAX_BLOCKS + 1)], middle, output[DA_ADM_MAX_LEVELS * (DA_ADM_MAX_BLOCKS + 1)];
    int n_input, n_output;
    da_params params;             /* every parameter under its state_dict key */
} da_adm_unet;

/* DiffusionCLIP's AFHQ/ImageNet 256 defaults: mc 256, mult 1,1,2,2,4,4, 2 res blocks, attention
 * at 32/16/8 px, 64-channel heads, scale-shift norm, resblock_updown, learn_sigma, conv
 * resampling, legacy head order, dropout 0. */
void da_adm_config_default(da_adm_config *c);
/* Bounds, attention resolutions that occur, and the memory the model would need against
 * da_memory_limit_bytes() (DIFFADAPT_MAX_GIB), all before anything is allocated. */
int da_adm_config_validate(const da_adm_config *c, char *err, size_t errlen);
/* The parameter count a config implies, computed without allocating (cfg must have passed the
 * bounds checks of da_adm_config_validate, which calls this itself). */
int64_t da_adm_config_num_params(const da_adm_config *cfg);
/* Builds the parameters (PyTorch default init from seed; norms 1/0). */
int da_adm_init(da_adm_unet *m, const da_adm_config *cfg, uint64_t seed, char *err, size_t errlen);
void da_adm_free(da_adm_unet *m);

/* x (B,in,R,R), t (B) -> (B,out_channels,R,R). Dropout is active when ctx->training. */
da_tensor *da_adm_forward(da_ctx *ctx, const da_adm_unet *m, da_tensor *x, const float *t);
/* The sinusoidal embedding of the ADM code: (B,dim) = [cos(t·f_i), sin(t·f_i)], f_i = 10000^(-i/half). */
da_tensor *da_adm_timestep_embedding(da_ctx *ctx, const float *t, int64_t B, int dim);
/* ε for the DDIM code (user = const da_adm_unet *): the first in_channels output channels. */
da_tensor *da_adm_eps(da_ctx *ctx, da_tensor *x, int t, void *user);

#endif
