/* test_install.c — `cmake --install` into a temporary prefix gives the documented tree; the
 * example examples/translate.c compiles against the INSTALLED library through pkg-config alone
 * (so diffadapt.h needs no internal header) and translates tiny models' images in memory and a
 * data set on disk; the installed binary finds the shipped models under share/ and answers
 * --version. Also the API's error paths, called in-process. */
#include <unistd.h>

#include "data/dataset.h"
#include "experiment/experiment.h"
#include "diffadapt.h"
#include "tensor/rng.h"
#include "test_util.h"
#include "tiny_unet.h"
#include "tmpdir.h"
#include "cli_run.h"

#define RES 8
#define N 3

static char OUT[1 << 16];

static bool exists(const char *dir, const char *rel) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    return access(p, F_OK) == 0;
}

/* The API's errors: a message, a NULL handle, no crash. */
static void api_errors(const char *model) {
    char err[512] = "";
    da_model *m = (da_model *)1;
    CHECK(da_model_load("/nonexistent/m.safetensors", NULL, &m, err, sizeof err) == -1 && !m && err[0],
          "a missing file must fail with a message: '%s'", err);
    da_clip_model *c = (da_clip_model *)1;
    err[0] = 0;
    CHECK(da_clip_model_load("/nonexistent/c.safetensors", &c, err, sizeof err) == -1 && !c && err[0], "clip: '%s'", err);
    CHECK(da_model_load(model, NULL, &m, err, sizeof err) == 0, "%s", err);
    da_translate_settings s;
    da_translate_defaults(&s);
    s.t0 = 5000;
    float x[RES * RES] = {0};
    err[0] = 0;
    CHECK(da_translate_images(m, m, &s, x, 1, NULL, NULL, err, sizeof err) == -1 && err[0], "t0 5000: '%s'", err);
    da_translate_defaults(&s);
    s.ratio = 2;
    err[0] = 0;
    CHECK(da_translate_images(m, m, &s, x, 1, NULL, NULL, err, sizeof err) == -1 && err[0], "ratio 2: '%s'", err);
    da_model_free(m);
    char info[4096];
    CHECK(da_build_info(info, sizeof info) < sizeof info && strstr(info, da_version()) && strstr(info, "openblas: core"),
          "%s", info);
}

