/* test_cli_classifier.c — runs `$DA_BIN train-classifier` on tiny safetensors data sets: the
 * metrics.csv format (header, rows, numbers, ranges), appending across runs, accuracy.png and
 * model.safetensors, the multi-class path, and clear errors for bad input. */
#include <sys/wait.h>
#include <unistd.h>

#include "cli_run.h"
#include "io/safetensors.h"
#include "tensor/rng.h"
#include "test_util.h"
#include "tmpdir.h"
#include "train/classifier_train.h"

static char OUT[65536];

/* Runs the command with stderr merged into stdout; returns the exit code (-1 if abnormal). */
static int run(const char *cmd) { return cli_run(cmd, OUT, sizeof OUT); }

/* n images (C,H,W): class k has a bright square in corner k; labels 10*k+1 unless no_labels. */
static void write_set(const char *path, int n, int c, int h, int w, int classes, bool with_labels, uint64_t seed) {
    float *im = malloc(sizeof(float) * (size_t)(n * c * h * w));
    int64_t *lab = malloc(sizeof(int64_t) * (size_t)n);
    da_rng r;
    da_rng_init(&r, seed);
    da_rng_uniform(&r, im, n * c * h * w, -1.0f, -0.7f);
    for (int i = 0; i < n; i++) {
        int k = i % classes, y0 = (k & 1) ? h - 4 : 1, x0 = (k & 2) ? w - 4 : 1;
        lab[i] = 10 * k + 1;
        for (int ch = 0; ch < c; ch++)
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++) im[((i * c + ch) * h + y0 + a) * w + x0 + b] = 0.9f;
    }
    st_writer *sw = st_writer_new();
    st_writer_add_f32(sw, "images", 4, (const int64_t[]){n, c, h, w}, im);
    if (with_labels) st_writer_add_i64(sw, "labels", 1, (const int64_t[]){n}, lab);
    char err[512];
    CHECK(st_writer_save(sw, path, err, sizeof err) == 0, "%s", err);
    st_writer_free(sw);
    free(im);
    free(lab);
}

static bool exists_nonempty(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n > 0;
}

/* Checks every row of metrics.csv; returns the number of rows. */
static int check_metrics(const char *path, const char *train_name, int epochs, int n_eval, const char *const *names) {
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "%s missing", path);
    if (!f) return 0;
    char line[512];
    CHECK(fgets(line, sizeof line, f) && !strcmp(line, DA_METRICS_HEADER "\n"), "header: %s", line);
    int rows = 0;
    while (fgets(line, sizeof line, f)) {
        char tn[64], en[64];
        unsigned long long seed;
        int epoch, consumed = 0;
        double loss, tacc, eacc;
        int got = sscanf(line, "%63[^,],%llu,%d,%lf,%lf,%63[^,],%lf%n", tn, &seed, &epoch, &loss, &tacc, en, &eacc,
                         &consumed);
        CHECK(got == 7 && line[consumed] == '\n', "row %d does not parse: %s", rows + 1, line);
        if (got != 7) break;
        int e = rows / n_eval % epochs + 1, k = rows % n_eval;
        CHECK(!strcmp(tn, train_name) && epoch == e && !strcmp(en, names[k]), "row %d: %s", rows + 1, line);
        CHECK(isfinite(loss) && loss >= 0, "row %d loss %g", rows + 1, loss);
        CHECK(tacc >= 0 && tacc <= 100 && eacc >= 0 && eacc <= 100, "row %d accuracies %g %g", rows + 1, tacc, eacc);
        rows++;
    }
    fclose(f);
    return rows;
}

