/* test_cpu_baseline.c — a Release build run on a CPU older than its instruction-set baseline
 * (DA_ARCH, x86-64-v3 by default) stops with a message and exit status 1 instead of dying on an
 * illegal instruction (src/cli/cpu_baseline.c). The old CPU is QEMU's user-mode emulator with
 * `-cpu Nehalem` (SSE4.2, no AVX); skips (77) when qemu-x86_64 is not installed (Debian:
 * qemu-user, which scripts/install-deps.sh installs for the tests) or when the build has no
 * baseline to check (a Debug build, or DA_ARCH below x86-64-v3). */
#include <stdlib.h>
#include <unistd.h>

#include "cli_run.h"
#include "test_util.h"

int main(void) {
    const char *bin = getenv("DA_BIN");
    if (!bin) tu_skip("DA_BIN is not set (run through ctest)");
    char out[8192], cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' --version 2>&1", bin);
    int rc = cli_run(cmd, out, sizeof out);
    CHECK(rc == 0, "diffadapt --version on this CPU: exit status %d:\n%s", rc, out);
    if (!strstr(out, "built for: x86-64-v3") && !strstr(out, "built for: x86-64-v4"))
        tu_skip("this build has no AVX2 baseline to check (see `built for:` in --version)");
    if (access("/usr/bin/qemu-x86_64", X_OK) != 0) tu_skip("qemu-x86_64 is not installed (Debian: qemu-user)");

    snprintf(cmd, sizeof cmd, "/usr/bin/qemu-x86_64 -cpu Nehalem '%s' --version 2>&1", bin);
    rc = cli_run(cmd, out, sizeof out);
    CHECK(rc == 1, "on an emulated Nehalem (no AVX): exit status %d, expected 1:\n%s", rc, out);
    CHECK(strstr(out, "this build needs an x86-64-v") && strstr(out, "-DDA_ARCH=x86-64"),
          "on an emulated Nehalem: no message naming the missing instruction set and the portable build:\n%s", out);
    CHECK(!strstr(out, "Illegal instruction") && !strstr(out, "signal 4"), "on an emulated Nehalem: crashed:\n%s",
          out);
    return tu_finish("test_cpu_baseline");
}
