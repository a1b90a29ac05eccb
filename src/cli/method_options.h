/* method_options.h — the command-line options of the DiffusionCLIP method, declared once and
 * bound to the fields of its settings (da_ft_config, diffusion/finetune.h). `finetune`,
 * `translate`, `edit`, `invert` and `experiment` each take the parts they need; their defaults are
 * the struct's (da_ft_config_default), so --help shows the same values everywhere. */
#ifndef DA_METHOD_OPTIONS_H
#define DA_METHOD_OPTIONS_H

#include <stdbool.h>

#include "cli/args.h"
#include "diffusion/finetune.h"

/* The parts, or-ed together. */
enum {
    DA_MOPT_TEXTS = 1 << 0,      /* --src-text --tgt-text */
    DA_MOPT_T0 = 1 << 1,         /* --t0 */
    DA_MOPT_INVERT = 1 << 2,     /* --inv-steps */
    DA_MOPT_GENERATE = 1 << 3,   /* --gen-steps --model-ratio */
    DA_MOPT_TRAIN = 1 << 4,      /* --train-steps, the run (images, epochs, batch, lr, seed, mode) and the loss */
    DA_MOPT_ID_MODEL = 1 << 5,   /* --id-weight --recompute (the finetune command only) */
};
#define DA_MOPT_MAX 24           /* the most entries da_method_options writes */

/* Who takes them: the experiment prefixes the run's options with --ft- (--ft-epochs, ...) because
 * its --epochs, --batch and --lr belong to the classifier. */
typedef enum { DA_MOPT_COMMAND, DA_MOPT_EXPERIMENT } da_mopt_naming;

/* Writes the option entries of `parts` bound to c into out (room for DA_MOPT_MAX) and returns
 * how many. With texts_required the texts have no default. */
int da_method_options(da_ft_config *c, unsigned parts, da_mopt_naming naming, bool texts_required, da_option *out);

/* Checks the values of `parts` against each option's range (and the texts: two different,
 * non-empty ones; --model-ratio: within [0,1]); prints "diffadapt CMD: --name must ..." and returns 2 (a usage error), else 0. */
int da_method_options_check(const da_ft_config *c, unsigned parts, da_mopt_naming naming, const char *cmd);

#endif
