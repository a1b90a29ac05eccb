/* test_translate.c — `$DA_BIN translate` on a tiny model: count, order and labels kept, manifest,
 * two shards (run at the same time) equal one full run byte for byte, and a re-run after a kill
 * (missing outputs, a stale temporary file) completes the folder to the same bytes. */
#include <sys/wait.h>
#include <unistd.h>

#include "data/image.h"
#include "diffusion/ddim.h"
#include "io/safetensors.h"
#include "nn/unet.h"
#include "tensor/rng.h"
#include "test_util.h"
#include "tiny_unet.h"
#include "tmpdir.h"
#include "cli_run.h"

#define N 10
#define RES 8
#define BATCH 3

static char OUT[1 << 16];

static int run(const char *cmd) { return cli_run(cmd, OUT, sizeof OUT); }

/* Every listed file of dir a equals the one of dir b, byte for byte: the N images, and with
 * `extras` also labels.csv, manifest.json and grid.png. */
static void same_files(const char *what, const char *a, const char *b, bool extras) {
    const char *extra[] = {"labels.csv", "manifest.json", "grid.png"};
    int bad = 0, missing = 0;
    for (int i = 0; i < N + (extras ? 3 : 0); i++) {
        char name[64], pa[4200], pb[4200];
        if (i < N) snprintf(name, sizeof name, "%06d.png", i);
        else snprintf(name, sizeof name, "%s", extra[i - N]);
        snprintf(pa, sizeof pa, "%s/%s", a, name);
        snprintf(pb, sizeof pb, "%s/%s", b, name);
        size_t la = 0, lb = 0;
        char *ca = td_slurp(pa, &la), *cb = td_slurp(pb, &lb);
        if (!ca || !cb) {
            missing++;
            fprintf(stderr, "  %s: %s missing in %s\n", what, name, ca ? b : a);
        } else if (la != lb || memcmp(ca, cb, la)) {
            bad++;
            fprintf(stderr, "  %s: %s differs\n", what, name);
        }
        free(ca);
        free(cb);
    }
    CHECK(bad == 0 && missing == 0, "%s: %d files differ, %d missing", what, bad, missing);
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    if (d) closedir(d);
    return n;
}

