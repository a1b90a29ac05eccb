/* data_options.c — the data-selection options, one table (see data_options.h). */
#include "cli/data_options.h"

#include <stdio.h>
#include <string.h>

int da_cli_data_options(da_cli_data *d, unsigned parts, da_option *o) {
    const struct {
        unsigned part;
        da_option opt;
    } opts[DA_CLI_DATA_N_OPTS] = {
        {DA_DATA_LABELS, {"--classes", DA_OPT_STRING, &d->classes, "LIST", "keep these labels, e.g. 5,7 (relabelled 0..k-1 in this order)", false}},
        {DA_DATA_DRAW, {"--take", DA_OPT_INT, &d->take, "N", "use N images drawn at random with --data-seed (0 = all)", false}},
        {DA_DATA_DRAW, {"--skip", DA_OPT_INT, &d->skip, "N", "skip the first N of the drawn order", false}},
        {DA_DATA_DRAW, {"--data-seed", DA_OPT_INT, &d->data_seed, "N", "seed of the --take draw", false}},
        {DA_DATA_SHAPE, {"--size", DA_OPT_INT, &d->size, "N", "centre-crop and bilinear-resize every image to NxN (0 = as stored)", false}},
        {DA_DATA_SHAPE, {"--pad", DA_OPT_INT, &d->pad, "N", "pad every side with N black pixels (2: 28 -> 32)", false}},
        {DA_DATA_SHAPE, {"--channels", DA_OPT_INT, &d->channels, "N", "1 = grey, 3 = RGB (0 = as stored)", false}},
        {DA_DATA_LABELS, {"--attr", DA_OPT_STRING, &d->attr, "NAME", "CelebA attribute used as the 0/1 label (e.g. Male)", false}},
        {DA_DATA_LABELS, {"--split", DA_OPT_STRING, &d->split, "NAME", "CelebA split: train, valid or test (default all)", false}},
    };
    int n = 0;
    for (int i = 0; i < DA_CLI_DATA_N_OPTS; i++)
        if (opts[i].part & parts) o[n++] = opts[i].opt;
    return n;
}

int da_cli_data_check(const char *cmd, const da_cli_data *d) {
    if (d->take < 0 || d->skip < 0 || d->data_seed < 0 || d->size < 0 || d->pad < 0 ||
        (d->channels != 0 && d->channels != 1 && d->channels != 3)) {
        fprintf(stderr, "diffadapt %s: --take, --skip, --data-seed, --size and --pad must not be negative, "
                        "and --channels is 0, 1 or 3\n", cmd);
        return 2;
    }
    return 0;
}

da_data_opts da_cli_data_opts(const da_cli_data *d) {
    return (da_data_opts){d->classes, d->take, d->skip, (uint64_t)d->data_seed, d->size, d->pad, d->channels, d->attr,
                          d->split};
}

int da_cli_load_data(const char *cmd, const char *what, const char *spec, const da_cli_data *d, da_dataset *out) {
    memset(out, 0, sizeof *out);
    if (da_cli_data_check(cmd, d)) return -1;
    da_data_opts o = da_cli_data_opts(d);
    char err[2048];
    if (da_dataset_load(spec, &o, out, err, sizeof err)) {
        fprintf(stderr, "error: %s: %s\n", what, err);
        return -1;
    }
    return 0;
}
