/* test_experiment.c — `diffadapt experiment` end to end: a --quick run (--smoke under sanitizers,
 * DA_SANITIZED=1) on Fashion-MNIST writes every output with sane contents, refuses to overwrite
 * without --force and re-uses its cache; the CelebA path runs on tiny random files. */
#include <cjson/cJSON.h>
#include <stb_image_write.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "data/image.h"
#include "nn/clip.h"
#include "nn/unet.h"
#include "tensor/rng.h"
#include "test_util.h"
#include "text/bpe.h"
#include "tmpdir.h"
#include "train/classifier_train.h"
#include "train/miniclip_train.h"

static const char *BIN;
static char TMP[4096];

/* Runs the command line, output into log; returns the exit status. */
static int run_cmd(const char *args, const char *log) {
    char cmd[65536];
    snprintf(cmd, sizeof cmd, "'%s' %s > '%s' 2>&1", BIN, args, log);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void show_log(const char *log) {
    char *s = td_slurp(log, NULL);
    if (s) {
        size_t n = strlen(s);
        fprintf(stderr, "---- %s (last 3000 bytes)\n%s\n----\n", log, n > 3000 ? s + n - 3000 : s);
    }
    free(s);
}

static const char *TRAIN_NAMES[2] = {"original", "adapted"};
#define N_EVAL 6
static const char *EVAL_NAMES[N_EVAL] = {"source",         "target-heldout", "target-hatching",
                                         "target-stipple", "validation",     "target-self"};

static int name_index(const char *s, const char **names, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* Every output of a run in `out`; seeds and epochs as the run used them. */
static void check_outputs(const char *out, int seeds, int epochs, int img_c) {
    char path[4200];
    /* metrics.csv: the header, one row per (train set, seed, epoch, eval set) */
    snprintf(path, sizeof path, "%s/metrics.csv", out);
    char *csv = td_slurp(path, NULL);
    CHECK(csv != NULL, "metrics.csv is missing");
    double sum[2][N_EVAL];
    int count[2][N_EVAL];
    memset(sum, 0, sizeof sum);
    memset(count, 0, sizeof count);
    int rows = 0, bad = 0;
    if (csv) {
        char *save = NULL, *line = strtok_r(csv, "\n", &save);
        CHECK(line && strcmp(line, DA_METRICS_HEADER) == 0, "metrics.csv header: %s", line ? line : "(none)");
        for (line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            char tr[64], ev[64];
            int seed, epoch;
            double loss, tacc, acc;
            rows++;
            if (sscanf(line, "%63[^,],%d,%d,%lf,%lf,%63[^,],%lf", tr, &seed, &epoch, &loss, &tacc, ev, &acc) != 7) {
                bad++;
                continue;
            }
            int t = name_index(tr, TRAIN_NAMES, 2), k = name_index(ev, EVAL_NAMES, N_EVAL);
            if (t < 0 || k < 0 || seed < 0 || seed >= seeds || epoch < 1 || epoch > epochs || !(acc >= 0 && acc <= 100) ||
                !(tacc >= 0 && tacc <= 100) || !isfinite(loss)) {
                bad++;
                continue;
            }
            if (epoch == epochs) {
                sum[t][k] += acc;
                count[t][k]++;
            }
        }
        free(csv);
    }
    CHECK(rows == 2 * seeds * epochs * N_EVAL, "metrics.csv has %d rows, expected %d", rows, 2 * seeds * epochs * N_EVAL);
    CHECK(bad == 0, "%d malformed metrics rows", bad);

    /* results.json: every train × eval set, last and best epoch, consistent with metrics.csv */
    snprintf(path, sizeof path, "%s/results.json", out);
    char *js = td_slurp(path, NULL);
    cJSON *root = js ? cJSON_Parse(js) : NULL;
    CHECK(root != NULL, "results.json does not parse");
    if (root) {
        CHECK(num(root, "n_seeds") == seeds && num(root, "epochs") == epochs, "results.json n_seeds/epochs");
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(root, "results");
        for (int t = 0; t < 2; t++)
            for (int k = 0; k < N_EVAL; k++) {
                const cJSON *o = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(res, TRAIN_NAMES[t]),
                                                                  EVAL_NAMES[k]);
                const cJSON *last = cJSON_GetObjectItemCaseSensitive(o, "last"),
                            *best = cJSON_GetObjectItemCaseSensitive(o, "best");
                double lm = num(last, "mean"), ls = num(last, "std"), bm = num(best, "mean"), be = num(best, "epoch");
                CHECK(num(o, "n_seeds") == seeds, "%s/%s n_seeds", TRAIN_NAMES[t], EVAL_NAMES[k]);
                CHECK(lm >= 0 && lm <= 100 && ls >= 0 && num(last, "epoch") == epochs, "%s/%s last %g ± %g",
                      TRAIN_NAMES[t], EVAL_NAMES[k], lm, ls);
                CHECK(bm >= lm - 1e-9 && bm <= 100 && be >= 1 && be <= epochs && num(best, "std") >= 0,
                      "%s/%s best %g at epoch %g (last %g)", TRAIN_NAMES[t], EVAL_NAMES[k], bm, be, lm);
                CHECK(count[t][k] == seeds && fabs(lm - sum[t][k] / seeds) < 1e-3,
                      "%s/%s: results.json mean %g, metrics.csv mean %g", TRAIN_NAMES[t], EVAL_NAMES[k], lm,
                      count[t][k] ? sum[t][k] / count[t][k] : NAN);
            }
        const cJSON *gain = cJSON_GetObjectItemCaseSensitive(root, "gain");
        for (int k = 0; k <= N_EVAL; k++) {
            const char *name = k < N_EVAL ? EVAL_NAMES[k] : "target-panel-mean";
            const cJSON *g = cJSON_GetObjectItemCaseSensitive(gain, name);
            const cJSON *ci = cJSON_GetObjectItemCaseSensitive(g, "ci95");
            double lo = cJSON_GetArraySize(ci) == 2 ? cJSON_GetArrayItem(ci, 0)->valuedouble : NAN;
            double hi = cJSON_GetArraySize(ci) == 2 ? cJSON_GetArrayItem(ci, 1)->valuedouble : NAN;
            double m = num(g, "mean");
            CHECK(isfinite(m) && lo <= m + 1e-9 && m <= hi + 1e-9, "gain %s %g [%g, %g]", name, m, lo, hi);
        }
        const cJSON *stages = cJSON_GetObjectItemCaseSensitive(root, "stages");
        CHECK(cJSON_GetArraySize(stages) >= 8, "results.json lists %d stages", cJSON_GetArraySize(stages));
        const cJSON *s;
        cJSON_ArrayForEach(s, stages) CHECK(num(s, "seconds") >= 0, "stage seconds");
    }
    cJSON_Delete(root);
    free(js);

    /* report.md: the tables and the reading */
    snprintf(path, sizeof path, "%s/report.md", out);
    char *md = td_slurp(path, NULL);
    CHECK(md != NULL, "report.md is missing");
    if (md) {
        CHECK(strstr(md, "| trained on | source | target-heldout | target-hatching | target-stipple | validation | "
                         "target-self |") != NULL, "report.md has the table");
        CHECK(strstr(md, "| **target panel (mean of the three)** |") != NULL, "report.md has the panel mean gain");
        CHECK(strstr(md, "| original |") && strstr(md, "| adapted |"), "report.md has both training sets");
        CHECK(strstr(md, "## Gain from adaptation") && strstr(md, "paired t-interval"), "report.md has the gain");
        CHECK(strstr(md, "## Stages and wall time") && strstr(md, "fine-tuning"), "report.md has the timings");
        CHECK(strstr(md, "## What the numbers show") != NULL, "report.md says what the numbers show");
        CHECK(strstr(md, "| epoch |") != NULL, "report.md has the per-epoch tables");
    }
    free(md);

    /* PNGs decode */
    const char *pngs[] = {"accuracy_original.png", "accuracy_adapted.png", "examples.png", "examples_source.png",
                          "examples_adapted.png", "examples_target_heldout.png", "examples_target_self.png"};
    for (int i = 0; i < 7; i++) {
        snprintf(path, sizeof path, "%s/%s", out, pngs[i]);
        float *px = NULL;
        int c = 0, h = 0, w = 0;
        char err[512];
        int rc = da_image_read(path, 0, &px, &c, &h, &w, err, sizeof err);
        CHECK(rc == 0 && h >= 8 && w >= 8, "%s: %s", pngs[i], rc ? err : "too small");
        if (rc == 0 && i >= 2) CHECK(c == img_c, "%s has %d channels, expected %d", pngs[i], c, img_c);
        if (rc == 0 && i < 2) {
            /* a plot is not blank */
            int64_t n = (int64_t)c * h * w, dark = 0;
            for (int64_t j = 0; j < n; j++) dark += px[j] < 0;
            CHECK(dark > 0 && dark < n, "%s looks blank", pngs[i]);
        }
        free(px);
    }
}

/* ---- Fashion-MNIST ------------------------------------------------------------------------- */

static void test_fashion(void) {
    if (access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK) != 0) {
        printf("SKIPPED the Fashion-MNIST run: /usr/share/datasets/fashion-mnist is absent "
               "(apt-get install dataset-fashion-mnist)\n");
        return;
    }
    const char *san = getenv("DA_SANITIZED");
    bool smoke = san && *san && strcmp(san, "0") != 0;
    const char *level = smoke ? "--smoke" : "--quick";
    int seeds = 2, epochs = smoke ? 2 : 3;
    char out[4200], cache[4200], log[4200], args[16384];
    td_path(out, sizeof out, TMP, "fashion");
    td_path(cache, sizeof cache, TMP, "cache");
    td_path(log, sizeof log, TMP, "fashion.log");
    snprintf(args, sizeof args, "experiment %s --out '%s' --cache '%s' --threads 2", level, out, cache);
    int rc = run_cmd(args, log);
    CHECK(rc == 0, "experiment %s exited with %d", level, rc);
    if (rc != 0) {
        show_log(log);
        return;
    }
    check_outputs(out, seeds, epochs, 1);

    /* the outputs of a run are kept unless --force */
    rc = run_cmd(args, log);
    char *s = td_slurp(log, NULL);
    CHECK(rc == 1 && s && strstr(s, "--force"), "a second run without --force must refuse (exit %d)", rc);
    free(s);
    /* with --force every model stage comes from the cache */
    snprintf(args, sizeof args, "experiment %s --force --out '%s' --cache '%s' --threads 2", level, out, cache);
    rc = run_cmd(args, log);
    CHECK(rc == 0, "experiment %s --force exited with %d", level, rc);
    char path[4300];
    snprintf(path, sizeof path, "%s/results.json", out);
    char *js = td_slurp(path, NULL);
    cJSON *root = js ? cJSON_Parse(js) : NULL;
    int cached = 0;
    const cJSON *st;
    cJSON_ArrayForEach(st, cJSON_GetObjectItemCaseSensitive(root, "stages")) {
        const cJSON *src = cJSON_GetObjectItemCaseSensitive(st, "source");
        cached += cJSON_IsString(src) && strcmp(src->valuestring, "cache") == 0;
    }
    CHECK(cached >= 3, "the re-run took %d stages from the cache (fine-tuning and both translations at least)", cached);
    cJSON_Delete(root);
    free(js);
    if (rc == 0) check_outputs(out, seeds, epochs, 1);
}

