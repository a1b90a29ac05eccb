/* unet.h — the diffusion model: the DDPM UNet of Ho et al. in the SDEdit/DiffusionCLIP
 * configuration space ("simple"), or the improved-DDPM / ADM UNet (nn/adm_unet.h, model type
 * "adm"), with parameters named by each family's state_dict keys, its config (YAML/JSON/file
 * metadata) and I/O. Everything that takes a da_unet (training, inversion, generation,
 * fine-tuning, translation) works with either family. */
#ifndef DA_UNET_H
#define DA_UNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nn/adm_unet.h"
#include "nn/params.h"
#include "tensor/ops.h"

#define DA_UNET_MAX_LEVELS 8
#define DA_UNET_MAX_BLOCKS 8      /* num_res_blocks; up levels hold one more */
#define DA_UNET_MAX_CH 4096       /* base channels; keeps every size product far from overflow */

/* The model config. JSON form (file metadata key "config", or a --config .json file), the same
 * layout as the reference YAML configs (configs/celeba.yml):
 *   {"model": {"type": "simple", "in_channels": 1, "out_ch": 1, "ch": 32, "ch_mult": [1,2,2],
 *              "num_res_blocks": 2, "attn_resolutions": [16], "dropout": 0.1,
 *              "var_type": "fixedlarge", "ema_rate": 0.999, "ema": true, "resamp_with_conv": true},
 *    "data": {"image_size": 32, "channels": 1},
 *    "diffusion": {"beta_schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02,
 *                  "num_diffusion_timesteps": 1000}}
 * Unknown keys are ignored (the reference files carry many); "diffusion" is optional.
 * The ADM family: "model": {"type": "adm", "in_channels": 3, "num_channels": 256,
 *   "num_res_blocks": 2, "channel_mult": "1,1,2,2,4,4" (or a list; "" = the reference default
 *   for the image size), "attention_resolutions": "32,16,8" (pixels, or a list), "num_heads": 4,
 *   "num_head_channels": 64, "num_heads_upsample": -1, "use_scale_shift_norm": true,
 *   "resblock_updown": true, "learn_sigma": true, "dropout": 0.0, "conv_resample": true,
 *   "use_new_attention_order": false} — guided-diffusion's argument names. */
typedef struct {
    int in_channels, out_ch, ch, resolution;
    int ch_mult[DA_UNET_MAX_LEVELS];
    int n_levels;                 /* len(ch_mult) */
    int num_res_blocks;
    int attn_resolutions[DA_UNET_MAX_LEVELS];
    int n_attn;
    float dropout;
    bool resamp_with_conv;
    char var_type[32];            /* kept for the file; the UNet itself does not use it */
    float ema_rate;
    /* noise schedule (linear only) */
    double beta_start, beta_end;
    int num_timesteps;
    /* the family: false = the DDPM UNet above; true = the ADM UNet configured by `adm`, and then
     * in_channels, out_ch (the ε channels, = in_channels), resolution and dropout mirror it */
    bool is_adm;
    da_adm_config adm;
} da_unet_config;

/* Defaults: ch 64, ch_mult 1,2,2, 2 res blocks, attention at 16, dropout 0.1, resamp_with_conv,
 * 32x32x1, linear betas 1e-4..0.02 over 1000 steps. */
void da_unet_config_default(da_unet_config *c);
/* Checks a config for values the architecture cannot take (e.g. channels not divisible by the
 * 32 GroupNorm groups, resolution not divisible by 2^(levels-1)). */
int da_unet_config_validate(const da_unet_config *c, char *err, size_t errlen);
/* Reads a YAML (.yml/.yaml) or JSON file into c (fields absent from the file keep their value). */
int da_unet_config_load(const char *path, da_unet_config *c, char *err, size_t errlen);
/* Parses the JSON form (see above) into c; `what` names the source for messages. */
int da_unet_config_from_json(const char *json, const char *what, da_unet_config *c, char *err, size_t errlen);
/* The JSON form; malloc'ed string. */
char *da_unet_config_to_json(const da_unet_config *c);
/* "ch 64, ch_mult 1,2,2, 2 res blocks, attention at 16, 32x32x1" into buf. */
const char *da_unet_config_str(const da_unet_config *c, char *buf, size_t len);

