/* outputs.h — checks and names of the files a command writes, made before any compute so that a
 * long run never fails at its end for a reason known at its start. */
#ifndef DA_OUTPUTS_H
#define DA_OUTPUTS_H

#include <stdbool.h>
#include <stddef.h>

/* Checks an output before any compute: refuses to overwrite an existing path unless force, and
 * refuses an empty path or one whose folder is missing or not writable; prints why. Returns 0
 * when ok. */
int da_check_output(const char *path, bool force);
/* Only the second half: a non-empty path in an existing, writable folder. */
int da_check_output_folder(const char *path);

/* A fresh training run (no --resume) must not start over the checkpoint of an earlier one unless
 * force: it may be all that is left of hours of training. Prints how to continue it and returns 1. */
int da_check_checkpoint(const char *ckpt, bool resume, bool force);

/* Whether s ends in suffix. */
bool da_ends_with(const char *s, const char *suffix);

/* Refuses an output path that does not end in suffix: prints "diffadapt CMD: OPTION must end in
 * SUFFIX, got 'PATH'" and returns 2 (a usage error). */
int da_check_suffix(const char *cmd, const char *option, const char *path, const char *suffix);

/* A file next to an output: "dir/m.safetensors" + ".ckpt.safetensors" -> "dir/m.ckpt.safetensors"
 * (an out without .safetensors keeps its whole name). */
void da_sibling_path(char *buf, size_t len, const char *out, const char *suffix);

#endif
