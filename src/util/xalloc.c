/* xalloc.c — allocations that exit on out of memory (see xalloc.h). */
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *checked(void *p, const char *what) {
    if (!p) {
        fprintf(stderr, "error: out of memory %s\n", what);
        exit(3);
    }
    return p;
}

void *da_xmalloc(size_t n, const char *what) {
    return checked(malloc(n ? n : 1), what);
}

void *da_xcalloc(size_t n, size_t size, const char *what) {
    return checked(calloc(n ? n : 1, size ? size : 1), what);
}

void *da_xrealloc(void *p, size_t n, const char *what) {
    return checked(realloc(p, n ? n : 1), what);
}

char *da_xstrdup(const char *s, const char *what) {
    return checked(strdup(s), what);
}
