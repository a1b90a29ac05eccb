/* test_torch_ckpt.c — PyTorch checkpoints (golden/torch/, written by torch.save through
 * golden/make_torch_ckpt.py) read through st_open: plain, nested (state_dict / model / ema / a
 * list), "module." prefixes, F16/BF16, shared storages with offsets and a strided view, a tiny
 * UNet that gives the same ε as its safetensors twin, CLIP from pytorch_model.bin and from an
 * OpenAI-layout TorchScript archive, a TorchScript module; hostile pickles, the legacy format,
 * truncated and corrupted archives refused with messages; `inspect` and `convert`. */
#include <unistd.h>

#include "cli_run.h"
#include "io/safetensors.h"
#include "io/torch_ckpt.h"
#include "io/torch_pickle.h"
#include "io/zip.h"
#include "nn/clip.h"
#include "nn/unet.h"
#include "test_util.h"
#include "tmpdir.h"
#include "unet_golden_weights.h"

#define G "golden/torch/"

/* The tensor's values as float32 (NULL and a failed check when absent). */
static float *values(const st_file *f, const char *name, st_dtype dtype, int64_t numel) {
    const st_tensor_info *t = st_find(f, name);
    CHECK(t != NULL, "tensor %s missing", name);
    if (!t) return NULL;
    CHECK(t->dtype == dtype && t->numel == numel, "%s: dtype %s numel %lld, expected %s %lld", name,
          st_dtype_name(t->dtype), (long long)t->numel, st_dtype_name(dtype), (long long)numel);
    if (t->numel != numel) return NULL;
    float *v = malloc(sizeof(float) * (size_t)numel);
    char err[256];
    CHECK(st_read_f32(f, t, v, err, sizeof err) == 0, "%s", err);
    return v;
}

static void expect_values(const st_file *f, const char *name, st_dtype dtype, int64_t numel, const float *want) {
    float *v = values(f, name, dtype, numel);
    if (!v) return;
    tu_close(name, v, want, (long)numel, 0, 0);
    free(v);
}

/* small_state_dict() of make_torch_ckpt.py, plus `add` on its float tensors. */
static void check_small(const char *file, const char *where, float add) {
    st_file f;
    char err[1024];
    int rc = st_open(file, &f, err, sizeof err);
    CHECK(rc == 0, "%s: %s", file, err);
    if (rc) return;
    CHECK(f.n_tensors == 4, "%s: %d tensors", file, f.n_tensors);
    float cw[8], cb[2] = {-1 + add, 1 + add}, fw[6], steps = 7;
    for (int i = 0; i < 8; i++) cw[i] = (float)i / 10 + add;
    for (int i = 0; i < 6; i++) fw[i] = (float)i - 2 + add;
    expect_values(&f, "conv.weight", ST_F32, 8, cw);
    expect_values(&f, "conv.bias", ST_F32, 2, cb);
    expect_values(&f, "fc.weight", ST_F32, 6, fw);
    expect_values(&f, "steps", ST_I64, 1, &steps);
    const st_tensor_info *t = st_find(&f, "conv.weight");
    CHECK(t && t->ndim == 4 && t->shape[0] == 2 && t->shape[1] == 1 && t->shape[2] == 2 && t->shape[3] == 2, "%s: conv.weight shape", file);
    t = st_find(&f, "steps");
    CHECK(t && t->ndim == 0, "%s: a 0-dim tensor keeps 0 dims", file);
    const char *sd = st_meta_get(&f, "state_dict");
    CHECK(sd && !strcmp(sd, where), "%s: state dict found at '%s', expected '%s'", file, sd ? sd : "(none)", where);
    for (int i = 0; i < f.n_tensors; i++)
        CHECK(strncmp(f.tensors[i].name, "module.", 7), "%s: prefix kept on %s", file, f.tensors[i].name);
    st_close(&f);
}

