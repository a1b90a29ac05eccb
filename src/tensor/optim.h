/* optim.h — training utilities over arrays of persistent parameter tensors: Adam and AdamW with
 * PyTorch's update rules, gradient clipping by global norm, zeroing, EMA copies and lr schedules. */
#ifndef DA_OPTIM_H
#define DA_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "tensor/tensor.h"

/* ---- gradients -------------------------------------------------------------------------- */

/* Sets every existing gradient buffer to zero (torch's zero_grad(set_to_none=False)). */
void da_zero_grads(da_tensor **params, int n);
/* Global L2 norm of all gradients (parameters without a gradient buffer are skipped); when it
 * exceeds max_norm the gradients are scaled by max_norm / (norm + 1e-6), as
 * torch.nn.utils.clip_grad_norm_. Returns the norm before clipping. A non-finite norm is
 * returned as is and leaves the gradients untouched (torch would scale them by NaN), so the
 * caller can skip the step. */
float da_clip_grad_norm(da_tensor **params, int n, float max_norm);

/* ---- Adam / AdamW ----------------------------------------------------------------------- */

typedef enum { DA_ADAM, DA_ADAMW } da_adam_kind;

typedef struct {
    da_adam_kind kind;
    double lr;                /* may be changed between steps (see da_lr_at) */
    double beta1, beta2, eps;
    /* DA_ADAM: L2 penalty, wd*p added to the gradient. DA_ADAMW: decoupled, p *= 1 - lr*wd. */
    double weight_decay;
} da_adam_config;

/* torch.optim defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0 for Adam and
 * 1e-2 for AdamW. */
da_adam_config da_adam_defaults(da_adam_kind kind);

typedef struct {
    da_adam_config cfg;
    da_tensor **params;       /* borrowed (the array is copied, the tensors are not) */
    int n;
    float **m, **v;           /* per parameter (numel): first and second moment estimates */
    int64_t *steps;           /* per parameter: updates applied so far (torch's state['step']) */
} da_adam;

/* Returns 0, or -1 with a message in err when a setting is out of range (as torch's
 * ValueError: lr < 0, eps < 0, betas outside [0,1), weight_decay < 0). Moments start at 0. */
int da_adam_init(da_adam *o, const da_adam_config *cfg, da_tensor **params, int n, char *err, size_t errlen);
void da_adam_free(da_adam *o);
/* One update with o->cfg.lr of every parameter that requires grad and has a gradient buffer. */
void da_adam_step(da_adam *o);

/* Checkpoint state as one float array: the n step counts (exact up to 2^24), then for each
 * parameter its m then v (numel each). Importing what was exported resumes bit-exactly. */
int64_t da_adam_state_size(const da_adam *o);
void da_adam_export(const da_adam *o, float *out);
/* Returns -1 with a message when `size` does not match these parameters or a step count is
 * not a non-negative integer. The optimiser is unchanged on error. */
int da_adam_import(da_adam *o, const float *in, int64_t size, char *err, size_t errlen);

/* ---- exponential moving average of parameters ------------------------------------------- */

typedef struct {
    da_tensor **params;       /* borrowed */
    da_tensor **shadow;       /* persistent copies (no gradient), same shapes and names */
    int n;
    float decay;
} da_ema;

/* Copies the current parameter values. Returns -1 with a message unless 0 <= decay <= 1. */
int da_ema_init(da_ema *e, da_tensor **params, int n, float decay, char *err, size_t errlen);
/* shadow = (1 - decay) * p + decay * shadow, for every parameter */
void da_ema_update(da_ema *e);
/* Copies the averaged values into the parameters (e.g. before sampling or saving). */
void da_ema_copy_to_params(const da_ema *e);
void da_ema_free(da_ema *e);

/* ---- learning-rate schedule ------------------------------------------------------------- */

typedef struct {
    double base_lr;
    int64_t warmup_steps;     /* 0 = none; else linear ramp base_lr*(step+1)/warmup_steps */
    int64_t decay_every;      /* 0 = never; else lr *= gamma every decay_every steps */
    double gamma;             /* e.g. 1.3 every epoch: decay_every = steps per epoch */
} da_lr_schedule;

/* The lr for the optimiser step with 0-based index `step` (the number of steps already taken):
 * base_lr * min(1, (step+1)/warmup_steps) * gamma^floor(step/decay_every). Both factors count
 * from step 0. */
double da_lr_at(const da_lr_schedule *s, int64_t step);

#endif
