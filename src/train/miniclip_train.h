/* miniclip_train.h — the built-in mini-CLIP: the CLIP architecture of clip.h with a small config,
 * trained contrastively on captioned style renderings of unlabelled images (miniclip_train.c);
 * its options (miniclip_opts.c) and zero-shot evaluation (miniclip_eval.c). Its captions and
 * vocabulary: miniclip_captions.h. */
#ifndef DA_MINICLIP_TRAIN_H
#define DA_MINICLIP_TRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"
#include "nn/clip.h"
#include "tensor/optim.h"
#include "train/miniclip_captions.h"
#include "text/bpe.h"

/* ---- the model and training ------------------------------------------------------------- */
typedef struct {
    /* model */
    int image_size, patch_size, channels;     /* 32, 4, 1 */
    int vision_width, vision_layers;          /* 128, 4 */
    int text_width, text_layers;              /* 128, 4 */
    int heads;                                /* per tower: width / heads = head size (4) */
    int embed_dim;                            /* 128 */
    int context;                              /* 32 tokens */
    int merges;                               /* max BPE merges learned from captions (1000) */
    /* training */
    int64_t steps;                            /* optimiser steps (1000) */
    int batch;                                /* image-caption pairs per step (64) */
    float lr;                                 /* AdamW peak lr (1e-3), betas (0.9, 0.98), eps 1e-6 */
    float weight_decay;                       /* 0.1, on matrices only (not gains, biases, logit_scale) */
    int64_t warmup;                           /* linear warm-up steps, then cosine to 0 (50) */
    float grad_clip;                          /* max global gradient norm, 0 = off (1) */
    uint64_t seed;                            /* initialisation, images, styles, captions, noise */
} da_miniclip_opts;

void da_miniclip_defaults(da_miniclip_opts *o);
/* The CLIP config for these options and a vocabulary of vocab_size ids. */
void da_miniclip_config(const da_miniclip_opts *o, int vocab_size, da_clip_config *c);
/* Returns -1 with err set when the options cannot train (ranges, widths vs heads, the config). */
int da_miniclip_opts_check(const da_miniclip_opts *o, char *err, size_t errlen);
/* The options as JSON (malloc'ed; the seed as a string: 64-bit seeds exceed a double), as kept
 * in checkpoints and model files under "miniclip_opts"; and back (-1 with err set when a field
 * is missing). */
char *da_miniclip_opts_json(const da_miniclip_opts *o);
int da_miniclip_opts_from_json(const char *json, da_miniclip_opts *o, char *err, size_t errlen);

typedef struct {
    da_miniclip_opts o;
    da_clip model;
    da_bpe *bpe;
    /* every training caption, tokenized once: (n_captions, context) ids, lengths, style index */
    int n_captions;
    int64_t *cap_ids;
    int *cap_len, *cap_style;                 /* cap_style: index into da_style_get */
    int *style_first, *style_count;           /* (da_style_count) this style's caption range */
    int train_styles[64], n_train_styles;
    /* optimiser: matrices with weight decay, everything else without */
    da_adam adam_decay, adam_plain;
    da_tensor **p_decay, **p_plain, **p_all;
    int n_decay, n_plain, n_all;
    int64_t step;                             /* optimiser steps taken */
    const da_dataset *data;                   /* borrowed: the source images (no labels used) */
    uint64_t data_hash;
    da_ctx ctx;
    /* the last step's batch, kept for tests and reports */
    float *images;                            /* (batch,C,H,W) rendered images */
    int *batch_style;                         /* (batch) style index of each pair */
    int *batch_caption;                       /* (batch) caption index of each pair */
    int64_t *batch_source;                    /* (batch) index of each pair's source image in data */
} da_miniclip_trainer;

/* A fresh model (seeded) with a vocabulary learned from the captions. The data's images are
 * the sources; its labels, if any, are never read. Returns -1 with err set on bad options. */
int da_miniclip_trainer_init(da_miniclip_trainer *tr, const da_miniclip_opts *o, const da_dataset *data,
                             char *err, size_t errlen);
/* Restores model, vocabulary, optimisers, step and options from a checkpoint written by
 * da_miniclip_trainer_save_checkpoint; the data must be the same (checked by a hash). When
 * steps > 0 it replaces the total step count (the cosine schedule follows the new total). */