/* ---- CelebA layout, tiny random models ------------------------------------------------------ */

/* A tiny CelebA folder: 16 RGB images (half JPEG, half PNG content, CelebA names), attributes, partition. */
static void make_celeba(const char *dir) {
    char img[4200];
    mkdir(dir, 0755);
    td_path(img, sizeof img, dir, "img_align_celeba");
    mkdir(img, 0755);
    da_rng r;
    da_rng_init(&r, 7);
    char attr[4096] = "16\nSmiling Male Young\n", part[4096] = "";
    for (int i = 1; i <= 16; i++) {
        unsigned char px[24 * 20 * 3];
        for (int j = 0; j < 24 * 20 * 3; j++) px[j] = (unsigned char)(da_rng_u64(&r) & 0xff);
        char name[32], path[4300];
        snprintf(name, sizeof name, "%06d.jpg", i);
        td_path(path, sizeof path, img, name);
        int ok = i % 2 ? stbi_write_jpg(path, 20, 24, 3, px, 90) : stbi_write_png(path, 20, 24, 3, px, 20 * 3);
        CHECK(ok, "writing %s", path);
        char row[128];
        snprintf(row, sizeof row, "%s %d %d 1\n", name, i % 3 ? 1 : -1, i % 2 ? 1 : -1);
        strcat(attr, row);
        /* 10 train, 2 valid, 4 test */
        snprintf(row, sizeof row, "%s %d\n", name, i <= 10 ? 0 : i <= 12 ? 1 : 2);
        strcat(part, row);
    }
    td_write_text(dir, "list_attr_celeba.txt", attr);
    td_write_text(dir, "list_eval_partition.txt", part);
}