static void check_layouts(void) {
    check_small(G "plain.pt", "top level", 0);
    check_small(G "nested_state_dict.ckpt", "state_dict", 0);
    check_small(G "nested_model.pth", "model", 0);      /* model is taken before ema */
    check_small(G "nested_ema.bin", "ema", 100);
    check_small(G "list_module.pth", "[0]", 0);
    /* FILE#key: the state dict under a chosen key or list index */
    check_small(G "nested_model.pth#ema", "#ema", 100);
    check_small(G "list_module.pth#0", "#0", 0);
    check_small(G "nested_state_dict.ckpt#state_dict", "#state_dict", 0);
}

static void check_dtypes_and_views(void) {
    st_file f;
    char err[1024];
    CHECK(st_open(G "half.pt", &f, err, sizeof err) == 0, "%s", err);
    float h[6], b[6];
    for (int i = 0; i < 6; i++) { h[i] = (float)i / 4 - 1; b[i] = (float)i / 8 + 0.5f; }
    expect_values(&f, "h", ST_F16, 6, h);
    expect_values(&f, "b", ST_BF16, 6, b);
    st_close(&f);

    CHECK(st_open(G "views.pt", &f, err, sizeof err) == 0, "%s", err);
    expect_values(&f, "a", ST_F32, 4, (const float[]){2, 3, 4, 5});
    expect_values(&f, "m", ST_F32, 8, (const float[]){4, 5, 6, 7, 8, 9, 10, 11});
    expect_values(&f, "t", ST_F32, 6, (const float[]){0, 3, 1, 4, 2, 5});   /* the transpose, gathered */
    expect_values(&f, "h", ST_F16, 4, (const float[]){3, 4, 5, 6});
    const st_tensor_info *a = st_find(&f, "a"), *m = st_find(&f, "m"), *t = st_find(&f, "t");
    /* a and m share one storage: their bytes overlap in the archive instead of being copied */
    CHECK(a && m && m->begin == a->begin + 8 && m->begin < a->end, "views of one storage are not shared");
    CHECK(t && t->shape[0] == 3 && t->shape[1] == 2 && f.owned != NULL, "the strided view was not gathered");
    st_close(&f);
}

/* ε of the tiny UNet read from the PyTorch file equals ε of the same weights in safetensors. */
static void check_unet(const char *dir) {
    char err[1024], st_path[4096];
    da_unet_config cfg;
    da_unet_config_default(&cfg);
    CHECK(da_unet_config_load(G "unet.yml", &cfg, err, sizeof err) == 0, "%s", err);
    da_unet ref, pt, st;
    CHECK(da_unet_init(&ref, &cfg, 1, err, sizeof err) == 0, "%s", err);
    set_golden_weights(&ref);
    td_path(st_path, sizeof st_path, dir, "unet.safetensors");
    CHECK(da_unet_save(&ref, st_path, NULL, 0, err, sizeof err) == 0, "%s", err);
    da_unet_free(&ref);
    int rc_pt = da_unet_load(&pt, G "unet.pth", G "unet.yml", err, sizeof err);
    CHECK(rc_pt == 0, "unet.pth: %s", err);
    int rc_st = da_unet_load(&st, st_path, NULL, err, sizeof err);
    CHECK(rc_st == 0, "%s", err);
    if (rc_pt || rc_st) return;
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_set_grad(&ctx, false);
    int64_t shape[4] = {2, 1, 8, 8};
    float xs[128];
    for (int i = 0; i < 128; i++) xs[i] = sinf(0.37f * (float)i);
    da_tensor *x = da_from_data(&ctx, 4, shape, xs);
    for (int k = 0; k < 2; k++) {
        int t = k ? 601 : 0;
        da_tensor *e1 = da_unet_eps(&ctx, x, t, &pt), *e2 = da_unet_eps(&ctx, x, t, &st);
        CHECK(!memcmp(e1->data, e2->data, sizeof(float) * 128), "eps at t %d differs between unet.pth and unet.safetensors", t);
        float mx = 0;
        for (int i = 0; i < 128; i++) mx = fmaxf(mx, fabsf(e1->data[i]));
        CHECK(mx > 1e-3f, "eps is all zero: the comparison would prove nothing");
    }
    da_ctx_free(&ctx);
    da_unet_free(&pt);
    da_unet_free(&st);
}

