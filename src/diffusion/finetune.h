/* finetune.h — DiffusionCLIP fine-tuning (design.md §2): a diffusion model learns to turn the DDIM
 * latents of source images into images moved along a CLIP text direction, in "chain" or "per-step" mode. */
#ifndef DA_FINETUNE_H
#define DA_FINETUNE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diffusion/schedule.h"
#include "nn/clip.h"
#include "nn/unet.h"
#include "tensor/optim.h"

typedef enum {
    DA_FT_CHAIN,      /* gradient through every generation step, one optimiser step per batch */
    DA_FT_PER_STEP,   /* a loss on each step's x0_t, one optimiser step per generation step, then detach */
} da_ft_mode;

/* What the identity term compares between x̂0 and x0. */
typedef enum {
    DA_FT_ID_PIXELS,  /* mean |x̂0 - x0| (DiffusionCLIP) */
    /* mean | |∂x̂0| - |∂x0| | over horizontal and vertical neighbour differences: the outlines
     * must stay where they are, but the paper colour and the polarity may change freely (a
     * negative has the same edge magnitudes), while an added texture costs its edges */
    DA_FT_ID_EDGES,
    /* the same on the 4×4 block maxima of the edge magnitudes ("an edge this strong somewhere
     * in the block"): an outline may turn into a stroke (a step edge into a thin line, two edges
     * side by side) or move a pixel without cost, as in a drawing */
    DA_FT_ID_COARSE_EDGES,
} da_ft_identity;

/* Every setting of the DiffusionCLIP method, fine-tuning and translation alike (design.md §2), in
 * one struct with one defaults function (da_ft_config_default: the CelebA-HQ recipe). The
 * commands and the experiment bind their options to it (cli/method_options.h). */
typedef struct {
    /* the direction */
    const char *src_text, *tgt_text;   /* "photo", "sketch" */
    float tgt_weight;       /* with target images: weight of the image direction against the text one (1) */
    /* the DDIM path */
    int t0;                 /* return step (500) */
    int inv_steps;          /* length of the inversion sequence (40): inv_steps-1 model calls */
    int train_steps;        /* generation steps while training (6) */
    int gen_steps;          /* generation steps when translating (6) */
    float model_ratio;      /* translation: ε = r·ε_ft + (1−r)·ε_orig at every step (1) */
    int ddim_batch;         /* images per model call when inverting and translating (8) */
    /* the run */
    int images;             /* fine-tuning images: the first N of the data (50) */
    int epochs;             /* 5 */
    int batch;              /* images per optimiser step (1) */
    float lr, lr_gamma;     /* Adam's learning rate in the first epoch (8e-6), its factor per epoch (1.3) */
    int seed;               /* dropout masks: batch b0 of epoch e draws from da_rng_at(seed, e·images + b0) */
    /* the loss */
    float clip_weight;      /* 3 */
    float l1_weight;        /* 1 */
    da_ft_identity identity;   /* what the l1 term compares (DA_FT_ID_PIXELS) */
    float id_weight;        /* 0: identity term off */
    da_ft_mode mode;
    /* chain only: keep just each step's input and rebuild that step's tape during backward
     * (one extra forward per step, memory of one step instead of all of them); same gradient */
    bool recompute;
    /* the directional loss is averaged over the image itself and `views` random views of x̂0 and
     * x0 alike (crop of side >= view_min_scale, low-pass, mirror: nn/clip_views.h); 0 = the image
     * only, as DiffusionCLIP */
    int views;
    float view_min_scale;   /* 0.6 */
} da_ft_config;

/* The names of the identity terms and modes, in enum order, NULL-terminated (for options and reports). */
extern const char *const DA_FT_IDENTITY_NAMES[];
extern const char *const DA_FT_MODE_NAMES[];
/* "pixels", "edges" or "coarse-edges" into *out; returns -1 for any other name. */
int da_ft_identity_parse(const char *name, da_ft_identity *out);

/* The defaults of the DiffusionCLIP CelebA-HQ recipe (above), chain mode, no recompute. */
void da_ft_config_default(da_ft_config *c);
/* Returns -1 with a message naming the setting when a loss or step value is out of range. */
int da_ft_config_validate(const da_ft_config *c, const da_unet *model, char *err, size_t errlen);
/* The same for the settings of a whole run (images, epochs, batch, lr, seed, texts, tgt_weight, ddim_batch). */
int da_ft_run_config_validate(const da_ft_config *c, char *err, size_t errlen);

