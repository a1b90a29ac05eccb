/* test_cnn.c — the classifier CNN: forward, loss and every gradient against PyTorch (golden/cnn.
 * safetensors), default shapes and init, save/load, and training to 100 % on separable toy sets. */
#include <unistd.h>

#include "io/safetensors.h"
#include "nn/cnn.h"
#include "tensor/ops.h"
#include "tensor/rng.h"
#include "test_util.h"
#include "train/classifier_train.h"

/* A float tensor of the golden file into a fresh buffer (numel in *n). */
static float *golden_f32(const st_file *f, const char *name, int64_t *n, int64_t *shape, int *ndim) {
    const st_tensor_info *t = st_find(f, name);
    if (!t) {
        CHECK(0, "golden tensor %s missing", name);
        return NULL;
    }
    float *buf = malloc(sizeof(float) * (size_t)t->numel);
    char err[256];
    if (st_read_f32(f, t, buf, err, sizeof err) != 0) CHECK(0, "%s", err);
    if (n) *n = t->numel;
    if (shape) memcpy(shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    if (ndim) *ndim = t->ndim;
    return buf;
}

/* One golden case: load weights under `prefix`, compare logits, loss and all gradients. */
static void golden_case(const st_file *f, const char *prefix, int n_classes) {
    char key[128];
    int64_t xshape[8], n;
    int xnd;
    snprintf(key, sizeof key, "%sx", prefix);
    float *xv = golden_f32(f, key, &n, xshape, &xnd);
    snprintf(key, sizeof key, "%slabels", prefix);
    const st_tensor_info *li = st_find(f, key);
    int64_t labels[16];
    char err[512];
    CHECK(li && li->numel == xshape[0] && st_read_i64(f, li, labels, err, sizeof err) == 0, "labels of %s", prefix);

    da_cnn_config cfg = {(int)xshape[1], (int)xshape[2], (int)xshape[3], n_classes, 4, 8, 16, 32};
    da_cnn m;
    CHECK(da_cnn_init(&m, &cfg, 1, err, sizeof err) == 0, "init: %s", err);
    /* PyTorch's keys under the prefix; everything else in the file is other cases' data. */
    int rc = da_params_load(&m.reg, f, prefix, DA_LOAD_ALLOW_EXTRA | DA_LOAD_QUIET, NULL, err, sizeof err);
    CHECK(rc == 0, "load %s: %s", prefix, err);

    da_ctx ctx;
    da_ctx_init(&ctx);
    da_tensor *x = da_from_data(&ctx, 4, xshape, xv);
    da_require_grad(x);
    da_tensor *logits = da_cnn_forward(&ctx, &m, x);
    da_tensor *loss = da_cnn_loss(&ctx, &m, logits, labels);
    da_cnn_zero_grad(&m);
    da_backward(&ctx, loss);

    char what[160];
    snprintf(key, sizeof key, "%slogits", prefix);
    float *ref = golden_f32(f, key, &n, NULL, NULL);
    snprintf(what, sizeof what, "%s logits", prefix);
    CHECK(n == logits->numel, "%s: %lld logits, expected %lld", what, (long long)logits->numel, (long long)n);
    if (n == logits->numel) tu_close(what, logits->data, ref, (long)n, 1e-5, 1e-4);
    free(ref);
    snprintf(key, sizeof key, "%sloss", prefix);
    ref = golden_f32(f, key, &n, NULL, NULL);
    snprintf(what, sizeof what, "%s loss", prefix);
    tu_close(what, loss->data, ref, 1, 1e-6, 1e-5);
    free(ref);
    snprintf(key, sizeof key, "%sgrad.x", prefix);
    ref = golden_f32(f, key, &n, NULL, NULL);
    snprintf(what, sizeof what, "%s d loss / d x", prefix);
    CHECK(x->grad != NULL, "%s: no gradient", what);
    if (x->grad) tu_close(what, x->grad, ref, (long)n, 1e-6, 1e-4);
    free(ref);
    for (int i = 0; i < DA_CNN_N_PARAMS; i++) {
        snprintf(key, sizeof key, "%sgrad.%s", prefix, DA_CNN_PARAM_NAMES[i]);
        ref = golden_f32(f, key, &n, NULL, NULL);
        snprintf(what, sizeof what, "%s d loss / d %s", prefix, DA_CNN_PARAM_NAMES[i]);
        CHECK(n == m.params[i]->numel, "%s: size %lld vs %lld", what, (long long)m.params[i]->numel, (long long)n);
        if (n == m.params[i]->numel) tu_close(what, m.params[i]->grad, ref, (long)n, 1e-6, 1e-4);
        free(ref);
    }
    free(xv);
    da_ctx_free(&ctx);
    da_cnn_free(&m);
}

/* The reference widths give PyTorch's parameter shapes; init bounds and determinism. */
static void test_default_shapes_and_init(const st_file *f) {
    da_cnn_config cfg = {1, 32, 32, 2, 0, 0, 0, 0};
    da_cnn m, m2, m3;
    char err[256];
    CHECK(da_cnn_init(&m, &cfg, 42, err, sizeof err) == 0, "%s", err);
    for (int i = 0; i < DA_CNN_N_PARAMS; i++) {
        char key[96];
        snprintf(key, sizeof key, "default_shape.%s", DA_CNN_PARAM_NAMES[i]);
        const st_tensor_info *t = st_find(f, key);
        int64_t shape[8] = {0};
        CHECK(t && st_read_i64(f, t, shape, err, sizeof err) == 0, "%s", key);
        if (!t) continue;
        bool same = t->numel == m.params[i]->ndim;
        for (int d = 0; same && d < m.params[i]->ndim; d++) same = shape[d] == m.params[i]->shape[d];
        CHECK(same, "%s: shape differs from PyTorch's", DA_CNN_PARAM_NAMES[i]);
    }
    CHECK(da_cnn_num_params(&m) == 1142273, "parameter count %lld", (long long)da_cnn_num_params(&m));
    /* U(-b, b) with b = 1/sqrt(fan_in): every value inside, standard deviation b/sqrt(3). */
    for (int i = 0; i < DA_CNN_N_PARAMS; i += 2) {
        da_tensor *w = m.params[i], *b = m.params[i + 1];
        double bound = 1.0 / sqrt((double)(w->numel / w->shape[0])), s2 = 0, mx = 0;
        for (int64_t j = 0; j < w->numel; j++) {
            s2 += (double)w->data[j] * w->data[j];
            mx = fmax(mx, fabs(w->data[j]));
        }
        for (int64_t j = 0; j < b->numel; j++) mx = fmax(mx, fabs(b->data[j]));
        double sd = sqrt(s2 / (double)w->numel), want = bound / sqrt(3.0);
        CHECK(mx <= bound, "%s: |value| %g above the bound %g", w->name, mx, bound);
        if (w->numel >= 256)
            CHECK(fabs(sd - want) < 0.05 * want, "%s: std %g, expected %g", w->name, sd, want);
    }
    CHECK(da_cnn_init(&m2, &cfg, 42, err, sizeof err) == 0, "%s", err);
    CHECK(da_cnn_init(&m3, &cfg, 43, err, sizeof err) == 0, "%s", err);
    CHECK(!memcmp(m.params[6]->data, m2.params[6]->data, sizeof(float) * (size_t)m.params[6]->numel),
          "same seed gives other weights");
    CHECK(memcmp(m.params[6]->data, m3.params[6]->data, sizeof(float) * (size_t)m.params[6]->numel),
          "another seed gives the same weights");
    da_cnn_free(&m);
    da_cnn_free(&m2);
    da_cnn_free(&m3);

    /* invalid configs are refused with a message */
    da_cnn_config small = {1, 7, 32, 2, 0, 0, 0, 0}, one = {1, 32, 32, 1, 0, 0, 0, 0};
    CHECK(da_cnn_init(&m, &small, 0, err, sizeof err) != 0 && strstr(err, "7x32"), "7-pixel input: %s", err);
    CHECK(da_cnn_init(&m, &one, 0, err, sizeof err) != 0 && strstr(err, "2 classes"), "one class: %s", err);
}

/* Save, load, identical outputs; metadata; a file that is not a classifier is refused. */
static void test_save_load(void) {
    da_cnn_config cfg = {3, 12, 20, 3, 4, 8, 16, 32};
    da_cnn m, l;
    char err[512], path[64];
    snprintf(path, sizeof path, "/tmp/test_cnn_%ld.safetensors", (long)getpid());
    CHECK(da_cnn_init(&m, &cfg, 5, err, sizeof err) == 0, "%s", err);
    CHECK(da_cnn_save(&m, path, "2,4,6", err, sizeof err) == 0, "save: %s", err);
    CHECK(da_cnn_load(&l, path, err, sizeof err) == 0, "load: %s", err);
    CHECK(l.cfg.in_c == 3 && l.cfg.in_h == 12 && l.cfg.in_w == 20 && l.cfg.n_classes == 3 && l.cfg.c3 == 16 &&
          l.cfg.hidden == 32, "loaded config differs");
    st_file f;
    CHECK(st_open(path, &f, err, sizeof err) == 0, "%s", err);
    const char *cl = st_meta_get(&f, "classes"), *shape = st_meta_get(&f, "input_shape");
    CHECK(cl && !strcmp(cl, "2,4,6"), "classes metadata %s", cl ? cl : "(none)");
    CHECK(shape && !strcmp(shape, "3,12,20"), "input_shape metadata %s", shape ? shape : "(none)");
    st_close(&f);
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_set_grad(&ctx, false);
    da_tensor *x = da_new(&ctx, DA_SHAPE(2, 3, 12, 20));
    da_rng rng;
    da_rng_init(&rng, 3);
    da_rng_uniform(&rng, x->data, x->numel, -1, 1);
    da_tensor *a = da_cnn_forward(&ctx, &m, x), *b = da_cnn_forward(&ctx, &l, x);
    CHECK(a->numel == 6 && !memcmp(a->data, b->data, sizeof(float) * 6), "loaded model computes other logits");
    da_ctx_free(&ctx);
    da_cnn_free(&l);

    /* a plain safetensors file without the CNN's metadata */
    st_writer *w = st_writer_new();
    st_writer_add_f32(w, "conv1.weight", m.params[0]->ndim, m.params[0]->shape, m.params[0]->data);
    CHECK(st_writer_save(w, path, err, sizeof err) == 0, "%s", err);
    st_writer_free(w);
    CHECK(da_cnn_load(&l, path, err, sizeof err) != 0 && strstr(err, "in_c"), "no metadata: %s", err);
    CHECK(da_cnn_load(&l, "/nonexistent/x.safetensors", err, sizeof err) != 0 && strstr(err, "nonexistent"),
          "missing file: %s", err);
    da_cnn_free(&m);
    unlink(path);
}

/* A toy set: class k has a bright 3x3 square near corner k (plus noise) on a dark background. */
static void toy_set(da_dataset *d, int64_t n, int c, int h, int w, int classes, const int64_t *values, uint64_t seed) {
    memset(d, 0, sizeof *d);
    d->n = n; d->c = c; d->h = h; d->w = w;
    d->images = malloc(sizeof(float) * (size_t)(n * c * h * w));
    d->labels = malloc(sizeof(int64_t) * (size_t)n);
    da_rng rng;
    da_rng_init(&rng, seed);
    da_rng_uniform(&rng, d->images, n * c * h * w, -1.0f, -0.6f);
    for (int64_t i = 0; i < n; i++) {
        int k = (int)(i % classes);
        d->labels[i] = values[k];
        int y0 = (k & 1) ? h - 5 : 1, x0 = (k & 2) ? w - 5 : 1;
        if (k == 4) { y0 = h / 2 - 1; x0 = w / 2 - 1; }
        y0 += (int)da_rng_int(&rng, 2);
        x0 += (int)da_rng_int(&rng, 2);
        for (int ch = 0; ch < c; ch++)
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++) d->images[((i * c + ch) * h + y0 + a) * w + x0 + b] = 0.9f;
    }
}

