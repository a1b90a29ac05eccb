/* checkpoint_options.h — the options of a resumable training run (--resume, --checkpoint,
 * --checkpoint-every), shared by train-diffusion and train-clip: declared once, with the default
 * checkpoint path (OUT with .ckpt.safetensors) made in one place. */
#ifndef DA_CHECKPOINT_OPTIONS_H
#define DA_CHECKPOINT_OPTIONS_H

#include <stddef.h>

#include "cli/args.h"

typedef struct {
    const char *resume;   /* --resume CKPT: the checkpoint to continue, NULL for a fresh run */
    const char *path;     /* --checkpoint PATH: where to write it; NULL: next to --out */
    int every;            /* --checkpoint-every N: steps between writes, 0 = only at the end */
} da_cli_ckpt;

#define DA_CKPT_N_OPTS 3

/* Writes the three option entries bound to c into out and returns DA_CKPT_N_OPTS; resume_help
 * says what a checkpoint of this command restores. */
int da_ckpt_options(da_cli_ckpt *c, const char *resume_help, da_option *out);

/* After parsing: --checkpoint-every must not be negative (prints and returns 2); a missing
 * --checkpoint becomes OUT with .ckpt.safetensors, written into buf. */
int da_ckpt_resolve(const char *cmd, da_cli_ckpt *c, const char *out, char *buf, size_t len);

#endif