/* A tiny UNet for 16x16x3 images: weights without a config (as a foreign checkpoint) + a YAML config. */
static void make_unet(const char *model_path, const char *config_path) {
    const char *yaml = "data:\n    image_size: 16\n    channels: 3\n"
                       "model:\n    type: \"simple\"\n    in_channels: 3\n    out_ch: 3\n    ch: 32\n"
                       "    ch_mult: [1, 2]\n    num_res_blocks: 1\n    attn_resolutions: [8]\n    dropout: 0.0\n"
                       "    var_type: fixedlarge\n    ema_rate: 0.999\n    ema: True\n    resamp_with_conv: True\n"
                       "diffusion:\n    beta_schedule: linear\n    beta_start: 0.0001\n    beta_end: 0.02\n"
                       "    num_diffusion_timesteps: 1000\n";
    FILE *f = fopen(config_path, "w");
    CHECK(f && fputs(yaml, f) >= 0 && fclose(f) == 0, "writing %s", config_path);
    da_unet_config c;
    da_unet_config_default(&c);
    char err[1024];
    CHECK(da_unet_config_load(config_path, &c, err, sizeof err) == 0, "%s", err);
    da_unet m;
    CHECK(da_unet_init(&m, &c, 3, err, sizeof err) == 0, "%s", err);
    CHECK(da_params_save(&m.params, model_path, NULL, err, sizeof err) == 0, "%s", err);
    da_unet_free(&m);
}

