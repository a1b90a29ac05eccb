/* data_options.h — the options that select and shape the images a command reads (--take, --skip,
 * --data-seed, --size, --pad, --channels, --classes, --attr, --split), declared once and checked
 * once. A command takes the parts that make sense for it; the defaults are the struct's. */
#ifndef DA_DATA_OPTIONS_H
#define DA_DATA_OPTIONS_H

#include "cli/args.h"
#include "data/dataset.h"

/* The sources a data option (--data, --input, --train) accepts, for its help: one list for every
 * command, so that a new source is documented everywhere at once. */
#define DA_DATA_SOURCES "(a folder, IDX, .safetensors, fashion-mnist[:train|:test] or celeba:DIR)"

typedef struct {
    const char *classes, *attr, *split;
    int take, skip, data_seed, size, pad, channels;
} da_cli_data;

/* The parts, or-ed together. */
enum {
    DA_DATA_DRAW = 1 << 0,     /* --take --skip --data-seed: which images */
    DA_DATA_SHAPE = 1 << 1,    /* --size --pad --channels: how they are shaped */
    DA_DATA_LABELS = 1 << 2,   /* --classes --attr --split: labels and CelebA splits */
    DA_DATA_ALL = DA_DATA_DRAW | DA_DATA_SHAPE | DA_DATA_LABELS,
};
#define DA_CLI_DATA_N_OPTS 9     /* the most entries da_cli_data_options writes */

/* Writes the option entries of `parts` bound to d into opts (room for DA_CLI_DATA_N_OPTS) and
 * returns how many. */
int da_cli_data_options(da_cli_data *d, unsigned parts, da_option *opts);

/* Checks the values: prints "diffadapt CMD: ..." and returns 2 (a usage error), else 0. */
int da_cli_data_check(const char *cmd, const da_cli_data *d);

/* The loader's settings for these values. */
da_data_opts da_cli_data_opts(const da_cli_data *d);

/* Checks the values and loads; prints a clear error (prefixed with `what`) and returns -1. */
int da_cli_load_data(const char *cmd, const char *what, const char *spec, const da_cli_data *d, da_dataset *out);

#endif
