/* test_experiment_ratio.c — `diffadapt experiment --smoke --model-ratio R`: R = 1 is the default
 * run (the translations come from the same cache entries and metrics.csv is byte-identical);
 * R = 0 translates again (its own cache entries) into images unlike the fine-tuned ones; an R
 * outside [0,1] is a usage error. results.json and report.md record the ratio. --finetuned with
 * the default run's own fine-tuned model skips fine-tuning and gives the same translations. */
#include <cjson/cJSON.h>
#include <dirent.h>

#include "cli_run.h"
#include "io/safetensors.h"
#include "test_util.h"
#include "tmpdir.h"

static const char *BIN;
static char TMP[4096], LOG[1 << 16];

/* Runs `diffadapt ARGS` with stderr merged into LOG; returns the exit code. */
static int run_cmd(const char *args) {
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", BIN, args);
    return cli_run(cmd, LOG, sizeof LOG);
}

/* How many of the stages named "translate ..." in OUT/results.json had the given source. */
static int translate_stages(const char *out, const char *source) {
    char path[4300];
    snprintf(path, sizeof path, "%s/results.json", out);
    char *js = td_slurp(path, NULL);
    cJSON *root = js ? cJSON_Parse(js) : NULL;
    int n = 0;
    const cJSON *st;
    cJSON_ArrayForEach(st, cJSON_GetObjectItemCaseSensitive(root, "stages")) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(st, "name"), *src = cJSON_GetObjectItemCaseSensitive(st, "source");
        n += cJSON_IsString(name) && !strncmp(name->valuestring, "translate", 9) && cJSON_IsString(src) &&
             !strcmp(src->valuestring, source);
    }
    cJSON_Delete(root);
    free(js);
    return n;
}

/* settings.model_ratio of OUT/results.json (NAN when absent), and whether OUT/report.md's
 * settings table has the model_ratio row with this run's value. */
static double recorded_ratio(const char *out, const char *row) {
    char path[4300];
    snprintf(path, sizeof path, "%s/results.json", out);
    char *js = td_slurp(path, NULL);
    cJSON *root = js ? cJSON_Parse(js) : NULL;
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "settings"), "model_ratio");
    double v = cJSON_IsNumber(r) ? r->valuedouble : NAN;
    cJSON_Delete(root);
    free(js);
    snprintf(path, sizeof path, "%s/report.md", out);
    char *md = td_slurp(path, NULL);
    if (!md || !strstr(md, row)) v = NAN;
    free(md);
    return v;
}

/* The first cache file whose name starts with stem, into path; false when there is none. */
static bool cache_file(const char *cache, const char *stem, char *path, size_t len) {
    DIR *d = opendir(cache);
    bool found = false;
    for (struct dirent *e; d && !found && (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (!strncmp(e->d_name, stem, strlen(stem)) && n > 12 && !strcmp(e->d_name + n - 12, ".safetensors")) {
            snprintf(path, len, "%s/%s", cache, e->d_name);
            found = true;
        }
    }
    if (d) closedir(d);
    return found;
}

/* The `images` of every cache file whose name starts with "adapted-": their count, and whether
 * the first two differ. */
static int adapted_entries(const char *cache, bool *differ) {
    DIR *d = opendir(cache);
    char paths[4][4400];
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "adapted-", 8) || len < 12 || strcmp(e->d_name + len - 12, ".safetensors")) continue;
        if (n < 4) snprintf(paths[n], sizeof paths[n], "%s/%s", cache, e->d_name);
        n++;
    }
    if (d) closedir(d);
    *differ = false;
    if (n >= 2) {
        st_file a, b;
        char err[512];
        if (st_open(paths[0], &a, err, sizeof err) == 0) {
            if (st_open(paths[1], &b, err, sizeof err) == 0) {
                const st_tensor_info *ta = st_find(&a, "images"), *tb = st_find(&b, "images");
                *differ = ta && tb && ta->end - ta->begin == tb->end - tb->begin &&
                          memcmp(a.data + ta->begin, b.data + tb->begin, ta->end - ta->begin) != 0;
                st_close(&b);
            }
            st_close(&a);
        }
    }
    return n;
}

