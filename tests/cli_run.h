/* cli_run.h — runs a shell command from a test and captures its standard output. */
#ifndef DA_TEST_CLI_RUN_H
#define DA_TEST_CLI_RUN_H

#include <stdio.h>
#include <sys/wait.h>

/* Runs cmd with popen, keeps the first cap-1 bytes of its standard output in out (NUL-terminated)
 * and returns its exit status (-1 when it could not start or did not exit normally). Output
 * beyond cap is read and dropped, so a talkative command cannot block on a full pipe. */
static inline int cli_run(const char *cmd, char *out, size_t cap) {
    FILE *p = popen(cmd, "r");
    if (!p) {
        if (cap) out[0] = 0;
        return -1;
    }
    size_t n = cap ? fread(out, 1, cap - 1, p) : 0;
    if (cap) out[n] = 0;
    char sink[4096];
    while (fread(sink, 1, sizeof sink, p) > 0) {
    }
    int st = pclose(p);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif
