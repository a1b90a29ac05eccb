/* test_clip.c — the CLIP model against a float64 PyTorch reference of the Hugging Face
 * architecture (golden/clip_tiny.safetensors from golden/gen_clip.py): preprocessing, both
 * towers, weight gradients, the directional loss and its image gradient (also against finite
 * differences), the text direction, config sources, saving, bad files and text lengths. */
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sys/wait.h>

#include "data/image.h"
#include "gradcheck.h"
#include "io/safetensors.h"
#include "nn/clip.h"
#include "nn/clip_loss.h"
#include "cli_run.h"

#define GOLDEN "golden/clip_tiny.safetensors"

static st_file G;

/* A golden tensor as an arena tensor (float32). */
static da_tensor *gt(da_ctx *ctx, const char *name) {
    const st_tensor_info *t = st_find(&G, name);
    da_check(t != NULL, "test_clip", "golden tensor %s missing", name);
    da_tensor *x = da_new(ctx, t->ndim, t->shape);
    char err[256];
    da_check(st_read_f32(&G, t, x->data, err, sizeof err) == 0, "test_clip", "%s", err);
    return x;
}

static void compare(const char *what, const da_tensor *got, const da_tensor *want, double atol, double rtol) {
    CHECK(got->numel == want->numel, "%s: %lld elements, expected %lld", what, (long long)got->numel, (long long)want->numel);
    if (got->numel == want->numel) tu_close(what, got->data, want->data, (long)got->numel, atol, rtol);
}

static const char *meta_list(const char *key, int i, char *buf, size_t len) {
    /* the i-th string of a JSON list in the golden metadata */
    const char *js = st_meta_get(&G, key);
    const char *p = js;
    for (int k = 0; k <= i; k++) {
        p = strchr(p, '"');
        if (!p) return NULL;
        const char *q = strchr(p + 1, '"');
        if (k == i) {
            snprintf(buf, len, "%.*s", (int)(q - p - 1), p + 1);
            return buf;
        }
        p = q + 1;
    }
    return NULL;
}