/* A NaN weight in a PyTorch checkpoint is refused by the same load check as in safetensors. The
 * storages are patched and the archive read without its CRC checks (which would refuse it first). */
static void check_nonfinite(void) {
    size_t n = 0;
    unsigned char *buf = (unsigned char *)td_slurp(G "unet.pth", &n);
    CHECK(buf != NULL, "cannot read unet.pth");
    if (!buf) return;
    char err[1024];
    da_zip z;
    CHECK(da_zip_open(buf, n, &z, "unet.pth", err, sizeof err) == 0, "%s", err);
    int patched = 0;
    static const unsigned char nan_le[4] = {0x00, 0x00, 0xc0, 0x7f};
    for (int i = 0; i < z.n; i++)
        if (strstr(z.entries[i].name, "/data/") && z.entries[i].method == 0 && z.entries[i].size >= 4) {
            memcpy(buf + z.entries[i].offset, nan_le, 4);
            patched++;
        }
    da_zip_free(&z);
    CHECK(patched > 0, "no storage found in unet.pth");
    st_file f = {0};
    int rc = da_torch_parse(buf, n, DA_TORCH_NO_CRC, &f, "unet.pth", err, sizeof err);
    CHECK(rc == 0, "%s", err);
    if (!rc) {
        da_unet_config cfg;
        da_unet_config_default(&cfg);
        CHECK(da_unet_config_load(G "unet.yml", &cfg, err, sizeof err) == 0, "%s", err);
        da_unet m;
        CHECK(da_unet_init(&m, &cfg, 1, err, sizeof err) == 0, "%s", err);
        int lrc = da_params_load(&m.params, &f, NULL, 0, NULL, err, sizeof err);
        CHECK(lrc == -2 && strstr(err, "non-finite"), "NaN weights from a PyTorch checkpoint: rc %d, %s", lrc, err);
        da_unet_free(&m);
        st_close(&f);
    }
    free(buf);
}

/* A TorchScript archive (torch.jit.save): the module's parameters under their state_dict names. */
static void check_torchscript(void) {
    st_file f;
    char err[1024];
    int rc = st_open(G "torchscript.pt", &f, err, sizeof err);
    CHECK(rc == 0, "torchscript.pt: %s", err);
    if (rc) return;
    CHECK(f.n_tensors == 2, "torchscript.pt: %d tensors", f.n_tensors);
    expect_values(&f, "fc.weight", ST_F32, 6, (const float[]){0, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f});
    expect_values(&f, "fc.bias", ST_F32, 3, (const float[]){1, 2, 3});
    const char *sd = st_meta_get(&f, "state_dict");
    CHECK(sd && strstr(sd, "TorchScript module"), "torchscript.pt: state_dict metadata '%s'", sd ? sd : "(none)");
    st_close(&f);
}

/* Image and text embeddings of two loaded CLIPs are bit-identical (and not trivially zero). */
static void same_clip_outputs(const char *what, const da_clip *a, const da_clip *b) {
    char err[512];
    st_file g;
    CHECK(st_open("golden/clip_tiny.safetensors", &g, err, sizeof err) == 0, "%s", err);
    const st_tensor_info *ti = st_find(&g, "in.x_rgb");
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_set_grad(&ctx, false);
    da_tensor *x = da_new(&ctx, ti->ndim, ti->shape);
    CHECK(st_read_f32(&g, ti, x->data, err, sizeof err) == 0, "%s", err);
    da_tensor *ea = da_clip_image_features(&ctx, a, x), *eb = da_clip_image_features(&ctx, b, x);
    CHECK(ea->numel == eb->numel && !memcmp(ea->data, eb->data, sizeof(float) * (size_t)ea->numel),
          "%s: image embeddings differ", what);
    int64_t ids[2 * 5] = {1, 7, 9, 513, 0, 1, 30, 40, 50, 513};
    da_tensor *ta = da_clip_encode_text(&ctx, a, ids, 2, 5), *tb = da_clip_encode_text(&ctx, b, ids, 2, 5);
    float mx = 0;
    for (int64_t i = 0; i < ta->numel; i++) mx = fmaxf(mx, fabsf(ta->data[i]));
    CHECK(ta->numel == tb->numel && !memcmp(ta->data, tb->data, sizeof(float) * (size_t)ta->numel) && mx > 1e-4f,
          "%s: text embeddings differ (or are zero)", what);
    da_ctx_free(&ctx);
    st_close(&g);
}

