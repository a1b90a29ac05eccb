/* atomic.h — writing output files so that a crash, a kill or a full disk never leaves a
 * half-written file under the final name: write a temporary file beside it, fsync, rename.
 * Temporaries are created exclusively (O_CREAT|O_EXCL|O_NOFOLLOW) under an unpredictable name
 * "<path>.da-tmp.<pid>.<6 random characters>", so that a link planted in a shared folder is
 * never followed, and so that a later run can tell its own leftovers from a user's files. */
#ifndef DA_ATOMIC_H
#define DA_ATOMIC_H

#include <stdbool.h>
#include <stdio.h>

#define DA_TMP_TAG ".da-tmp."

typedef struct {
    FILE *f;
    char final_path[4096];
    char tmp_path[4200];
} da_atomic_file;

/* Creates a new temporary file beside path (see above) and returns its descriptor, its name in
 * tmp; -1 with err set when it cannot be created. */
int da_tmp_create(const char *path, char *tmp, size_t tmplen, char *err, size_t errlen);
/* True when the file name (no folder) is one of our temporaries; its writer's process id in *pid. */
bool da_tmp_parse(const char *name, long *pid);
/* Removes, in folder dir, the temporaries that this program's processes left behind when they
 * were killed: names of our pattern (for the final file name `base`, or any when base is NULL),
 * regular files of this user, written by a process that no longer exists. Each removal is
 * reported on stderr. Returns how many were removed. */
int da_remove_stale_tmp(const char *dir, const char *base);
/* The same for the temporaries of one output file path. */
int da_remove_stale_tmp_of(const char *path);

/* Opens the temporary file; returns -1 with err set when it cannot be created. */
int da_atomic_open(da_atomic_file *a, const char *path, char *err, size_t errlen);
/* Flushes, fsyncs and renames; on any error (including earlier failed writes) removes the
 * temporary file, leaves the old file at path untouched and returns -1 with err set. */
int da_atomic_commit(da_atomic_file *a, char *err, size_t errlen);
void da_atomic_abort(da_atomic_file *a);
/* Writes a whole buffer atomically. */
int da_atomic_write(const char *path, const void *data, size_t size, char *err, size_t errlen);

#endif