static void test_forward(da_clip *m) {
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_set_grad(&ctx, false);
    const da_clip_config *c = &m->cfg;
    CHECK(c->vision_heads == 2 && c->text_heads == 4 && c->image_size == 16 && c->patch_size == 4 &&
          c->vocab_size == 514 && c->context_length == 12 && c->embed_dim == 24 && c->vision_layers == 2,
          "config from metadata: heads %d/%d", c->vision_heads, c->text_heads);
    da_tensor *x = gt(&ctx, "in.x_rgb");
    da_tensor *pix = da_clip_preprocess(&ctx, m, x);
    compare("preprocess (resize short side, crop, normalise)", pix, gt(&ctx, "out.pixels"), 2e-5, 1e-5);
    compare("image embeddings", da_clip_encode_image(&ctx, m, pix), gt(&ctx, "out.image"), 2e-5, 1e-4);
    compare("grey image repeated to RGB", da_clip_image_features(&ctx, m, gt(&ctx, "in.x_grey")),
            gt(&ctx, "out.image_grey"), 2e-5, 1e-4);

    const st_tensor_info *ti = st_find(&G, "in.ids");
    int64_t ids[64];
    char err[512];
    st_read_i64(&G, ti, ids, err, sizeof err);
    compare("text embeddings (causal mask, end-token pooling)", da_clip_encode_text(&ctx, m, ids, ti->shape[0], ti->shape[1]),
            gt(&ctx, "out.text"), 2e-5, 1e-4);

    /* the same texts through the tokenizer (byte-level vocabulary: no merges) */
    da_bpe *bpe = da_bpe_from_openai("#version: 0.2\n", 14, 0, err, sizeof err);
    char t0[64], t1[64], t2[64];
    const char *texts[3] = {meta_list("texts", 0, t0, 64), meta_list("texts", 1, t1, 64), meta_list("texts", 2, t2, 64)};
    da_tensor *e = da_clip_encode_texts(&ctx, m, bpe, texts, 3, false, err, sizeof err);
    CHECK(e != NULL, "encode_texts: %s", err);
    if (e) compare("text embeddings from strings", e, gt(&ctx, "out.text"), 2e-5, 1e-4);

    /* over-long and empty texts (context 12) */
    const char *longer[1] = {"a much longer caption"};
    e = da_clip_encode_texts(&ctx, m, bpe, longer, 1, false, err, sizeof err);
    CHECK(e == NULL && strstr(err, "--truncate"), "an over-long text is refused: %s", err);
    e = da_clip_encode_texts(&ctx, m, bpe, longer, 1, true, err, sizeof err);
    CHECK(e != NULL && e->shape[0] == 1 && e->shape[1] == 24, "an over-long text is cut with truncate");
    const char *empty[1] = {""};
    e = da_clip_encode_texts(&ctx, m, bpe, empty, 1, false, err, sizeof err);
    da_tensor *want = gt(&ctx, "out.text");
    CHECK(e != NULL, "empty text: %s", err);
    if (e) tu_close("empty text = start + end", e->data, want->data + 2 * 24, 24, 2e-5, 1e-4);

    /* a vocabulary larger than the model's is caught */
    da_clip small = *m;
    small.cfg.vocab_size = 100;
    e = da_clip_encode_texts(&ctx, &small, bpe, texts, 1, false, err, sizeof err);
    CHECK(e == NULL && strstr(err, "vocabulary"), "ids beyond the model's vocabulary are refused: %s", err);

    /* text direction through templates */
    char a[32], b[32], d[32];
    const char *tmpl[3] = {meta_list("templates", 0, a, 32), meta_list("templates", 1, b, 32), meta_list("templates", 2, d, 32)};
    float dir[24];
    int rc = da_clip_text_direction(m, bpe, "photo", "sketch", tmpl, 3, dir, err, sizeof err);
    CHECK(rc == 0, "text direction: %s", err);
    da_tensor *wd = gt(&ctx, "out.template_dir");
    tu_close("text direction over templates", dir, wd->data, 24, 2e-5, 1e-4);
    int nt;
    const char *const *builtin = da_clip_templates(&nt);
    CHECK(nt >= 20 && strstr(builtin[0], "{}"), "%d built-in templates", nt);
    da_bpe_free(bpe);
    da_ctx_free(&ctx);
}

static void test_weight_grads(da_clip *m) {
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_clip_requires_grad(m, true);
    da_params_zero_grad(&m->params);
    da_tensor *img = da_clip_image_features(&ctx, m, gt(&ctx, "in.x_rgb"));
    const st_tensor_info *ti = st_find(&G, "in.ids");
    int64_t ids[64];
    char err[256];
    st_read_i64(&G, ti, ids, err, sizeof err);
    da_tensor *txt = da_clip_encode_text(&ctx, m, ids, ti->shape[0], ti->shape[1]);
    da_tensor *loss = da_add(&ctx, da_sum(&ctx, da_mul(&ctx, img, gt(&ctx, "in.r1")), 0, NULL, false),
                             da_sum(&ctx, da_mul(&ctx, txt, gt(&ctx, "in.r2")), 0, NULL, false));
    da_backward(&ctx, loss);
    int n = 0;
    for (int i = 0; i < G.n_tensors; i++) {
        const char *name = G.tensors[i].name;
        if (strncmp(name, "grad.", 5)) continue;
        da_tensor *p = da_params_find(&m->params, name + 5);
        CHECK(p != NULL && p->grad != NULL, "parameter %s has a gradient", name + 5);
        if (!p || !p->grad) continue;
        da_tensor *want = gt(&ctx, name);
        char what[200];
        snprintf(what, sizeof what, "d/d %s", name + 5);
        tu_close(what, p->grad, want->data, (long)want->numel, 1e-4, 2e-4);
        n++;
    }
    CHECK(n >= 10, "%d weight gradients compared", n);
    da_ctx_free(&ctx);
}

typedef struct { da_clip *m; da_tensor *src; const float *dir; } loss_args;

static da_tensor *build_loss(da_ctx *ctx, da_tensor **in, void *u) {
    loss_args *a = u;
    return da_clip_directional_loss(ctx, a->m, a->src, in[0], a->dir, NULL);
}