/* OpenAI's TorchScript CLIP layout (tiny openai_clip.pt): renamed, q/k/v split and projections
 * transposed, it embeds exactly like the same weights in Hugging Face layout (both files without
 * a config, so both infer the same heads). */
static void check_openai_clip(void) {
    da_clip a, b;
    char err[1024];
    int ra = da_clip_load(&a, G "openai_clip.pt", err, sizeof err);
    CHECK(ra == 0, "openai_clip.pt: %s", err);
    int rb = da_clip_load(&b, G "clip_hf/pytorch_model.bin", err, sizeof err);
    CHECK(rb == 0, "clip_hf/pytorch_model.bin: %s", err);
    if (!ra && !rb) same_clip_outputs("OpenAI TorchScript CLIP vs Hugging Face layout", &a, &b);
    if (!ra) da_clip_free(&a);
    if (!rb) da_clip_free(&b);
}

/* An older Hugging Face CLIP folder (pytorch_model.bin + config.json) loads and embeds exactly
 * like the safetensors file its weights came from. */
static void check_clip_folder(void) {
    da_clip a, b;
    char err[1024];
    int ra = da_clip_load(&a, G "clip_hf", err, sizeof err);
    CHECK(ra == 0, "clip_hf: %s", err);
    int rb = da_clip_load(&b, "golden/clip_tiny.safetensors", err, sizeof err);
    CHECK(rb == 0, "clip_tiny: %s", err);
    if (!ra && !rb) same_clip_outputs("pytorch_model.bin folder vs safetensors", &a, &b);
    if (!ra) da_clip_free(&a);
    if (!rb) da_clip_free(&b);
}

static void expect_refused(const char *file, const char *a, const char *b) {
    st_file f;
    char err[1024] = "";
    int rc = st_open(file, &f, err, sizeof err);
    CHECK(rc != 0, "%s was accepted", file);
    CHECK(strstr(err, a) && (!b || strstr(err, b)) && strstr(err, file), "%s: message '%s' lacks '%s'%s%s", file, err,
          a, b ? " / " : "", b ? b : "");
    CHECK(f.n_tensors == 0 && f.tensors == NULL && f.owned == NULL, "%s: refused file left state behind", file);
    st_close(&f);
}

static void check_hostile(void) {
    expect_refused(G "hostile_system.pt", "refusing global", "system");
    expect_refused(G "hostile_eval.pt", "refusing global '__builtin__.eval'", "hostile");
    expect_refused(G "hostile_numel.pt", "declares 1099511627776", "16 bytes");
    expect_refused(G "hostile_view.pt", "outside its storage", NULL);
    expect_refused(G "hostile_missing.pt", "missing from the archive", NULL);
    expect_refused(G "hostile_expand.pt", "more elements than its storage", NULL);
    expect_refused(G "legacy.pt", "legacy format", NULL);
    expect_refused(G "nested_model.pth#nope", "has no 'nope'", "model, ema, step");
    expect_refused(G "list_module.pth#7", "has no '7'", "indices 0..3");
    expect_refused(G "list_module.pth#2", "no state dict found", NULL);      /* the epoch, an int */
    expect_refused("golden/unet.safetensors#ema", "is not one", NULL);
    /* the control: the same hand-made container with a well-formed tensor loads */
    st_file f;
    char err[1024];
    CHECK(st_open(G "handmade_ok.pt", &f, err, sizeof err) == 0, "%s", err);
    expect_values(&f, "w", ST_F32, 3, (const float[]){1, 2, 3});
    st_close(&f);
}