int main(void) {
    const char *bin = getenv("DA_BIN");
    if (!bin || access(bin, X_OK)) tu_skip("DA_BIN is not set to the diffadapt binary");
    da_set_threads(1);
    char dir[512], model[700], ft[700], data[700], full[700], sh[700], res[700], cmd[16384], err[1024];
    td_make(dir, sizeof dir, "translate");
    td_path(model, sizeof model, dir, "m.safetensors");
    td_path(ft, sizeof ft, dir, "m_ft.safetensors");
    td_path(data, sizeof data, dir, "data.safetensors");
    td_path(full, sizeof full, dir, "full");
    td_path(sh, sizeof sh, dir, "sharded");
    td_path(res, sizeof res, dir, "resumed");

    da_unet m, f;
    tiny_unet_init(&m, RES, 1);
    tiny_unet_init(&f, RES, 2);
    CHECK(da_unet_save(&m, model, NULL, 0, err, sizeof err) == 0, "%s", err);
    const char *meta[] = {"finetune_src_text", "photo", "finetune_tgt_text", "sketch"};
    CHECK(da_unet_save(&f, ft, meta, 2, err, sizeof err) == 0, "%s", err);

    /* N distinct images with labels 0..2 in no particular order */
    float *img = malloc(sizeof(float) * N * RES * RES);
    int64_t labels[N], shape[4] = {N, 1, RES, RES}, nl = N;
    da_rng r;
    da_rng_init(&r, 7);
    for (int i = 0; i < N; i++) {
        labels[i] = (i * 7 + 1) % 3;
        float a = da_rng_uniform1(&r) * 2 - 1;
        for (int p = 0; p < RES * RES; p++)
            img[i * RES * RES + p] = 0.8f * a * (float)(p % RES) / RES + 0.3f * sinf((float)(p * (i + 1)) * 0.3f) - 0.1f;
    }
    st_writer *w = st_writer_new();
    st_writer_add_f32(w, "images", 4, shape, img);
    st_writer_add_i64(w, "labels", 1, &nl, labels);
    CHECK(st_writer_save(w, data, err, sizeof err) == 0, "%s", err);
    st_writer_free(w);

    char common[4096];
    snprintf(common, sizeof common, "--model '%s' --finetuned '%s' --data '%s' --t0 200 --inv-steps 5 --gen-steps 3 --batch %d --threads 1",
             model, ft, data, BATCH);

    /* ---- one full run ---- */
    snprintf(cmd, sizeof cmd, "'%s' translate %s --out '%s' 2>&1", bin, common, full);
    int rc = run(cmd);
    CHECK(rc == 0, "full run: exit %d:\n%s", rc, OUT);
    CHECK(strstr(OUT, "translated 10 images (0 skipped)") != NULL, "summary:\n%s", OUT);
    CHECK(count_entries(full) == N + 3, "%d entries in the output folder, expected %d", count_entries(full), N + 3);

    /* order: image i is the translation of source i (the same loop in this process) */
    float *x = malloc(sizeof(float) * N * RES * RES);
    memcpy(x, img, sizeof(float) * N * RES * RES);
    da_schedule s;
    da_schedule_linear(&s, 1000, 1e-4, 0.02, err, sizeof err);
    for (int b = 0; b < N; b += BATCH) {
        int64_t nb = N - b < BATCH ? N - b : BATCH, bs[4] = {nb, 1, RES, RES};
        da_ddim_invert(&s, da_unet_eps, &m, x + b * RES * RES, bs, 5, 200, NULL, NULL, err, sizeof err);
        da_ddim_generate(&s, da_unet_eps, &f, x + b * RES * RES, bs, 3, 200, 0.0f, 0, NULL, NULL, err, sizeof err);
    }
    int order_bad = 0;
    double spread = 0;
    for (int i = 0; i < N; i++) {
        char p[800];
        snprintf(p, sizeof p, "%s/%06d.png", full, i);
        float *px = NULL;
        int c, h, ww;
        if (da_image_read(p, 1, &px, &c, &h, &ww, err, sizeof err) || h != RES || ww != RES) {
            order_bad++;
            free(px);
            continue;
        }
        for (int k = 0; k < RES * RES; k++) {
            float want = fminf(1.0f, fmaxf(-1.0f, x[i * RES * RES + k]));
            if (fabsf(px[k] - want) > 1.001f / 255.0f) { order_bad++; break; }
            spread += fabs((double)px[k] - (double)x[k]);
        }
        free(px);
    }
    CHECK(order_bad == 0, "%d outputs are not the translations of their sources in order", order_bad);
    CHECK(spread > 1.0, "the translations are all alike (spread %g): the order test would be empty", spread);

    /* labels.csv: every file with its source label, in order */
    char want[1024] = "file,label\n", path[800];
    for (int i = 0; i < N; i++) {
        char row[64];
        snprintf(row, sizeof row, "%06d.png,%lld\n", i, (long long)labels[i]);
        strcat(want, row);
    }
    size_t len = 0;
    char *csv = td_slurp(td_path(path, sizeof path, full, "labels.csv"), &len);
    CHECK(csv && !strcmp(csv, want), "labels.csv:\n%s\nexpected:\n%s", csv ? csv : "(missing)", want);
    free(csv);
    char *man = td_slurp(td_path(path, sizeof path, full, "manifest.json"), &len);
    CHECK(man && strstr(man, "\"images\":\t10") && strstr(man, "\"t0\":\t200") && strstr(man, "\"tgt_text\":\t\"sketch\"") &&
              strstr(man, "\"model_hash\"") && strstr(man, "\"finetuned_hash\"") && strstr(man, "\"label_counts\""),
          "manifest.json:\n%s", man ? man : "(missing)");
    free(man);

    /* ---- two shards at the same time, in separate processes ---- */
    snprintf(cmd, sizeof cmd, "('%s' translate %s --out '%s' --shard 1/2 > '%s/s1.log' 2>&1 & "
                              "'%s' translate %s --out '%s' --shard 0/2 > '%s/s0.log' 2>&1; a=$?; wait $!; b=$?; "
                              "cat '%s/s0.log' '%s/s1.log'; [ $a -eq 0 ] && [ $b -eq 0 ])",
             bin, common, sh, dir, bin, common, sh, dir, dir, dir);
    rc = run(cmd);
    CHECK(rc == 0, "sharded runs: exit %d:\n%s", rc, OUT);
    CHECK(strstr(OUT, "shard 0/2: images 0..5 of 10") && strstr(OUT, "shard 1/2: images 6..9 of 10"), "shard ranges:\n%s", OUT);
    same_files("2 shards vs one run", sh, full, true);

    /* ---- a killed run: two outputs missing, a temporary file left behind ---- */
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", full, res);
    CHECK(system(cmd) == 0, "cp");
    remove(td_path(path, sizeof path, res, "000004.png"));
    remove(td_path(path, sizeof path, res, "000009.png"));
    remove(td_path(path, sizeof path, res, "grid.png"));
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    waitpid(dead, NULL, 0);
    char tmpname[64];
    snprintf(tmpname, sizeof tmpname, "000004.png.da-tmp.%ld.aB3xYz", (long)dead);
    td_write_text(res, tmpname, "half a PNG");
    /* a user's file that only looks like a temporary of a dead process: never touched */
    char userfile[64];
    snprintf(userfile, sizeof userfile, "thesis.tmp.%ld", (long)dead);
    td_write_text(res, userfile, "my thesis");
    snprintf(cmd, sizeof cmd, "'%s' translate %s --out '%s' 2>&1", bin, common, res);
    rc = run(cmd);
    CHECK(rc == 0, "resumed run: exit %d:\n%s", rc, OUT);
    CHECK(strstr(OUT, "8 of these images are already written") && strstr(OUT, "translated 2 images (8 skipped)"),
          "resume summary:\n%s", OUT);
    CHECK(strstr(OUT, "left by an interrupted run") != NULL, "the stale temporary file was not reported:\n%s", OUT);
    CHECK(access(td_path(path, sizeof path, res, tmpname), F_OK) != 0, "the stale temporary file is still there");
    CHECK(access(td_path(path, sizeof path, res, userfile), F_OK) == 0, "the user's %s was removed", userfile);
    remove(td_path(path, sizeof path, res, userfile));
    same_files("resumed vs one run", res, full, true);
    CHECK(count_entries(res) == N + 3, "%d entries after the resumed run", count_entries(res));

    /* nothing left to do */
    rc = run(cmd);
    CHECK(rc == 0 && strstr(OUT, "translated 0 images (10 skipped)"), "re-run of a complete folder: exit %d:\n%s", rc, OUT);

    /* other settings into the same folder: refused */
    snprintf(cmd, sizeof cmd, "'%s' translate %s --t0 150 --out '%s' 2>&1", bin, common, res);
    rc = run(cmd);
    CHECK(rc == 1 && strstr(OUT, "was written with t0 = 200"), "other settings: exit %d:\n%s", rc, OUT);
    snprintf(cmd, sizeof cmd, "'%s' translate %s --batch 4 --out '%s' 2>&1", bin, common, res);
    rc = run(cmd);
    CHECK(rc == 1 && strstr(OUT, "batch = 3"), "other batch: exit %d:\n%s", rc, OUT);

    snprintf(cmd, sizeof cmd, "'%s' translate %s --threads 2 --out '%s' 2>&1", bin, common, res);
    rc = run(cmd);
    CHECK(rc == 1 && strstr(OUT, "threads = 1"), "other thread count: exit %d:\n%s", rc, OUT);

    /* the degree of change: 1 is plain translation, byte for byte (manifest included); 0 is the
     * reconstruction with --model; in between differs from both and is recorded */
    char r1[700], r0[700], rec[700], rh[700];
    td_path(r1, sizeof r1, dir, "ratio1");
    td_path(r0, sizeof r0, dir, "ratio0");
    td_path(rec, sizeof rec, dir, "reconstruction");
    td_path(rh, sizeof rh, dir, "ratio_half");
    snprintf(cmd, sizeof cmd, "'%s' translate %s --model-ratio 1 --out '%s' 2>&1", bin, common, r1);
    rc = run(cmd);
    CHECK(rc == 0, "--model-ratio 1: exit %d:\n%s", rc, OUT);
    same_files("--model-ratio 1 vs plain translation", r1, full, true);
    snprintf(cmd, sizeof cmd, "'%s' translate %s --model-ratio 0 --out '%s' 2>&1", bin, common, r0);
    rc = run(cmd);
    CHECK(rc == 0, "--model-ratio 0: exit %d:\n%s", rc, OUT);
    snprintf(cmd, sizeof cmd, "'%s' translate --model '%s' --finetuned '%s' --data '%s' --t0 200 --inv-steps 5 --gen-steps 3 "
             "--batch %d --threads 1 --out '%s' 2>&1", bin, model, model, data, BATCH, rec);
    rc = run(cmd);
    CHECK(rc == 0, "reconstruction: exit %d:\n%s", rc, OUT);
    same_files("--model-ratio 0 vs generating with the original model", r0, rec, false);
    snprintf(cmd, sizeof cmd, "'%s' translate %s --model-ratio 0.5 --out '%s' 2>&1", bin, common, rh);
    rc = run(cmd);
    CHECK(rc == 0, "--model-ratio 0.5: exit %d:\n%s", rc, OUT);
    {
        int differ_ft = 0, differ_rec = 0;
        for (int i = 0; i < N; i++) {
            char pa[800], pb[800], pc[800];
            snprintf(pa, sizeof pa, "%s/%06d.png", rh, i);
            snprintf(pb, sizeof pb, "%s/%06d.png", full, i);
            snprintf(pc, sizeof pc, "%s/%06d.png", rec, i);
            size_t la = 0, lb = 0, lc = 0;
            char *ca = td_slurp(pa, &la), *cb = td_slurp(pb, &lb), *cc = td_slurp(pc, &lc);
            differ_ft += ca && cb && (la != lb || memcmp(ca, cb, la));
            differ_rec += ca && cc && (la != lc || memcmp(ca, cc, la));
            free(ca);
            free(cb);
            free(cc);
        }
        CHECK(differ_ft == N && differ_rec == N, "--model-ratio 0.5: %d of %d images differ from the fine-tuned "
              "translation, %d from the reconstruction", differ_ft, N, differ_rec);
    }
    char *man_h = td_slurp(td_path(path, sizeof path, rh, "manifest.json"), &len);
    CHECK(man_h && strstr(man_h, "\"model_ratio\":\t0.5"), "model_ratio missing from the manifest:\n%s", man_h ? man_h : "(none)");
    free(man_h);
    snprintf(cmd, sizeof cmd, "'%s' translate %s --out '%s' 2>&1", bin, common, rh);
    rc = run(cmd);
    CHECK(rc == 1 && strstr(OUT, "model_ratio = 0.5"), "resuming a --model-ratio 0.5 folder at 1: exit %d:\n%s", rc, OUT);
    snprintf(cmd, sizeof cmd, "'%s' translate %s --model-ratio 1.5 --out '%s' 2>&1", bin, common, rh);
    rc = run(cmd);
    CHECK(rc == 2 && strstr(OUT, "--model-ratio 1.5 is out of range"), "--model-ratio 1.5: exit %d:\n%s", rc, OUT);

    /* usage errors */
    snprintf(cmd, sizeof cmd, "'%s' translate %s --out '%s' --shard 2/2 2>&1", bin, common, res);
    rc = run(cmd);
    CHECK(rc == 2 && strstr(OUT, "--shard expects I/N"), "bad shard: exit %d:\n%s", rc, OUT);
    snprintf(cmd, sizeof cmd, "'%s' translate %s --out '%s' --size 16 2>&1", bin, common, res);
    rc = run(cmd);
    CHECK(rc == 1 && strstr(OUT, "but the model takes 8x8x1"), "wrong size: exit %d:\n%s", rc, OUT);

    free(x);
    free(img);
    da_unet_free(&m);
    da_unet_free(&f);
    td_remove(dir);
    return tu_finish("test_translate");
}