static void test_directional_loss(da_clip *m) {
    da_clip_requires_grad(m, false);
    bool none = true;
    for (int i = 0; i < m->params.n; i++) none &= m->params.items[i].t->grad == NULL;
    CHECK(none, "frozen weights hold no gradient buffers");

    da_ctx ctx;
    da_ctx_init(&ctx);
    bool old = da_set_grad(&ctx, false);
    da_tensor *src = da_clip_image_features(&ctx, m, gt(&ctx, "in.x0"));
    da_set_grad(&ctx, old);
    da_tensor *x = gt(&ctx, "in.x");
    da_require_grad(x);
    da_tensor *dir = gt(&ctx, "in.text_dir");
    float l_dir;
    da_tensor *loss = da_clip_directional_loss(&ctx, m, src, x, dir->data, &l_dir);
    CHECK(loss->ndim == 0, "the loss is 0-d");
    tu_close("L_clip", loss->data, gt(&ctx, "out.loss")->data, 1, 1e-5, 1e-5);
    tu_close("L_dir", &l_dir, gt(&ctx, "out.l_dir")->data, 1, 1e-5, 1e-5);
    da_backward(&ctx, loss);
    CHECK(x->grad != NULL, "the image receives a gradient");
    if (x->grad) {
        da_tensor *g = da_new_like(&ctx, x);
        memcpy(g->data, x->grad, sizeof(float) * (size_t)x->numel);
        da_tensor *want = gt(&ctx, "out.grad_x");
        /* gradients are ~1e-3; compare relative to the largest */
        float mx = 0;
        for (int64_t i = 0; i < want->numel; i++) mx = fmaxf(mx, fabsf(want->data[i]));
        compare("d L_clip / d image (vs PyTorch)", g, want, 1e-3 * mx, 1e-3);
    }
    none = true;
    for (int i = 0; i < m->params.n; i++) none &= m->params.items[i].t->grad == NULL;
    CHECK(none, "no gradient was allocated for frozen weights during backward");

    /* finite differences on the image (persistent copy of x) */
    da_rng rng;
    da_rng_init(&rng, 3);
    da_tensor *xp = gc_input(&rng, x->ndim, x->shape, 1.0f);
    memcpy(xp->data, x->data, sizeof(float) * (size_t)x->numel);
    da_tensor *srcp = da_persistent(src->ndim, src->shape, false);
    memcpy(srcp->data, src->data, sizeof(float) * (size_t)src->numel);
    loss_args a = {m, srcp, dir->data};
    float dirc[24];
    memcpy(dirc, dir->data, sizeof dirc);
    a.dir = dirc;
    da_tensor *ins[1] = {xp};
    gradcheck("directional loss vs finite differences", build_loss, 1, ins, &a, 1e-2f, 2e-5, 2e-2, 48);
    da_tensor_free(xp);
    da_tensor_free(srcp);
    da_ctx_free(&ctx);
}

/* Copies the golden model's weights (F32) into a new file, leaving out `drop`, reshaping
 * `reshape` to (d0,d1), with clip_config metadata only when with_meta. */
static void write_variant(const char *path, const char *drop, const char *reshape, int64_t d0, int64_t d1, bool with_meta) {
    st_writer *w = st_writer_new();
    float *bufs[512];
    int nb = 0;
    char err[256];
    for (int i = 0; i < G.n_tensors; i++) {
        const st_tensor_info *t = &G.tensors[i];
        if (!strncmp(t->name, "in.", 3) || !strncmp(t->name, "out.", 4) || !strncmp(t->name, "grad.", 5)) continue;
        if (drop && !strcmp(t->name, drop)) continue;
        if (t->dtype == ST_I64) continue;
        float *b = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
        st_read_f32(&G, t, b, err, sizeof err);
        bufs[nb++] = b;
        if (reshape && !strcmp(t->name, reshape)) {
            int64_t shape[2] = {d0, d1};
            float *r = calloc((size_t)(d0 * d1), sizeof(float));
            bufs[nb++] = r;
            st_writer_add_f32(w, t->name, 2, shape, r);
        } else {
            st_writer_add_f32(w, t->name, t->ndim, t->shape, b);
        }
    }
    if (with_meta) st_writer_set_meta(w, "clip_config", st_meta_get(&G, "clip_config"));
    CHECK(st_writer_save(w, path, err, sizeof err) == 0, "writing %s: %s", path, err);
    st_writer_free(w);
    for (int i = 0; i < nb; i++) free(bufs[i]);
}