static int no_storage(void *user, const char *key, size_t *offset, size_t *nbytes, char *err, size_t errlen) {
    (void)user; (void)offset; (void)nbytes;
    snprintf(err, errlen, "no storage %s", key);
    return -1;
}

/* Hand-written pickles: what the unpickler refuses, each with its reason in the message. */
static void check_pickle_rules(void) {
    /* a literal and its length (it may hold NUL bytes) */
#define PK(lit) lit, sizeof lit - 1
    static const struct { const char *bytes; size_t n; const char *why; } BAD[] = {
        {PK("\x80\x02N\x72\xff\x00\x00\x00."), "skips ahead"},                          /* LONG_BINPUT 255 first */
        {PK("\x80\x02(cos\nsystem\nX\x02\x00\x00\x00lstR."), "refusing global 'os.system'"},   /* GLOBAL + REDUCE */
        {PK("\x80\x02(X\x02\x00\x00\x00lsios\nsystem\n."), "opcode 'i'"},                  /* INST os.system */
        {PK("\x80\x02" "ctorch\nFloatStorage\n)R."), "never calls"},                  /* REDUCE of a storage type */
        {PK("\x80\x02]N\x85" "b."), "BUILD on something other"},                          /* BUILD on a list */
        {PK("\x80\x02" "ccollections\nOrderedDict\n)\x81."), "NEWOBJ of something other"},
        {PK("\x80\x02X\xff\xff\xff\x7f."), "runs past the end"},                        /* a 2 GB string */
        {PK("\x80\x02N"), "without STOP"},
        {PK("\x80\x02\x8a\x09\x01\x02\x03\x04\x05\x06\x07\x08\x09."), "at most 8"},   /* a 9-byte integer */
        {PK("\x80\x02u."), "no MARK"},
        {PK("\x80\x02" "c__builtin__\neval\n."), "refusing global '__builtin__.eval'"},
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        pk_doc doc;
        char err[512] = "";
        int rc = pk_load((const unsigned char *)BAD[i].bytes, BAD[i].n, no_storage, NULL, &doc, "hand", err, sizeof err);
        CHECK(rc != 0 && strstr(err, BAD[i].why) && strstr(err, "data.pkl byte"), "pickle %zu: rc %d, '%s' lacks '%s'", i, rc,
              err, BAD[i].why);
        pk_free(&doc);
    }
#undef PK
    /* and a well-formed one: {"a": [1, -2, 3.5, True, None], "b": OrderedDict()} */
    static const char GOOD[] = "\x80\x02}q\x00(X\x01\x00\x00\x00" "aq\x01](K\x01J\xfe\xff\xff\xffG@\x0c\x00\x00\x00\x00\x00\x00\x88Ne"
                               "X\x01\x00\x00\x00" "bccollections\nOrderedDict\n)Ru.";
    pk_doc doc;
    char err[512] = "";
    int rc = pk_load((const unsigned char *)GOOD, sizeof GOOD - 1, no_storage, NULL, &doc, "hand", err, sizeof err);
    CHECK(rc == 0, "good pickle: %s", err);
    const pk_obj *a = rc ? NULL : pk_dict_get(doc.root, "a"), *b = rc ? NULL : pk_dict_get(doc.root, "b");
    CHECK(a && a->kind == PK_LIST && a->n == 5 && a->items[0]->i == 1 && a->items[1]->i == -2 && a->items[2]->f == 3.5 &&
          a->items[3]->kind == PK_BOOL && a->items[3]->i == 1 && a->items[4]->kind == PK_NONE && b && b->kind == PK_DICT,
          "good pickle read wrongly");
    pk_free(&doc);
}

/* Truncations at every length and single-byte corruptions at every offset are refused or read
 * cleanly, never crash (the sanitizer build checks the "cleanly"); a changed storage byte fails
 * the CRC check. */