static void free_set(da_dataset *d) {
    free(d->images);
    free(d->labels);
}

static void test_learns(int c, int h, int w, int classes, const int64_t *values, int64_t n, int epochs) {
    da_dataset tr, te;
    toy_set(&tr, n, c, h, w, classes, values, 11);
    toy_set(&te, 30, c, h, w, classes, values, 12);
    da_eval_set ev[2] = {{"toy-test", &te}, {"toy-train", &tr}};
    da_clf_opts o = da_clf_defaults();
    o.epochs = epochs;
    o.batch = 8;
    o.seed = 3;
    o.verbose = false;
    o.c1 = 8; o.c2 = 16; o.c3 = 16; o.hidden = 32;
    da_clf_result r;
    da_cnn m;
    char err[512];
    int rc = da_classifier_train(&tr, 2, ev, &o, &m, &r, err, sizeof err);
    CHECK(rc == 0, "train %dx%dx%d, %d classes: %s", c, h, w, classes, err);
    if (rc != 0) return;
    int last = o.epochs - 1;
    CHECK(r.n_classes == classes, "%d classes found, expected %d", r.n_classes, classes);
    CHECK(r.eval_acc[last * 2] == 100.0 && r.eval_acc[last * 2 + 1] == 100.0 && r.train_acc[last] == 100.0,
          "%dx%dx%d, %d classes: accuracy test %.1f train %.1f (running %.1f), expected 100", c, h, w, classes,
          r.eval_acc[last * 2], r.eval_acc[last * 2 + 1], r.train_acc[last]);
    CHECK(r.train_loss[last] < r.train_loss[0] && r.train_loss[last] < 0.1, "loss %g -> %g", r.train_loss[0],
          r.train_loss[last]);
    CHECK(da_cnn_n_out(&m.cfg) == (classes == 2 ? 1 : classes), "logits %d", da_cnn_n_out(&m.cfg));
    CHECK(da_cnn_accuracy(&m, &te, r.class_values, r.n_classes) == 100.0, "da_cnn_accuracy");
    da_cnn_free(&m);
    da_clf_result_free(&r);
    free_set(&tr);
    free_set(&te);
}

