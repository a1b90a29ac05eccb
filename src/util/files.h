/* files.h — small questions and chores about files that every layer asks: does a path exist
 * (and is it a file or a folder), read a whole file into memory, create a folder with its
 * parents. Writing files safely is atomic.h's job. */
#ifndef DA_FILES_H
#define DA_FILES_H

#include <stdbool.h>
#include <stddef.h>

/* True when something (a file, a folder, anything) exists at path. */
bool da_path_exists(const char *path);
/* True when path is a regular file (after following links). */
bool da_is_file(const char *path);
/* True when path is a folder (after following links). */
bool da_is_dir(const char *path);

/* The whole file, NUL-terminated and malloc'ed (so text can be parsed in place; binary content
 * may hold NULs, hence *len). len may be NULL. Works on pipes and files that report no size.
 * NULL with err set (err may be NULL) when it cannot be opened or read. */
char *da_read_file(const char *path, size_t *len, char *err, size_t errlen);

/* mkdir -p; returns -1 with err set on failure (also when path names something that is not a
 * folder). */
int da_mkdirs(const char *path, char *err, size_t errlen);

#endif