typedef struct {
    da_ft_config cfg;
    da_unet *model;         /* fine-tuned in place (borrowed) */
    da_clip *clip;          /* frozen by da_ft_init (borrowed) */
    da_clip *id_model;      /* frozen identity network (a CLIP image tower), or NULL */
    float *text_dir;        /* (E) ΔT, normalised */
    int64_t embed_dim, id_dim;
    da_schedule sched;
    int *ts, *ts_next;      /* (train_steps) the generation pairs, t0 first, t_next = -1 last */
    da_tensor **params;     /* (n_params) the model's parameters, for the optimiser */
    int n_params;
} da_finetuner;

/* Validates cfg, freezes clip and id_model (no gradient buffers at all) and copies text_dir
 * (clip's embed dim floats). id_model may be NULL (then cfg.id_weight must be 0). */
int da_ft_init(da_finetuner *f, const da_ft_config *cfg, da_unet *model, da_clip *clip, const float *text_dir,
               da_clip *id_model, char *err, size_t errlen);
void da_ft_free(da_finetuner *f);

/* The loss terms of one batch (batch means). */
typedef struct {
    double loss;            /* clip_weight·clip + l1_weight·l1 + id_weight·id */
    double clip;            /* L_clip = -log((2 - L_dir)/2) */
    double dir;             /* L_dir = mean(1 - cos(ΔI, ΔT)) */
    double l1;              /* the identity term: mean |x̂0 - x0|, or of the edge magnitudes (DA_FT_ID_EDGES) */
    double id;              /* mean (1 - cos(E_id(x̂0), E_id(x0))), 0 without an identity model */
} da_ft_terms;

/* Features of the source images x0 (B,C,H,W), without a tape: src_clip (B,E) and, with an
 * identity model, src_id (B,id_dim) (may be NULL otherwise). */
void da_ft_source_features(const da_finetuner *f, const float *x0, int64_t B, float *src_clip, float *src_id);

/* The loss of generated images x (B,C,H,W) (on ctx's tape when x requires grad) against the
 * sources x0 (B,C,H,W) and their features (tensors on ctx, not differentiated). Returns a 0-d
 * tensor; terms (may be NULL) receives every term. */
da_tensor *da_ft_loss(da_ctx *ctx, const da_finetuner *f, da_tensor *x0, da_tensor *src_clip, da_tensor *src_id,
                      da_tensor *x, da_ft_terms *terms);

/* Chain mode over one batch: generates from latent (B,C,H,W) through all train_steps steps and
 * computes the loss of the result; with `backward` the gradient of that loss is ACCUMULATED into
 * the model's gradients (zero them first). Dropout masks of step k come from (seed, k), so a
 * recomputation draws the same ones. x_out (may be NULL) receives x̂0 (B,C,H,W). ctx is reset
 * on entry; its arena peak tells the memory used. */
void da_ft_chain(da_ctx *ctx, const da_finetuner *f, const float *x0, const float *src_clip, const float *src_id,
                 const float *latent, int64_t B, uint64_t seed, bool backward, float *x_out, da_ft_terms *terms);

/* Per-step mode, generation step k (0-based, k < train_steps) of one batch: x (B,C,H,W) holds
 * the current sample and is replaced by the next one (detached). The loss is taken on this
 * step's x0_t (copied to x0_out, may be NULL) and its gradient ACCUMULATED into the model's
 * gradients. Dropout masks come from (seed, k). ctx is reset on entry. */
void da_ft_per_step(da_ctx *ctx, const da_finetuner *f, const float *x0, const float *src_clip, const float *src_id,
                    float *x, int k, int64_t B, uint64_t seed, float *x0_out, da_ft_terms *terms);

/* One training batch in the configured mode: zeroes the gradients, computes them, checks that
 * the loss and the gradients are finite, and takes the optimiser step(s) (chain: one; per-step:
 * train_steps). x_out (may be NULL) receives the generated x̂0; terms the loss terms of the
 * last step (per-step: of the final x0_t, the image that comes out). Returns -1 with a message
 * when something became NaN/inf (the model is then left as before that optimiser step).
 * Checks that no gradient ever reached the CLIP weights (da_check). */
int da_ft_train_batch(da_finetuner *f, da_adam *opt, da_ctx *ctx, const float *x0, const float *latent, int64_t B,
                      uint64_t seed, float *x_out, da_ft_terms *terms, char *err, size_t errlen);

/* Generates x̂0 from latents x (B,C,H,W) in place with the current model (train_steps steps, no
 * tape, dropout off). */
void da_ft_generate(const da_finetuner *f, float *x, int64_t B);

/* Aborts (programming error) if any weight of the CLIP or identity model holds a gradient buffer. */
void da_ft_check_frozen(const da_finetuner *f);

/* Bytes held outside the step arena by training: model parameters + their gradients + Adam's
 * two moments (4 copies), and the frozen networks' weights. */
int64_t da_ft_model_bytes(const da_finetuner *f);
int64_t da_ft_frozen_bytes(const da_finetuner *f);

#endif
