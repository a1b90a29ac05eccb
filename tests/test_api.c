/* test_api.c — the public API's fine-tuning and classifier jobs (diffadapt.h) on tiny inputs:
 * fine-tuning changes the model and reports progress, the classifier learns a separable set,
 * and wrong shapes, missing labels and bad settings fail with a message. */
#include <unistd.h>

#include "data/dataset.h"
#include "diffadapt.h"
#include "tensor/rng.h"
#include "test_util.h"
#include "tiny_unet.h"
#include "tmpdir.h"

#define RES 8

typedef struct {
    int calls;
    int64_t last_done, last_total;
    char last_stage[32];
} progress_log;

static void on_progress(void *user, const char *stage, int64_t done, int64_t total) {
    progress_log *p = user;
    p->calls++;
    p->last_done = done;
    p->last_total = total;
    snprintf(p->last_stage, sizeof p->last_stage, "%s", stage);
}

/* n images of side res: label i%2, class 0 dark and class 1 bright, with noise. */
static void save_set(const char *path, int64_t n, int res, bool labels, uint64_t seed) {
    float *img = malloc(sizeof(float) * (size_t)(n * res * res));
    int64_t *lab = malloc(sizeof(int64_t) * (size_t)n);
    da_rng r;
    da_rng_init(&r, seed);
    da_rng_uniform(&r, img, n * res * res, -0.3f, 0.3f);
    for (int64_t i = 0; i < n; i++) {
        lab[i] = i % 2;
        for (int64_t k = 0; k < res * res; k++) img[i * res * res + k] += lab[i] ? 0.6f : -0.6f;
    }
    da_dataset d = {.n = n, .c = 1, .h = res, .w = res, .images = img, .labels = labels ? lab : NULL};
    char err[512];
    da_check(da_dataset_save(&d, path, err, sizeof err) == 0, "test_api", "%s", err);
    free(img);
    free(lab);
}

/* The batches a translation hands over, checked against a full in-memory translation. */
typedef struct {
    int n, mismatch;
    int64_t first[4];
    const float *full;
} batch_seen;

static int skip_middle(void *user, int64_t first, int64_t n) {
    (void)user;
    (void)n;
    return first != 2;
}

static int check_batch(void *user, int64_t first, int64_t n, const float *images, char *err, size_t errlen) {
    (void)err;
    (void)errlen;
    batch_seen *s = user;
    if (s->n < 4) s->first[s->n] = first;
    s->n++;
    s->mismatch += memcmp(images, s->full + first * RES * RES, sizeof(float) * (size_t)(n * RES * RES)) != 0;
    return 0;
}

