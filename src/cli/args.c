/* args.c — long-option parsing and generated --help for the sub-commands (see args.h). */
#include "cli/args.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void print_default(FILE *out, const da_option *o) {
    switch (o->kind) {
    case DA_OPT_INT: fprintf(out, " (default %d)", *(int *)o->target); break;
    case DA_OPT_FLOAT: fprintf(out, " (default %g)", (double)*(float *)o->target); break;
    case DA_OPT_STRING:
        if (*(const char **)o->target) fprintf(out, " (default %s)", *(const char **)o->target);
        break;
    case DA_OPT_CHOICE: {
        /* the name at the stored index */
        const char *m = o->metavar;
        for (int i = 0; i < *(int *)o->target && m; i++) m = strchr(m, '|') ? strchr(m, '|') + 1 : NULL;
        if (m) fprintf(out, " (default %.*s)", (int)strcspn(m, "|"), m);
        break;
    }
    default: break;
    }
}

/* The index of v among the '|'-separated names of a choice, or -1. */
static int choice_index(const char *names, const char *v) {
    int i = 0;
    for (const char *m = names; m; m = strchr(m, '|') ? strchr(m, '|') + 1 : NULL, i++) {
        size_t len = strcspn(m, "|");
        if (strlen(v) == len && strncmp(m, v, len) == 0) return i;
    }
    return -1;
}

/* "a, b or c" from "a|b|c" into buf. */
static const char *choice_list(const char *names, char *buf, size_t len) {
    size_t n = 0;
    buf[0] = 0;
    for (const char *m = names; m && n < len; m = strchr(m, '|') ? strchr(m, '|') + 1 : NULL) {
        const char *next = strchr(m, '|');
        const char *sep = m == names ? "" : next ? ", " : " or ";
        n += (size_t)snprintf(buf + n, len - n, "%s%.*s", sep, (int)strcspn(m, "|"), m);
    }
    return buf;
}

static void print_help(const da_cmd_info *info, const da_option *opts) {
    printf("usage: diffadapt %s %s\n\n%s\n\noptions:\n", info->command, info->synopsis, info->description);
    for (const da_option *o = opts; o->name; o++) {
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
        printf("  %-24s %s", left, o->help);
        if (o->required) printf(" (required)");
        else print_default(stdout, o);
        if (o->kind == DA_OPT_LIST) printf(" (repeatable)");
        printf("\n");
    }
    printf("  %-24s %s\n", "--help", "show this help");
}

/* Every command's --threads: 0 means all cores; a negative count is an error, and more threads
 * than CPUs only make the run slower (20x for 10000), so they are capped with a note. */
static int check_threads(const char *cmd, long *n) {
    if (*n < 0) {
        fprintf(stderr, "diffadapt %s: --threads must be 0 (all cores) or a positive number of threads, got %ld\n", cmd, *n);
        return 2;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus > 0 && *n > cpus) {
        fprintf(stderr, "note: --threads %ld is more than the %ld CPUs of this machine; using %ld\n", *n, cpus, cpus);
        *n = cpus;
    }
    return 0;
}

static int parse_value(const char *cmd, const da_option *o, const char *v) {
    char *end = NULL;
    errno = 0;
    switch (o->kind) {
    case DA_OPT_INT: {
        long x = strtol(v, &end, 10);
        if (end == v || *end) {
            fprintf(stderr, "diffadapt %s: %s expects an integer, got '%s'\n", cmd, o->name, v);
            return 2;
        }
        if (errno || x < INT_MIN || x > INT_MAX) {
            fprintf(stderr, "diffadapt %s: %s %s is out of range (%d..%d)\n", cmd, o->name, v, INT_MIN, INT_MAX);
            return 2;
        }
        if (!strcmp(o->name, "--threads") && check_threads(cmd, &x)) return 2;
        *(int *)o->target = (int)x;
        return 0;
    }
    case DA_OPT_FLOAT: {
        float x = strtof(v, &end);
        if (errno || end == v || *end || !isfinite(x)) {
            fprintf(stderr, "diffadapt %s: %s expects a number, got '%s'\n", cmd, o->name, v);
            return 2;
        }
        *(float *)o->target = x;
        return 0;
    }
    case DA_OPT_STRING: *(const char **)o->target = v; return 0;
    case DA_OPT_CHOICE: {
        int k = choice_index(o->metavar, v);
        if (k < 0) {
            char names[256];
            fprintf(stderr, "diffadapt %s: %s is %s, got '%s'\n", cmd, o->name, choice_list(o->metavar, names, sizeof names), v);
            return 2;
        }
        *(int *)o->target = k;
        return 0;
    }
    case DA_OPT_LIST: {
        da_strlist *l = o->target;
        if (l->n >= (int)(sizeof l->items / sizeof l->items[0])) {
            fprintf(stderr, "diffadapt %s: too many %s options\n", cmd, o->name);
            return 2;
        }
        l->items[l->n++] = v;
        return 0;
    }
    default: return 2;
    }
}

int da_option_count(const da_option *opts) {
    int n = 0;
    while (opts[n].name) n++;
    return n;
}

int da_parse_args(const da_cmd_info *info, const da_option *opts, int argc, char **argv,
                  int *n_pos, char ***pos) {
    int nopts = da_option_count(opts);
    bool *seen = calloc((size_t)nopts + 1, 1);
    static char *no_pos[1];
    char **positional = info->positional ? calloc((size_t)argc + 1, sizeof(char *)) : NULL;
    int npos = 0, rc = 0;
    bool only_positional = false;
    for (int i = 1; i < argc && rc == 0; i++) {
        const char *a = argv[i];
        if (!only_positional && !strcmp(a, "--")) { only_positional = true; continue; }
        if (!only_positional && (!strcmp(a, "--help") || !strcmp(a, "-h"))) {
            print_help(info, opts);
            rc = 1;
            break;
        }
        if (only_positional || a[0] != '-' || a[1] == 0 || (a[1] >= '0' && a[1] <= '9')) {
            if (!positional) {
                fprintf(stderr, "diffadapt %s: unexpected argument '%s' (see --help)\n", info->command, a);
                rc = 2;
                break;
            }
            positional[npos++] = argv[i];
            continue;
        }
        /* --name=value or --name value */
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        int k = 0;
        for (; k < nopts; k++)
            if (strlen(opts[k].name) == len && !strncmp(opts[k].name, a, len)) break;
        if (k == nopts) {
            fprintf(stderr, "diffadapt %s: unknown option '%.*s' (see --help)\n", info->command, (int)len, a);
            rc = 2;
            break;
        }
        const da_option *o = &opts[k];
        seen[k] = true;
        if (o->kind == DA_OPT_FLAG) {
            if (eq) {
                fprintf(stderr, "diffadapt %s: %s takes no value\n", info->command, o->name);
                rc = 2;
                break;
            }
            *(bool *)o->target = true;
            continue;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) {
            fprintf(stderr, "diffadapt %s: %s needs a value (%s)\n", info->command, o->name, o->metavar ? o->metavar : "");
            rc = 2;
            break;
        }
        rc = parse_value(info->command, o, v);
    }
    for (int k = 0; k < nopts && rc == 0; k++)
        if (opts[k].required && !seen[k]) {
            fprintf(stderr, "diffadapt %s: missing required option %s %s (see --help)\n", info->command,
                    opts[k].name, opts[k].metavar ? opts[k].metavar : "");
            rc = 2;
        }
    free(seen);
    if (n_pos) *n_pos = npos;
    if (pos && positional && rc == 0) *pos = positional;
    else {
        free(positional);
        if (pos) *pos = no_pos;
    }
    return rc;
}
