/* atomic.h — writing output files so that a crash, a kill or a full disk never leaves a
 * half-written file under the final name: write "<path>.tmp.<pid>", then fsync and rename. */
#ifndef DA_ATOMIC_H
#define DA_ATOMIC_H

#include <stdio.h>

typedef struct {
    FILE *f;
    char final_path[4096];
    char tmp_path[4200];
} da_atomic_file;

/* Opens the temporary file; returns -1 with err set when it cannot be created. */
int da_atomic_open(da_atomic_file *a, const char *path, char *err, size_t errlen);
/* Flushes, fsyncs and renames; on any error (including earlier failed writes) removes the
 * temporary file, leaves the old file at path untouched and returns -1 with err set. */
int da_atomic_commit(da_atomic_file *a, char *err, size_t errlen);
void da_atomic_abort(da_atomic_file *a);
/* Writes a whole buffer atomically. */
int da_atomic_write(const char *path, const void *data, size_t size, char *err, size_t errlen);
/* mkdir -p; returns -1 with err set on failure. */
int da_mkdirs(const char *path, char *err, size_t errlen);

#endif
