/* tmpdir.h — a private temporary folder for a test (mkdtemp under $TMPDIR or /tmp) and helpers
 * to write small files into it; the folder and everything in it is removed at the end. */
#ifndef DA_TEST_TMPDIR_H
#define DA_TEST_TMPDIR_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Creates the folder; aborts the test when it cannot (the test could not run at all). */
static inline void td_make(char *dir, size_t len, const char *tag) {
    const char *base = getenv("TMPDIR");
    snprintf(dir, len, "%s/da_%s_XXXXXX", base && *base ? base : "/tmp", tag);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(2);
    }
}

/* Removes dir and everything below it (no symbolic links are followed). */
static inline void td_remove(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        for (struct dirent *e; (e = readdir(d));) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char path[4096];
            if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) continue;
            struct stat st;
            if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) td_remove(path);
            else remove(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* dir/name as a path in buf. */
static inline const char *td_path(char *buf, size_t len, const char *dir, const char *name) {
    if (snprintf(buf, len, "%s/%s", dir, name) >= (int)len) {
        fprintf(stderr, "path too long: %s/%s\n", dir, name);
        exit(2);
    }
    return buf;
}

/* Writes `size` bytes to dir/name; aborts on failure. */
static inline void td_write(const char *dir, const char *name, const void *data, size_t size) {
    char path[4096];
    td_path(path, sizeof path, dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
        perror(path);
        exit(2);
    }
}

static inline void td_write_text(const char *dir, const char *name, const char *text) {
    td_write(dir, name, text, strlen(text));
}

/* The whole file as a NUL-terminated string (NULL when it cannot be read); its length in *len
 * unless len is NULL. The caller frees it. */
static inline char *td_slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *s = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (s = malloc((size_t)n + 1))) {
        size_t got = fread(s, 1, (size_t)n, f);
        s[got] = 0;
        if (len) *len = got;
    }
    fclose(f);
    return s;
}

#endif
