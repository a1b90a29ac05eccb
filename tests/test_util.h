/* test_util.h — the tiny check framework every test executable uses. A test binary counts
 * checks, prints each failure with its location and ends with "N passed, N failed"; its exit
 * code is non-zero on any failure and 77 (CTest "skipped") when it had nothing to run. */
#ifndef DA_TEST_UTIL_H
#define DA_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tu_passed, tu_failed;

#define CHECK(cond, ...)                                                         \
    do {                                                                         \
        if (cond) tu_passed++;                                                   \
        else {                                                                   \
            tu_failed++;                                                         \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);      \
            fprintf(stderr, __VA_ARGS__);                                        \
            fprintf(stderr, "\n");                                               \
        }                                                                        \
    } while (0)

/* |a-b| <= atol + rtol*|b| for every element; reports the worst element. */
static inline int tu_close(const char *what, const float *a, const float *b, long n, double atol, double rtol) {
    long worst = -1;
    double worst_excess = 0, worst_err = 0;
    for (long i = 0; i < n; i++) {
        double err = fabs((double)a[i] - (double)b[i]);
        double excess = err - (atol + rtol * fabs((double)b[i]));
        if (!(excess <= 0) && (worst < 0 || excess > worst_excess || isnan(excess))) {
            worst = i; worst_excess = excess; worst_err = err;
        }
    }
    if (worst >= 0) {
        tu_failed++;
        fprintf(stderr, "FAIL %s: element %ld of %ld: got %.7g, expected %.7g (|diff| %.3g, atol %.1g, rtol %.1g)\n",
                what, worst, n, a[worst], b[worst], worst_err, atol, rtol);
        return 0;
    }
    tu_passed++;
    return 1;
}

static inline int tu_finish(const char *name) {
    printf("%s: %d passed, %d failed\n", name, tu_passed, tu_failed);
    return tu_failed ? 1 : 0;
}

/* For tests that need files from ../shared/: prints why and exits with CTest's skip code. */
static inline void tu_skip(const char *why) {
    printf("SKIPPED: %s\n", why);
    exit(77);
}

#endif
