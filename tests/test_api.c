/* test_api.c — the public API's fine-tuning and classifier jobs (diffadapt.h) on tiny inputs:
 * fine-tuning changes the model and reports progress, the run handle epoch by epoch and resumed
 * from a saved state gives da_finetune_text's weights bit for bit, the classifier learns a
 * separable set and survives a save/load round trip, and wrong shapes, missing labels, bad
 * settings, broken state files and bad arguments fail with a message. */
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

/* ---- the fine-tuning run handle ------------------------------------------------------------ */

enum { RUN_N = 4 };

/* RUN_N images of RES×RES, a fixed pattern, in memory and as a data file. */
static void run_images(float *x, const char *path) {
    for (int i = 0; i < RUN_N * RES * RES; i++) x[i] = (float)((i * 7) % 13) / 6.5f - 1.0f;
    da_dataset d = {.n = RUN_N, .c = 1, .h = RES, .w = RES, .images = x};
    char err[512];
    da_check(da_dataset_save(&d, path, err, sizeof err) == 0, "test_api", "%s", err);
}

static void run_settings(da_finetune_settings *s) {
    da_finetune_defaults(s);
    s->t0 = 100;
    s->inv_steps = 4;
    s->train_steps = 2;
    s->batch = 2;
    s->lr = 1e-3f;
    s->epochs = 2;
}

static void count_batch(void *user, const da_finetune_batch_report *r) {
    int *n = user;
    if (r->n == 2 && r->images == RUN_N && r->epochs == 2 && isfinite(r->loss)) (*n)++;
}

/* A fresh copy of the tiny model and a run over x; NULL (after a failed CHECK) when it cannot be made. */
static da_finetune_run *new_run(const char *model_path, const da_clip_model *clip, const float *x,
                                const da_finetune_settings *s, da_model **m) {
    char err[1024] = "";
    da_finetune_run *run = NULL;
    *m = NULL;
    CHECK(da_model_load(model_path, NULL, m, err, sizeof err) == 0, "%s", err);
    if (!*m) return NULL;
    const da_finetune_data data = {.images = x, .n = RUN_N};
    CHECK(da_finetune_run_create(*m, clip, NULL, "photo", "sketch", &data, s, &run, err, sizeof err) == 0 && run, "%s",
          err);
    return run;
}

/* A saved state that fails to load: -1, a message containing `want`, and the run unchanged. */
static void check_bad_state(da_finetune_run *run, const da_model *m, const char *path, const char *want,
                            const char *what) {
    char err[4096] = "", h0[17], h1[17];
    da_model_hash(m, h0);
    int done = da_finetune_run_epochs_done(run);
    int rc = da_finetune_run_load_state(run, path, err, sizeof err);
    da_model_hash(m, h1);
    CHECK(rc == -1 && strstr(err, want) && !strcmp(h0, h1) && da_finetune_run_epochs_done(run) == done,
          "%s: rc %d, message '%s' (want '%s'), model %s", what, rc, err, want, strcmp(h0, h1) ? "changed" : "kept");
}