/* A tiny random CLIP in the Hugging Face layout: config.json, model.safetensors, vocab.json, merges.txt. */
static void make_clip(const char *dir) {
    mkdir(dir, 0755);
    char err[1024];
    char *merges = da_miniclip_learn_merges(40);
    da_bpe *bpe = merges ? da_bpe_from_openai(merges, strlen(merges), 1 << 30, err, sizeof err) : NULL;
    CHECK(bpe != NULL, "vocabulary: %s", err);
    if (!bpe) {
        free(merges);
        return;
    }
    td_write_text(dir, "merges.txt", merges);
    cJSON *v = cJSON_CreateObject();
    for (int i = 0; i < da_bpe_vocab_size(bpe); i++)
        if (da_bpe_token(bpe, i)) cJSON_AddNumberToObject(v, da_bpe_token(bpe, i), i);
    char *vj = cJSON_PrintUnformatted(v);
    td_write_text(dir, "vocab.json", vj);
    free(vj);
    cJSON_Delete(v);
    da_clip_config c;
    da_clip_config_default(&c);
    c.image_size = 16;
    c.patch_size = 8;
    c.channels = 3;
    c.vision_width = c.text_width = 32;
    c.vision_layers = c.text_layers = 1;
    c.vision_heads = c.text_heads = 2;
    c.vision_mlp = c.text_mlp = 64;
    c.vocab_size = da_bpe_vocab_size(bpe);
    c.embed_dim = 16;
    da_clip m;
    CHECK(da_clip_init(&m, &c, 5, err, sizeof err) == 0, "%s", err);
    char *cj = da_clip_config_to_json(&c);
    td_write_text(dir, "config.json", cj);
    free(cj);
    char path[4300];
    td_path(path, sizeof path, dir, "model.safetensors");
    CHECK(da_params_save(&m.params, path, NULL, err, sizeof err) == 0, "%s", err);
    da_clip_free(&m);
    da_bpe_free(bpe);
    free(merges);
}

