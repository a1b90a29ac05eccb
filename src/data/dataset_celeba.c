/* dataset_celeba.c — the CelebA layout: DIR/img_align_celeba/NNNNNN.jpg, DIR/list_attr_celeba.txt
 * (count, attribute names, then `file v1 … vK` with v = 1 or -1) and DIR/list_eval_partition.txt. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "data/dataset_source.h"
#include "util/files.h"

typedef struct {
    const char *name;
    int part;
} partition_row;

static int cmp_row(const void *a, const void *b) {
    return strcmp(((const partition_row *)a)->name, ((const partition_row *)b)->name);
}

/* Next whitespace-separated token of the current line; NULL at the end of the line. */
static char *next_token(char **p) {
    char *s = *p;
    while (*s == ' ' || *s == '\t' || *s == '\r') s++;
    if (*s == '\0' || *s == '\n') {
        *p = s;
        return NULL;
    }
    char *t = s;
    while (*s && *s != ' ' && *s != '\t' && *s != '\r' && *s != '\n') s++;
    if (*s == ' ' || *s == '\t' || *s == '\r') *s++ = '\0';
    *p = s;
    return t;
}

/* Moves to the start of the next line (the current token walk ends at '\n' or '\0'). */
static char *next_line(char *p) {
    char *nl = strchr(p, '\n');
    if (!nl) return NULL;
    *nl = '\0';
    return nl + 1;
}

/* split name → partition code (0 train, 1 valid, 2 test), or -1 for an unknown name. */
static int split_code(const char *split) {
    if (strcmp(split, "train") == 0) return 0;
    if (strcmp(split, "valid") == 0 || strcmp(split, "val") == 0 || strcmp(split, "validation") == 0) return 1;
    if (strcmp(split, "test") == 0) return 2;
    return -1;
}

/* Reads list_eval_partition.txt into rows sorted by file name (they point into *text). */
static int read_partition(const char *path, char **text, partition_row **rows, int64_t *n, char *err, size_t errlen) {
    *text = da_read_file(path, NULL, err, errlen);
    if (!*text) return -1;
    int64_t cap = 1024, count = 0;
    partition_row *r = malloc(sizeof *r * (size_t)cap);
    int line = 0;
    for (char *ln = *text; r && ln;) {
        line++;
        char *p = ln;
        char *nl = next_line(ln);
        char *name = next_token(&p), *code = name ? next_token(&p) : NULL;
        ln = nl;
        if (!name) continue;
        if (!code || (strcmp(code, "0") && strcmp(code, "1") && strcmp(code, "2")) || next_token(&p)) {
            snprintf(err, errlen, "%s line %d: expected `FILE 0|1|2` (0 train, 1 valid, 2 test)", path, line);
            free(r);
            return -1;
        }
        if (count == cap) {
            partition_row *q = realloc(r, sizeof *r * (size_t)(cap *= 2));
            if (!q) {
                free(r);
                r = NULL;
                break;
            }
            r = q;
        }
        r[count].name = name;
        r[count].part = code[0] - '0';
        count++;
    }
    if (!r) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    qsort(r, (size_t)count, sizeof *r, cmp_row);
    *rows = r;
    *n = count;
    return 0;
}

