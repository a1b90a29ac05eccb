/* finetune_run.h — a whole DiffusionCLIP fine-tuning run, written once for every caller (the
 * `finetune` command, the experiment, the library): the direction to move along, the latents of
 * the fine-tuning images, and the epochs with their learning-rate schedule and batch seeds.
 * What a caller keeps of a run (checkpoints, grids, logs, progress lines) it does in hooks.
 *
 * A run, in order:
 *   da_ft_direction   text direction (and, with target images, the image direction mixed in)
 *   da_ft_latents     DDIM inversion of the images with the frozen source model (cfg.ddim_batch a call)
 *   da_ft_init        (finetune.h) the fine-tuner over a copy of the model
 *   da_ft_optimizer_init, then da_ft_run from epoch 0 (or from a checkpoint's epoch). */
#ifndef DA_FINETUNE_RUN_H
#define DA_FINETUNE_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "diffusion/ddim_set.h"
#include "diffusion/finetune.h"
#include "text/bpe.h"
#include "nn/clip.h"
#include "tensor/optim.h"

/* The direction ΔT (E floats, normalised) from cfg's texts. With target images tgt (n_tgt,C,H,W)
 * (may be NULL) the image direction from the source images src (n_src,C,H,W) to them is mixed in
 * with cfg->tgt_weight; cos_text_image (may be NULL) receives the cosine of the two directions. */
int da_ft_direction(const da_clip *clip, da_bpe *bpe, const da_ft_config *cfg, const float *src, int64_t n_src,
                    const float *tgt, int64_t n_tgt, int64_t C, int64_t H, int64_t W, float *dir,
                    double *cos_text_image, char *err, size_t errlen);

/* The latents at cfg->t0 of n images (n,C,H,W) = shape into lat (n,C,H,W): DDIM inversion with
 * `model` in cfg->inv_steps steps, cfg->ddim_batch images per model call. */
int da_ft_latents(const da_unet *model, const da_ft_config *cfg, const float *images, const int64_t shape[4],
                  float *lat, da_set_progress_fn progress, void *user, char *err, size_t errlen);

/* Adam over the fine-tuner's parameters, cfg.lr, no weight decay (da_ft_run sets each epoch's lr). */
int da_ft_optimizer_init(const da_finetuner *f, da_adam *opt, char *err, size_t errlen);

/* The learning rate of epoch e (0-based): lr · lr_gamma^e. */
double da_ft_epoch_lr(const da_ft_config *cfg, int epoch);
/* The dropout seed of the batch starting at image b0 in epoch e of a run over n images. */
uint64_t da_ft_batch_seed(const da_ft_config *cfg, int epoch, int64_t n, int64_t b0);

/* What the hooks are told. Epochs are 1-based here. */
typedef struct {
    int epoch, epochs;
    int64_t first, n, images;   /* images first .. first+n-1 of `images` */
    da_ft_terms terms;
    double lr, seconds;
} da_ft_batch_report;
typedef struct {
    int epoch, epochs;
    da_ft_terms mean;           /* over the epoch's images */
    double lr, seconds;
    int64_t arena_peak;         /* bytes of the step arena at its largest so far */
} da_ft_epoch_report;
typedef struct {
    void (*on_batch)(void *user, const da_ft_batch_report *r);                       /* optional */
    int (*on_epoch)(void *user, const da_ft_epoch_report *r, char *err, size_t errlen);   /* optional; non-zero stops */
    void *user;
} da_ft_hooks;

/* Epoch `epoch` (0-based) of a run over n images x0 (n,C,H,W) with their latents lat (n,C,H,W),
 * f->cfg.batch at a time in order, on the step arena ctx (kept by the caller across epochs):
 * sets the epoch's learning rate, calls hooks->on_batch (hooks may be NULL; on_epoch is not
 * called) and fills *report. Returns -1 with err naming the epoch and image when a step fails
 * (the model is then left as before that optimiser step). */
int da_ft_run_epoch(da_finetuner *f, da_adam *opt, da_ctx *ctx, const float *x0, const float *lat, int64_t n, int epoch,
                    const da_ft_hooks *hooks, da_ft_epoch_report *report, char *err, size_t errlen);

/* Epochs start_epoch .. f->cfg.epochs-1 over n images x0 (n,C,H,W) with their latents lat
 * (n,C,H,W), f->cfg.batch at a time in order. Returns -1 with err naming the epoch and image when
 * a step fails (the model is then left as before that optimiser step) or a hook stops the run. */
int da_ft_run(da_finetuner *f, da_adam *opt, const float *x0, const float *lat, int64_t n, int start_epoch,
              const da_ft_hooks *hooks, char *err, size_t errlen);

#endif
