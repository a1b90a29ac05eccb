/* blas_threads.h — holding OpenBLAS to one thread while OpenMP threads call it.
 * The ops parallelise with OpenMP and call sgemm from inside their own parallel regions; an
 * OpenBLAS pool running beside them would only make the idle side spin (see matmul.c). */
#ifndef DA_BLAS_THREADS_H
#define DA_BLAS_THREADS_H

#include <cblas.h>

/* Sets OpenBLAS to one thread; returns the setting to give back to da_blas_serial_end. */
static inline int da_blas_serial_begin(void) {
    int old = openblas_get_num_threads();
    if (old != 1) openblas_set_num_threads(1);
    return old;
}

static inline void da_blas_serial_end(int old) {
    if (old != 1) openblas_set_num_threads(old);
}

#endif