static void finetune(const char *dir, const char *model_path, const char *data, const char *data16) {
    char clip_path[4096], err[1024] = "";
    const char *src = getenv("DA_SOURCE_DIR");
    snprintf(clip_path, sizeof clip_path, "%s/models/mini_clip.safetensors", src ? src : "..");
    da_clip_model *clip = NULL;
    da_model *m = NULL, *orig = NULL;
    CHECK(da_clip_model_load(clip_path, &clip, err, sizeof err) == 0 && clip, "%s", err);
    CHECK(da_model_load(model_path, NULL, &m, err, sizeof err) == 0, "%s", err);
    CHECK(da_model_load(model_path, NULL, &orig, err, sizeof err) == 0, "%s", err);
    if (!clip || !m || !orig) goto done;
    da_finetune_settings s;
    da_finetune_defaults(&s);
    CHECK(s.t0 == 500 && s.inv_steps == 40 && s.train_steps == 6 && s.clip_weight == 3.0f, "defaults");
    s.t0 = 100;
    s.inv_steps = 4;
    s.train_steps = 2;
    s.batch = 2;
    s.images = 2;
    s.lr = 1e-3f;
    progress_log p = {0};
    CHECK(da_finetune_text(m, clip, "photo", "sketch", data, &s, on_progress, &p, err, sizeof err) == 0, "%s", err);
    CHECK(p.calls >= 2 && !strcmp(p.last_stage, "finetune") && p.last_done == p.last_total && p.last_total == 2,
          "progress: %d calls, last %s %lld/%lld", p.calls, p.last_stage, (long long)p.last_done, (long long)p.last_total);

    /* the fine-tuned model generates something else than the original from the same images */
    float a[2 * RES * RES], b[2 * RES * RES];
    for (int i = 0; i < 2 * RES * RES; i++) a[i] = b[i] = (float)(i % 7) / 3.5f - 1.0f;
    da_translate_settings ts;
    da_translate_defaults(&ts);
    ts.t0 = 100;
    ts.inv_steps = 4;
    ts.gen_steps = 2;
    CHECK(da_translate_images(orig, orig, &ts, a, 2, NULL, NULL, err, sizeof err) == 0, "%s", err);
    CHECK(da_translate_images(orig, m, &ts, b, 2, NULL, NULL, err, sizeof err) == 0, "%s", err);
    double diff = 0;
    for (int i = 0; i < 2 * RES * RES; i++) diff += fabs((double)a[i] - (double)b[i]);
    CHECK(diff > 1e-3, "fine-tuning left the model's output unchanged (sum |diff| %g)", diff);

    /* inversion then generation through the DDIM calls equal a translation with the same model */
    {
        float c[2 * RES * RES];
        for (int i = 0; i < 2 * RES * RES; i++) c[i] = (float)(i % 7) / 3.5f - 1.0f;
        da_ddim_settings ds;
        da_ddim_defaults(&ds);
        CHECK(ds.t0 == 500 && ds.steps == 40 && ds.batch == 8 && ds.eta == 0.0f, "DDIM defaults");
        ds.t0 = ts.t0;
        ds.steps = ts.inv_steps;
        CHECK(da_invert_images(orig, &ds, c, 2, NULL, NULL, err, sizeof err) == 0, "%s", err);
        ds.steps = ts.gen_steps;
        CHECK(da_generate_images(orig, NULL, 1.0f, &ds, c, 2, NULL, NULL, err, sizeof err) == 0, "%s", err);
        CHECK(memcmp(c, a, sizeof c) == 0, "invert + generate differs from da_translate_images(orig, orig)");
        err[0] = 0;
        CHECK(da_generate_images(m, NULL, 0.5f, &ds, c, 2, NULL, NULL, err, sizeof err) != 0 && err[0],
              "ratio 0.5 without the original accepted");
        CHECK(da_model_timesteps(orig) == 1000, "timesteps %d", da_model_timesteps(orig));
    }

    /* batches with hooks: 5 images in batches of 2, the middle batch skipped, results through the
     * hook only; the translated batches equal da_translate_images' */
    {
        enum { NB = 5 };
        float src[NB * RES * RES], full[NB * RES * RES];
        for (int i = 0; i < NB * RES * RES; i++) src[i] = full[i] = (float)(i % 11) / 5.5f - 1.0f;
        ts.batch = 2;
        CHECK(da_translate_images(orig, m, &ts, full, NB, NULL, NULL, err, sizeof err) == 0, "%s", err);
        batch_seen seen = {.full = full};
        const da_translate_hooks hooks = {0, 0, skip_middle, check_batch, &seen};
        CHECK(da_translate_batches(orig, m, &ts, src, NULL, NB, &hooks, NULL, NULL, err, sizeof err) == 0, "%s", err);
        CHECK(seen.n == 2 && seen.first[0] == 0 && seen.first[1] == 4 && seen.mismatch == 0,
              "hooks: %d batches (%lld, %lld), %d differing", seen.n, (long long)seen.first[0], (long long)seen.first[1],
              seen.mismatch);
        const da_translate_hooks range = {1, 9, NULL, NULL, NULL};
        CHECK(da_translate_batches(orig, m, &ts, src, NULL, NB, &range, NULL, NULL, err, sizeof err) != 0 && err[0],
              "batches 1..9 of 3 accepted");
        ts.batch = 8;
        char h1[17], h2[17], desc[256];
        da_model_hash(orig, h1);
        da_model_hash(m, h2);
        CHECK(strlen(h1) == 16 && strcmp(h1, h2) != 0 && strstr(da_model_describe(m, desc, sizeof desc), "M parameters"),
              "hash %s / %s, describe '%s'", h1, h2, desc);
    }

    char saved[4096];
    snprintf(saved, sizeof saved, "%s/ft.safetensors", dir);
    da_model *back = NULL;
    CHECK(da_model_save(m, saved, err, sizeof err) == 0 && da_model_load(saved, NULL, &back, err, sizeof err) == 0, "%s",
          err);
    da_model_free(back);

    err[0] = 0;
    CHECK(da_finetune_text(m, clip, "photo", "sketch", data16, &s, NULL, NULL, err, sizeof err) == -1 &&
          strstr(err, "16x16"), "16x16 data for an 8x8 model: '%s'", err);
    s.epochs = 0;
    err[0] = 0;
    CHECK(da_finetune_text(m, clip, "photo", "sketch", data, &s, NULL, NULL, err, sizeof err) == -1 && err[0],
          "epochs 0: '%s'", err);
done:
    da_model_free(orig);
    da_model_free(m);
    da_clip_model_free(clip);
}

