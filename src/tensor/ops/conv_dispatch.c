/* conv_dispatch.c — which backend computes a convolution (conv_backend.h).
 *
 * DIFFADAPT_CONV=blas or =dnnl forces one backend (tests and benchmarks use it to reach every
 * path); unset or =auto applies the measured rule below. Without oneDNN built in, or with an
 * unknown value, it is BLAS. The variable is read on every call, so a program (a test) may
 * change it between convolutions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/ops/conv_backend.h"

typedef enum { WANT_AUTO, WANT_BLAS, WANT_DNNL } want;

static want read_switch(void) {
    const char *v = getenv("DIFFADAPT_CONV");
    if (!v || !*v || strcmp(v, "auto") == 0) return WANT_AUTO;
    if (strcmp(v, "blas") == 0) return WANT_BLAS;
    if (strcmp(v, "dnnl") == 0) return WANT_DNNL;
    static bool warned;
    if (!warned) fprintf(stderr, "warning: DIFFADAPT_CONV='%s' is not auto, blas or dnnl; using auto\n", v);
    warned = true;
    return WANT_AUTO;
}

/* The measured rule (bench/results.md, "Convolution backends"). */
static da_conv_backend auto_rule(const da_conv_shape *s) {
    (void)s;
    return DA_CONV_BLAS;   /* until measured */
}

da_conv_backend da_conv_choose(const da_conv_shape *s) {
    if (!da_conv_dnnl_available()) return DA_CONV_BLAS;
    switch (read_switch()) {
    case WANT_BLAS: return DA_CONV_BLAS;
    case WANT_DNNL: return DA_CONV_DNNL;
    default: return auto_rule(s);
    }
}

const char *da_conv_backend_describe(void) {
    static char line[96];
    const char *v = getenv("DIFFADAPT_CONV");
    snprintf(line, sizeof line, "DIFFADAPT_CONV=%s, oneDNN %s", v && *v ? v : "auto",
             da_conv_dnnl_available() ? da_conv_dnnl_isa() : "not built in");
    return line;
}