static void test_files(void) {
    char dir[] = "/tmp/da_test_clip_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[256], err[1024];
    da_clip m;

    snprintf(path, sizeof path, "%s/missing.safetensors", dir);
    write_variant(path, "text_model.encoder.layers.1.mlp.fc2.bias", NULL, 0, 0, true);
    CHECK(da_clip_load(&m, path, err, sizeof err) != 0 && strstr(err, "text_model.encoder.layers.1.mlp.fc2.bias"),
          "a missing key is named: %s", err);
    write_variant(path, "vision_model.embeddings.class_embedding", NULL, 0, 0, false);
    CHECK(da_clip_load(&m, path, err, sizeof err) != 0 && strstr(err, "class_embedding"),
          "a non-CLIP file is refused: %s", err);
    write_variant(path, NULL, "text_projection.weight", 20, 32, true);
    CHECK(da_clip_load(&m, path, err, sizeof err) != 0 && strstr(err, "text_projection.weight") && strstr(err, "(20,32)"),
          "a wrong shape is named: %s", err);
    unlink(path);
    CHECK(da_clip_load(&m, path, err, sizeof err) != 0 && strstr(err, "does not exist"), "a missing file: %s", err);

    /* no metadata: heads inferred as width/64, at least 1 */
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    write_variant(path, NULL, NULL, 0, 0, false);
    int rc = da_clip_load(&m, path, err, sizeof err);
    CHECK(rc == 0 && m.cfg.vision_heads == 1 && m.cfg.text_heads == 1 && m.cfg.image_size == 16 &&
          m.cfg.vision_mlp == 64 && m.cfg.text_layers == 2, "config from shapes: %s", rc ? err : "ok");
    if (!rc) {
        /* the golden model has 2 vision heads: with 1 the embeddings must differ (heads matter) */
        da_ctx ctx;
        da_ctx_init(&ctx);
        da_tensor *e = da_clip_image_features(&ctx, &m, gt(&ctx, "in.x_rgb")), *want = gt(&ctx, "out.image");
        float diff = 0;
        for (int64_t i = 0; i < e->numel; i++) diff = fmaxf(diff, fabsf(e->data[i] - want->data[i]));
        CHECK(diff > 1e-3f, "one head instead of two changes the embeddings (max diff %g)", (double)diff);
        da_ctx_free(&ctx);
        da_clip_free(&m);
    }

    /* a Hugging Face folder: model.safetensors + config.json (heads given there) */
    char cfg[300];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    FILE *f = fopen(cfg, "w");
    fputs("{\"architectures\": [\"CLIPModel\"], \"projection_dim\": 24, \"text_config\": {\"num_attention_heads\": 4},"
          " \"vision_config\": {\"num_attention_heads\": 2, \"patch_size\": 4}}", f);
    fclose(f);
    rc = da_clip_load(&m, dir, err, sizeof err);
    CHECK(rc == 0 && m.cfg.vision_heads == 2 && m.cfg.text_heads == 4, "HF folder with config.json: %s", rc ? err : "ok");
    if (!rc) {
        da_ctx ctx;
        da_ctx_init(&ctx);
        compare("image embeddings from the HF folder", da_clip_image_features(&ctx, &m, gt(&ctx, "in.x_rgb")),
                gt(&ctx, "out.image"), 2e-5, 1e-4);
        da_bpe *b = da_clip_vocab(&m, NULL, err, sizeof err);
        CHECK(b == NULL && strstr(err, "--vocab"), "no vocabulary in the folder: %s", err);
        da_ctx_free(&ctx);
        da_clip_free(&m);
    }
    f = fopen(cfg, "w");
    fputs("{\"vision_config\": {\"num_attention_heads\": 5}}", f);
    fclose(f);
    CHECK(da_clip_load(&m, dir, err, sizeof err) != 0 && strstr(err, "multiples of the heads"), "bad heads: %s", err);
    f = fopen(cfg, "w");
    fputs("{\"vision_config\": ", f);
    fclose(f);
    CHECK(da_clip_load(&m, dir, err, sizeof err) != 0 && strstr(err, "config.json"), "broken config.json: %s", err);
    unlink(cfg);

    /* save and reload, with an own vocabulary */
    rc = da_clip_load(&m, GOLDEN, err, sizeof err);
    m.bpe_merges = strdup("#version: 0.2\n");
    snprintf(path, sizeof path, "%s/saved.safetensors", dir);
    CHECK(da_clip_save(&m, path, NULL, err, sizeof err) == 0, "save: %s", err);
    da_clip_free(&m);
    rc = da_clip_load(&m, path, err, sizeof err);
    CHECK(rc == 0 && m.cfg.text_heads == 4 && m.bpe_merges != NULL, "reload: %s", rc ? err : "ok");
    if (!rc) {
        da_bpe *b = da_clip_vocab(&m, NULL, err, sizeof err);
        CHECK(b != NULL && da_bpe_vocab_size(b) == 514, "the model's own vocabulary: %s", b ? "ok" : err);
        da_bpe_free(b);
        da_ctx ctx;
        da_ctx_init(&ctx);
        compare("image embeddings after save/load", da_clip_image_features(&ctx, &m, gt(&ctx, "in.x_rgb")),
                gt(&ctx, "out.image"), 2e-5, 1e-4);
        da_ctx_free(&ctx);
        da_clip_free(&m);
    }
    unlink(path);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    unlink(path);
    rmdir(dir);
}

