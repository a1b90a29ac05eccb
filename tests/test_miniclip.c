/* test_miniclip.c — the built-in mini-CLIP: captions (no class names, no held-out style), the
 * learned vocabulary, loss going down, bit-exact resume, label independence, evaluation and CLI. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdint.h>
#include <sys/wait.h>

#include "cli_run.h"
#include "data/dataset.h"
#include "data/styles.h"
#include "io/safetensors.h"
#include "nn/clip.h"
#include "tensor/rng.h"
#include "test_util.h"
#include "tmpdir.h"
#include "train/miniclip_train.h"

/* Fashion-MNIST's classes, and the words people use for them: no caption may contain one. */
static const char *const CLASS_WORDS[] = {"t-shirt", "tshirt", "top", "trouser", "pullover", "dress", "coat",
                                          "sandal", "shirt", "sneaker", "bag", "ankle", "boot", "shoe", "jacket",
                                          "sweater", "skirt", "clothing", "garment"};

static void lower(const char *s, char *out, size_t len) {
    size_t k = 0;
    for (; *s && k + 1 < len; s++) out[k++] = (char)tolower((unsigned char)*s);
    out[k] = 0;
}

/* phrase occurs in text between word boundaries (not as part of a longer word) */
static bool has_phrase(const char *text, const char *phrase) {
    char t[512], p[128];
    lower(text, t, sizeof t);
    lower(phrase, p, sizeof p);
    size_t n = strlen(p);
    for (const char *at = strstr(t, p); at; at = strstr(at + 1, p)) {
        bool left = at == t || !isalnum((unsigned char)at[-1]);
        bool right = !isalnum((unsigned char)at[n]);
        if (left && right) return true;
    }
    return false;
}

static bool has_class_word(const char *text) {
    char t[512];
    lower(text, t, sizeof t);
    for (size_t i = 0; i < sizeof CLASS_WORDS / sizeof CLASS_WORDS[0]; i++)
        if (strstr(t, CLASS_WORDS[i])) return true;   /* substring: stricter than a word match */
    return false;
}

static bool is_style_word(const char *word) {
    for (int s = 0; s < da_style_count(); s++) {
        const char *w[64];
        int n = da_miniclip_style_words(da_style_get(s), w, 64);
        for (int k = 0; k < n; k++)
            if (has_phrase(word, w[k])) return true;
    }
    return false;
}

static void test_captions(void) {
    int nt, ne;
    const char *const *tmpl = da_miniclip_templates(&nt);
    const char *const *ev = da_miniclip_eval_templates(&ne);
    CHECK(nt >= 20 && ne >= 6, "%d training and %d evaluation templates", nt, ne);
    /* templates: one hole, no class word, no style word (the filled word is the only style cue) */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < (pass ? ne : nt); i++) {
            const char *t = pass ? ev[i] : tmpl[i];
            const char *hole = strstr(t, "{}");
            CHECK(hole && !strstr(hole + 2, "{}"), "template '%s' has one hole", t);
            CHECK(!has_class_word(t), "template '%s' names no class", t);
            CHECK(!is_style_word(t), "template '%s' names no style", t);
            for (int k = 0; k < nt && pass; k++) CHECK(strcmp(t, tmpl[k]), "eval template '%s' is not a training one", t);
        }
    /* every training caption: no class word, no word of a held-out style, never a held-out style */
    int styles[64];
    int ns = da_miniclip_train_styles(styles, 64), n_caps = 0, bad_class = 0, bad_held = 0;
    CHECK(ns == da_style_count() - 4, "every style but the 4 held-out ones (test panel + validation) trains (%d of %d)", ns,
          da_style_count());
    const da_style *pencil = da_style_find("pencil");
    CHECK(pencil && pencil->held_out, "pencil is the held-out style");
    for (int k = 0; k < ns; k++) {
        const da_style *s = da_style_get(styles[k]);
        CHECK(!s->held_out, "training style %s is not held out", s->name);
        const char *words[64];
        int nw = da_miniclip_style_words(s, words, 64);
        CHECK(nw >= 2 && !strcmp(words[0], s->name), "style %s has its name and synonyms as words (%d)", s->name, nw);
        for (int w = 0; w < nw; w++)
            for (int t = 0; t < nt; t++) {
                char cap[256];
                da_miniclip_fill(tmpl[t], words[w], cap, sizeof cap);
                n_caps++;
                if (has_class_word(cap)) {
                    if (bad_class++ < 5) fprintf(stderr, "caption with a class word: %s\n", cap);
                }
                for (int h = 0; h < da_style_count(); h++) {
                    const da_style *hs = da_style_get(h);
                    if (!hs->held_out) continue;
                    const char *hw[64];
                    int nh = da_miniclip_style_words(hs, hw, 64);
                    for (int q = 0; q < nh; q++)
                        if (has_phrase(cap, hw[q]) && bad_held++ < 5) fprintf(stderr, "caption names held-out %s: %s\n", hs->name, cap);
                }
            }
    }
    CHECK(n_caps > 1000 && bad_class == 0 && bad_held == 0, "%d captions: %d with class words, %d with held-out words",
          n_caps, bad_class, bad_held);
    /* the checker itself catches what it must */
    CHECK(has_class_word("a photo of an Ankle Boot.") && has_class_word("a T-shirt sketch") && !has_class_word("a sketch."),
          "class-word check");
    CHECK(has_phrase("a pencil sketch of it", "pencil sketch") && !has_phrase("a sketches view", "sketch"), "phrase check");
}

static void test_vocabulary(void) {
    char err[512];
    char *m0 = da_miniclip_learn_merges(0);
    da_bpe *b0 = da_bpe_from_openai(m0, strlen(m0), 0, err, sizeof err);
    CHECK(b0 && da_bpe_n_merges(b0) == 0 && da_bpe_vocab_size(b0) == 514, "no merges: byte level (%s)", b0 ? "ok" : err);
    if (b0) da_bpe_free(b0);
    free(m0);
    char *m = da_miniclip_learn_merges(1000);
    char *again = da_miniclip_learn_merges(1000);
    CHECK(!strcmp(m, again), "merges are deterministic");
    free(again);
    da_bpe *b = da_bpe_from_openai(m, strlen(m), INT32_MAX, err, sizeof err);
    CHECK(b != NULL, "learned merges load: %s", b ? "" : err);
    if (!b) { free(m); return; }
    int nm = da_bpe_n_merges(b);
    CHECK(nm > 100 && nm < 1000, "%d merges (stops when no pair repeats)", nm);
    CHECK(da_bpe_eot(b) == da_bpe_vocab_size(b) - 1 && da_bpe_sot(b) < da_bpe_eot(b), "end token is the largest id");
    int64_t ids[32];
    const char *single[] = {"photo", "sketch", "blurry", "silhouette", "object", "pixelated"};
    for (size_t i = 0; i < sizeof single / sizeof single[0]; i++) {
        int n = da_bpe_encode(b, single[i], 32, false, ids, err, sizeof err);
        CHECK(n == 3, "'%s' is one token (%d ids)", single[i], n);
    }
    int n = da_bpe_encode(b, "a sketch of an object.", 32, false, ids, err, sizeof err);
    CHECK(n == 8, "a training caption takes 8 ids with start and end (%d)", n);
    n = da_bpe_encode(b, "a charcoal graphite pencil.", 32, false, ids, err, sizeof err);
    CHECK(n > 6, "unseen words still encode, in pieces (%d ids)", n);
    da_bpe_free(b);
    free(m);
}

/* 64 synthetic 16x16 grey images: a filled rectangle or ellipse of random size and grey level on
 * black, with a darker inner stripe (edges and texture for the styles to work on). */
static void make_data(da_dataset *d, bool labels) {
    memset(d, 0, sizeof *d);
    d->n = 64; d->c = 1; d->h = 16; d->w = 16;
    d->images = calloc(64 * 256, sizeof(float));
    d->names = calloc(64, sizeof(char *));
    d->source_index = calloc(64, sizeof(int64_t));
    if (labels) d->labels = calloc(64, sizeof(int64_t));
    da_rng r;
    da_rng_init(&r, 7);
    for (int i = 0; i < 64; i++) {
        char name[32];
        snprintf(name, sizeof name, "s%d", i);
        d->names[i] = strdup(name);
        d->source_index[i] = i;
        if (labels) d->labels[i] = i % 10;
        float cy = 4 + 8 * da_rng_uniform1(&r), cx = 4 + 8 * da_rng_uniform1(&r);
        float ry = 2 + 4 * da_rng_uniform1(&r), rx = 2 + 4 * da_rng_uniform1(&r), v = 0.2f + 0.8f * da_rng_uniform1(&r);
        bool ellipse = da_rng_uniform1(&r) < 0.5f;
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 16; x++) {
                float dy = (y - cy) / ry, dx = (x - cx) / rx;
                bool in = ellipse ? dy * dy + dx * dx <= 1 : fabsf(dy) <= 1 && fabsf(dx) <= 1;
                float g = in ? (fabsf(dy) < 0.3f ? 0.5f * v : v) : 0.0f;
                d->images[i * 256 + y * 16 + x] = 2 * g - 1;
            }
    }
}

static void tiny_opts(da_miniclip_opts *o) {
    da_miniclip_defaults(o);
    o->image_size = 16; o->patch_size = 4;
    o->vision_width = 32; o->vision_layers = 1;
    o->text_width = 32; o->text_layers = 1;
    o->heads = 2; o->embed_dim = 16;
    o->batch = 32; o->steps = 150; o->warmup = 5; o->lr = 3e-3f; o->seed = 3;
}

static void test_training(void) {
    da_dataset d;
    make_data(&d, false);
    da_miniclip_opts o;
    tiny_opts(&o);
    da_miniclip_trainer tr;
    char err[1024];
    CHECK(da_miniclip_trainer_init(&tr, &o, &d, err, sizeof err) == 0, "init: %s", err);
    /* the held-out style is never drawn, the captions match the styles, and the images are the
     * styles' renderings of the named sources */
    int held_seen = 0, mismatch = 0, wrong_render = 0, styles_seen[64] = {0};
    float *ref = malloc(sizeof(float) * 256);
    for (int64_t s = 0; s < 40; s++) {
        da_miniclip_trainer_batch_loss(&tr, s, NULL, NULL);
        for (int i = 0; i < o.batch; i++) {
            const da_style *st = da_style_get(tr.batch_style[i]);
            held_seen += st->held_out;
            styles_seen[tr.batch_style[i]] = 1;
            mismatch += tr.cap_style[tr.batch_caption[i]] != tr.batch_style[i];
            if (strcmp(st->name, "noisy")) {   /* every style but noise is deterministic */
                da_style_render(st, d.images + tr.batch_source[i] * 256, 1, 16, 16, ref, NULL);
                wrong_render += memcmp(ref, tr.images + (size_t)i * 256, sizeof(float) * 256) != 0;
            }
        }
    }
    free(ref);
    int n_seen = 0;
    for (int s = 0; s < 64; s++) n_seen += styles_seen[s];
    CHECK(held_seen == 0, "the held-out style appeared %d times in 40 batches", held_seen);
    CHECK(n_seen == tr.n_train_styles, "all %d training styles appear (%d)", tr.n_train_styles, n_seen);
    CHECK(mismatch == 0 && wrong_render == 0, "captions match styles (%d wrong), images match renderings (%d wrong)",
          mismatch, wrong_render);
    for (int i = 0; i < tr.n_captions; i++) {
        int n = tr.cap_len[i];
        char *text = da_bpe_decode(tr.bpe, tr.cap_ids + (size_t)i * (size_t)o.context + 1, n - 2);
        if (has_class_word(text) || has_phrase(text, "pencil")) {
            CHECK(0, "tokenized caption %d reads '%s'", i, text);
            free(text);
            break;
        }
        free(text);
    }

    /* training lowers the contrastive loss on batches it never saw */
    float before = 0, after = 0, l, acc_before = 0, acc_after = 0, a;
    for (int k = 0; k < 4; k++) {
        da_miniclip_trainer_batch_loss(&tr, 1000 + k, &l, &a);
        before += l / 4;
        acc_before += a / 4;
    }
    int ok = 1;
    for (int k = 0; k < 150 && ok; k++) ok = da_miniclip_trainer_step(&tr, &l, &a, err, sizeof err) == 0;
    CHECK(ok, "150 steps: %s", ok ? "" : err);
    for (int k = 0; k < 4; k++) {
        da_miniclip_trainer_batch_loss(&tr, 1000 + k, &l, &a);
        after += l / 4;
        acc_after += a / 4;
    }
    printf("held-out batches: loss %.3f -> %.3f, batch accuracy %.1f%% -> %.1f%%\n", before, after, 100 * acc_before,
           100 * acc_after);
    CHECK(after < 0.75f * before, "loss %.3f -> %.3f after 150 steps", before, after);
    CHECK(acc_after > acc_before + 0.2f, "in-batch style accuracy %.2f -> %.2f", acc_before, acc_after);
    float ls = tr.model.logit_scale->data[0];
    CHECK(ls >= 0 && ls <= logf(100.0f) + 1e-6f, "logit_scale %.3f within [0, ln 100]", ls);

    /* zero-shot evaluation runs and reports sane numbers */
    da_miniclip_eval ev;
    CHECK(da_miniclip_evaluate(&tr.model, tr.bpe, &d, 12, 0, &ev, err, sizeof err) == 0, "evaluate: %s", err);
    CHECK(ev.n_images == 12 && ev.n_styles == da_style_count() && ev.n_train == tr.n_train_styles, "eval sizes");
    int pi = -1;
    for (int s = 0; s < ev.n_styles; s++) {
        if (da_style_get(s)->held_out) { CHECK(ev.style_acc[s] == -1, "held-out style has no accuracy"); pi = s; }
        else CHECK(ev.style_acc[s] >= 0 && ev.style_acc[s] <= 100, "accuracy of %s", da_style_get(s)->name);
    }
    CHECK(pi >= 0 && ev.pencil_as_sketch == ev.sketch_pct[pi], "pencil figure is the pencil row");
    const da_style *photo = da_style_find("photo");
    for (int s = 0; s < ev.n_styles; s++) {
        if (da_style_get(s) == photo) CHECK(ev.dir_cos[s] == 0, "the unchanged style has no image direction");
        else CHECK(fabs(ev.dir_cos[s]) <= 1 && ev.dir_cos[s] != 0, "direction cosine of %s: %g", da_style_get(s)->name, ev.dir_cos[s]);
    }
    char *json = da_miniclip_eval_json(&ev), *table = da_miniclip_eval_table(&ev);
    cJSON *j = cJSON_Parse(json);
    CHECK(j && cJSON_GetArraySize(cJSON_GetObjectItem(j, "styles")) == da_style_count() &&
              cJSON_IsNumber(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "sketch_vs_photo"), "accuracy")),
          "evaluation JSON: %s", json);
    CHECK(strstr(table, "pencil (held out)") != NULL, "table marks the held-out style");
    cJSON_Delete(j);
    free(json);
    free(table);
    da_miniclip_trainer_free(&tr);
    da_dataset_free(&d);
}

