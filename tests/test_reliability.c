/* test_reliability.c — hostile inputs end in a clear message and exit 1 or 2, never a crash, a
 * hang, silent NaN or a lost user file: oversized and inconsistent model configs, YAML alias
 * bombs, NaN weights, outputs that would overwrite the user's files, bad options. */
#include <dirent.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_run.h"
#include "data/dataset.h"
#include "io/safetensors.h"
#include "nn/clip.h"
#include "nn/cnn.h"
#include "nn/unet.h"
#include "tensor/rng.h"
#include "tensor/tensor.h"
#include "test_util.h"
#include "tmpdir.h"
#include "util/atomic.h"
#include "util/progress.h"

static char DIR_[4096], CMD[16384], OUT[16384], ERR[2048];
static const char *BIN;

/* Runs `diffadapt ARGS` (cwd = the temp folder), stdout+stderr into OUT; returns the exit code
 * (-1 for a crash: a signal is never an acceptable answer). */
static int run(const char *fmt, ...) {
    char args[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(CMD, sizeof CMD, "cd '%s' && %s 2>&1", DIR_, args);
    return cli_run(CMD, OUT, sizeof OUT);
}

static const char *path_of(const char *name) {
    static char buf[4][4200];
    static int k;
    k = (k + 1) % 4;
    return td_path(buf[k], sizeof buf[k], DIR_, name);
}

static bool exists(const char *name) {
    struct stat st;
    return lstat(path_of(name), &st) == 0;
}

static bool holds(const char *name, const char *text) {
    char *s = td_slurp(path_of(name), NULL);
    bool same = s && !strcmp(s, text);
    free(s);
    return same;
}

/* 24 images 8x8x1 with labels 0/1. */
static void write_data(const char *name) {
    float img[24 * 64];
    int64_t labels[24];
    da_rng r;
    da_rng_init(&r, 3);
    for (int i = 0; i < 24; i++) {
        int y0 = (int)da_rng_int(&r, 4), x0 = (int)da_rng_int(&r, 4);
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++) img[i * 64 + y * 8 + x] = (y >= y0 && y < y0 + 4 && x >= x0 && x < x0 + 4) ? 1.0f : -1.0f;
        labels[i] = i % 2;
    }
    st_writer *w = st_writer_new();
    st_writer_add_f32(w, "images", DA_SHAPE(24, 1, 8, 8), img);
    st_writer_add_i64(w, "labels", DA_SHAPE(24), labels);
    if (st_writer_save(w, path_of(name), ERR, sizeof ERR)) { fprintf(stderr, "%s\n", ERR); exit(2); }
    st_writer_free(w);
}

/* Runs fn in a child limited to 4 GiB of address space (not under the sanitizers) and 60 s: a
 * test of "no unbounded memory, no hang" must not take the machine down when it fails. Returns
 * fn's result, or -1. */