/* Same seed, same numbers; bad inputs are refused with messages. */
static void test_determinism_and_errors(void) {
    const int64_t v2[2] = {0, 1};
    da_dataset tr, te;
    toy_set(&tr, 20, 1, 8, 8, 2, v2, 1);
    toy_set(&te, 10, 1, 8, 8, 2, v2, 2);
    da_eval_set ev = {"t", &te};
    da_clf_opts o = da_clf_defaults();
    o.epochs = 2; o.batch = 6; o.verbose = false;
    o.c1 = 4; o.c2 = 4; o.c3 = 4; o.hidden = 8;
    da_clf_result a, b;
    char err[512];
    CHECK(da_classifier_train(&tr, 1, &ev, &o, NULL, &a, err, sizeof err) == 0, "%s", err);
    CHECK(da_classifier_train(&tr, 1, &ev, &o, NULL, &b, err, sizeof err) == 0, "%s", err);
    CHECK(a.train_loss[1] == b.train_loss[1] && a.eval_acc[1] == b.eval_acc[1], "same seed, other result");
    da_clf_result_free(&a);
    da_clf_result_free(&b);

    int64_t *keep = te.labels;
    te.labels = NULL;
    CHECK(da_classifier_train(&tr, 1, &ev, &o, NULL, &a, err, sizeof err) != 0 && strstr(err, "no labels"),
          "unlabelled eval set: %s", err);
    te.labels = keep;
    te.labels[3] = 7;
    CHECK(da_classifier_train(&tr, 1, &ev, &o, NULL, &a, err, sizeof err) != 0 && strstr(err, "label 7"),
          "foreign label: %s", err);
    te.labels[3] = 1;
    te.w = 9;
    CHECK(da_classifier_train(&tr, 1, &ev, &o, NULL, &a, err, sizeof err) != 0 && strstr(err, "same --size"),
          "shape mismatch: %s", err);
    te.w = 8;
    for (int64_t i = 0; i < tr.n; i++) tr.labels[i] = 4;
    CHECK(da_classifier_train(&tr, 1, &ev, &o, NULL, &a, err, sizeof err) != 0 && strstr(err, "two classes"),
          "one class: %s", err);
    free_set(&tr);
    free_set(&te);
}

