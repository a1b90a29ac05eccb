/* diffusion_cli.h — pieces shared by the diffusion sub-commands (train-diffusion, sample,
 * invert, generate, edit, finetune, translate): model loading and shape checks, image output,
 * DDIM runs with progress and PSNR. */
#ifndef DA_DIFFUSION_CLI_H
#define DA_DIFFUSION_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "diffadapt.h"
#include "cli/data_options.h"
#include "data/dataset.h"
#include "diffusion/ddim_set.h"
#include "diffusion/schedule.h"
#include "nn/unet.h"

/* Loads a UNet (config from the file or config_path); prints the error and returns -1. */
int da_cli_load_unet(const char *path, const char *config_path, da_unet *m);

/* The images must be what the model takes (channels and size); prints both shapes and how to
 * change the images' and returns -1. */
int da_cli_check_images_fit(const da_dataset *d, const da_unet *m);
/* The same against a shape: `channels` channels, side x side. */
int da_cli_check_images_shape(const da_dataset *d, int channels, int side);

/* Writes n images (n,c,h,w) in [-1,1]: a .safetensors path gets `images` (and `labels` when
 * given), anything else is a folder of PNG files 000000.png, ... Returns -1 after printing. */
int da_cli_write_images(const char *out, const float *images, int64_t n, int64_t c, int64_t h, int64_t w,
                        const int64_t *labels, const char *const *meta);

/* Loads a model through the library (diffadapt.h), sets its inference precision (a --precision
 * index, da_common.precision) and prints what it is; prints the error and returns -1. */
int da_cli_load_model(const char *path, const char *config_path, int precision, da_model **m);
/* The images must be what the model takes; prints both shapes and how to change the images'. */
int da_cli_check_images_fit_model(const da_dataset *d, const da_model *m);
/* Two models that work on the same images: prints "error: A_NAME takes ... but B_NAME ...[; advice]". */
int da_cli_check_same_models(const da_model *a, const char *a_name, const da_model *b, const char *b_name,
                             const char *advice);

/* DDIM inversion (from 0 up to s->t0) or generation (from s->t0 down; with orig and ratio < 1 the
 * two models' eps mixed) over n images x (n,C,H,W) in place, through the library, with a
 * progress line labelled `label`. Prints the error and returns -1. */
typedef enum { DA_CLI_INVERT, DA_CLI_GENERATE } da_cli_ddim_mode;
int da_cli_ddim(const char *label, const da_model *m, const da_model *orig, float ratio, da_cli_ddim_mode mode,
                const da_ddim_settings *s, float *x, int64_t n);

/* A da_set_progress_fn for a da_progress line (user) counted in images. */
void da_cli_set_progress(void *user, const da_set_progress *p);

/* PSNR in dB of images in [-1,1] (peak-to-peak 2) over n elements. */
double da_psnr(const float *a, const float *b, int64_t n);

#endif