static int in_child(int (*fn)(void)) {
    fflush(NULL);
    pid_t p = fork();
    if (p == 0) {
        struct rlimit rl = {4ul << 30, 4ul << 30};
        if (!getenv("DA_SANITIZED")) setrlimit(RLIMIT_AS, &rl);   /* ASan reserves terabytes of shadow */
        alarm(60);
        _exit(fn());
    }
    int st = -1;
    waitpid(p, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define TINY "--ch 32 --ch-mult 1,1 --num-res-blocks 1 --attn 4 --batch 6 --warmup 2 --lr 1e-3 --threads 1"

/* ---- model sizes and configs ------------------------------------------------------------ */

static void test_unet_configs(void) {
    da_unet_config c;
    da_unet_config_default(&c);
    c.ch = 999999968;   /* a multiple of 32: passed the old checks, then ch*mult overflowed int */
    CHECK(da_unet_config_validate(&c, ERR, sizeof ERR) == -1 && strstr(ERR, "ch 999999968"), "huge ch: %s", ERR);
    da_unet_config_default(&c);
    c.ch = 4096;
    c.ch_mult[0] = 64;   /* within each bound, but ~10^12 parameters: refused by the memory limit */
    CHECK(da_unet_config_validate(&c, ERR, sizeof ERR) == -1 && strstr(ERR, "GiB") && strstr(ERR, "DIFFADAPT_MAX_GIB"),
          "memory limit: %s", ERR);
    setenv("DIFFADAPT_MAX_GIB", "100000", 1);   /* the user can raise the limit */
    CHECK(da_unet_config_validate(&c, ERR, sizeof ERR) == 0, "DIFFADAPT_MAX_GIB=100000 did not raise the limit: %s", ERR);
    unsetenv("DIFFADAPT_MAX_GIB");
    da_unet_config_default(&c);
    c.resolution = 4096;
    c.n_levels = 1;
    c.attn_resolutions[0] = 4096;   /* one attention map of 2.8e14 floats */
    CHECK(da_unet_config_validate(&c, ERR, sizeof ERR) == -1 && strstr(ERR, "attention map"), "attention memory: %s", ERR);
    da_unet_config_default(&c);
    CHECK(da_unet_config_validate(&c, ERR, sizeof ERR) == 0, "default config refused: %s", ERR);
    da_unet m;
    CHECK(da_unet_init(&m, &c, 0, ERR, sizeof ERR) == 0 && da_unet_config_num_params(&c) == da_unet_num_params(&m),
          "counted %lld parameters, built %lld", (long long)da_unet_config_num_params(&c), (long long)da_unet_num_params(&m));
    da_unet_free(&m);
    c.attn_resolutions[0] = 7;
    CHECK(da_unet_config_validate(&c, ERR, sizeof ERR) == -1 && strstr(ERR, "never occurs") && strstr(ERR, "32, 16, 8"),
          "attention at 7: %s", ERR);

    /* the same through the commands: from a YAML file, from a model file's own metadata */
    td_write_text(DIR_, "huge.yml", "model:\n  ch: 999999968\n  ch_mult: [1, 1]\n  num_res_blocks: 1\n  attn_resolutions: []\n"
                                    "data:\n  image_size: 8\n  channels: 1\n");
    int rc = run("'%s' sample --model a.safetensors --config huge.yml --out x.png", BIN);
    CHECK(rc == 1 && strstr(OUT, "ch 999999968"), "sample with a huge ch: exit %d: %s", rc, OUT);
    rc = run("'%s' train-diffusion --data d.safetensors --config huge.yml --out x.safetensors --steps 1", BIN);
    CHECK(rc == 1 && strstr(OUT, "ch 999999968"), "train-diffusion with a huge ch: exit %d: %s", rc, OUT);
    st_writer *w = st_writer_new();
    float v = 0;
    st_writer_add_f32(w, "conv_in.bias", 1, (const int64_t[]){1}, &v);
    st_writer_set_meta(w, "config", "{\"model\": {\"ch\": 999999968, \"ch_mult\": [1,1], \"num_res_blocks\": 1, "
                                    "\"attn_resolutions\": []}, \"data\": {\"image_size\": 8}}");
    CHECK(st_writer_save(w, path_of("huge.safetensors"), ERR, sizeof ERR) == 0, "%s", ERR);
    st_writer_free(w);
    rc = run("'%s' sample --model huge.safetensors --out x.png", BIN);
    CHECK(rc == 1 && strstr(OUT, "ch 999999968"), "a model file claiming a huge ch: exit %d: %s", rc, OUT);
    /* 2^30 is an integer: say that it is too large */
    td_write_text(DIR_, "big.yml", "model:\n  ch: 1073741824\n");
    rc = run("'%s' sample --model a.safetensors --config big.yml --out x.png", BIN);
    CHECK(rc == 1 && strstr(OUT, "too large") && !strstr(OUT, "must be an integer"), "ch 2^30: exit %d: %s", rc, OUT);
    rc = run("'%s' train-diffusion --data d.safetensors --out x.safetensors " TINY " --attn 7 --steps 1", BIN);
    CHECK(rc == 1 && strstr(OUT, "never occurs"), "--attn 7: exit %d: %s", rc, OUT);
    rc = run("'%s' sample --model a.safetensors --config . --out x.png", BIN);
    CHECK(rc == 1 && strstr(OUT, "is a folder"), "--config DIR: exit %d: %s", rc, OUT);
}

/* "billion laughs": 10 aliases of 10 aliases ... 10^9 scalars from 539 bytes */
static int load_bomb(void) {
    da_unet_config c;
    da_unet_config_default(&c);
    int rc = da_unet_config_load(path_of("bomb.yml"), &c, ERR, sizeof ERR);
    return rc == -1 && strstr(ERR, "more than") ? 0 : 1;
}

static void test_yaml_bomb(void) {
    char text[2048];
    size_t n = (size_t)snprintf(text, sizeof text, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i < 9; i++) {
        n += (size_t)snprintf(text + n, sizeof text - n, "a%d: &a%d [", i, i);
        for (int k = 0; k < 10; k++) n += (size_t)snprintf(text + n, sizeof text - n, "%s*a%d", k ? ", " : "", i - 1);
        n += (size_t)snprintf(text + n, sizeof text - n, "]\n");
    }
    snprintf(text + n, sizeof text - n, "model:\n  ch: 32\n  junk: *a8\n");
    td_write_text(DIR_, "bomb.yml", text);
    double t0 = da_now();
    int rc = in_child(load_bomb);
    double secs = da_now() - t0;
    CHECK(rc == 0, "the YAML bomb was not refused (child status %d)", rc);
    CHECK(secs < 5, "refusing the YAML bomb took %.1f s", secs);
}

/* ---- CLIP files --------------------------------------------------------------------------- */

static int load_lying_clip(void) {
    da_clip m;
    int rc = da_clip_load(&m, path_of("liar_clip.safetensors"), ERR, sizeof ERR);
    if (rc == 0) da_clip_free(&m);
    if (rc == 0 || !strstr(ERR, "num_hidden_layers = 1000000")) {
        fprintf(stderr, "%s\n", rc ? ERR : "loaded");
        return 1;
    }
    return 0;
}

static void test_clip_files(const char *src) {
    da_clip m;
    if (da_clip_load(&m, src, ERR, sizeof ERR)) {
        CHECK(0, "%s", ERR);
        return;
    }
    /* a config that claims a million layers over the file's 4 */
    int layers = m.cfg.text_layers;
    m.cfg.text_layers = 1000000;
    CHECK(da_clip_save(&m, path_of("liar_clip.safetensors"), NULL, ERR, sizeof ERR) == 0, "%s", ERR);
    m.cfg.text_layers = layers;
    double t0 = da_now();
    CHECK(in_child(load_lying_clip) == 0, "a CLIP config of 1,000,000 layers over 4 was not refused");
    CHECK(da_now() - t0 < 5, "refusing it took %.1f s", da_now() - t0);

    /* its vocabulary cut short: half of the merges */
    char *merges = m.bpe_merges;
    CHECK(merges != NULL, "the mini-CLIP carries its merges");
    if (merges) {
        size_t len = strlen(merges);
        char *cut = strdup(merges);
        char *nl = strchr(cut + len / 2, '\n');
        if (nl) nl[1] = 0;
        m.bpe_merges = cut;
        CHECK(da_clip_save(&m, path_of("cut_clip.safetensors"), NULL, ERR, sizeof ERR) == 0, "%s", ERR);
        m.bpe_merges = merges;
        free(cut);
        da_clip c2;
        CHECK(da_clip_load(&c2, path_of("cut_clip.safetensors"), ERR, sizeof ERR) == 0, "%s", ERR);
        da_bpe *b = da_clip_vocab(&c2, NULL, ERR, sizeof ERR);
        CHECK(!b && strstr(ERR, "cut short"), "merges cut short accepted: %s", b ? "(vocabulary made)" : ERR);
        da_bpe_free(b);
        da_clip_free(&c2);
        b = da_clip_vocab(&m, NULL, ERR, sizeof ERR);
        CHECK(b != NULL, "the whole vocabulary refused: %s", ERR);
        da_bpe_free(b);
    }
    /* the heads message names each width with its own head count */
    da_clip_config c = m.cfg;
    c.vision_heads = 3;
    CHECK(da_clip_config_validate(&c, ERR, sizeof ERR) == -1 && strstr(ERR, "(vision 128, text 128)") &&
          strstr(ERR, "heads (3, 4)"), "heads message: %s", ERR);
    da_clip_free(&m);
}

/* ---- NaN weights ---------------------------------------------------------------------------- */

static void test_nan_weights(void) {
    da_unet m;
    if (da_unet_load(&m, path_of("a.safetensors"), NULL, ERR, sizeof ERR)) {
        CHECK(0, "%s", ERR);
        return;
    }
    da_tensor *t = da_unet_param(&m, "mid.block_1.conv1.weight");
    t->data[5] = NAN;
    CHECK(da_unet_save(&m, path_of("nan_w.safetensors"), NULL, 0, ERR, sizeof ERR) == 0, "%s", ERR);
    da_unet_free(&m);
    const char *cases[] = {
        "sample --model nan_w.safetensors --n 2 --steps 3 --out n1.png",
        "sample --model nan_w.safetensors --n 2 --steps 3 --out n1.safetensors",
        "invert --model nan_w.safetensors --input d.safetensors --take 2 --t0 100 --steps 3 --out n2.safetensors",
        "edit --model a.safetensors --model-gen nan_w.safetensors --input d.safetensors --take 2 --t0 100 --inv-steps 3 "
        "--gen-steps 3 --out n3",
        "translate --model nan_w.safetensors --finetuned a.safetensors --data d.safetensors --take 2 --t0 100 --inv-steps 3 "
        "--gen-steps 3 --out n4",
    };
    const char *outs[] = {"n1.png", "n1.safetensors", "n2.safetensors", "n3", "n4"};
    for (int i = 0; i < 5; i++) {
        int rc = run("'%s' %s --threads 1", BIN, cases[i]);
        CHECK(rc == 1 && strstr(OUT, "mid.block_1.conv1.weight") && strstr(OUT, "non-finite"), "%s: exit %d: %s", cases[i], rc, OUT);
        CHECK(!exists(outs[i]), "%s: %s written", cases[i], outs[i]);
    }
}

/* finetune used to advise "lower --lr" for a NaN weight in its input model */
static void test_nan_finetune(const char *clip) {
    int rc = run("'%s' finetune --model nan_w.safetensors --clip '%s' --src-text photo --tgt-text sketch --data d.safetensors "
                 "--out nf.safetensors --images 2 --epochs 1 --t0 100 --inv-steps 3 --train-steps 2 --threads 1", BIN, clip);
    CHECK(rc == 1 && strstr(OUT, "non-finite") && !strstr(OUT, "--lr"), "finetune of a NaN model: exit %d: %s", rc, OUT);
}


/* ---- the user's files ------------------------------------------------------------------------ */

#define FAST_TR "--t0 100 --inv-steps 3 --gen-steps 3 --threads 1"

static void test_user_files(const char *clip) {
    /* a labelled folder of PNGs, as a user would have one */
    int rc = run("'%s' edit --model a.safetensors --input d.safetensors --take 4 --t0 100 --inv-steps 3 --gen-steps 3 "
                 "--out srcf --threads 1", BIN);
    CHECK(rc == 0 && exists("srcf/labels.csv"), "a labelled PNG folder: exit %d: %s", rc, OUT);
    char *labels = td_slurp(path_of("srcf/labels.csv"), NULL);
    rc = run("'%s' translate --model a.safetensors --finetuned a.safetensors --data srcf --out srcf/ " FAST_TR, BIN);
    CHECK(rc == 1 && strstr(OUT, "is the --data folder"), "--out = --data: exit %d: %s", rc, OUT);
    CHECK(labels && holds("srcf/labels.csv", labels), "--data's labels.csv was changed");
    CHECK(!exists("srcf/manifest.json"), "a manifest was written into --data");
    free(labels);

    /* a folder with the user's own labels.csv and 000000.png but no manifest: left alone, --force or not */
    mkdir(path_of("u"), 0755);
    td_write_text(DIR_, "u/labels.csv", "file,label\n000000.png,1\n");
    td_write_text(DIR_, "u/000000.png", "my own picture");
    for (int force = 0; force < 2; force++) {
        rc = run("'%s' translate --model a.safetensors --finetuned a.safetensors --data d.safetensors --take 2 --out u %s "
                 FAST_TR, BIN, force ? "--force" : "");
        CHECK(rc == 1 && strstr(OUT, "no manifest.json") && strstr(OUT, "000000.png"), "user folder%s: exit %d: %s",
              force ? " with --force" : "", rc, OUT);
        CHECK(holds("u/labels.csv", "file,label\n000000.png,1\n") && holds("u/000000.png", "my own picture"),
              "the user's files were changed%s", force ? " (--force)" : "");
    }
    /* a manifest.json that is not ours */
    mkdir(path_of("v"), 0755);
    td_write_text(DIR_, "v/manifest.json", "{\"mine\": true}\n");
    rc = run("'%s' translate --model a.safetensors --finetuned a.safetensors --data d.safetensors --take 2 --out v --force "
             FAST_TR, BIN);
    CHECK(rc == 1 && strstr(OUT, "not written by diffadapt"), "foreign manifest: exit %d: %s", rc, OUT);
    CHECK(holds("v/manifest.json", "{\"mine\": true}\n"), "a foreign manifest.json was replaced");
    /* a grid that cannot be written (a folder in the way) fails the run */
    rc = run("'%s' translate --model a.safetensors --finetuned a.safetensors --data d.safetensors --take 2 --out gx " FAST_TR, BIN);
    CHECK(rc == 0 && remove(path_of("gx/grid.png")) == 0 && mkdir(path_of("gx/grid.png"), 0755) == 0, "%s", OUT);
    rc = run("'%s' translate --model a.safetensors --finetuned a.safetensors --data d.safetensors --take 2 --out gx " FAST_TR, BIN);
    CHECK(rc == 1 && strstr(OUT, "grid.png") && strstr(OUT, "Is a directory"), "unwritable grid.png: exit %d: %s", rc, OUT);
    /* a folder of our own is still continued, and an empty one taken */
    mkdir(path_of("w"), 0755);
    rc = run("'%s' translate --model a.safetensors --finetuned a.safetensors --data d.safetensors --take 2 --out w " FAST_TR, BIN);
    CHECK(rc == 0 && exists("w/000001.png"), "empty folder: exit %d: %s", rc, OUT);
    rc = run("'%s' translate --model a.safetensors --finetuned a.safetensors --data d.safetensors --take 2 --out w " FAST_TR, BIN);
    CHECK(rc == 0 && strstr(OUT, "translated 0 images (2 skipped)"), "our own folder: exit %d: %s", rc, OUT);

    /* finetune without a checkpoint: an earlier log or grid is not overwritten without --force */
    const char *ft = "'%s' finetune --model a.safetensors --clip '%s' --src-text photo --tgt-text sketch --data d.safetensors "
                     "--out f.safetensors --images 2 --grid-images 1 --epochs 1 --t0 100 --inv-steps 3 --train-steps 2 "
                     "--threads 1";
    const char *grids[] = {"f.log.csv", "f.epoch1.png"};
    for (int i = 0; i < 2; i++) {
        td_write_text(DIR_, grids[i], "an earlier run's record");
        char cmd[8192];
        snprintf(cmd, sizeof cmd, ft, BIN, clip);
        rc = run("%s", cmd);
        CHECK(rc == 1 && strstr(OUT, grids[i]) && strstr(OUT, "--force"), "finetune over %s: exit %d: %s", grids[i], rc, OUT);
        CHECK(holds(grids[i], "an earlier run's record"), "%s overwritten", grids[i]);
        remove(path_of(grids[i]));
    }
    /* a log or grid that cannot be written (here: a folder in the way) fails the run */
    const char *blocked[] = {"f.log.csv", "f.epoch1.png"};
    for (int i = 0; i < 2; i++) {
        remove(path_of(blocked[i]));   /* the other case's run wrote it as a file */
        CHECK(mkdir(path_of(blocked[i]), 0755) == 0, "mkdir %s", blocked[i]);
        char cmd[8192];
        snprintf(cmd, sizeof cmd, ft, BIN, clip);
        rc = run("%s --force", cmd);
        CHECK(rc == 1 && strstr(OUT, blocked[i]) && strstr(OUT, "error"), "unwritable %s: exit %d: %s", blocked[i], rc, OUT);
        rmdir(path_of(blocked[i]));
    }
    char cmd[8192];
    snprintf(cmd, sizeof cmd, ft, BIN, clip);
    rc = run("%s --src-text ''", cmd);
    CHECK(rc == 2 && strstr(OUT, "--src-text"), "empty --src-text: exit %d: %s", rc, OUT);
    rc = run("%s --tgt-text photo", cmd);
    CHECK(rc == 2 && strstr(OUT, "different"), "the same texts: exit %d: %s", rc, OUT);
    rc = run("'%s' zero-shot --clip '%s' --input d.safetensors --labels a,b --template 'a photo'", BIN, clip);
    CHECK(rc == 2 && strstr(OUT, "{}"), "template without {}: exit %d: %s", rc, OUT);
}

/* ---- outputs checked before the compute, options -------------------------------------------- */

static void test_outputs_and_options(void) {
    int rc = run("'%s' train-diffusion --data d.safetensors --out '' " TINY " --steps 200", BIN);
    CHECK(rc == 1 && strstr(OUT, "empty") && !strstr(OUT, "step 200"), "--out '': exit %d: %s", rc, OUT);
    const char *cases[] = {
        "train-diffusion --data d.safetensors --out nodir/m.safetensors " TINY " --steps 200",
        "train-diffusion --data d.safetensors --out m.safetensors --log nodir/log.csv " TINY " --steps 200",
        "sample --model a.safetensors --n 2 --steps 3 --out nodir/s.safetensors",
        "invert --model a.safetensors --input d.safetensors --t0 100 --steps 3 --out nodir/l.safetensors",
    };
    for (int i = 0; i < 4; i++) {
        double t0 = da_now();
        rc = run("'%s' %s", BIN, cases[i]);
        CHECK(rc == 1 && strstr(OUT, "nodir") && strstr(OUT, "does not exist"), "%s: exit %d: %s", cases[i], rc, OUT);
        CHECK(da_now() - t0 < 2, "%s: the missing folder was found after %.1f s", cases[i], da_now() - t0);
    }
    rc = run("'%s' edit --model a.safetensors --input d.safetensors --take 1 --t0 100 --inv-steps 3 --gen-steps 3 "
             "--threads 1 --out ed/", BIN);
    CHECK(rc == 0 && exists("ed/000000.png") && exists("ed/grid.png"), "a new folder written as 'ed/': exit %d: %s", rc, OUT);
    rc = run("'%s' sample --model a.safetensors --n 1 --steps 2 --out t.png --threads -1", BIN);
    CHECK(rc == 2 && strstr(OUT, "--threads"), "--threads -1: exit %d: %s", rc, OUT);
    rc = run("'%s' sample --model a.safetensors --n 1 --steps 2 --out t.png --threads 10000", BIN);
    CHECK(rc == 0 && strstr(OUT, "--threads 10000 is more than"), "--threads 10000: exit %d: %s", rc, OUT);
    rc = run("'%s' sample --model a.safetensors --n 1 --steps 2 --out t2.png --seed 9223372036854775807", BIN);
    CHECK(rc == 2 && strstr(OUT, "out of range"), "--seed 2^63-1: exit %d: %s", rc, OUT);
}

/* ---- full disks, killed runs ------------------------------------------------------------------ */

static int count_lines_starting(const char *name, const char *prefix) {
    char *s = td_slurp(path_of(name), NULL);
    int n = 0;
    for (char *l = s; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l)) n += !strncmp(l, prefix, strlen(prefix));
    free(s);
    return n;
}

static void test_full_disk_and_resume(void) {
    int rc = run("'%s' train-diffusion --data d.safetensors --out fd.safetensors " TINY " --steps 2 --log /dev/full", BIN);
    CHECK(rc == 1 && strstr(OUT, "--log /dev/full") && strstr(OUT, "No space"), "--log on a full disk: exit %d: %s", rc, OUT);
    /* no file may grow at all: nothing is left under a final name, and the run fails */
    rc = run("trap '' XFSZ; ulimit -f 0; exec '%s' train-classifier --train d.safetensors --eval t=d.safetensors --out cf "
             "--epochs 1 --threads 1", BIN);
    CHECK(rc == 1, "train-classifier on a full disk: exit %d: %s", rc, OUT);
    CHECK(!exists("cf/metrics.csv") && !exists("cf/model.safetensors"), "files left on a full disk");

    /* a killed run: the checkpoint at step 2, log rows up to step 3, a temporary of the checkpoint */
    rc = run("'%s' train-diffusion --data d.safetensors --out r.safetensors " TINY " --steps 2 --log r.csv --log-every 1", BIN);
    CHECK(rc == 0, "%s", OUT);
    FILE *f = fopen(path_of("r.csv"), "a");
    fprintf(f, "3,0.5,1.0,0.001,10.00,1.0\n");
    fclose(f);
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    waitpid(dead, NULL, 0);
    char tmpname[128];
    snprintf(tmpname, sizeof tmpname, "r.ckpt.safetensors.da-tmp.%ld.Zz9yX8", (long)dead);
    td_write_text(DIR_, tmpname, "15 MB of a checkpoint cut short");
    rc = run("'%s' train-diffusion --data d.safetensors --out r.safetensors --resume r.ckpt.safetensors --steps 4 --threads 1 "
             "--log r.csv --log-every 1 --force", BIN);
    CHECK(rc == 0, "resume: %s", OUT);
    CHECK(!exists(tmpname), "the stale checkpoint temporary was left behind");
    for (int step = 1; step <= 4; step++) {
        char p[16];
        snprintf(p, sizeof p, "%d,", step);
        CHECK(count_lines_starting("r.csv", p) == 1, "step %d appears %d times in the resumed log", step,
              count_lines_starting("r.csv", p));
    }
    CHECK(count_lines_starting("r.csv", "step,") == 1, "the header repeats");
    /* a new run over an existing log: refused, or with --force the log starts anew */
    rc = run("'%s' train-diffusion --data d.safetensors --out r2.safetensors " TINY " --steps 2 --log r.csv", BIN);
    CHECK(rc == 1 && strstr(OUT, "--log r.csv already exists"), "a new run over an old log: exit %d: %s", rc, OUT);
    rc = run("'%s' train-diffusion --data d.safetensors --out r2.safetensors " TINY " --steps 2 --log r.csv --log-every 1 --force",
             BIN);
    CHECK(rc == 0 && count_lines_starting("r.csv", "") == 3 && count_lines_starting("r.csv", "step,") == 1,
          "a new run with --force: exit %d, %d lines", rc, count_lines_starting("r.csv", ""));
}

/* ---- kill -9 and resume ------------------------------------------------------------------------ */

static bool same_bytes(const char *a, const char *b) {
    size_t la = 0, lb = 0;
    char *x = td_slurp(path_of(a), &la), *y = td_slurp(path_of(b), &lb);
    bool same = x && y && la == lb && !memcmp(x, y, la);
    free(x);
    free(y);
    return same;
}

/* Files in the temp folder (and one level of sub-folders) named like our temporaries. */
static int temporaries(const char *sub) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/%s", DIR_, sub);
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += da_tmp_parse(e->d_name, NULL);
    if (d) closedir(d);
    return n;
}

