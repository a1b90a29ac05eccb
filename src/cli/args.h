/* args.h — the long-option parser every sub-command uses: a table of options bound to
 * variables; --help is generated from the table (with each option's default). */
#ifndef DA_ARGS_H
#define DA_ARGS_H

#include <stdbool.h>

/* DA_OPT_CHOICE: one of the names in metavar ("chain|per-step"), stored as its index into an int
 * (or an enum whose values are those indices). */
typedef enum { DA_OPT_FLAG, DA_OPT_INT, DA_OPT_FLOAT, DA_OPT_STRING, DA_OPT_LIST, DA_OPT_CHOICE } da_opt_kind;

/* Values of a repeatable option (--eval A=x --eval B=y), in command-line order. */
typedef struct {
    const char *items[64];
    int n;
} da_strlist;

typedef struct {
    const char *name;       /* "--out" */
    da_opt_kind kind;
    void *target;           /* bool*, int*, float*, const char**, da_strlist*, int* (choice) */
    const char *metavar;    /* "FILE"; NULL for flags */
    const char *help;
    bool required;
} da_option;

typedef struct {
    const char *command;    /* "train-diffusion" */
    const char *synopsis;   /* "--data D --out M.safetensors [options]" */
    const char *description;
    const char *positional; /* NULL: no positional arguments allowed; else its name for --help */
} da_cmd_info;

/* Parses argv[1..] (argv[0] is the command name). Positional arguments are returned in pos
 * (pointers into argv; when info->positional is set and the call returned 0 the caller
 * frees the array with free(), otherwise it is a static empty array); "--" ends option parsing.
 * Returns 0 to go on, 1 after printing --help (exit 0), 2 after printing a usage error. */
int da_parse_args(const da_cmd_info *info, const da_option *opts, int argc, char **argv,
                  int *n_pos, char ***pos);
/* The entries of an option table before its terminating {0}: where a command appends the shared
 * fragments (common_options.h, method_options.h, data_options.h). */
int da_option_count(const da_option *opts);

/* Exit code for a parse result: 0 for --help, 2 for a usage error. */
static inline int da_args_exit(int rc) { return rc == 1 ? 0 : 2; }

#endif
