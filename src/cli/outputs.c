/* outputs.c — output checks and names (see outputs.h). */
#include "cli/outputs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/files.h"

int da_check_output_folder(const char *path) {
    if (!path[0]) {
        fprintf(stderr, "error: an output path is empty; give a file name\n");
        return 1;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') dir[--n] = 0;   /* "out/" is the folder out */
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = 0;
    else *slash = 0;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "error: cannot write %s: the folder %s does not exist; create it first\n", path, dir);
        return 1;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        fprintf(stderr, "error: cannot write %s: the folder %s is not writable (%s)\n", path, dir, strerror(errno));
        return 1;
    }
    return 0;
}

int da_check_output(const char *path, bool force) {
    struct stat st;
    if (path[0] && !force && stat(path, &st) == 0) {
        fprintf(stderr, "error: %s already exists; pass --force to overwrite it\n", path);
        return 1;
    }
    return da_check_output_folder(path);
}

int da_check_checkpoint(const char *ckpt, bool resume, bool force) {
    if (resume || force || !da_path_exists(ckpt)) return 0;
    fprintf(stderr, "error: the checkpoint %s already exists; continue it with --resume %s, or pass --force to start "
                    "over\n", ckpt, ckpt);
    return 1;
}

bool da_ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

int da_check_suffix(const char *cmd, const char *option, const char *path, const char *suffix) {
    if (da_ends_with(path, suffix)) return 0;
    fprintf(stderr, "diffadapt %s: %s must end in %s, got '%s'\n", cmd, option, suffix, path);
    return 2;
}

void da_sibling_path(char *buf, size_t len, const char *out, const char *suffix) {
    size_t n = strlen(out);
    if (da_ends_with(out, ".safetensors")) n -= strlen(".safetensors");
    snprintf(buf, len, "%.*s%s", (int)n, out, suffix);
}
