/* miniclip_cli.h — what `train-clip` and `eval-clip` share: loading held-out images and running,
 * printing and saving the mini-CLIP zero-shot evaluation. */
#ifndef DA_MINICLIP_CLI_H
#define DA_MINICLIP_CLI_H

#include <stdint.h>

#include "nn/clip.h"

/* Loads `take` images of test_spec (padded by pad, labels dropped), evaluates m zero-shot with
 * its own vocabulary (or vocab_path), prints the table to stdout and writes the JSON to json_path
 * (NULL: none). *json_out (may be NULL) receives the malloc'ed JSON. Returns 0, or 1 after
 * printing an error. */
int da_miniclip_run_eval(const da_clip *m, const char *vocab_path, const char *test_spec, int take, int pad,
                         uint64_t seed, const char *json_path, char **json_out);

#endif
