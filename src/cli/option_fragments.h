/* option_fragments.h — the shared option fragments a command takes (common_options.h,
 * method_options.h, data_options.h), appended to its own table and checked after parsing in one
 * call each, so that every command assembles and checks its options the same way. */
#ifndef DA_OPTION_FRAGMENTS_H
#define DA_OPTION_FRAGMENTS_H

#include <stdbool.h>

#include "cli/args.h"
#include "cli/common_options.h"
#include "cli/data_options.h"
#include "cli/method_options.h"

/* Which fragments, bound to which values; a NULL pointer leaves a fragment out. */
typedef struct {
    da_common *common;
    unsigned common_parts;
    const da_common_words *words;   /* the command's own words for them (may be NULL) */
    da_ft_config *method;
    unsigned method_parts;
    da_mopt_naming naming;
    bool texts_required;
    da_cli_data *data;
    unsigned data_parts;
} da_fragments;

/* The most entries the fragments add to a table. */
#define DA_FRAGMENTS_MAX (DA_COPT_MAX + DA_MOPT_MAX + DA_CLI_DATA_N_OPTS)

/* Appends the fragments' entries to the {0}-terminated table opts, which has room for them. */
void da_fragments_add(const da_fragments *f, da_option *opts);

/* Parses argv against opts, then checks the fragments' values under their options' names.
 * Returns true to go on; otherwise *exit_code is the command's exit code (0 after --help, 2 after
 * a usage error, printed). */
bool da_fragments_parse(const da_cmd_info *info, const da_option *opts, const da_fragments *f, int argc, char **argv,
                        int *exit_code);

#endif