static void test_celeba(void) {
    char data[4200], clip[4200], model[4200], config[4200], out[4200], log[4200], args[40000];
    td_path(data, sizeof data, TMP, "celeba");
    td_path(clip, sizeof clip, TMP, "clip-hf");
    td_path(model, sizeof model, TMP, "unet.safetensors");
    td_path(config, sizeof config, TMP, "celeba.yml");
    td_path(out, sizeof out, TMP, "celeba-out");
    td_path(log, sizeof log, TMP, "celeba.log");
    make_celeba(data);
    make_unet(model, config);
    make_clip(clip);
    const char *common = "--size 16 --train-n 8 --test-n 4 --val-n 2 --seeds 2 --epochs 2 --ft-images 2 --ft-epochs 1 "
                         "--inv-steps 3 --train-steps 2 --gen-steps 2 --t0 300 --threads 2";
    snprintf(args, sizeof args, "experiment --data 'celeba:%s' --attr Male --clip '%s' --model '%s' --config '%s' %s "
             "--out '%s'", data, clip, model, config, common, out);
    int rc = run_cmd(args, log);
    CHECK(rc == 0, "the CelebA experiment exited with %d", rc);
    if (rc != 0) show_log(log);
    else check_outputs(out, 2, 2, 3);
    char path[4300];
    snprintf(path, sizeof path, "%s/results.json", out);
    char *js = td_slurp(path, NULL);
    CHECK(js && strstr(js, "celeba:") && strstr(js, "\"attr\":\t\"Male\""), "results.json names the CelebA data");
    free(js);

    /* clear errors for what a user may get wrong */
    snprintf(args, sizeof args, "experiment --data 'celeba:%s' --clip '%s' --model '%s' --config '%s' %s --out '%s/x'",
             data, clip, model, config, common, TMP);
    rc = run_cmd(args, log);
    char *s = td_slurp(log, NULL);
    CHECK(rc == 1 && s && strstr(s, "--attr"), "missing --attr is named (exit %d)", rc);
    free(s);
    snprintf(args, sizeof args, "experiment --data 'celeba:%s' --attr Male --clip '%s' --model '%s' %s --out '%s/y'",
             data, clip, model, common, TMP);
    rc = run_cmd(args, log);
    s = td_slurp(log, NULL);
    CHECK(rc == 1 && s && strstr(s, "config"), "a model without its config is reported (exit %d)", rc);
    free(s);
    snprintf(args, sizeof args, "experiment --task 3 --out '%s/z'", TMP);
    rc = run_cmd(args, log);
    s = td_slurp(log, NULL);
    CHECK(rc != 0 && s && strstr(s, "--task"), "a one-class task is refused (exit %d)", rc);
    free(s);
}

int main(void) {
    BIN = getenv("DA_BIN");
    if (!BIN || !*BIN) tu_skip("DA_BIN is not set (run through ctest)");
    td_make(TMP, sizeof TMP, "experiment");
    test_celeba();
    test_fashion();
    td_remove(TMP);
    return tu_finish("test_experiment");
}
