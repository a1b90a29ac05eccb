/* common_options.h — the options most sub-commands share (--model --config, --clip --vocab, --out,
 * --seed, --batch, --threads, --force), declared once: name, kind, value name, accepted range and
 * the usual words. A command takes the parts it needs into its table, as it takes the method's
 * options (method_options.h), and may say in its own words what an option means there: what its
 * --out holds or what its --seed seeds. The defaults are the struct's, so --help shows them. */
#ifndef DA_COMMON_OPTIONS_H
#define DA_COMMON_OPTIONS_H

#include <stdbool.h>

#include "cli/args.h"

/* The values of the shared options. */
typedef struct {
    const char *model, *config;   /* --model --config: a diffusion model and its config */
    const char *clip, *vocab;     /* --clip --vocab: a CLIP model and its vocabulary */
    const char *out;              /* --out */
    int seed, batch, threads;     /* --seed (>= 0), --batch (>= 1), --threads (0 = all cores) */
    bool force;                   /* --force */
    int precision;                /* --precision: an index into DA_PRECISION_CHOICES (0 = auto) */
} da_common;

/* The names --precision takes, in index order (da_model_set_precision's names). */
#define DA_PRECISION_CHOICES "auto|fp32|bf16"
enum { DA_CLI_PRECISION_AUTO, DA_CLI_PRECISION_FP32, DA_CLI_PRECISION_BF16 };
/* The name of a --precision index. */
const char *da_common_precision_name(int precision);

/* The parts, or-ed together. */
enum {
    DA_COPT_MODEL = 1 << 0,     /* --model (required) --config */
    DA_COPT_CLIP = 1 << 1,      /* --clip (required) --vocab */
    DA_COPT_OUT = 1 << 2,       /* --out (required) */
    DA_COPT_SEED = 1 << 3,      /* --seed */
    DA_COPT_BATCH = 1 << 4,     /* --batch */
    DA_COPT_THREADS = 1 << 5,   /* --threads */
    DA_COPT_FORCE = 1 << 6,     /* --force */
    DA_COPT_PRECISION = 1 << 7, /* --precision */
};
#define DA_COPT_MAX 10           /* the most entries da_common_options writes */

/* A command's own words for what a shared option means there; NULL keeps the shared words. */
typedef struct {
    const char *model, *config;
    const char *out_metavar, *out;   /* e.g. "DIR", "output folder: ..." */
    const char *seed, *batch, *force;
} da_common_words;

/* Writes the option entries of `parts` bound to c into out (room for DA_COPT_MAX) and returns how
 * many; words may be NULL. */
int da_common_options(da_common *c, unsigned parts, const da_common_words *words, da_option *out);

/* Checks the values of `parts` against each option's range; prints "diffadapt CMD: --name must
 * ..." and returns 2 (a usage error), else 0. (--threads is checked while parsing.) */
int da_common_options_check(const da_common *c, unsigned parts, const char *cmd);

#endif