static void check_damage(const char *dir) {
    size_t n = 0;
    unsigned char *buf = (unsigned char *)td_slurp(G "plain.pt", &n);
    CHECK(buf && n > 1000, "cannot read plain.pt");
    if (!buf) return;
    st_file f;
    char err[1024];
    int refused = 0, silent = 0;
    for (size_t len = 0; len < n; len++) {
        err[0] = 0;
        if (st_open_memory(buf, len, &f, err, sizeof err)) refused++;
        if (!err[0]) silent++;
        st_close(&f);
    }
    CHECK(refused == (int)n && silent == 0, "%d of %zu truncations refused, %d without a message", refused, n, silent);
    char path[4096];
    td_write(dir, "cut.pt", buf, n - 10);
    td_path(path, sizeof path, dir, "cut.pt");
    CHECK(st_open(path, &f, err, sizeof err) != 0 && strstr(err, "truncated") && strstr(err, "cut.pt"), "truncated: %s", err);

    da_zip z;
    CHECK(da_zip_open(buf, n, &z, "plain.pt", err, sizeof err) == 0, "%s", err);
    const da_zip_entry *e = da_zip_find(&z, "plain/data/0");
    CHECK(e && e->size == 32, "plain/data/0 not found");
    if (e) {
        buf[e->offset + 5] ^= 0x40;
        err[0] = 0;
        CHECK(st_open_memory(buf, n, &f, err, sizeof err) != 0 && strstr(err, "CRC-32") && strstr(err, "corrupt"),
              "corrupted storage: %s", err);
        /* without the CRC check the changed value comes through (the fuzzer's mode) */
        CHECK(da_torch_parse(buf, n, DA_TORCH_NO_CRC, &f, "plain.pt", err, sizeof err) == 0, "%s", err);
        st_close(&f);
        buf[e->offset + 5] ^= 0x40;
    }
    da_zip_free(&z);
    int crashed_not = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char old = buf[i];
        buf[i] ^= 0xA5;
        err[0] = 0;
        int rc = da_torch_parse(buf, n, DA_TORCH_NO_CRC, &f, "flip", err, sizeof err);
        if (rc == 0 || err[0]) crashed_not++;
        for (int k = 0; rc == 0 && k < f.n_tensors; k++) {
            float *v = malloc(sizeof(float) * (size_t)(f.tensors[k].numel + 1));
            if (st_read_f32(&f, &f.tensors[k], v, err, sizeof err)) crashed_not--;
            free(v);
        }
        st_close(&f);
        buf[i] = old;
    }
    CHECK(crashed_not == (int)n, "byte flips: %d of %zu gave a readable file or a message", crashed_not, n);
    free(buf);
}

static char OUT[65536];

static void check_cli(const char *dir) {
    const char *bin = getenv("DA_BIN");
    if (!bin || access(bin, X_OK)) {
        printf("note: DA_BIN not set, CLI checks skipped\n");
        return;
    }
    char cmd[8192], out[4096], err[1024];
    snprintf(cmd, sizeof cmd, "'%s' inspect " G "list_module.pth 2>&1", bin);
    int rc = cli_run(cmd, OUT, sizeof OUT);
    CHECK(rc == 0 && strstr(OUT, "4 tensors") && strstr(OUT, "conv.weight") && strstr(OUT, "(2,1,2,2)") &&
          strstr(OUT, "state_dict = [0]") && !strstr(OUT, " module.conv"), "inspect .pth: exit %d\n%s", rc, OUT);
    snprintf(cmd, sizeof cmd, "'%s' inspect '" G "nested_model.pth#ema' 2>&1", bin);
    rc = cli_run(cmd, OUT, sizeof OUT);
    CHECK(rc == 0 && strstr(OUT, "4 tensors") && strstr(OUT, "state_dict = #ema"), "inspect FILE#ema: exit %d\n%s", rc, OUT);
    snprintf(cmd, sizeof cmd, "'%s' inspect " G "hostile_system.pt 2>&1", bin);
    rc = cli_run(cmd, OUT, sizeof OUT);
    CHECK(rc == 1 && strstr(OUT, "refusing global"), "inspect hostile: exit %d\n%s", rc, OUT);

    td_path(out, sizeof out, dir, "conv.safetensors");
    snprintf(cmd, sizeof cmd, "'%s' convert " G "half.pt '%s' 2>&1", bin, out);
    rc = cli_run(cmd, OUT, sizeof OUT);
    CHECK(rc == 0 && strstr(OUT, "2 tensors written"), "convert: exit %d\n%s", rc, OUT);
    st_file f;
    if (st_open(out, &f, err, sizeof err) == 0) {
        float h[6], b[6];
        for (int i = 0; i < 6; i++) { h[i] = (float)i / 4 - 1; b[i] = (float)i / 8 + 0.5f; }
        expect_values(&f, "h", ST_F16, 6, h);     /* dtypes are kept */
        expect_values(&f, "b", ST_BF16, 6, b);
        CHECK(f.owned == NULL && st_meta_get(&f, "source"), "converted file: metadata");
        st_close(&f);
    } else {
        CHECK(0, "converted file unreadable: %s", err);
    }
    rc = cli_run(cmd, OUT, sizeof OUT);
    CHECK(rc == 1 && strstr(OUT, "already exists") && strstr(OUT, "--force"), "convert over a file: exit %d\n%s", rc, OUT);
    snprintf(cmd, sizeof cmd, "'%s' convert " G "views.pt '%s' --force 2>&1", bin, out);
    rc = cli_run(cmd, OUT, sizeof OUT);
    CHECK(rc == 0, "convert --force: exit %d\n%s", rc, OUT);
    if (st_open(out, &f, err, sizeof err) == 0) {
        expect_values(&f, "t", ST_F32, 6, (const float[]){0, 3, 1, 4, 2, 5});
        st_close(&f);
    }
    /* a UNet checkpoint with its YAML config becomes a file that loads on its own */
    td_path(out, sizeof out, dir, "unet_conv.safetensors");
    snprintf(cmd, sizeof cmd, "'%s' convert " G "unet.pth '%s' --config " G "unet.yml 2>&1", bin, out);
    rc = cli_run(cmd, OUT, sizeof OUT);
    CHECK(rc == 0, "convert unet: exit %d\n%s", rc, OUT);
    da_unet m;
    CHECK(da_unet_load(&m, out, NULL, err, sizeof err) == 0, "converted UNet without --config: %s", err);
    if (m.params.n) da_unet_free(&m);

    td_path(out, sizeof out, dir, "bad.safetensors");
    snprintf(cmd, sizeof cmd, "'%s' convert " G "hostile_eval.pt '%s' 2>&1", bin, out);
    rc = cli_run(cmd, OUT, sizeof OUT);
    CHECK(rc == 1 && strstr(OUT, "__builtin__.eval") && access(out, F_OK) != 0, "convert hostile: exit %d\n%s", rc, OUT);
    snprintf(cmd, sizeof cmd, "'%s' convert " G "plain.pt 2>&1", bin);
    rc = cli_run(cmd, OUT, sizeof OUT);
    CHECK(rc == 2 && strstr(OUT, "expected IN and OUT"), "convert with one argument: exit %d\n%s", rc, OUT);
    snprintf(cmd, sizeof cmd, "'%s' convert --help 2>&1", bin);
    rc = cli_run(cmd, OUT, sizeof OUT);
    CHECK(rc == 0 && strstr(OUT, "torch.save") && strstr(OUT, "--force"), "convert --help: exit %d\n%s", rc, OUT);
}

int main(void) {
    char dir[4096];
    td_make(dir, sizeof dir, "torch_ckpt");
    check_layouts();
    check_dtypes_and_views();
    check_unet(dir);
    check_nonfinite();
    check_clip_folder();
    check_torchscript();
    check_openai_clip();
    check_hostile();
    check_pickle_rules();
    check_damage(dir);
    check_cli(dir);
    td_remove(dir);
    return tu_finish("test_torch_ckpt");
}