static void classifier(const char *train, const char *test, const char *unlabelled, const char *data16) {
    char err[1024] = "";
    da_classifier_settings s;
    da_classifier_defaults(&s);
    CHECK(s.epochs == 10 && s.batch == 32, "defaults %d %d", s.epochs, s.batch);
    s.epochs = 8;
    s.batch = 8;
    s.lr = 3e-3f;
    da_classifier_model *c = NULL;
    progress_log p = {0};
    CHECK(da_classifier_model_train(train, &s, on_progress, &p, &c, err, sizeof err) == 0 && c, "%s", err);
    CHECK(!strcmp(p.last_stage, "train") && p.last_done == 8, "progress %s %lld", p.last_stage, (long long)p.last_done);
    if (!c) return;
    double acc = -1;
    CHECK(da_classifier_model_evaluate(c, test, &acc, err, sizeof err) == 0 && acc >= 90.0, "accuracy %.1f %% (%s)", acc,
          err);
    err[0] = 0;
    CHECK(da_classifier_model_evaluate(c, unlabelled, &acc, err, sizeof err) == -1 && strstr(err, "no labels"), "'%s'",
          err);
    err[0] = 0;
    CHECK(da_classifier_model_evaluate(c, data16, &acc, err, sizeof err) == -1 && strstr(err, "16x16"), "'%s'", err);
    da_classifier_model_free(c);
    da_classifier_model *none = (da_classifier_model *)1;
    err[0] = 0;
    CHECK(da_classifier_model_train(unlabelled, &s, NULL, NULL, &none, err, sizeof err) == -1 && !none && err[0],
          "unlabelled training set: '%s'", err);
}

int main(void) {
    da_threads_set(1);
    char dir[512], model[700], data[700], data16[700], train[700], test[700], unl[700];
    td_make(dir, sizeof dir, "api");
    td_path(model, sizeof model, dir, "m.safetensors");
    td_path(data, sizeof data, dir, "data.safetensors");
    td_path(data16, sizeof data16, dir, "data16.safetensors");
    td_path(train, sizeof train, dir, "train.safetensors");
    td_path(test, sizeof test, dir, "test.safetensors");
    td_path(unl, sizeof unl, dir, "unlabelled.safetensors");
    tiny_unet_save(model, RES, 1);
    save_set(data, 2, RES, true, 1);
    save_set(data16, 2, 16, true, 2);
    save_set(train, 32, RES, true, 3);
    save_set(test, 16, RES, true, 4);
    save_set(unl, 4, RES, false, 5);
    finetune(dir, model, data, data16);
    classifier(train, test, unl, data16);
    td_remove(dir);
    return tu_finish("test_api");
}
