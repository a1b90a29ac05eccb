/* errf.h — formats an error message into a caller's buffer (err may be NULL or errlen 0: then
 * nothing is written), the convention of every reader that returns -1 with a message. */
#ifndef DA_ERRF_H
#define DA_ERRF_H

#include <stddef.h>

void da_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
