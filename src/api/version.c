/* version.c — da_version and da_build_info: the version and commit fixed at configure time and
 * the CPU paths found on this machine at run time (what a bug report needs). */
#include <cblas.h>
#include <omp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "tensor/ops/conv_backend.h"
#include "tensor/ops/gemm.h"
#include "version_info.h"

const char *da_version(void) { return DA_VERSION_STRING; }

/* Appends to buf like snprintf; *used counts the full length even past len. */
static void add(char *buf, size_t len, size_t *used, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(*used < len ? buf + *used : NULL, *used < len ? len - *used : 0, fmt, ap);
    va_end(ap);
    if (n > 0) *used += (size_t)n;
}

/* Whether the space-separated flag list holds `flag` as a whole word. */
static bool has_flag(const char *flags, const char *flag) {
    size_t n = strlen(flag);
    for (const char *p = flags; (p = strstr(p, flag)); p += n)
        if ((p == flags || p[-1] == ' ' || p[-1] == '\t') && (p[n] == ' ' || p[n] == '\n' || p[n] == 0)) return true;
    return false;
}

size_t da_build_info(char *buf, size_t len) {
    size_t used = 0;
    if (len) buf[0] = 0;
    add(buf, len, &used, "diffadapt %s\ncommit: %s\ncompiler: %s\n", DA_VERSION_STRING, DA_GIT_COMMIT, DA_COMPILER);
    /* The model name and flags of the first processor; the kernel reports what this CPU can run,
     * which is what decides the code paths (the build's own baseline is DA_ARCH). */
    char model[256] = "unknown", flags[8192] = "";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[8192];
        while (fgets(line, sizeof line, f) && (!strcmp(model, "unknown") || !flags[0])) {
            char *colon = strchr(line, ':');
            if (!colon) continue;
            const char *v = colon + 1 + (colon[1] == ' ');
            if (!strncmp(line, "model name", 10) && !strcmp(model, "unknown")) {
                snprintf(model, sizeof model, "%s", v);
                model[strcspn(model, "\n")] = 0;
            } else if (!strncmp(line, "flags", 5) && !flags[0]) {
                snprintf(flags, sizeof flags, "%s", v);
            }
        }
        fclose(f);
    }
    add(buf, len, &used, "cpu: %s\n", model);
#ifdef DA_ARCH_NAME
    add(buf, len, &used, "built for: %s (CMake DA_ARCH; the program refuses an older CPU)\n", DA_ARCH_NAME);
#else
    add(buf, len, &used, "built for: the compiler's default instruction set (no DA_ARCH: not a Release build)\n");
#endif
    static const char *const EXT[] = {"avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"};
    add(buf, len, &used, "cpu extensions:");
    int found = 0;
    for (size_t i = 0; i < sizeof EXT / sizeof EXT[0]; i++)
        if (has_flag(flags, EXT[i])) {
            add(buf, len, &used, " %s", EXT[i]);
            found++;
        }
    add(buf, len, &used, "%s\n", flags[0] ? (found ? "" : " none of avx2 fma avx512f avx512_bf16 amx") : " unknown (no /proc/cpuinfo)");
    add(buf, len, &used, "openblas: core %s; %s\n", openblas_get_corename(), openblas_get_config());
    da_precision auto_p = DA_PRECISION_FP32;
    char perr[160];
    da_precision_from_name("auto", &auto_p, perr, sizeof perr);
    add(buf, len, &used, "convolutions: %s\nmatrix products: %s\ninference precision (--precision auto): %s\n",
        da_conv_backend_describe(), da_gemm_backend_describe(), da_precision_name(auto_p));
    add(buf, len, &used, "threads: %d (of %d cores)\n", omp_get_max_threads(), omp_get_num_procs());
    return used;
}