/* Starts `diffadapt ARGS` in the background, waits until `file` appears, kills it with SIGKILL. */
static void kill_when(const char *file, const char *args) {
    int rc = run("{ '%s' %s > kill.log 2>&1 & p=$!; i=0; while [ ! -e '%s' ] && [ $i -lt 3000 ] && kill -0 $p 2>/dev/null; "
                 "do sleep 0.01; i=$((i+1)); done; kill -9 $p; wait $p; echo \"status $?\"; }", BIN, args, file);
    CHECK(rc == 0 && strstr(OUT, "status 137"), "the run was not killed mid-way (it may have finished first): %s", OUT);
}

static void test_kill_and_resume(const char *clip) {
    /* train-diffusion: killed after its first checkpoint, resumed: the same model and checkpoint */
    const char *td = "train-diffusion --data d.safetensors " TINY " --steps 400 --checkpoint-every 20 --log-every 1";
    int rc = run("'%s' %s --out k0.safetensors --log k0.csv", BIN, td);
    CHECK(rc == 0, "uninterrupted training: %s", OUT);
    char args[9000];
    snprintf(args, sizeof args, "%s --out k1.safetensors --log k1.csv", td);
    kill_when("k1.ckpt.safetensors", args);
    rc = run("'%s' train-diffusion --data d.safetensors --out k1.safetensors --resume k1.ckpt.safetensors --steps 400 "
             "--threads 1 --log k1.csv --log-every 1 --force", BIN);
    CHECK(rc == 0 && strstr(OUT, "resuming"), "resume after kill -9: %s", OUT);
    CHECK(same_bytes("k0.safetensors", "k1.safetensors"), "killed+resumed model differs from the uninterrupted one");
    CHECK(same_bytes("k0.ckpt.safetensors", "k1.ckpt.safetensors"), "killed+resumed checkpoint differs");
    CHECK(temporaries(".") == 0, "temporaries left after the resumed training");
    int rows0 = count_lines_starting("k0.csv", ""), rows1 = count_lines_starting("k1.csv", "");
    CHECK(rows0 == 401 && rows1 == 401, "log rows: uninterrupted %d, killed+resumed %d (header + 400)", rows0, rows1);
    for (int step = 1; step <= 400; step += 37) {
        char p[16];
        snprintf(p, sizeof p, "%d,", step);
        CHECK(count_lines_starting("k1.csv", p) == 1, "step %d appears %d times in the resumed log", step,
              count_lines_starting("k1.csv", p));
    }

    /* translate: killed after its first image, resumed: the same files */
    /* long enough (about 1 s) for the kill to land after the first image and before the last */
    const char *tr = "translate --model a.safetensors --finetuned k0.safetensors --data d.safetensors --batch 1 --t0 100 "
                     "--inv-steps 12 --gen-steps 12 --threads 1";
    rc = run("'%s' %s --out t0", BIN, tr);
    CHECK(rc == 0, "uninterrupted translation: %s", OUT);
    snprintf(args, sizeof args, "%s --out t1", tr);
    kill_when("t1/000000.png", args);
    rc = run("'%s' %s --out t1", BIN, tr);
    CHECK(rc == 0 && strstr(OUT, "skipped"), "resumed translation: %s", OUT);
    for (int i = 0; i < 24; i += 5) {
        char a[64], b[64];
        snprintf(a, sizeof a, "t0/%06d.png", i);
        snprintf(b, sizeof b, "t1/%06d.png", i);
        CHECK(same_bytes(a, b), "%s differs after kill and resume", b);
    }
    CHECK(same_bytes("t0/labels.csv", "t1/labels.csv") && same_bytes("t0/manifest.json", "t1/manifest.json") &&
          same_bytes("t0/grid.png", "t1/grid.png"), "labels, manifest or grid differ after kill and resume");
    CHECK(temporaries("t1") == 0, "temporaries left after the resumed translation");

    /* finetune: killed after its first epoch's checkpoint, resumed: the same model */
    char ft[8192];
    snprintf(ft, sizeof ft, "finetune --model a.safetensors --clip '%s' --src-text photo --tgt-text sketch --data d.safetensors "
             "--images 2 --grid-images 1 --epochs 8 --t0 100 --inv-steps 3 --train-steps 2 --threads 1", clip);
    rc = run("'%s' %s --out g0.safetensors", BIN, ft);
    CHECK(rc == 0, "uninterrupted fine-tuning: %s", OUT);
    snprintf(args, sizeof args, "%s --out g1.safetensors", ft);
    kill_when("g1.ckpt.safetensors", args);
    rc = run("'%s' %s --out g1.safetensors --resume", BIN, ft);
    CHECK(rc == 0 && strstr(OUT, "resuming"), "resumed fine-tuning: %s", OUT);
    CHECK(same_bytes("g0.safetensors", "g1.safetensors"), "killed+resumed fine-tuned model differs");
    CHECK(temporaries(".") == 0, "temporaries left after the resumed fine-tuning");
}

