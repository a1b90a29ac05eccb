/* dataset_folder.c — a folder of image files (sorted by name) with an optional labels.csv
 * (`file,label` header, one row per image) that must label exactly the files in the folder. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "data/dataset_source.h"
#include "util/files.h"

static bool has_image_ext(const char *name) {
    static const char *const exts[] = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga", ".ppm", ".pgm", ".pnm"};
    const char *dot = strrchr(name, '.');
    if (!dot) return false;
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
        if (strcasecmp(dot, exts[i]) == 0) return true;
    return false;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Trims spaces, tabs and CR/LF at both ends and one pair of surrounding double quotes. */
static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) s[--n] = '\0';
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s[n - 1] = '\0';
        s++;
    }
    return s;
}

/* Fills s->labels from DIR/labels.csv; s->names holds the sorted file names. */
static int read_labels_csv(const char *csv, const char *dir, da_source *s, char *err, size_t errlen) {
    char *text = da_read_file(csv, NULL, err, errlen);
    if (!text) return -1;
    s->labels = malloc(sizeof(int64_t) * (size_t)s->n);
    int *line_of = calloc((size_t)s->n, sizeof(int)); /* the line that labelled each file; 0 = none yet */
    if (!s->labels || !line_of) {
        snprintf(err, errlen, "%s: out of memory", csv);
        free(text);
        free(line_of);
        return -1;
    }
    int rc = 0, line = 0;
    bool header = false;
    char *save = NULL;
    for (char *ln = text; ln; ln = save) {
        save = strchr(ln, '\n');
        if (save) *save++ = '\0';
        line++;
        if (line == 1 && (unsigned char)ln[0] == 0xEF && (unsigned char)ln[1] == 0xBB && (unsigned char)ln[2] == 0xBF) ln += 3;
        char *t = trim(ln);
        if (!*t) continue;
        if (!header) {
            char norm[64];
            size_t k = 0;
            for (const char *p = t; *p && k + 1 < sizeof norm; p++)
                if (*p != ' ' && *p != '"') norm[k++] = (char)tolower((unsigned char)*p);
            norm[k] = '\0';
            if (strcmp(norm, "file,label") != 0) {
                snprintf(err, errlen, "%s line %d: the first line must be the header `file,label`, found \"%.60s\"", csv, line, t);
                rc = -1;
                break;
            }
            header = true;
            continue;
        }
        char *comma = strrchr(t, ',');
        if (!comma) {
            snprintf(err, errlen, "%s line %d: expected `file,label`, found \"%.60s\"", csv, line, t);
            rc = -1;
            break;
        }
        *comma = '\0';
        char *file = trim(t), *lab = trim(comma + 1);
        char *end;
        errno = 0;
        long long v = strtoll(lab, &end, 10);
        if (!*file || end == lab || *end || errno || v < 0) {
            snprintf(err, errlen, "%s line %d: the label \"%.40s\" of %s is not a class number (0, 1, 2, ...)", csv, line, lab,
                     *file ? file : "(no file name)");
            rc = -1;
            break;
        }
        char *key = file;
        char **hit = bsearch(&key, s->names, (size_t)s->n, sizeof(char *), cmp_str);
        if (!hit) {
            snprintf(err, errlen, "%s line %d: %s is not an image in %s (no such PNG/JPEG file); fix the name or remove the line",
                     csv, line, file, dir);
            rc = -1;
            break;
        }
        int64_t i = hit - s->names;
        if (line_of[i]) {
            snprintf(err, errlen, "%s line %d: %s is labelled twice (also on line %d)", csv, line, file, line_of[i]);
            rc = -1;
            break;
        }
        line_of[i] = line;
        s->labels[i] = v;
    }
    if (rc == 0 && !header) {
        snprintf(err, errlen, "%s is empty; it needs the header `file,label` and one line per image", csv);
        rc = -1;
    }
    for (int64_t i = 0; rc == 0 && i < s->n; i++)
        if (!line_of[i]) {
            snprintf(err, errlen, "%s/%s has no label in %s; add a line `%s,LABEL` or move the file away", dir, s->names[i], csv,
                     s->names[i]);
            rc = -1;
        }
    free(line_of);
    free(text);
    return rc;
}

int da_source_folder(const char *dir, da_source *s, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    s->kind = DA_SRC_FILES;
    snprintf(s->what, sizeof s->what, "%s", dir);
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "cannot open folder %s: %s", dir, strerror(errno));
        return -1;
    }
    size_t cap = 256;
    s->names = malloc(sizeof(char *) * cap);
    int rc = s->names ? 0 : -1;
    char path[8192];
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        if (e->d_name[0] == '.' || !has_image_ext(e->d_name)) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (!da_is_file(path)) continue;
        if ((size_t)s->n == cap) {
            char **p = realloc(s->names, sizeof(char *) * cap * 2);
            if (!p) {
                rc = -1;
                break;
            }
            s->names = p;
            cap *= 2;
        }
        s->names[s->n] = strdup(e->d_name);
        if (!s->names[s->n]) rc = -1;
        else s->n++;
    }
    closedir(d);
    if (rc) {
        snprintf(err, errlen, "%s: out of memory listing the folder", dir);
        da_source_free(s);
        return -1;
    }
    if (s->n == 0) {
        snprintf(path, sizeof path, "%s/list_attr_celeba.txt", dir);
        snprintf(err, errlen, "%s: no images found (looked for .png .jpg .jpeg .bmp .gif .tga .ppm .pgm)%s", dir,
                 da_is_file(path) ? "; it looks like CelebA: pass celeba:FOLDER" : "");
        da_source_free(s);
        return -1;
    }
    qsort(s->names, (size_t)s->n, sizeof(char *), cmp_str);
    s->paths = calloc((size_t)s->n, sizeof(char *));
    for (int64_t i = 0; s->paths && i < s->n; i++) {
        size_t len = strlen(dir) + strlen(s->names[i]) + 2;
        s->paths[i] = malloc(len);
        if (!s->paths[i]) break;
        snprintf(s->paths[i], len, "%s/%s", dir, s->names[i]);
    }
    if (!s->paths || !s->paths[s->n - 1]) {
        snprintf(err, errlen, "%s: out of memory", dir);
        da_source_free(s);
        return -1;
    }
    snprintf(path, sizeof path, "%s/labels.csv", dir);
    if (da_is_file(path) && read_labels_csv(path, dir, s, err, errlen)) {
        da_source_free(s);
        return -1;
    }
    return 0;
}