/* The "embedding" list of one JSON line into e (n floats); returns how many it held. */
static int parse_embedding(const char *line, const char *key, char *value, size_t vlen, float *e, int n) {
    cJSON *j = cJSON_Parse(line);
    int k = 0;
    const cJSON *v = cJSON_GetObjectItem(j, key), *arr = cJSON_GetObjectItem(j, "embedding");
    if (cJSON_IsString(v)) snprintf(value, vlen, "%s", v->valuestring);
    for (const cJSON *it = arr ? arr->child : NULL; it && k < n; it = it->next) e[k++] = (float)it->valuedouble;
    cJSON_Delete(j);
    return k;
}

static void test_cli(void) {
    const char *bin = getenv("DA_BIN");
    if (!bin) { printf("DA_BIN not set: CLI checks skipped\n"); return; }
    char dir[] = "/tmp/da_test_clip_cli_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char model[256], data[256], png[256], err[512], cmd[2048];
    static char out[1 << 16];
    snprintf(model, sizeof model, "%s/mini.safetensors", dir);
    snprintf(data, sizeof data, "%s/data.safetensors", dir);
    snprintf(png, sizeof png, "%s/img.png", dir);
    da_clip m;
    CHECK(da_clip_load(&m, GOLDEN, err, sizeof err) == 0, "load: %s", err);
    m.bpe_merges = strdup("#version: 0.2\n");   /* a byte-level vocabulary of its own */
    CHECK(da_clip_save(&m, model, NULL, err, sizeof err) == 0, "save: %s", err);
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_set_grad(&ctx, false);
    da_tensor *x = gt(&ctx, "in.x_rgb"), *want_img = gt(&ctx, "out.image"), *want_txt = gt(&ctx, "out.text");
    st_writer *w = st_writer_new();
    int64_t labels[2] = {0, 1};
    st_writer_add_f32(w, "images", 4, x->shape, x->data);
    st_writer_add_i64(w, "labels", 1, (int64_t[]){2}, labels);
    CHECK(st_writer_save(w, data, err, sizeof err) == 0, "data: %s", err);
    st_writer_free(w);
    CHECK(da_image_write_png(png, x->data, 3, 20, 26, err, sizeof err) == 0, "png: %s", err);

    snprintf(cmd, sizeof cmd, "'%s' embed --clip '%s' --image '%s' --text 'a cat' --images '%s' --text '' 2>/dev/null",
             bin, model, png, data);
    int rc = cli_run(cmd, out, sizeof out);
    CHECK(rc == 0, "embed exit %d", rc);
    char *lines[8];
    int nl = 0;
    for (char *l = strtok(out, "\n"); l && nl < 8; l = strtok(NULL, "\n")) lines[nl++] = l;
    CHECK(nl == 5, "embed printed %d lines, expected 5 (image, text, 2 data images, text)", nl);
    if (nl == 5) {
        char v[256];
        float e[64];
        /* 1: the PNG (8-bit, so compared with the same decoded file in-process) */
        float *px;
        int c, h, ww;
        da_image_read(png, 0, &px, &c, &h, &ww, err, sizeof err);
        da_tensor *ref = da_clip_image_features(&ctx, &m, da_from_data(&ctx, DA_SHAPE(1, c, h, ww), px));
        free(px);
        CHECK(parse_embedding(lines[0], "image", v, sizeof v, e, 64) == 24 && !strcmp(v, png), "image line: %s", lines[0]);
        tu_close("embed --image", e, ref->data, 24, 1e-5, 1e-5);
        CHECK(parse_embedding(lines[1], "text", v, sizeof v, e, 64) == 24 && !strcmp(v, "a cat"), "text line");
        tu_close("embed --text", e, want_txt->data, 24, 2e-5, 1e-4);
        for (int k = 0; k < 2; k++) {
            CHECK(parse_embedding(lines[2 + k], "image", v, sizeof v, e, 64) == 24 && strstr(v, "data.safetensors:"),
                  "data line %s", v);
            tu_close("embed --images", e, want_img->data + k * 24, 24, 2e-5, 1e-4);
        }
        CHECK(parse_embedding(lines[4], "text", v, sizeof v, e, 64) == 24 && v[0] == 0, "empty text line");
        tu_close("embed --text ''", e, want_txt->data + 2 * 24, 24, 2e-5, 1e-4);
    }
    snprintf(cmd, sizeof cmd, "'%s' embed --clip '%s' --text 'a very long caption indeed' 2>&1", bin, model);
    rc = cli_run(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "--truncate"), "over-long text in embed: %d %s", rc, out);
    snprintf(cmd, sizeof cmd, "'%s' embed --clip '%s' 2>&1", bin, model);
    rc = cli_run(cmd, out, sizeof out);
    CHECK(rc == 2 && strstr(out, "--text"), "embed with no input: %d %s", rc, out);
    snprintf(cmd, sizeof cmd, "'%s' embed --clip '%s/none.safetensors' --text x 2>&1", bin, dir);
    rc = cli_run(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "does not exist"), "embed with a missing model: %d %s", rc, out);

    /* zero-shot: predictions must agree with the in-process computation */
    snprintf(cmd, sizeof cmd, "'%s' zero-shot --clip '%s' --input '%s' --labels 'cat, sketch' --template '{}' 2>/dev/null",
             bin, model, data);
    rc = cli_run(cmd, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "accuracy ") && strstr(out, "/2)"), "zero-shot: %d %s", rc, out);
    {
        da_bpe *b = da_clip_vocab(&m, NULL, err, sizeof err);
        const char *t[2] = {"cat", "sketch"};
        da_tensor *te = da_l2_normalize(&ctx, da_clip_encode_texts(&ctx, &m, b, t, 2, false, err, sizeof err), 1e-12f);
        da_tensor *ie = da_l2_normalize(&ctx, da_clip_image_features(&ctx, &m, x), 1e-12f);
        int correct = 0;
        char *line = out;
        for (int k = 0; k < 2; k++) {
            double s0 = 0, s1 = 0;
            for (int j = 0; j < 24; j++) {
                s0 += (double)ie->data[k * 24 + j] * te->data[j];
                s1 += (double)ie->data[k * 24 + j] * te->data[24 + j];
            }
            int pred = s1 > s0;
            correct += pred == k;
            char want[64];
            snprintf(want, sizeof want, "\t%s\t%s\n", pred ? "sketch" : "cat", k ? "sketch" : "cat");
            char *tab = strchr(line, '\t'), *nl = strchr(line, '\n');
            CHECK(tab && nl && !strncmp(tab, want, strlen(want)), "zero-shot line %d: want \"...%s\" in:\n%s", k, want, out);
            line = nl ? nl + 1 : line;
        }
        char acc[64];
        snprintf(acc, sizeof acc, "accuracy %.4f (%d/2)", correct / 2.0, correct);
        CHECK(strstr(out, acc) != NULL, "zero-shot accuracy line \"%s\" in:\n%s", acc, out);
        da_bpe_free(b);
    }
    snprintf(cmd, sizeof cmd, "'%s' zero-shot --clip '%s' --input '%s' --labels 'cat' 2>&1", bin, model, data);
    rc = cli_run(cmd, out, sizeof out);
    CHECK(rc == 2 && strstr(out, "two"), "zero-shot with one label: %d %s", rc, out);
    snprintf(cmd, sizeof cmd, "'%s' zero-shot --clip '%s' --input '%s' --labels a,b 2>&1", bin, GOLDEN, data);
    rc = cli_run(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "--vocab"), "zero-shot without a vocabulary: %d %s", rc, out);

    da_ctx_free(&ctx);
    da_clip_free(&m);
    unlink(model);
    unlink(data);
    unlink(png);
    rmdir(dir);
}

