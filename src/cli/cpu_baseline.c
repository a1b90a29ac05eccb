/* cpu_baseline.c — refuses, with a message, a CPU older than the instruction set the program was
 * built for (CMake's DA_ARCH, x86-64-v3 by default), instead of dying on the first AVX2
 * instruction with "Illegal instruction".
 *
 * It runs as the program's first constructor, before main and before any of the program's code
 * that the compiler may have vectorised, and is itself compiled for plain x86-64 so that it can
 * run anywhere. Debug builds (no -march) and unknown DA_ARCH values are not checked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef DA_ARCH_NAME
/* Whether this CPU runs code built for `level` (x86-64-v2 / -v3 / -v4; anything else: yes), by
 * the features each level adds (named one by one: clang knows no level names here). */
__attribute__((target("arch=x86-64"))) static int cpu_has_level(const char *level) {
    __builtin_cpu_init();   /* a constructor may run before the compiler runtime's CPU detection */
    int v2 = __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("popcnt");
    int v3 = v2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
    int v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    if (!strcmp(level, "x86-64-v2")) return v2;
    if (!strcmp(level, "x86-64-v3")) return v3;
    if (!strcmp(level, "x86-64-v4")) return v4;
    return 1;
}

__attribute__((constructor(101), target("arch=x86-64"))) static void check_cpu_baseline(void) {
    if (cpu_has_level(DA_ARCH_NAME)) return;
    fprintf(stderr,
            "diffadapt: this build needs an %s CPU (x86-64-v3 means AVX2, FMA and BMI2: Intel Haswell, AMD "
            "Zen or later), and this CPU is older.\n"
            "Build one for this CPU with: cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DDA_ARCH=x86-64\n",
            DA_ARCH_NAME);
    exit(1);
}
#endif
