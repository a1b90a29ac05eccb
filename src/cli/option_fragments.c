/* option_fragments.c — appending and checking the shared option fragments (see option_fragments.h). */
#include "cli/option_fragments.h"

void da_fragments_add(const da_fragments *f, da_option *opts) {
    int n = da_option_count(opts);
    if (f->common) n += da_common_options(f->common, f->common_parts, f->words, opts + n);
    if (f->method) n += da_method_options(f->method, f->method_parts, f->naming, f->texts_required, opts + n);
    if (f->data) da_cli_data_options(f->data, f->data_parts, opts + n);
}

bool da_fragments_parse(const da_cmd_info *info, const da_option *opts, const da_fragments *f, int argc, char **argv,
                        int *exit_code) {
    int rc = da_parse_args(info, opts, argc, argv, NULL, NULL);
    if (rc) {
        *exit_code = da_args_exit(rc);
        return false;
    }
    const char *cmd = info->command;
    if ((f->common && (rc = da_common_options_check(f->common, f->common_parts, cmd))) ||
        (f->method && (rc = da_method_options_check(f->method, f->method_parts, f->naming, cmd))) ||
        (f->data && (rc = da_cli_data_check(cmd, f->data)))) {
        *exit_code = rc;
        return false;
    }
    return true;
}