int main(void) {
    BIN = getenv("DA_BIN");
    if (!BIN || access(BIN, X_OK)) tu_skip("DA_BIN is not set to the diffadapt binary");
    if (access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK) != 0)
        tu_skip("/usr/share/datasets/fashion-mnist is absent (apt-get install dataset-fashion-mnist)");
    td_make(TMP, sizeof TMP, "exp_ratio");
    char out[4200], out1[4200], out0[4200], cache[4200], args[16384];
    td_path(out, sizeof out, TMP, "default");
    td_path(out1, sizeof out1, TMP, "ratio1");
    td_path(out0, sizeof out0, TMP, "ratio0");
    td_path(cache, sizeof cache, TMP, "cache");

    snprintf(args, sizeof args, "experiment --smoke --out '%s' --cache '%s' --threads 2", out, cache);
    int rc = run_cmd(args);
    CHECK(rc == 0, "default smoke run: exit %d:\n%s", rc, LOG);
    snprintf(args, sizeof args, "experiment --smoke --model-ratio 1 --out '%s' --cache '%s' --threads 2", out1, cache);
    rc = run_cmd(args);
    CHECK(rc == 0, "--model-ratio 1: exit %d", rc);
    CHECK(translate_stages(out1, "cache") == 2, "--model-ratio 1 must re-use the default run's translations");
    char p1[4400], p2[4400];
    snprintf(p1, sizeof p1, "%s/metrics.csv", out);
    snprintf(p2, sizeof p2, "%s/metrics.csv", out1);
    size_t l1 = 0, l2 = 0;
    char *m1 = td_slurp(p1, &l1), *m2 = td_slurp(p2, &l2);
    CHECK(m1 && m2 && l1 == l2 && !memcmp(m1, m2, l1) && l1 > 100, "--model-ratio 1: metrics.csv differs from the default run's");
    free(m1);
    free(m2);
    CHECK(recorded_ratio(out1, "| model_ratio: r·ε_ft + (1−r)·ε_orig when translating | 1 | 1 | same |") == 1.0,
          "--model-ratio 1 is not recorded in results.json and report.md");

    /* a given fine-tuned model: the default run's own, so the translations are the cached ones */
    char ftp[4400], outf[4200];
    td_path(outf, sizeof outf, TMP, "given");
    CHECK(cache_file(cache, "finetuned-", ftp, sizeof ftp), "no fine-tuned model in the cache");
    snprintf(args, sizeof args, "experiment --smoke --finetuned '%s' --out '%s' --cache '%s' --threads 2", ftp, outf, cache);
    rc = run_cmd(args);
    CHECK(rc == 0 && strstr(LOG, "stage fine-tuning") && strstr(LOG, "(given)"), "--finetuned: exit %d:\n%s", rc, LOG);
    CHECK(translate_stages(outf, "cache") == 2, "--finetuned with the run's own model must re-use its translations");
    snprintf(args, sizeof args, "experiment --smoke --finetuned '%s' --out '%s' --cache '%s' --force", p1, outf, cache);
    rc = run_cmd(args);
    CHECK(rc == 1 && strstr(LOG, "--finetuned"), "--finetuned with a file that is no model: exit %d:\n%s", rc, LOG);

    snprintf(args, sizeof args, "experiment --smoke --model-ratio 0 --out '%s' --cache '%s' --threads 2", out0, cache);
    rc = run_cmd(args);
    CHECK(rc == 0, "--model-ratio 0: exit %d", rc);
    CHECK(translate_stages(out0, "computed") == 2, "--model-ratio 0 must translate again");
    bool differ = false;
    int n = adapted_entries(cache, &differ);
    CHECK(n == 2 && differ, "%d adapted sets in the cache (expected 2, one per ratio), %s", n, differ ? "different" : "not different");
    CHECK(recorded_ratio(out0, "| model_ratio: r·ε_ft + (1−r)·ε_orig when translating | 1 | 0 | set on the command line |") == 0.0,
          "--model-ratio 0 is not recorded in results.json and report.md");

    snprintf(args, sizeof args, "experiment --smoke --model-ratio 1.5 --out '%s' --cache '%s'", out0, cache);
    rc = run_cmd(args);
    CHECK(rc == 2 && strstr(LOG, "--model-ratio 1.5 is out of range"), "--model-ratio 1.5: exit %d: %s", rc, LOG);
    td_remove(TMP);
    return tu_finish("test_experiment_ratio");
}
