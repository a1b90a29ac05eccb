/* test_cli_selftest.c — runs `$DA_BIN selftest` (the README's first command until the full
 * experiment exists) and checks that it passes and prints its three PASS lines. */
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

int main(void) {
    const char *bin = getenv("DA_BIN");
    if (!bin || access(bin, X_OK)) tu_skip("DA_BIN is not set to the diffadapt binary");
    char cmd[2048], out[16384];
    snprintf(cmd, sizeof cmd, "'%s' selftest 2>&1", bin);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL, "popen");
    if (!p) return tu_finish("test_cli_selftest");
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    int st = pclose(p);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "selftest failed:\n%s", out);
    int passes = 0;
    for (const char *s = out; (s = strstr(s, "PASS ")); s++) passes++;
    CHECK(passes == 3 && !strstr(out, "FAIL"), "expected 3 PASS lines:\n%s", out);
    snprintf(cmd, sizeof cmd, "'%s' selftest --seed x >/dev/null 2>&1", bin);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2, "bad --seed: status %d", st);
    return tu_finish("test_cli_selftest");
}