static void finetune_run(const char *dir, const char *model_path, const da_clip_model *clip) {
    char err[4096] = "", data[700], state[700], other[700], ft[700], h_ref[17] = "", h[17];
    float x[RUN_N * RES * RES];
    td_path(data, sizeof data, dir, "run_data.safetensors");
    td_path(state, sizeof state, dir, "run_state.safetensors");
    td_path(other, sizeof other, dir, "run_other.safetensors");
    td_path(ft, sizeof ft, dir, "run_ft.safetensors");
    run_images(x, data);
    da_finetune_settings s;
    run_settings(&s);
    CHECK(s.ddim_batch == 8 && s.identity == DA_FINETUNE_ID_PIXELS && s.id_weight == 0 && s.views == 0 &&
              s.view_min_scale > 0.59f && s.view_min_scale < 0.61f && !s.recompute,
          "new defaults: ddim_batch %d identity %d id_weight %g views %d scale %g", s.ddim_batch, s.identity,
          (double)s.id_weight, s.views, (double)s.view_min_scale);

    /* the reference: two epochs in one call */
    da_model *ref = NULL;
    CHECK(da_model_load(model_path, NULL, &ref, err, sizeof err) == 0, "%s", err);
    if (!ref) return;
    CHECK(da_finetune_text(ref, clip, "photo", "sketch", data, &s, NULL, NULL, err, sizeof err) == 0, "%s", err);
    da_model_hash(ref, h_ref);
    da_model_free(ref);

    /* the run handle, epoch by epoch: the same weights */
    da_model *m = NULL;
    da_finetune_run *run = new_run(model_path, clip, x, &s, &m);
    if (!run) goto out;
    CHECK(da_finetune_run_latents(run) == NULL && da_finetune_run_images(run) == RUN_N, "fresh run");
    float dir_v[1024];
    int dim = da_finetune_run_direction(run, dir_v, 1024);
    double norm = 0;
    for (int k = 0; k < dim && k < 1024; k++) norm += (double)dir_v[k] * dir_v[k];
    CHECK(dim > 0 && dim <= 1024 && fabs(norm - 1.0) < 1e-4, "direction: dim %d, |dir|^2 %g", dim, norm);
    CHECK(strstr(da_finetune_run_settings_text(run), "mode=chain src=\"photo\" tgt=\"sketch\" t0=100") != NULL,
          "settings text '%s'", da_finetune_run_settings_text(run));
    CHECK(da_finetune_run_invert(run, NULL, NULL, err, sizeof err) == 0 && da_finetune_run_latents(run), "%s", err);
    int batches = 0;
    da_finetune_epoch_report rep = {0};
    CHECK(da_finetune_run_epoch(run, count_batch, &batches, &rep, err, sizeof err) == 0, "%s", err);
    CHECK(rep.epoch == 1 && rep.epochs == 2 && isfinite(rep.loss) && rep.model_bytes > 0 && rep.frozen_bytes > 0 &&
              fabs(rep.lr - 1e-3) < 1e-9 && da_finetune_run_epochs_done(run) == 1,
          "epoch 1 report: epoch %d/%d loss %g lr %g model %lld frozen %lld", rep.epoch, rep.epochs, rep.loss, rep.lr,
          (long long)rep.model_bytes, (long long)rep.frozen_bytes);
    CHECK(fabs(da_finetune_run_learning_rate(run) - 1e-3 * 1.3) < 1e-9, "lr of epoch 2: %g",
          da_finetune_run_learning_rate(run));
    err[0] = 0;
    CHECK(da_finetune_run_invert(run, NULL, NULL, err, sizeof err) == -1 && strstr(err, "original model"),
          "inverting after training: '%s'", err);
    CHECK(da_finetune_run_save_state(run, state, err, sizeof err) == 0, "%s", err);
    CHECK(da_finetune_run_epoch(run, count_batch, &batches, NULL, err, sizeof err) == 0, "%s", err);
    da_model_hash(m, h);
    CHECK(batches == 4 && !strcmp(h, h_ref), "run handle: %d batches, weights %s, da_finetune_text's %s", batches, h,
          h_ref);
    err[0] = 0;
    CHECK(da_finetune_run_epoch(run, NULL, NULL, NULL, err, sizeof err) == -1 && strstr(err, "all 2 epochs"),
          "a third epoch of two: '%s'", err);
    /* previews do not change the run; the saved model loads with the same weights */
    float prev[RES * RES];
    memcpy(prev, da_finetune_run_latents(run), sizeof prev);
    CHECK(da_finetune_run_generate(run, prev, 1, err, sizeof err) == 0 && isfinite(prev[0]), "%s", err);
    da_model_hash(m, h);
    CHECK(!strcmp(h, h_ref), "da_finetune_run_generate changed the model");
    da_model *back = NULL;
    CHECK(da_finetune_run_save_model(run, ft, "m.safetensors", err, sizeof err) == 0 &&
              da_model_load(ft, NULL, &back, err, sizeof err) == 0, "%s", err);
    if (back) da_model_hash(back, h);
    CHECK(back && !strcmp(h, h_ref), "the saved fine-tuned model has other weights");
    da_model_free(back);
    da_finetune_run_free(run);
    da_model_free(m);

    /* interrupted after epoch 1 (its state saved), continued in a fresh run: the same weights */
    run = new_run(model_path, clip, x, &s, &m);
    if (!run) goto out;
    err[0] = 0;
    CHECK(da_finetune_run_load_state(run, state, err, sizeof err) == -1 && strstr(err, "latents first"),
          "a state before the latents: '%s'", err);
    CHECK(da_finetune_run_invert(run, NULL, NULL, err, sizeof err) == 0, "%s", err);
    check_bad_state(run, m, data, "not a fine-tuning checkpoint", "a data file as the state");
    check_bad_state(run, m, "/nonexistent/state.safetensors", "nonexistent", "a missing file");
    td_write(dir, "run_garbage.safetensors", "not a safetensors file at all", 29);
    td_path(other, sizeof other, dir, "run_garbage.safetensors");
    check_bad_state(run, m, other, "run_garbage", "a corrupt file");
    size_t len = 0;
    char *bytes = td_slurp(state, &len);
    CHECK(bytes && len > 100, "state file unreadable");
    if (bytes) {
        td_write(dir, "run_truncated.safetensors", bytes, len / 2);
        td_path(other, sizeof other, dir, "run_truncated.safetensors");
        check_bad_state(run, m, other, "run_truncated", "a truncated file");
        free(bytes);
    }
    CHECK(da_finetune_run_load_state(run, state, err, sizeof err) == 0 && da_finetune_run_epochs_done(run) == 1, "%s",
          err);
    CHECK(da_finetune_run_epoch(run, NULL, NULL, NULL, err, sizeof err) == 0, "%s", err);
    da_model_hash(m, h);
    CHECK(!strcmp(h, h_ref), "resumed run: weights %s, uninterrupted %s", h, h_ref);
    da_finetune_run_free(run);
    da_model_free(m);

    /* a state of other settings is refused, naming both */
    s.clip_weight = 2;
    run = new_run(model_path, clip, x, &s, &m);
    if (run) {
        float lat[RUN_N * RES * RES];
        for (int i = 0; i < RUN_N * RES * RES; i++) lat[i] = x[i];   /* any latents will do for this */
        CHECK(da_finetune_run_set_latents(run, lat, err, sizeof err) == 0, "%s", err);
        check_bad_state(run, m, state, "other settings", "other settings");
        err[0] = 0;
        da_finetune_run_load_state(run, state, err, sizeof err);
        CHECK(strstr(err, "clip_weight=3") && strstr(err, "clip_weight=2"), "both settings named: '%s'", err);
    }
    da_finetune_run_free(run);
    da_model_free(m);
out:
    return;
}