int da_source_celeba(const char *dir, const char *attr, const char *split, da_source *s, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    s->kind = DA_SRC_FILES;
    snprintf(s->what, sizeof s->what, "celeba:%s", dir);
    int want_part = -1;
    if (split && (want_part = split_code(split)) < 0) {
        snprintf(err, errlen, "unknown CelebA split \"%s\"; use train, valid or test", split);
        return -1;
    }
    char imgdir[4200], attr_path[4200], part_path[4200];
    snprintf(imgdir, sizeof imgdir, "%s/img_align_celeba/img_align_celeba", dir);
    if (!da_is_dir(imgdir)) snprintf(imgdir, sizeof imgdir, "%s/img_align_celeba", dir);
    if (!da_is_dir(imgdir)) {
        snprintf(err, errlen, "celeba:%s: no folder %s; CelebA needs img_align_celeba/, list_attr_celeba.txt and list_eval_partition.txt",
                 dir, imgdir);
        return -1;
    }
    snprintf(attr_path, sizeof attr_path, "%s/list_attr_celeba.txt", dir);
    snprintf(part_path, sizeof part_path, "%s/list_eval_partition.txt", dir);

    char *text = da_read_file(attr_path, NULL, err, errlen);
    if (!text) return -1;
    char *ptext = NULL;
    partition_row *prow = NULL;
    int64_t np = 0;
    int rc = -1;
    char *ln = text, *p = ln, *nl = next_line(ln);
    char *tok = next_token(&p), *end;
    long long declared = tok ? strtoll(tok, &end, 10) : -1;
    if (!tok || *end || declared < 0 || next_token(&p) || !nl) {
        snprintf(err, errlen, "%s line 1: expected the number of images", attr_path);
        goto done;
    }
    /* line 2: the attribute names */
    ln = nl;
    p = ln;
    nl = next_line(ln);
    int nattr = 0, col = -1;
    char names_list[1024] = "";
    for (char *a; (a = next_token(&p)); nattr++) {
        if (attr && strcasecmp(a, attr) == 0) col = nattr;
        if (strlen(names_list) + strlen(a) + 3 < sizeof names_list)
            snprintf(names_list + strlen(names_list), sizeof names_list - strlen(names_list), "%s%s", nattr ? ", " : "", a);
    }
    if (nattr == 0) {
        snprintf(err, errlen, "%s line 2: expected the attribute names", attr_path);
        goto done;
    }
    if (attr && col < 0) {
        snprintf(err, errlen, "%s has no attribute \"%s\"; the attributes are: %s", attr_path, attr, names_list);
        goto done;
    }
    if (want_part >= 0 && read_partition(part_path, &ptext, &prow, &np, err, errlen)) goto done;

    int64_t cap = declared > 0 && declared < 100000000 ? declared : 1024;
    s->names = malloc(sizeof(char *) * (size_t)cap);
    s->orig_index = malloc(sizeof(int64_t) * (size_t)cap);
    if (attr) s->labels = malloc(sizeof(int64_t) * (size_t)cap);
    int64_t rows = 0;
    int line = 2;
    for (ln = nl; ln; ln = nl) {
        line++;
        p = ln;
        nl = next_line(ln);
        char *file = next_token(&p);
        if (!file) continue;
        int64_t label = 0;
        for (int k = 0; k < nattr; k++) {
            char *v = next_token(&p);
            if (!v || (strcmp(v, "1") && strcmp(v, "-1"))) {
                snprintf(err, errlen, "%s line %d (%s): expected %d values of 1 or -1, %s", attr_path, line, file, nattr,
                         v ? "found another value" : "the line is short");
                goto done;
            }
            if (k == col) label = v[0] == '1';
        }
        if (next_token(&p)) {
            snprintf(err, errlen, "%s line %d (%s): more than %d values", attr_path, line, file, nattr);
            goto done;
        }
        int64_t index = rows++;
        if (want_part >= 0) {
            partition_row key = {file, 0};
            partition_row *hit = bsearch(&key, prow, (size_t)np, sizeof key, cmp_row);
            if (!hit) {
                snprintf(err, errlen, "%s: %s is not listed in %s; the two lists must cover the same files", attr_path, file, part_path);
                goto done;
            }
            if (hit->part != want_part) continue;
        }
        if (s->n == cap) {
            cap *= 2;
            char **a = realloc(s->names, sizeof(char *) * (size_t)cap);
            if (a) s->names = a;
            int64_t *b = realloc(s->orig_index, sizeof(int64_t) * (size_t)cap);
            if (b) s->orig_index = b;
            int64_t *c = attr ? realloc(s->labels, sizeof(int64_t) * (size_t)cap) : NULL;
            if (c) s->labels = c;
            if (!a || !b || (attr && !c)) {
                snprintf(err, errlen, "%s: out of memory", attr_path);
                goto done;
            }
        }
        if (!s->names || !s->orig_index || (attr && !s->labels) || !(s->names[s->n] = strdup(file))) {
            snprintf(err, errlen, "%s: out of memory", attr_path);
            goto done;
        }
        s->orig_index[s->n] = index;
        if (attr) s->labels[s->n] = label;
        s->n++;
    }
    if (rows != declared) {
        snprintf(err, errlen, "%s declares %lld images on line 1 but lists %lld; the file is truncated or damaged", attr_path,
                 declared, (long long)rows);
        goto done;
    }
    if (s->n == 0) {
        snprintf(err, errlen, "celeba:%s: no images%s%s", dir, split ? " in split " : "", split ? split : "");
        goto done;
    }
    s->paths = calloc((size_t)s->n, sizeof(char *));
    for (int64_t i = 0; s->paths && i < s->n; i++) {
        size_t len = strlen(imgdir) + strlen(s->names[i]) + 2;
        if (!(s->paths[i] = malloc(len))) break;
        snprintf(s->paths[i], len, "%s/%s", imgdir, s->names[i]);
    }
    if (!s->paths || !s->paths[s->n - 1]) {
        snprintf(err, errlen, "%s: out of memory", attr_path);
        goto done;
    }
    rc = 0;
done:
    free(prow);
    free(ptext);
    free(text);
    if (rc) da_source_free(s);
    return rc;
}