/* an IDX header that promises 9 GB over 18 bytes of pixels (found by fuzz_data) */
static int load_lying_idx(void) {
    da_dataset d;
    int rc = da_dataset_load(path_of("lie-images-idx3-ubyte"), NULL, &d, ERR, sizeof ERR);
    if (rc == 0) da_dataset_free(&d);
    if (rc == 0 || !strstr(ERR, "truncated")) {
        fprintf(stderr, "%s\n", rc ? ERR : "loaded");
        return 1;
    }
    return 0;
}

static void test_lying_idx(void) {
    const unsigned char hdr[] = {0, 0, 8, 3, 0, 0, 0x3d, 2, 0, 0, 3, 0, 0, 0, 3, 0};   /* 15,618 images of 768x768 */
    unsigned char file[sizeof hdr + 18];
    memcpy(file, hdr, sizeof hdr);
    for (int i = 0; i < 18; i++) file[sizeof hdr + i] = (unsigned char)i;
    td_write(DIR_, "lie-images-idx3-ubyte", file, sizeof file);
    CHECK(in_child(load_lying_idx) == 0, "an IDX header promising 9 GB was not refused as truncated within 4 GiB");
}

/* a classifier file whose metadata claims 7e13 weights over a few bytes */
static int load_lying_cnn(void) {
    da_cnn m;
    int rc = da_cnn_load(&m, path_of("liar_cnn.safetensors"), ERR, sizeof ERR);
    if (rc == 0) da_cnn_free(&m);
    if (rc == 0 || !strstr(ERR, "GiB")) {
        fprintf(stderr, "%s\n", rc ? ERR : "loaded");
        return 1;
    }
    return 0;
}

