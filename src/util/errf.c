/* errf.c — da_errf (see errf.h). */
#include "util/errf.h"

#include <stdarg.h>
#include <stdio.h>

void da_errf(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}
