/* xalloc.h — allocations whose failure ends the program: on out of memory they print
 * "error: out of memory <what>" and exit with status 3, as the engine does for its tensors.
 * For the many small buffers (tables, captions, optimiser lists) where a caller could do
 * nothing better than stop. A zero size is allocated as one byte, so NULL never means "empty". */
#ifndef DA_XALLOC_H
#define DA_XALLOC_H

#include <stddef.h>

/* what completes the message, e.g. "in the tokenizer" */
void *da_xmalloc(size_t n, const char *what);
void *da_xcalloc(size_t n, size_t size, const char *what);
void *da_xrealloc(void *p, size_t n, const char *what);
char *da_xstrdup(const char *s, const char *what);

#endif
