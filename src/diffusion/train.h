/* train.h — training a diffusion UNet on an in-memory data set: ε-MSE (optionally P2-weighted;
 * learned-variance models add the bound term of vlb.h), Adam with warmup and gradient
 * clipping, an EMA copy, and checkpoints that resume bit-exactly. */
#ifndef DA_DIFFUSION_TRAIN_H
#define DA_DIFFUSION_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "data/dataset.h"
#include "diffusion/schedule.h"
#include "nn/unet.h"
#include "tensor/optim.h"

typedef struct {
    int batch;
    float lr;
    int warmup;            /* linear lr warmup over this many steps (0 = none) */
    float grad_clip;       /* max global gradient norm (0 = no clipping) */
    float ema;             /* EMA decay; the effective decay is min(ema, (1+step)/(10+step)) */
    float p2_gamma, p2_k;  /* P2 weighting 1/(k+SNR)^gamma; gamma 0 = plain ε-MSE */
    uint64_t seed;
    bool flip;             /* random horizontal flips */
} da_diff_train_opts;

/* batch 64, lr 2e-4, warmup 500, grad_clip 1, ema 0.999, p2 gamma 0 / k 1, seed 0, no flip */
void da_diff_train_opts_default(da_diff_train_opts *o);

typedef struct {
    da_diff_train_opts o;
    da_unet model;          /* trained weights (requires grad) */
    da_unet ema;            /* the averaged copy that is saved as the model */
    da_schedule sched;
    da_adam adam;
    da_tensor **plist;      /* (n) model parameters, for the optimiser */
    int n;
    int64_t step;           /* optimiser steps taken */
    const da_dataset *data; /* borrowed */
    uint64_t data_hash;
    int64_t *perm;          /* (data->n) the shuffled order of the current epoch */
    int64_t perm_epoch;
    da_ctx ctx;
    float *x0, *noise;      /* (batch,C,H,W) */
    int *t;                 /* (batch) */
    float vb;               /* the last step's L_t term in bits/dim (learn_sigma models), else NAN */
} da_diff_trainer;

/* A fresh model for cfg (in_channels and resolution must match the data) initialised from
 * o->seed. Returns -1 with err set on a bad setting or mismatched data. */
int da_diff_trainer_init(da_diff_trainer *tr, const da_unet_config *cfg, const da_diff_train_opts *o,
                         const da_dataset *data, char *err, size_t errlen);
/* Restores model, EMA, optimiser, step and settings from a checkpoint; the data must be the
 * one the checkpoint was trained on (checked by a hash). */
int da_diff_trainer_resume(da_diff_trainer *tr, const char *ckpt_path, const da_dataset *data, char *err, size_t errlen);
/* True for a learned-variance model (ADM with learn_sigma): its steps minimise the hybrid loss
 * ε-MSE + (T/1000)·L_t of diffusion/vlb.h, the reference's default for such models; every other
 * model minimises the (P2-weighted) ε-MSE. */
bool da_diff_trainer_learns_sigma(const da_diff_trainer *tr);
/* One optimiser step. The batch, noise, timesteps and dropout masks depend only on (seed, step),
 * so a resumed run repeats an uninterrupted one bit for bit (same thread count). Returns -1 with
 * err set when the loss or the gradient norm is not finite (nothing is updated then). */
int da_diff_trainer_step(da_diff_trainer *tr, float *loss, float *grad_norm, char *err, size_t errlen);
/* Checkpoint: "model.*", "ema.*", "optim.state", settings and step in the metadata. Atomic. */
int da_diff_trainer_save_checkpoint(const da_diff_trainer *tr, const char *path, char *err, size_t errlen);
/* The EMA weights as a model file (config in the metadata, plus training provenance). */
int da_diff_trainer_save_model(const da_diff_trainer *tr, const char *path, char *err, size_t errlen);
void da_diff_trainer_free(da_diff_trainer *tr);

/* FNV-1a over the images' shape and pixels (identifies a data set in checkpoints). */
uint64_t da_dataset_hash(const da_dataset *d);

#endif