/* ---- the model ---------------------------------------------------------------------------- */
typedef struct { da_tensor *w, *b; } da_unet_layer;   /* conv, linear or group norm */

typedef struct {
    int cin, cout;
    da_unet_layer norm1, conv1, temb_proj, norm2, conv2, nin_shortcut;  /* nin only if cin != cout */
} da_unet_resblock;

typedef struct {
    int c;
    da_unet_layer norm, q, k, v, proj_out;
} da_unet_attn;

typedef struct {
    da_unet_resblock block[DA_UNET_MAX_BLOCKS + 1];
    da_unet_attn attn[DA_UNET_MAX_BLOCKS + 1];
    int n_attn;                   /* 0 or the number of blocks */
    da_unet_layer resample;       /* down: downsample.conv, up: upsample.conv (w NULL without conv) */
    bool has_resample;
} da_unet_level;

typedef struct {
    da_unet_config cfg;
    da_unet_layer temb0, temb1, conv_in, norm_out, conv_out;
    da_unet_level down[DA_UNET_MAX_LEVELS], up[DA_UNET_MAX_LEVELS];
    da_unet_resblock mid_block_1, mid_block_2;
    da_unet_attn mid_attn_1;
    /* every parameter under its state_dict key, in the reference state_dict order */
    da_params params;
    da_adm_unet *adm;             /* the ADM family's layers (its parameters are in params), or NULL */
    /* Convolution precision of forward passes that record no gradient (DDIM inversion and
     * generation); FP32 unless set. Passes that keep a tape are always FP32. */
    da_precision infer_precision;
} da_unet;

/* Builds the parameters for cfg (validated first) with PyTorch's default initialisation drawn
 * from `seed` (conv/linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)); norms: 1 and 0). */
int da_unet_init(da_unet *m, const da_unet_config *cfg, uint64_t seed, char *err, size_t errlen);
void da_unet_free(da_unet *m);
int64_t da_unet_num_params(const da_unet *m);
/* The parameter count a config implies, computed without allocating (cfg must have passed the
 * bounds checks of da_unet_config_validate, which calls this itself). */
int64_t da_unet_config_num_params(const da_unet_config *cfg);
/* Sets requires_grad on every parameter (gradient buffers always exist; off = frozen). */
void da_unet_requires_grad(da_unet *m, bool on);
void da_unet_zero_grad(da_unet *m);
/* The parameter with this state_dict key, or NULL. */
da_tensor *da_unet_param(const da_unet *m, const char *name);

/* Loads a model file (safetensors, or a torch.save checkpoint: see io/torch_ckpt.h). The config
 * comes from config_path when given, else from the file's "config" metadata; every tensor must match the config by name and shape (a
 * "module." prefix is accepted), else a clear error names the first bad key and shapes.
 * F16/BF16/F64 tensors are converted. */
int da_unet_load(da_unet *m, const char *path, const char *config_path, char *err, size_t errlen);
/* Saves the parameters with the config as metadata ("config", plus "format" = "diffadapt-unet"
 * and any extra key/value pairs, extra may be NULL, n_extra pairs). Atomic. */
int da_unet_save(const da_unet *m, const char *path, const char *const *extra, int n_extra, char *err, size_t errlen);

/* ---- forward ----------------------------------------------------------------------------- */
/* ε prediction. x (B,in_channels,R,R), t (B) timesteps (float, as the reference passes them)
 * -> (B,out_ch,R,R) (an ADM model with learn_sigma: (B,2·out_ch,R,R), ε first). Dropout is active when ctx->training. Records the tape when ctx has grad
 * enabled and any parameter or x requires grad. */
da_tensor *da_unet_forward(da_ctx *ctx, const da_unet *m, da_tensor *x, const float *t);
/* The sinusoidal embedding (B,dim): [sin(t·f_i), cos(t·f_i)], f_i = exp(-ln(10000)·i/(half-1)),
 * zero-padded when dim is odd. */
da_tensor *da_timestep_embedding(da_ctx *ctx, const float *t, int64_t B, int dim);

/* Adapters for the DDIM code (diffusion/ddim.h): user = const da_unet *. */
da_tensor *da_unet_eps(da_ctx *ctx, da_tensor *x, int t, void *user);
da_tensor *da_unet_eps_batch(da_ctx *ctx, da_tensor *x, const int *t, void *user);

#endif
