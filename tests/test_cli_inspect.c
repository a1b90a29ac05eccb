/* test_cli_inspect.c — runs `$DA_BIN inspect` on a good file, a malformed one, a missing one and
 * with bad usage, and checks the exit codes (0 / 1 / 2) and what is printed. */
#include <sys/wait.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "test_util.h"
#include "cli_run.h"

static char OUT[65536];

/* Runs the command with stderr merged into stdout; returns the exit code (-1 if abnormal). */
static int run(const char *cmd) { return cli_run(cmd, OUT, sizeof OUT); }

int main(void) {
    const char *bin = getenv("DA_BIN");
    if (!bin || access(bin, X_OK)) tu_skip("DA_BIN is not set to the diffadapt binary");
    char dir[] = "/tmp/da_test_cli_inspect_XXXXXX";
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    char good[600], bad[600], cmd[2048], err[1024];
    snprintf(good, sizeof good, "%s/good.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);

    float w[6] = {1, 2, 3, 4, 5, 6}, b[2] = {0.5f, -0.5f};
    int64_t ids[3] = {0, 1, 2};
    st_writer *sw = st_writer_new();
    st_writer_add_f32(sw, "layer.weight", 2, (const int64_t[]){2, 3}, w);
    st_writer_add_f32(sw, "layer.bias", 1, (const int64_t[]){2}, b);
    st_writer_add_i64(sw, "position_ids", 2, (const int64_t[]){1, 3}, ids);
    st_writer_set_meta(sw, "arch", "tiny");
    CHECK(st_writer_save(sw, good, err, sizeof err) == 0, "%s", err);
    st_writer_free(sw);

    snprintf(cmd, sizeof cmd, "'%s' inspect '%s' 2>&1", bin, good);
    int rc = run(cmd);
    CHECK(rc == 0, "good file: exit %d, output:\n%s", rc, OUT);
    CHECK(strstr(OUT, "3 tensors") != NULL, "tensor count missing:\n%s", OUT);
    CHECK(strstr(OUT, "layer.weight") && strstr(OUT, "layer.bias") && strstr(OUT, "position_ids"), "names:\n%s", OUT);
    CHECK(strstr(OUT, "(2,3)") && strstr(OUT, "(1,3)"), "shapes:\n%s", OUT);
    CHECK(strstr(OUT, "F32") && strstr(OUT, "I64"), "dtypes:\n%s", OUT);
    CHECK(strstr(OUT, "total: 11 elements (8 in float tensors), 56 bytes"), "totals:\n%s", OUT);
    CHECK(strstr(OUT, "arch = tiny") != NULL, "metadata:\n%s", OUT);

    /* a truncated copy: header promises more data than there is */
    FILE *in = fopen(good, "rb"), *out = fopen(bad, "wb");
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, in);
    fwrite(buf, 1, n - 5, out);
    fclose(in);
    fclose(out);
    snprintf(cmd, sizeof cmd, "'%s' inspect '%s' 2>&1", bin, bad);
    rc = run(cmd);
    CHECK(rc == 1, "bad file: exit %d", rc);
    CHECK(!strncmp(OUT, "error: ", 7) && strstr(OUT, "beyond the data section"), "bad file output:\n%s", OUT);

    /* not a safetensors file at all, and a missing file */
    out = fopen(bad, "wb");
    fputs("hello, this is plain text and not a safetensors file\n", out);
    fclose(out);
    rc = run(cmd);
    CHECK(rc == 1 && !strncmp(OUT, "error: ", 7) && strstr(OUT, "header length"), "text file: exit %d\n%s", rc, OUT);
    snprintf(cmd, sizeof cmd, "'%s' inspect '%s/none.safetensors' 2>&1", bin, dir);
    rc = run(cmd);
    CHECK(rc == 1 && strstr(OUT, "error: ") && strstr(OUT, "cannot open"), "missing file: exit %d\n%s", rc, OUT);

    /* usage */
    snprintf(cmd, sizeof cmd, "'%s' inspect 2>&1", bin);
    CHECK(run(cmd) == 2, "no file: exit not 2:\n%s", OUT);
    snprintf(cmd, sizeof cmd, "'%s' inspect '%s' '%s' 2>&1", bin, good, good);
    CHECK(run(cmd) == 2, "two files: exit not 2:\n%s", OUT);
    snprintf(cmd, sizeof cmd, "'%s' inspect --frobnicate '%s' 2>&1", bin, good);
    CHECK(run(cmd) == 2, "unknown option: exit not 2:\n%s", OUT);
    snprintf(cmd, sizeof cmd, "'%s' inspect --help 2>&1", bin);
    rc = run(cmd);
    CHECK(rc == 0 && strstr(OUT, "usage: diffadapt inspect"), "--help: exit %d\n%s", rc, OUT);

    unlink(good);
    unlink(bad);
    rmdir(dir);
    return tu_finish("test_cli_inspect");
}
