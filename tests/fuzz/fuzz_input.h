/* fuzz_input.h — hands a fuzz input to readers that take a path: the bytes are written to a
 * scratch file (in /dev/shm when there is one, so that no disk is worn), named once per run. */
#ifndef DA_FUZZ_INPUT_H
#define DA_FUZZ_INPUT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A private scratch folder for this process (created on the first call). */
static const char *fuzz_dir(void) {
    static char dir[256];
    if (!dir[0]) {
        struct stat st;
        const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/da_fuzz_XXXXXX", base);
        if (!mkdtemp(dir)) abort();
    }
    return dir;
}

/* Writes the bytes to fuzz_dir()/name and returns the path (static storage). */
static const char *fuzz_file(const char *name, const void *data, size_t size) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f)) abort();
    return path;
}

#endif
