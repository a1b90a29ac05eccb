/* clock.h — a monotonic clock in seconds, for timing stages and training steps in every layer. */
#ifndef DA_CLOCK_H
#define DA_CLOCK_H

double da_now(void);         /* monotonic seconds (CLOCK_MONOTONIC): differences are durations */

#endif