static void test_init(void) {
    da_clip_config c;
    da_clip_config_default(&c);
    char err[256], buf[256];
    CHECK(da_clip_config_validate(&c, err, sizeof err) == 0, "ViT-B/32 defaults: %s", err);
    da_clip_config_str(&c, buf, sizeof buf);
    CHECK(strstr(buf, "224") && strstr(buf, "768"), "config string %s", buf);
    /* a small random model runs and gives finite, seed-determined embeddings */
    c.image_size = 32; c.patch_size = 8; c.vision_width = 64; c.vision_layers = 1; c.vision_heads = 2; c.vision_mlp = 128;
    c.vocab_size = 514; c.context_length = 16; c.text_width = 64; c.text_layers = 1; c.text_heads = 2; c.text_mlp = 128;
    c.embed_dim = 32;
    da_clip a, b;
    CHECK(da_clip_init(&a, &c, 5, err, sizeof err) == 0 && da_clip_init(&b, &c, 5, err, sizeof err) == 0, "init: %s", err);
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_tensor *x = da_full(&ctx, DA_SHAPE(1, 3, 32, 32), 0.25f);
    da_tensor *ea = da_clip_image_features(&ctx, &a, x), *eb = da_clip_image_features(&ctx, &b, x);
    bool finite = true;
    for (int i = 0; i < 32; i++) finite &= isfinite(ea->data[i]);
    CHECK(finite && !memcmp(ea->data, eb->data, 32 * sizeof(float)), "same seed, same model");
    CHECK(fabsf(a.logit_scale->data[0] - logf(1 / 0.07f)) < 1e-6f, "logit_scale init");
    da_ctx_free(&ctx);
    da_clip_free(&a);
    da_clip_free(&b);
    c.vision_heads = 3;
    CHECK(da_clip_init(&a, &c, 5, err, sizeof err) != 0 && strstr(err, "heads"), "bad config refused: %s", err);
}

int main(void) {
    char err[512];
    if (st_open(GOLDEN, &G, err, sizeof err)) {
        fprintf(stderr, "FAIL: %s (run from tests/)\n", err);
        return 1;
    }
    da_clip m;
    int rc = da_clip_load(&m, GOLDEN, err, sizeof err);
    CHECK(rc == 0, "loading the golden model: %s", err);
    if (rc == 0) {
        test_forward(&m);
        test_weight_grads(&m);
        test_directional_loss(&m);
        da_clip_free(&m);
    }
    test_files();
    test_init();
    test_cli();
    st_close(&G);
    return tu_finish("test_clip");
}
