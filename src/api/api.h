/* api.h — what the public API's handles hold (diffadapt.h keeps them opaque) and the helpers its
 * files share. Internal: never installed. */
#ifndef DA_API_H
#define DA_API_H

#include <stdbool.h>
#include <stddef.h>

#include "diffadapt.h"
#include "diffusion/finetune.h"
#include "nn/clip.h"
#include "nn/cnn.h"
#include "nn/unet.h"

struct da_model {
    da_unet unet;
};

struct da_clip_model {
    da_clip clip;
    da_bpe *bpe;              /* its own tokenizer */
};

struct da_classifier_model {
    da_cnn cnn;
    int n_classes;
    int64_t class_values[256];   /* the data label behind each class index */
};

/* A fine-tuning run (diffadapt.h): the method's fine-tuner and optimiser over the caller's model,
 * with copies of the images and texts it needs between epochs. */
struct da_finetune_run {
    da_model *model;          /* borrowed, fine-tuned in place */
    da_ft_config cfg;         /* the method's settings (src_text, tgt_text point at the copies below) */
    char *src_text, *tgt_text;
    da_finetuner f;
    da_adam opt;
    da_ctx ctx;               /* the step arena, kept across epochs */
    bool have_ft, have_opt;
    int64_t n, per;           /* images and floats per image (C·H·W) */
    float *images;            /* (n,C,H,W) */
    float *lat;               /* (n,C,H,W) latents at t0, NULL until inverted or set */
    int epochs_done;
    bool started;             /* an epoch ran or a state was loaded: the model is no longer the original */
    bool failed;              /* an epoch stopped half way: only load_state may continue */
    char model_hash[17];      /* of the original weights */
    char settings[2048];      /* what a saved state must match */
};

/* The method's settings (da_ft_config) from the public ones for a run over n images with these
 * texts, validated: the one place that maps one to the other. */
int da_api_ft_config(const da_finetune_settings *s, const char *src_text, const char *tgt_text, int64_t n,
                     da_ft_config *c, char *err, size_t errlen);

/* err = formatted message when errlen > 0; returns -1 so that callers can `return da_api_fail(...)`. */
int da_api_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