static void test_lying_cnn(void) {
    st_writer *w = st_writer_new();
    float v = 0;
    st_writer_add_f32(w, "conv1.bias", 1, (const int64_t[]){1}, &v);
    const char *meta[] = {"in_c", "1", "in_h", "4096", "in_w", "4096", "n_classes", "2", "c1", "32", "c2", "64", "c3", "4096",
                          "hidden", "65536"};
    for (int i = 0; i < 16; i += 2) st_writer_set_meta(w, meta[i], meta[i + 1]);
    CHECK(st_writer_save(w, path_of("liar_cnn.safetensors"), ERR, sizeof ERR) == 0, "%s", ERR);
    st_writer_free(w);
    CHECK(in_child(load_lying_cnn) == 0, "a classifier claiming 7e13 weights was not refused by the memory limit");
}

int main(void) {
    BIN = getenv("DA_BIN");
    if (!BIN) tu_skip("DA_BIN is not set to the diffadapt binary");
    const char *srcdir = getenv("DA_SOURCE_DIR");
    td_make(DIR_, sizeof DIR_, "reliab");
    write_data("d.safetensors");
    int rc = run("'%s' train-diffusion --data d.safetensors --out a.safetensors " TINY " --steps 2", BIN);
    CHECK(rc == 0, "tiny model: %s", OUT);

    test_unet_configs();
    test_yaml_bomb();
    test_lying_idx();
    test_lying_cnn();
    char clip[4200];
    snprintf(clip, sizeof clip, "%s/models/mini_clip.safetensors", srcdir ? srcdir : "..");
    test_clip_files(clip);
    test_nan_weights();
    test_nan_finetune(clip);
    test_user_files(clip);
    test_outputs_and_options();
    test_full_disk_and_resume();
    test_kill_and_resume(clip);

    td_remove(DIR_);
    return tu_finish("test_reliability");
}