/* Wrong arguments: -1 and a message, never a crash. */
static void finetune_run_errors(const char *model_path, const da_clip_model *clip) {
    char err[1024];
    float x[RUN_N * RES * RES] = {0};
    da_finetune_settings s;
    run_settings(&s);
    da_model *m = NULL;
    CHECK(da_model_load(model_path, NULL, &m, err, sizeof err) == 0, "%s", err);
    if (!m) return;
    da_finetune_run *run = (da_finetune_run *)1;
    const da_finetune_data data = {.images = x, .n = RUN_N}, empty = {.images = x, .n = 0},
                           both = {.images = x, .n = RUN_N, .tgt_images = x, .n_tgt = 1};
#define BAD_CREATE(call, what)                                                                                  \
    do {                                                                                                        \
        err[0] = 0;                                                                                             \
        run = (da_finetune_run *)1;                                                                             \
        CHECK((call) == -1 && run == NULL && err[0], "%s: '%s'", what, err);                                    \
    } while (0)
    BAD_CREATE(da_finetune_run_create(NULL, clip, NULL, "a", "b", &data, &s, &run, err, sizeof err), "no model");
    BAD_CREATE(da_finetune_run_create(m, NULL, NULL, "a", "b", &data, &s, &run, err, sizeof err), "no CLIP");
    BAD_CREATE(da_finetune_run_create(m, clip, NULL, NULL, "b", &data, &s, &run, err, sizeof err), "no text");
    BAD_CREATE(da_finetune_run_create(m, clip, NULL, "a", "b", &empty, &s, &run, err, sizeof err), "no images");
    BAD_CREATE(da_finetune_run_create(m, clip, NULL, "a", "b", &data, NULL, &run, err, sizeof err), "no settings");
    s.tgt_images = "somewhere";
    BAD_CREATE(da_finetune_run_create(m, clip, NULL, "a", "b", &both, &s, &run, err, sizeof err), "targets twice");
    run_settings(&s);
    s.id_weight = 1;
    BAD_CREATE(da_finetune_run_create(m, clip, NULL, "a", "b", &data, &s, &run, err, sizeof err), "id without model");
    run_settings(&s);
    s.identity = 7;
    BAD_CREATE(da_finetune_run_create(m, clip, NULL, "a", "b", &data, &s, &run, err, sizeof err), "identity 7");
    run_settings(&s);
    s.ddim_batch = 0;
    BAD_CREATE(da_finetune_run_create(m, clip, NULL, "a", "b", &data, &s, &run, err, sizeof err), "ddim_batch 0");
    run_settings(&s);
    s.lr = -1;
    BAD_CREATE(da_finetune_run_create(m, clip, NULL, "a", "b", &data, &s, &run, err, sizeof err), "lr -1");
#undef BAD_CREATE
    err[0] = 0;
    CHECK(da_finetune_run_create(m, clip, NULL, "a", "b", &data, &s, NULL, err, sizeof err) == -1 && err[0],
          "out NULL: '%s'", err);
    err[0] = 0;
    CHECK(da_finetune_run_epoch(NULL, NULL, NULL, NULL, err, sizeof err) == -1 && err[0], "epoch of no run");
    err[0] = 0;
    CHECK(da_finetune_run_invert(NULL, NULL, NULL, err, sizeof err) == -1 && err[0], "invert of no run");
    err[0] = 0;
    CHECK(da_finetune_run_save_state(NULL, "x", err, sizeof err) == -1 && err[0], "save of no run");
    err[0] = 0;
    CHECK(da_finetune_run_load_state(NULL, "x", err, sizeof err) == -1 && err[0], "load into no run");
    err[0] = 0;
    CHECK(da_finetune_run_generate(NULL, x, 1, err, sizeof err) == -1 && err[0], "generate of no run");
    CHECK(da_finetune_run_epochs_done(NULL) == 0 && da_finetune_run_latents(NULL) == NULL &&
              da_finetune_run_direction(NULL, NULL, 0) == 0,
          "accessors of no run");
    da_finetune_run_free(NULL);
    run_settings(&s);
    s.epochs = 1;
    run = NULL;
    CHECK(da_finetune_run_create(m, clip, NULL, "a", "b", &data, &s, &run, err, sizeof err) == 0, "%s", err);
    if (run) {
        err[0] = 0;
        CHECK(da_finetune_run_set_latents(run, NULL, err, sizeof err) == -1 && err[0], "NULL latents: '%s'", err);
        err[0] = 0;
        CHECK(da_finetune_run_generate(run, NULL, 2, err, sizeof err) == -1 && err[0], "generate into NULL: '%s'", err);
        err[0] = 0;
        CHECK(da_finetune_run_save_state(run, NULL, err, sizeof err) == -1 && err[0], "save to NULL: '%s'", err);
        err[0] = 0;
        CHECK(da_finetune_run_save_state(run, "/nonexistent/dir/state.safetensors", err, sizeof err) == -1 && err[0],
              "save into a missing folder: '%s'", err);
    }
    da_finetune_run_free(run);
    /* an identity network loaded without a tokenizer serves as one; a CLIP without one cannot give the direction */
    char clip_path[4096];
    const char *src = getenv("DA_SOURCE_DIR");
    snprintf(clip_path, sizeof clip_path, "%s/models/mini_clip.safetensors", src ? src : "..");
    da_clip_model *img_only = NULL;
    CHECK(da_clip_model_load_image_only(clip_path, &img_only, err, sizeof err) == 0 && img_only, "%s", err);
    if (img_only) {
        char h1[17], h2[17], desc[256];
        da_clip_model_hash(img_only, h1);
        da_clip_model_hash(clip, h2);
        CHECK(!strcmp(h1, h2) && strlen(da_clip_model_describe(img_only, desc, sizeof desc)) > 0, "clip hash %s / %s",
              h1, h2);
        s.id_weight = 0.5f;
        run = NULL;
        CHECK(da_finetune_run_create(m, clip, img_only, "a", "b", &data, &s, &run, err, sizeof err) == 0 &&
                  strstr(da_finetune_run_settings_text(run), "id_weight=0.5"),
              "with an identity network: %s", err);
        da_finetune_run_free(run);
        err[0] = 0;
        run = (da_finetune_run *)1;
        CHECK(da_finetune_run_create(m, img_only, NULL, "a", "b", &data, &s, &run, err, sizeof err) == -1 && !run &&
                  strstr(err, "tokenizer"),
              "a CLIP without a tokenizer: '%s'", err);
    }
    da_clip_model_free(img_only);
    da_clip_model *none = (da_clip_model *)1;
    err[0] = 0;
    CHECK(da_clip_model_load_vocab(clip_path, "/nonexistent/vocab.txt.gz", &none, err, sizeof err) == -1 && !none &&
              err[0],
          "a missing vocabulary: '%s'", err);
    da_model_free(m);
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
    finetune_run(dir, model_path, clip);
    finetune_run_errors(model_path, clip);
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

typedef struct {
    int epochs;
    double last_eval;
} clf_epochs;

static void count_epoch(void *user, const da_classifier_epoch_report *r) {
    clf_epochs *c = user;
    if (r->epoch == c->epochs + 1 && r->n_eval == 1 && r->epochs == 3 && isfinite(r->train_loss)) c->epochs++;
    c->last_eval = r->eval_acc[0];
}

/* Training on images in memory with an eval set, metrics and a report per epoch; the save/load
 * round trip keeps the accuracy; bad arguments and files fail with a message. */
static void classifier_in_memory(const char *dir, const char *train, const char *test) {
    char err[1024] = "", metrics[700], saved[700], garbage[700];
    td_path(metrics, sizeof metrics, dir, "metrics.csv");
    td_path(saved, sizeof saved, dir, "clf.safetensors");
    da_dataset tr = {0}, te = {0};
    CHECK(da_dataset_load(train, NULL, &tr, err, sizeof err) == 0 && da_dataset_load(test, NULL, &te, err, sizeof err) == 0,
          "%s", err);
    const da_image_set train_set = {tr.images, tr.labels, tr.n, (int)tr.c, (int)tr.h, (int)tr.w};
    const da_classifier_eval ev = {"held-out", {te.images, te.labels, te.n, (int)te.c, (int)te.h, (int)te.w}};
    da_classifier_settings s;
    da_classifier_defaults(&s);
    s.epochs = 3;
    s.batch = 8;
    s.lr = 3e-3f;
    clf_epochs seen = {0};
    const da_classifier_train_options o = {&ev, 1, "tiny", metrics, count_epoch, &seen};
    da_classifier_model *c = NULL, *back = NULL;
    CHECK(da_classifier_model_train_set(&train_set, &s, &o, &c, err, sizeof err) == 0 && c, "%s", err);
    size_t len = 0;
    char *csv = td_slurp(metrics, &len);
    int rows = 0;
    for (size_t i = 0; csv && i < len; i++) rows += csv[i] == '\n';
    CHECK(seen.epochs == 3 && csv && !strncmp(csv, DA_CLASSIFIER_METRICS_HEADER "\n", strlen(DA_CLASSIFIER_METRICS_HEADER) + 1) &&
              rows == 4 && strstr(csv, "tiny,0,3,"),
          "%d epoch reports, metrics:\n%s", seen.epochs, csv ? csv : "(none)");
    free(csv);
    if (!c) goto out;
    int64_t values[4] = {-1, -1, -1, -1};
    CHECK(da_classifier_model_classes(c, values, 4) == 2 && values[0] == 0 && values[1] == 1, "classes %lld %lld",
          (long long)values[0], (long long)values[1]);
    double acc = -1, acc_back = -2;
    CHECK(da_classifier_model_evaluate(c, test, &acc, err, sizeof err) == 0 && fabs(acc - seen.last_eval) < 1e-9,
          "evaluate %.2f, last epoch's report %.2f (%s)", acc, seen.last_eval, err);
    CHECK(da_classifier_model_save(c, saved, NULL, err, sizeof err) == 0 &&
              da_classifier_model_load(saved, &back, err, sizeof err) == 0 && back,
          "save/load: %s", err);
    if (back) {
        CHECK(da_classifier_model_evaluate(back, test, &acc_back, err, sizeof err) == 0 && acc_back == acc,
              "accuracy %.4f after the round trip, %.4f before (%s)", acc_back, acc, err);
        CHECK(da_classifier_model_classes(back, values, 4) == 2 && values[0] == 0 && values[1] == 1,
              "classes after the round trip %lld %lld", (long long)values[0], (long long)values[1]);
    }
    da_classifier_model_free(back);
    /* named classes that are no label values load as 0..K-1 */
    back = NULL;
    CHECK(da_classifier_model_save(c, saved, "dark,bright", err, sizeof err) == 0 &&
              da_classifier_model_load(saved, &back, err, sizeof err) == 0 &&
              da_classifier_model_classes(back, values, 4) == 2 && values[0] == 0 && values[1] == 1,
          "named classes: %s", err);
    da_classifier_model_free(back);

    /* bad arguments and files */
    td_write(dir, "clf_garbage.safetensors", "garbage", 7);
    td_path(garbage, sizeof garbage, dir, "clf_garbage.safetensors");
    back = (da_classifier_model *)1;
    err[0] = 0;
    CHECK(da_classifier_model_load(garbage, &back, err, sizeof err) == -1 && !back && strstr(err, "clf_garbage"),
          "a corrupt classifier file: '%s'", err);
    back = (da_classifier_model *)1;
    err[0] = 0;
    CHECK(da_classifier_model_load(test, &back, err, sizeof err) == -1 && !back && err[0],
          "a data file as a classifier: '%s'", err);
    err[0] = 0;
    CHECK(da_classifier_model_save(NULL, saved, NULL, err, sizeof err) == -1 && err[0], "save of no classifier");
    back = (da_classifier_model *)1;
    err[0] = 0;
    CHECK(da_classifier_model_train_set(NULL, &s, NULL, &back, err, sizeof err) == -1 && !back && err[0],
          "no training set: '%s'", err);
    const da_classifier_train_options too_many = {&ev, 17, NULL, NULL, NULL, NULL};
    err[0] = 0;
    CHECK(da_classifier_model_train_set(&train_set, &s, &too_many, &back, err, sizeof err) == -1 && err[0],
          "17 eval sets: '%s'", err);
    const da_classifier_eval unlabelled = {"u", {te.images, NULL, te.n, (int)te.c, (int)te.h, (int)te.w}};
    const da_classifier_train_options no_labels = {&unlabelled, 1, NULL, NULL, NULL, NULL};
    err[0] = 0;
    CHECK(da_classifier_model_train_set(&train_set, &s, &no_labels, &back, err, sizeof err) == -1 && strstr(err, "labels"),
          "an unlabelled eval set: '%s'", err);
    const da_image_set empty = {tr.images, tr.labels, 0, 1, RES, RES};
    err[0] = 0;
    CHECK(da_classifier_model_train_set(&empty, &s, NULL, &back, err, sizeof err) == -1 && err[0], "no images: '%s'", err);
    CHECK(da_classifier_model_train_set(&train_set, &s, NULL, NULL, err, sizeof err) == -1, "out NULL");
    CHECK(da_classifier_model_classes(NULL, values, 4) == 0, "classes of no classifier");
    da_classifier_model_free(c);
out:
    da_dataset_free(&tr);
    da_dataset_free(&te);
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
    classifier_in_memory(dir, train, test);
    td_remove(dir);
    return tu_finish("test_api");
}
