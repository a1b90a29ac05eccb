/* progress.h — a progress line for long jobs: done/total, rate, ETA and a caller's message.
 * On a terminal it redraws one line; otherwise (logs, CI) it prints a line every few seconds. */
#ifndef DA_PROGRESS_H
#define DA_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

#include "util/clock.h"   /* da_now: the progress line times itself with it */

typedef struct {
    const char *label;
    const char *unit;        /* "img", "step" */
    int64_t total;
    double start, last_print;
    bool tty;
} da_progress;

void da_progress_begin(da_progress *p, const char *label, int64_t total, const char *unit);
/* `done` units finished so far; msg (may be NULL) is appended, e.g. "loss 0.0312". */
void da_progress_update(da_progress *p, int64_t done, const char *msg);
void da_progress_end(da_progress *p, int64_t done, const char *msg);

#endif