static bool same_params(const da_clip *a, const da_clip *b) {
    if (a->params.n != b->params.n) return false;
    for (int i = 0; i < a->params.n; i++) {
        const da_tensor *x = a->params.items[i].t, *y = b->params.items[i].t;
        if (x->numel != y->numel || memcmp(x->data, y->data, sizeof(float) * (size_t)x->numel)) return false;
    }
    return true;
}

static void test_resume(const char *dir) {
    da_dataset d;
    make_data(&d, false);
    da_miniclip_opts o;
    tiny_opts(&o);
    o.batch = 16;
    o.steps = 8;
    o.warmup = 2;
    char err[1024], ckpt[4096];
    td_path(ckpt, sizeof ckpt, dir, "tiny.ckpt.safetensors");
    da_miniclip_trainer a, b;
    CHECK(da_miniclip_trainer_init(&a, &o, &d, err, sizeof err) == 0, "init: %s", err);
    float l;
    for (int k = 0; k < 3; k++) da_miniclip_trainer_step(&a, &l, NULL, err, sizeof err);
    CHECK(da_miniclip_trainer_save_checkpoint(&a, ckpt, err, sizeof err) == 0, "checkpoint: %s", err);
    for (int k = 0; k < 5; k++) da_miniclip_trainer_step(&a, &l, NULL, err, sizeof err);
    CHECK(da_miniclip_trainer_resume(&b, ckpt, &d, 0, err, sizeof err) == 0, "resume: %s", err);
    CHECK(b.step == 3 && b.o.steps == 8 && b.o.seed == o.seed && b.o.batch == 16, "resumed at step %lld of %lld",
          (long long)b.step, (long long)b.o.steps);
    for (int k = 0; k < 5; k++) da_miniclip_trainer_step(&b, &l, NULL, err, sizeof err);
    CHECK(b.step == a.step && same_params(&a.model, &b.model), "resumed run equals the uninterrupted one bit for bit");
    int64_t na = da_adam_state_size(&a.adam_decay), nb = da_adam_state_size(&b.adam_decay);
    float *sa = malloc(sizeof(float) * (size_t)na), *sb = malloc(sizeof(float) * (size_t)nb);
    da_adam_export(&a.adam_decay, sa);
    da_adam_export(&b.adam_decay, sb);
    CHECK(na == nb && !memcmp(sa, sb, sizeof(float) * (size_t)na), "AdamW moments equal too");
    free(sa);
    free(sb);
    CHECK(!strcmp(a.model.bpe_merges, b.model.bpe_merges), "vocabulary restored");
    da_miniclip_trainer_free(&b);

    /* other images, or a file that is not a checkpoint: clear errors */
    da_dataset other;
    make_data(&other, false);
    other.images[5] += 0.5f;
    CHECK(da_miniclip_trainer_resume(&b, ckpt, &other, 0, err, sizeof err) == -1 && strstr(err, "same --data"),
          "resume on other images: %s", err);
    char model[4096];
    td_path(model, sizeof model, dir, "tiny.safetensors");
    CHECK(da_miniclip_trainer_save_model(&a, model, "{\"x\": 1}", err, sizeof err) == 0, "save model: %s", err);
    CHECK(da_miniclip_trainer_resume(&b, model, &d, 0, err, sizeof err) == -1 && strstr(err, "not a mini-CLIP training checkpoint"),
          "resume from a model file: %s", err);

    /* the model file loads as a CLIP with its own vocabulary and gives the same embeddings */
    da_clip m;
    CHECK(da_clip_load(&m, model, err, sizeof err) == 0, "load: %s", err);
    da_bpe *bpe = da_clip_vocab(&m, NULL, err, sizeof err);
    CHECK(bpe && same_params(&m, &a.model) && m.cfg.image_size == 16 && m.cfg.vision_heads == 2 && m.cfg.channels == 1,
          "model file round trip");
    st_file f;
    CHECK(st_open(model, &f, err, sizeof err) == 0 && st_meta_get(&f, "miniclip_eval") &&
              !strcmp(st_meta_get(&f, "held_out_styles"), "pencil,hatching,stipple,xdog"),
          "metadata holds the evaluation and the held-out styles");
    st_close(&f);
    if (bpe) {
        da_ctx ctx;
        da_ctx_init(&ctx);
        const char *texts[2] = {"a sketch of an object.", "a photo."};
        da_tensor *t1 = da_clip_encode_texts(&ctx, &m, bpe, texts, 2, false, err, sizeof err);
        da_tensor *t2 = da_clip_encode_texts(&ctx, &a.model, a.bpe, texts, 2, false, err, sizeof err);
        CHECK(t1 && t2 && !memcmp(t1->data, t2->data, sizeof(float) * (size_t)t1->numel), "text embeddings agree");
        da_ctx_free(&ctx);
        da_bpe_free(bpe);
    }
    da_clip_free(&m);
    da_miniclip_trainer_free(&a);
    da_dataset_free(&other);
    da_dataset_free(&d);
}