/* Several trainings side by side give the numbers of each one alone on one thread, and the
 * metrics rows come in job order. */
static void test_jobs(void) {
    const int64_t v2[2] = {0, 1};
    da_dataset tr, te;
    toy_set(&tr, 24, 1, 8, 8, 2, v2, 5);
    toy_set(&te, 10, 1, 8, 8, 2, v2, 6);
    da_eval_set ev[2] = {{"a", &te}, {"b", &tr}};
    char path[64], err[512];
    snprintf(path, sizeof path, "/tmp/test_cnn_jobs_%ld.csv", (long)getpid());
    unlink(path);
    da_clf_job jobs[3];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < 3; i++) {
        jobs[i].train = &tr;
        jobs[i].n_eval = 2;
        jobs[i].evals = ev;
        jobs[i].opts = da_clf_defaults();
        jobs[i].opts.epochs = 2;
        jobs[i].opts.batch = 5;
        jobs[i].opts.seed = (uint64_t)(10 + i);
        jobs[i].opts.verbose = false;
        jobs[i].opts.c1 = 4; jobs[i].opts.c2 = 8; jobs[i].opts.c3 = 8; jobs[i].opts.hidden = 16;
        jobs[i].opts.train_name = "toy";
        jobs[i].opts.metrics_path = path;
    }
    int threads = da_get_threads();
    CHECK(da_classifier_train_jobs(3, jobs, 2) == 0, "jobs failed: %s %s %s", jobs[0].err, jobs[1].err, jobs[2].err);
    da_set_threads(1);
    for (int i = 0; i < 3; i++) {
        da_clf_result r;
        da_clf_opts o = jobs[i].opts;
        o.metrics_path = NULL;
        CHECK(da_classifier_train(&tr, 2, ev, &o, NULL, &r, err, sizeof err) == 0, "%s", err);
        CHECK(r.train_loss[1] == jobs[i].res.train_loss[1] && r.eval_acc[3] == jobs[i].res.eval_acc[3],
              "job %d: loss %.9g vs alone %.9g", i, jobs[i].res.train_loss[1], r.train_loss[1]);
        da_clf_result_free(&r);
        da_clf_result_free(&jobs[i].res);
    }
    da_set_threads(threads);
    FILE *f = fopen(path, "r");
    char line[256];
    int n = 0, order_ok = 1;
    CHECK(f && fgets(line, sizeof line, f) && !strncmp(line, DA_METRICS_HEADER, strlen(DA_METRICS_HEADER)), "header");
    while (f && fgets(line, sizeof line, f)) {
        char want[32];
        snprintf(want, sizeof want, "toy,%d,%d,", 10 + n / 4, 1 + (n / 2) % 2);
        order_ok &= !strncmp(line, want, strlen(want));
        n++;
    }
    if (f) fclose(f);
    CHECK(n == 12 && order_ok, "%d rows (expected 12), in job/epoch order: %d", n, order_ok);
    unlink(path);
    free_set(&tr);
    free_set(&te);
}

int main(void) {
    st_file f;
    char err[512];
    if (st_open("golden/cnn.safetensors", &f, err, sizeof err) != 0) {
        CHECK(0, "%s", err);
        return tu_finish("test_cnn");
    }
    golden_case(&f, "bin.", 2);
    golden_case(&f, "mc.", 3);
    golden_case(&f, "odd.", 2);
    test_default_shapes_and_init(&f);
    st_close(&f);
    test_save_load();
    /* The toy trainings are many tiny steps: threads only add synchronisation there (the
     * threaded paths of the block are covered by test_cnn_block and the golden cases above). */
    da_set_threads(1);
    const int64_t v2[2] = {0, 1}, v3[3] = {3, 5, 9}, v5[5] = {0, 1, 2, 3, 4};
    test_learns(1, 16, 16, 2, v2, 48, 12);
    test_learns(3, 12, 20, 3, v3, 48, 12);   /* multi-class, non-square, labels that are not 0..K-1 */
    test_learns(1, 11, 9, 5, v5, 80, 25);    /* odd sizes: pooling floors */
    test_determinism_and_errors();
    test_jobs();
    return tu_finish("test_cnn");
}