int da_miniclip_trainer_resume(da_miniclip_trainer *tr, const char *path, const da_dataset *data, int64_t steps,
                               char *err, size_t errlen);
/* One step: a batch of random source images, each rendered in a random training style and
 * paired with a random caption of that style; multi-positive symmetric InfoNCE (pairs of the
 * same style are positives of each other: the target of a row is uniform over them); AdamW;
 * logit_scale clamped to [0, ln 100]. Images, styles and captions depend only on (seed, step),
 * so a resumed run repeats an uninterrupted one bit for bit (same thread count). *acc gets the
 * share of images whose best caption in the batch has their style. Returns -1 with err set when
 * the loss or gradient is not finite (nothing is updated then). */
int da_miniclip_trainer_step(da_miniclip_trainer *tr, float *loss, float *acc, char *err, size_t errlen);
/* The loss (and *acc) of the batch of step index `step` with the current weights, without
 * recording or updating anything (fills the batch buffers like a step). */
void da_miniclip_trainer_batch_loss(da_miniclip_trainer *tr, int64_t step, float *loss, float *acc);
/* The learning rate of step index s (warm-up, then cosine to 0 at o.steps). */
double da_miniclip_lr(const da_miniclip_opts *o, int64_t s);
/* Checkpoint: the model parameters under their CLIP keys, "optim.decay" and "optim.plain"
 * (AdamW states), the options, step, data hash and vocabulary in the metadata. Atomic. */
int da_miniclip_trainer_save_checkpoint(const da_miniclip_trainer *tr, const char *path, char *err, size_t errlen);
/* The model file (da_clip_save) with provenance and, when eval_json is not NULL, the
 * evaluation under the metadata key "miniclip_eval". */
int da_miniclip_trainer_save_model(const da_miniclip_trainer *tr, const char *path, const char *eval_json,
                                   char *err, size_t errlen);
void da_miniclip_trainer_free(da_miniclip_trainer *tr);

/* FNV-1a over the images' shape and pixels. */
uint64_t da_miniclip_data_hash(const da_dataset *d);

/* ---- zero-shot evaluation --------------------------------------------------------------- */
typedef struct {
    int n_images;                             /* test images per style */
    int n_styles;                             /* every style of the bank */
    int n_train;                              /* the candidate (training) styles */
    int train_style[DA_MINICLIP_MAX_STYLES];  /* their indices */
    /* for every style i of the bank: accuracy (percent) of picking style i among the training
     * styles (held-out styles: -1), and the training style most often predicted */
    double style_acc[DA_MINICLIP_MAX_STYLES];
    int most_predicted[DA_MINICLIP_MAX_STYLES];
    double most_predicted_pct[DA_MINICLIP_MAX_STYLES];
    double mean_style_acc;                    /* over the training styles */
    /* "sketch" vs "photo" (eval templates): share of images called "sketch" for every style */
    double sketch_pct[DA_MINICLIP_MAX_STYLES];
    double pencil_as_sketch, photo_as_photo, sketch_photo_acc;   /* the last: their mean */
    /* the same with the directional loss's templates (da_clip_templates) */
    double pencil_as_sketch_dl, photo_as_photo_dl, sketch_photo_acc_dl;
    /* what the directional loss sees: for every style, the mean over images of
     * cos(norm(E_I(style(x))) - norm(E_I(x)), ΔT) with ΔT the text direction "photo" -> "sketch"
     * (da_clip_text_direction, built-in templates); 1 - L_dir of a perfect translation */
    double dir_cos[DA_MINICLIP_MAX_STYLES];
} da_miniclip_eval;

/* Renders up to n_images images of test (the first ones) in every style of the bank and
 * classifies them zero-shot: a style's text embedding is the normalised mean of the normalised
 * embeddings of every eval template with every word of the style. Returns -1 with err set on
 * a tokenizer problem. */
int da_miniclip_evaluate(const da_clip *m, da_bpe *bpe, const da_dataset *test, int n_images, uint64_t seed,
                         da_miniclip_eval *ev, char *err, size_t errlen);
/* A table for humans (malloc'ed). */
char *da_miniclip_eval_table(const da_miniclip_eval *ev);
/* The same as JSON (malloc'ed). */
char *da_miniclip_eval_json(const da_miniclip_eval *ev);

#endif