/* Labels are never read: the same images with and without labels train to identical weights. */
static void test_labels_unused(void) {
    da_dataset d1, d2;
    make_data(&d1, false);
    make_data(&d2, true);
    da_miniclip_opts o;
    tiny_opts(&o);
    o.batch = 16;
    da_miniclip_trainer a, b;
    char err[512];
    float l;
    CHECK(da_miniclip_trainer_init(&a, &o, &d1, err, sizeof err) == 0 && da_miniclip_trainer_init(&b, &o, &d2, err, sizeof err) == 0,
          "init: %s", err);
    for (int k = 0; k < 3; k++) {
        da_miniclip_trainer_step(&a, &l, NULL, err, sizeof err);
        da_miniclip_trainer_step(&b, &l, NULL, err, sizeof err);
    }
    CHECK(same_params(&a.model, &b.model), "labels change nothing");
    da_miniclip_trainer_free(&a);
    da_miniclip_trainer_free(&b);
    da_dataset_free(&d1);
    da_dataset_free(&d2);
}

static void test_cli(const char *dir) {
    const char *bin = getenv("DA_BIN");
    if (!bin) { printf("DA_BIN not set: CLI checks skipped\n"); return; }
    da_dataset d;
    make_data(&d, true);
    char data[4096], model[4096], ckpt[4096], json[4096], err[512], cmd[16384], out[16384];
    td_path(data, sizeof data, dir, "shapes.safetensors");
    td_path(model, sizeof model, dir, "cli.safetensors");
    td_path(ckpt, sizeof ckpt, dir, "cli.ckpt.safetensors");
    td_path(json, sizeof json, dir, "cli.eval.json");
    CHECK(da_dataset_save(&d, data, err, sizeof err) == 0, "save data: %s", err);
    da_dataset_free(&d);
    const char *tiny = "--image-size 16 --width 32 --layers 1 --text-width 32 --text-layers 1 --heads 2 --embed 16 "
                       "--pad 0 --batch 16 --threads 1";
    snprintf(cmd, sizeof cmd, "'%s' train-clip --data '%s' --out '%s' --steps 4 %s --eval-data '%s' --eval-take 8 "
             "--checkpoint-every 2 2>&1", bin, data, model, tiny, data);
    int rc = cli_run(cmd, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "pencil (held out)") && strstr(out, "sketch"), "train-clip (rc %d):\n%s", rc, out);
    FILE *f = fopen(json, "r");
    CHECK(f != NULL, "train-clip wrote %s", json);
    if (f) fclose(f);
    rc = cli_run(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "--force"), "an existing --out is refused (rc %d): %s", rc, out);
    snprintf(cmd, sizeof cmd, "'%s' train-clip --data '%s' --out '%s' --resume '%s' --steps 6 --no-eval --force %s 2>&1",
             bin, data, model, ckpt, tiny);
    rc = cli_run(cmd, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "6 steps (from 4)"), "resume to 6 steps (rc %d):\n%s", rc, out);
    snprintf(cmd, sizeof cmd, "'%s' train-clip --data '%s' --out '%s' --resume '%s' --force %s 2>&1", bin, data, model,
             data, tiny);
    rc = cli_run(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "not a mini-CLIP training checkpoint"), "resume from a data file (rc %d): %s", rc, out);
    snprintf(cmd, sizeof cmd, "'%s' eval-clip --clip '%s' --data '%s' --take 8 --pad 0 --threads 1 2>&1", bin, model, data);
    rc = cli_run(cmd, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "mean style accuracy") && strstr(out, "\"sketch\" vs \"photo\""), "eval-clip (rc %d):\n%s",
          rc, out);
    da_clip before, after;
    CHECK(da_clip_load(&before, model, err, sizeof err) == 0, "load: %s", err);
    snprintf(cmd, sizeof cmd, "'%s' eval-clip --clip '%s' --data '%s' --take 8 --pad 0 --threads 1 --store --json '%s' 2>&1",
             bin, model, data, json);
    rc = cli_run(cmd, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "stored the figures"), "eval-clip --store (rc %d):\n%s", rc, out);
    st_file f2;
    CHECK(st_open(model, &f2, err, sizeof err) == 0 && st_meta_get(&f2, "miniclip_eval") &&
              strstr(st_meta_get(&f2, "miniclip_eval"), "\"images_per_style\":\t8") && st_meta_get(&f2, "miniclip_opts") &&
              st_meta_get(&f2, "bpe_merges"),
          "--store replaced the figures and kept the other metadata");
    st_close(&f2);
    CHECK(da_clip_load(&after, model, err, sizeof err) == 0 && same_params(&before, &after), "--store keeps the weights");
    da_clip_free(&before);
    da_clip_free(&after);
    snprintf(cmd, sizeof cmd, "'%s' eval-clip --clip '%s' --take 8 --pad 0 --store 2>&1", bin, data);
    rc = cli_run(cmd, out, sizeof out);
    CHECK(rc == 1, "eval-clip on a data file fails (rc %d): %s", rc, out);
    snprintf(cmd, sizeof cmd, "'%s' train-clip --out '%s' --batch 1 2>&1", bin, model);
    rc = cli_run(cmd, out, sizeof out);
    CHECK(rc == 2 && strstr(out, "--batch"), "bad option (rc %d): %s", rc, out);
}

int main(void) {
    da_set_threads(1);
    char dir[4096];
    td_make(dir, sizeof dir, "miniclip");
    test_captions();
    test_vocabulary();
    test_training();
    test_resume(dir);
    test_labels_unused();
    test_cli(dir);
    td_remove(dir);
    return tu_finish("test_miniclip");
}