int main(int argc, char **argv) {
    /* the models-folder probe: this same program, copied into PREFIX/bin, prints what the
     * experiment would use (src/experiment/cache.c) */
    if (argc > 1 && !strcmp(argv[1], "--print-models-dir")) {
        da_exp_config c = {0};
        char buf[4096];
        const char *d = da_exp_models_dir(&c, buf, sizeof buf);
        printf("%s", d ? d : "(none)");
        return 0;
    }
    const char *bin = getenv("DA_BIN"), *src = getenv("DA_SOURCE_DIR");
    if (!bin || access(bin, X_OK) || !src) tu_skip("DA_BIN and DA_SOURCE_DIR are not set");
    if (cli_run("pkg-config --version >/dev/null 2>&1 && cc --version >/dev/null 2>&1", OUT, sizeof OUT) != 0)
        tu_skip("pkg-config or cc is missing (scripts/install-deps.sh installs them)");
    char build[4096];
    snprintf(build, sizeof build, "%s", bin);
    *strrchr(build, '/') = 0;

    char dir[512], prefix[700], model[700], ft[700], data[700], out[700], exe[700], cmd[16384], err[1024];
    td_make(dir, sizeof dir, "install");
    td_path(prefix, sizeof prefix, dir, "prefix");
    td_path(model, sizeof model, dir, "m.safetensors");
    td_path(ft, sizeof ft, dir, "m_ft.safetensors");
    td_path(data, sizeof data, dir, "data.safetensors");
    td_path(out, sizeof out, dir, "out");
    td_path(exe, sizeof exe, dir, "translate");
    tiny_unet_save(model, RES, 1);
    tiny_unet_save(ft, RES, 2);
    api_errors(model);
    {
        float img[N * RES * RES];
        int64_t labels[N] = {2, 0, 1};
        da_rng r;
        da_rng_init(&r, 3);
        da_rng_uniform(&r, img, N * RES * RES, -1.0f, 1.0f);
        da_dataset d = {.n = N, .c = 1, .h = RES, .w = RES, .images = img, .labels = labels};
        CHECK(da_dataset_save(&d, data, err, sizeof err) == 0, "%s", err);
    }

    snprintf(cmd, sizeof cmd, "cmake --install '%s' --prefix '%s' 2>&1", build, prefix);
    int rc = cli_run(cmd, OUT, sizeof OUT);
    CHECK(rc == 0, "cmake --install failed (%d):\n%s", rc, OUT);
    static const char *const FILES[] = {"bin/diffadapt", "lib/libdiffadapt.a", "lib/libdiffadapt.so",
                                        "include/diffadapt.h", "lib/pkgconfig/diffadapt.pc",
                                        "share/diffadapt/models/fashion_mnist_unet.safetensors",
                                        "share/diffadapt/models/mini_clip.safetensors"};
    for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++)
        CHECK(exists(prefix, FILES[i]), "%s/%s was not installed", prefix, FILES[i]);
    CHECK(!exists(prefix, "include/nn"), "only the public header may be installed");

    /* the shared library exports exactly the functions the header declares (scripts/diffadapt.map) */
    snprintf(cmd, sizeof cmd, "cd '%s' && nm -D --defined-only '%s/lib/libdiffadapt.so' | awk '{print $3}' | sort > "
             "exported && grep -o '\\bda_[a-z_0-9]*(' '%s/include/diffadapt.h' | tr -d '(' | sort -u > declared && "
             "diff declared exported 2>&1", dir, prefix, prefix);
    rc = cli_run(cmd, OUT, sizeof OUT);
    CHECK(rc == 0, "exported symbols differ from the header's functions (< header only, > exported only):\n%s", OUT);

    /* only pkg-config's flags: no -I into the source tree, so an internal #include would fail. A
     * sanitizer build's library needs its runtime loaded first, so the example gets the same
     * -fsanitize flags there (scripts/test.sh sets DA_SANITIZED). */
    const char *sanitizers = getenv("DA_SANITIZED") ? "-fsanitize=address,undefined" : "";
    snprintf(cmd, sizeof cmd,
             "cd '%s' && PKG_CONFIG_PATH='%s/lib/pkgconfig' cc -std=c11 -Wall -Wextra -Werror %s '%s/examples/translate.c' "
             "$(PKG_CONFIG_PATH='%s/lib/pkgconfig' pkg-config --cflags --libs diffadapt) -Wl,-rpath,'%s/lib' -o '%s' 2>&1",
             dir, prefix, sanitizers, src, prefix, prefix, exe);
    rc = cli_run(cmd, OUT, sizeof OUT);
    CHECK(rc == 0, "the example did not build against the installed library (%d):\n%s\n%s", rc, cmd, OUT);
    snprintf(cmd, sizeof cmd, "ldd '%s' | grep libdiffadapt", exe);
    rc = cli_run(cmd, OUT, sizeof OUT);
    CHECK(rc == 0 && strstr(OUT, prefix), "the example must load the installed libdiffadapt.so: %s", OUT);

    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' '%s' '%s' 2>&1", exe, model, ft, data, out);
    rc = cli_run(cmd, OUT, sizeof OUT);
    printf("%s", OUT);
    CHECK(rc == 0 && strstr(OUT, "translated 4 images in memory") && strstr(OUT, "into"), "example (%d):\n%s", rc, OUT);
    CHECK(exists(out, "000000.png") && exists(out, "000002.png") && !exists(out, "000003.png") &&
          exists(out, "labels.csv"), "the data set translation must write 3 PNGs and labels.csv into %s", out);
    snprintf(cmd, sizeof cmd, "'%s' /nonexistent.safetensors '%s' 2>&1", exe, ft);
    rc = cli_run(cmd, OUT, sizeof OUT);
    CHECK(rc == 1 && strstr(OUT, "error:") && strstr(OUT, "nonexistent"), "a missing model: (%d) %s", rc, OUT);

    /* the installed binary */
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s/bin/diffadapt' --version", dir, prefix);
    rc = cli_run(cmd, OUT, sizeof OUT);
    CHECK(rc == 0 && !strncmp(OUT, "diffadapt ", 10) && strstr(OUT, "commit: ") && strstr(OUT, "cpu: ") &&
          strstr(OUT, "openblas: core ") && strstr(OUT, "threads: "), "--version (%d):\n%s", rc, OUT);

    /* from a folder without models/ and without $DIFFADAPT_MODELS, an installed program finds
     * PREFIX/share/diffadapt/models */
    snprintf(cmd, sizeof cmd, "cp /proc/%d/exe '%s/bin/probe' && cd '%s' && env -u DIFFADAPT_MODELS '%s/bin/probe' "
             "--print-models-dir", (int)getpid(), prefix, dir, prefix);
    rc = cli_run(cmd, OUT, sizeof OUT);
    char want[4096];
    snprintf(want, sizeof want, "%s/bin/../share/diffadapt/models", prefix);
    CHECK(rc == 0 && !strcmp(OUT, want), "models folder: got '%s', expected '%s'", OUT, want);

    td_remove(dir);
    return tu_finish("test_install");
}