int main(void) {
    const char *bin = getenv("DA_BIN");
    if (!bin || access(bin, X_OK)) tu_skip("DA_BIN is not set to the diffadapt binary");
    char dir[600], tr[700], te[700], tr3[700], te3[700], nolab[700], out[700], cmd[4096], path[800];
    td_make(dir, sizeof dir, "cli_classifier");
    snprintf(tr, sizeof tr, "%s/train.safetensors", dir);
    snprintf(te, sizeof te, "%s/test.safetensors", dir);
    snprintf(tr3, sizeof tr3, "%s/train3.safetensors", dir);
    snprintf(te3, sizeof te3, "%s/test3.safetensors", dir);
    snprintf(nolab, sizeof nolab, "%s/nolabels.safetensors", dir);
    snprintf(out, sizeof out, "%s/run", dir);
    write_set(tr, 40, 1, 12, 12, 2, true, 1);
    write_set(te, 16, 1, 12, 12, 2, true, 2);
    write_set(tr3, 45, 3, 10, 14, 3, true, 3);
    write_set(te3, 15, 3, 10, 14, 3, true, 4);
    write_set(nolab, 8, 1, 12, 12, 2, false, 5);

    /* binary, two eval sets, 3 epochs */
    snprintf(cmd, sizeof cmd, "'%s' train-classifier --train '%s' --eval source='%s' --eval again='%s' --out '%s' "
             "--epochs 3 --batch 8 --seed 4 --threads 1 --train-name original 2>&1", bin, tr, te, tr, out);
    int rc = run(cmd);
    CHECK(rc == 0, "binary run: exit %d\n%s", rc, OUT);
    CHECK(strstr(OUT, "epoch 3/3") && strstr(OUT, "final accuracy"), "progress lines:\n%s", OUT);
    const char *names2[2] = {"source", "again"};
    snprintf(path, sizeof path, "%s/metrics.csv", out);
    int rows = check_metrics(path, "original", 3, 2, names2);
    CHECK(rows == 6, "%d rows, expected epochs x eval sets = 6", rows);
    snprintf(path, sizeof path, "%s/accuracy.png", out);
    FILE *png = fopen(path, "rb");
    unsigned char sig[8] = {0};
    CHECK(png && fread(sig, 1, 8, png) == 8 && !memcmp(sig, "\x89PNG\r\n\x1a\n", 8), "accuracy.png is not a PNG");
    if (png) fclose(png);
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    st_file f;
    char err[512];
    CHECK(st_open(path, &f, err, sizeof err) == 0, "model: %s", err);
    const char *cls = st_meta_get(&f, "classes"), *shape = st_meta_get(&f, "input_shape");
    CHECK(cls && !strcmp(cls, "1,11"), "classes metadata %s", cls ? cls : "(none)");
    CHECK(shape && !strcmp(shape, "1,12,12"), "input_shape metadata %s", shape ? shape : "(none)");
    const st_tensor_info *w2 = st_find(&f, "fc2.weight"), *w1 = st_find(&f, "conv1.weight");
    CHECK(w2 && w2->shape[0] == 1 && w1 && w1->shape[0] == 32 && w1->shape[1] == 1, "binary model has one logit");
    st_close(&f);

    /* a second run into the same folder must not replace the model and the plot silently */
    snprintf(cmd, sizeof cmd, "'%s' train-classifier --train '%s' --eval source='%s' --eval again='%s' --out '%s' "
             "--epochs 3 --batch 8 --seed 5 --threads 1 --train-name original 2>&1", bin, tr, te, tr, out);
    rc = run(cmd);
    CHECK(rc == 1 && strstr(OUT, "model.safetensors already exists") && strstr(OUT, "--force"),
          "second run without --force: exit %d\n%s", rc, OUT);
    snprintf(path, sizeof path, "%s/metrics.csv", out);
    CHECK(check_metrics(path, "original", 3, 2, names2) == 6, "a refused run changed metrics.csv");
    /* with --force it appends to the same metrics.csv */
    snprintf(cmd, sizeof cmd, "'%s' train-classifier --train '%s' --eval source='%s' --eval again='%s' --out '%s' "
             "--epochs 3 --batch 8 --seed 5 --threads 1 --train-name original --force 2>&1", bin, tr, te, tr, out);
    rc = run(cmd);
    CHECK(rc == 0, "second run: exit %d\n%s", rc, OUT);
    snprintf(path, sizeof path, "%s/metrics.csv", out);
    rows = check_metrics(path, "original", 3, 2, names2);
    CHECK(rows == 12, "%d rows after two runs, expected 12", rows);

    /* multi-class, 3 channels, non-square: reaches 100 % on this separable set */
    snprintf(cmd, sizeof cmd, "'%s' train-classifier --train '%s' --eval test='%s' --out '%s/mc' --epochs 12 "
             "--batch 5 --lr 0.002 --threads 1 2>&1", bin, tr3, te3, dir);
    rc = run(cmd);
    CHECK(rc == 0, "multi-class run: exit %d\n%s", rc, OUT);
    CHECK(strstr(OUT, "test 100.00%") != NULL, "multi-class accuracy:\n%s", OUT);
    const char *names1[1] = {"test"};
    snprintf(path, sizeof path, "%s/mc/metrics.csv", dir);
    CHECK(check_metrics(path, "train", 12, 1, names1) == 12, "multi-class rows");
    snprintf(path, sizeof path, "%s/mc/model.safetensors", dir);
    CHECK(st_open(path, &f, err, sizeof err) == 0, "model: %s", err);
    w2 = st_find(&f, "fc2.weight");
    cls = st_meta_get(&f, "classes");
    CHECK(w2 && w2->shape[0] == 3 && cls && !strcmp(cls, "1,11,21"), "3-class model: %s", cls ? cls : "(none)");
    st_close(&f);
    snprintf(path, sizeof path, "%s/mc/accuracy.png", dir);
    CHECK(exists_nonempty(path), "multi-class accuracy.png");

    /* --classes picks two of the three and relabels them */
    snprintf(cmd, sizeof cmd, "'%s' train-classifier --train '%s' --eval test='%s' --classes 21,1 --out '%s/pick' "
             "--epochs 1 --threads 1 2>&1", bin, tr3, te3, dir);
    rc = run(cmd);
    CHECK(rc == 0, "--classes run: exit %d\n%s", rc, OUT);
    snprintf(path, sizeof path, "%s/pick/model.safetensors", dir);
    CHECK(st_open(path, &f, err, sizeof err) == 0, "model: %s", err);
    cls = st_meta_get(&f, "classes");
    CHECK(cls && !strcmp(cls, "21,1"), "classes with --classes: %s", cls ? cls : "(none)");
    st_close(&f);

    /* bad input: non-zero exit and a message that names the problem */
    snprintf(cmd, sizeof cmd, "'%s' train-classifier --train '%s/missing.safetensors' --eval t='%s' --out '%s/x' 2>&1",
             bin, dir, te, dir);
    rc = run(cmd);
    CHECK(rc == 1 && strstr(OUT, "missing.safetensors"), "missing file: exit %d\n%s", rc, OUT);
    snprintf(cmd, sizeof cmd, "'%s' train-classifier --train '%s' --eval t='%s' --out '%s/x' 2>&1", bin, nolab, te, dir);
    rc = run(cmd);
    CHECK(rc == 1 && strstr(OUT, "no labels"), "unlabelled training set: exit %d\n%s", rc, OUT);
    snprintf(cmd, sizeof cmd, "'%s' train-classifier --train '%s' --eval t='%s' --out '%s/x' 2>&1", bin, tr, nolab, dir);
    rc = run(cmd);
    CHECK(rc == 1 && strstr(OUT, "no labels"), "unlabelled eval set: exit %d\n%s", rc, OUT);
    snprintf(cmd, sizeof cmd, "'%s' train-classifier --train '%s' --eval t='%s' --out '%s/x' 2>&1", bin, tr, te3, dir);
    rc = run(cmd);
    CHECK(rc == 1 && strstr(OUT, "--size"), "eval set of another shape: exit %d\n%s", rc, OUT);
    snprintf(cmd, sizeof cmd, "'%s' train-classifier --train '%s' --eval '%s' --out '%s/x' 2>&1", bin, tr, te, dir);
    rc = run(cmd);
    CHECK(rc == 2 && strstr(OUT, "NAME=DATA"), "--eval without a name: exit %d\n%s", rc, OUT);
    snprintf(cmd, sizeof cmd, "'%s' train-classifier --train '%s' --out '%s/x' 2>&1", bin, tr, dir);
    rc = run(cmd);
    CHECK(rc == 2 && strstr(OUT, "--eval"), "no eval set: exit %d\n%s", rc, OUT);
    snprintf(cmd, sizeof cmd, "'%s' train-classifier --train '%s' --eval t='%s' --out '%s/x' --epochs 0 2>&1", bin, tr,
             te, dir);
    rc = run(cmd);
    CHECK(rc == 1 && strstr(OUT, "--epochs"), "zero epochs: exit %d\n%s", rc, OUT);
    /* a metrics.csv with another header is not appended to */
    snprintf(path, sizeof path, "%s/other", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/other/metrics.csv", dir);
    FILE *o = fopen(path, "w");
    fprintf(o, "a,b,c\n1,2,3\n");
    fclose(o);
    snprintf(cmd, sizeof cmd, "'%s' train-classifier --train '%s' --eval t='%s' --out '%s/other' --epochs 1 2>&1", bin,
             tr, te, dir);
    rc = run(cmd);
    CHECK(rc == 1 && strstr(OUT, "another header"), "foreign metrics.csv: exit %d\n%s", rc, OUT);
    td_remove(dir);
    return tu_finish("test_cli_classifier");
}
