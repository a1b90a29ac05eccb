/* test_dataset.c — data sets: IDX (plain and gzip, truncated, damaged), the fashion-mnist alias,
 * folders with labels.csv (and every way it can disagree with the files), safetensors round
 * trips, CelebA with attribute labels and splits, class/take/skip/seed choice, crop + bilinear
 * resize against PyTorch (golden/data.safetensors), padding and channel conversion. */
#include <stb_image_write.h>
#include <zlib.h>

#include "data/dataset.h"
#include "data/image.h"
#include "data/transforms.h"
#include "io/safetensors.h"
#include "test_util.h"
#include "tmpdir.h"

static char ERR[2048];
static char DIR_[512];

static float level(int v) { return (float)v / 127.5f - 1.0f; }

/* Writes an IDX file of unsigned bytes: dims big-endian after the magic 0,0,8,ndim. `body` may
 * be shorter or longer than the dims promise (to make damaged files). */
static void write_idx(const char *name, bool gz, int ndim, const int *dims, const unsigned char *body, size_t len) {
    unsigned char head[4 + 16] = {0, 0, 0x08, (unsigned char)ndim};
    for (int i = 0; i < ndim; i++) {
        head[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
        head[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
        head[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
        head[7 + 4 * i] = (unsigned char)dims[i];
    }
    char path[4096];
    td_path(path, sizeof path, DIR_, name);
    if (gz) {
        gzFile g = gzopen(path, "wb");
        if (!g || gzwrite(g, head, (unsigned)(4 + 4 * ndim)) <= 0 || (len && gzwrite(g, body, (unsigned)len) <= 0) ||
            gzclose(g) != Z_OK) {
            fprintf(stderr, "cannot write %s\n", path);
            exit(2);
        }
    } else {
        unsigned char *all = malloc(4 + 4 * (size_t)ndim + len);
        memcpy(all, head, 4 + 4 * (size_t)ndim);
        if (len) memcpy(all + 4 + 4 * ndim, body, len);
        td_write(DIR_, name, all, 4 + 4 * (size_t)ndim + len);
        free(all);
    }
}

/* A load that must fail with a message containing `needle` (the file at fault). */
static void expect_fail(const char *spec, const da_data_opts *o, const char *needle, const char *why) {
    da_dataset d;
    ERR[0] = '\0';
    int rc = da_dataset_load(spec, o, &d, ERR, sizeof ERR);
    CHECK(rc != 0, "%s: loading %s should fail", why, spec);
    CHECK(strstr(ERR, needle) != NULL, "%s: the message does not name '%s': %s", why, needle, ERR);
    CHECK(d.images == NULL && d.n == 0, "%s: dataset not left empty", why);
    if (getenv("DA_TEST_VERBOSE")) printf("%-45s -> %s\n", why, ERR);
    if (rc == 0) da_dataset_free(&d);
}

static float *golden(const st_file *f, const char *name, int64_t *shape) {
    const st_tensor_info *t = st_find(f, name);
    if (!t) {
        fprintf(stderr, "golden/data.safetensors lacks %s; rerun tests/golden/gen_data.py\n", name);
        exit(2);
    }
    float *x = malloc(sizeof(float) * (size_t)t->numel);
    if (st_read_f32(f, t, x, ERR, sizeof ERR)) {
        fprintf(stderr, "%s\n", ERR);
        exit(2);
    }
    for (int i = 0; i < t->ndim; i++) shape[i] = t->shape[i];
    return x;
}

static void test_resize_golden(void) {
    st_file f;
    if (st_open("golden/data.safetensors", &f, ERR, sizeof ERR)) {
        CHECK(0, "cannot open the golden file: %s", ERR);
        return;
    }
    static const char *const resize[] = {"down", "up", "mixed", "big_up", "odd_down"};
    for (size_t k = 0; k < sizeof resize / sizeof resize[0]; k++) {
        char name[64];
        int64_t is[3], os[3];
        snprintf(name, sizeof name, "resize_%s.in", resize[k]);
        float *x = golden(&f, name, is);
        snprintf(name, sizeof name, "resize_%s.out", resize[k]);
        float *y = golden(&f, name, os);
        float *got = malloc(sizeof(float) * (size_t)(os[0] * os[1] * os[2]));
        da_image_resize_bilinear(x, (int)is[0], (int)is[1], (int)is[2], got, (int)os[1], (int)os[2]);
        tu_close(name, got, y, (long)(os[0] * os[1] * os[2]), 1e-6, 1e-6);
        free(x);
        free(y);
        free(got);
    }
    /* crop + resize, directly and through da_dataset_load on a safetensors file */
    static const char *const crop[] = {"tall", "wide", "celeba_like"};
    for (size_t k = 0; k < sizeof crop / sizeof crop[0]; k++) {
        char name[64], path[4096];
        int64_t is[3], os[3];
        snprintf(name, sizeof name, "crop_%s.in", crop[k]);
        float *x = golden(&f, name, is);
        snprintf(name, sizeof name, "crop_%s.out", crop[k]);
        float *y = golden(&f, name, os);
        int side = (int)(is[1] < is[2] ? is[1] : is[2]);
        float *sq = malloc(sizeof(float) * (size_t)(is[0] * side * side));
        float *got = malloc(sizeof(float) * (size_t)(os[0] * os[1] * os[2]));
        da_center_crop_square(x, (int)is[0], (int)is[1], (int)is[2], sq);
        da_image_resize_bilinear(sq, (int)is[0], side, side, got, (int)os[1], (int)os[2]);
        tu_close(name, got, y, (long)(os[0] * os[1] * os[2]), 1e-6, 1e-6);

        da_dataset src = {.n = 1, .c = is[0], .h = is[1], .w = is[2], .images = x};
        td_path(path, sizeof path, DIR_, "crop.safetensors");
        CHECK(da_dataset_save(&src, path, ERR, sizeof ERR) == 0, "%s", ERR);
        da_data_opts o = {.size = (int)os[1]};
        da_dataset d;
        CHECK(da_dataset_load(path, &o, &d, ERR, sizeof ERR) == 0, "%s", ERR);
        CHECK(d.n == 1 && d.c == is[0] && d.h == os[1] && d.w == os[2], "--size gave %lldx%lld", (long long)d.h, (long long)d.w);
        if (d.images && d.h == os[1]) tu_close("crop+resize through load", d.images, y, (long)(os[0] * os[1] * os[2]), 1e-6, 1e-6);
        da_dataset_free(&d);
        free(x);
        free(y);
        free(sq);
        free(got);
    }
    st_close(&f);
}

/* 40 images of 6×5 (pixel = image*7 + position, mod 256), labels i % 4. */
enum { IN = 40, IH = 6, IW = 5 };
static unsigned char PIX[IN * IH * IW], LAB[IN];

static void test_idx(void) {
    for (int i = 0; i < IN * IH * IW; i++) PIX[i] = (unsigned char)((i / (IH * IW)) * 7 + i % (IH * IW));
    for (int i = 0; i < IN; i++) LAB[i] = (unsigned char)(i % 4);
    int idims[3] = {IN, IH, IW}, ldims[1] = {IN};
    write_idx("train-images-idx3-ubyte", false, 3, idims, PIX, sizeof PIX);
    write_idx("train-labels-idx1-ubyte", false, 1, ldims, LAB, sizeof LAB);
    write_idx("t10k-images-idx3-ubyte.gz", true, 3, idims, PIX, sizeof PIX);
    write_idx("t10k-labels-idx1-ubyte.gz", true, 1, ldims, LAB, sizeof LAB);
    char path[4096];
    for (int gz = 0; gz < 2; gz++) {
        td_path(path, sizeof path, DIR_, gz ? "t10k-images-idx3-ubyte.gz" : "train-images-idx3-ubyte");
        da_dataset d;
        int rc = da_dataset_load(path, NULL, &d, ERR, sizeof ERR);
        CHECK(rc == 0, "IDX (gz=%d): %s", gz, ERR);
        if (rc) continue;
        CHECK(d.n == IN && d.c == 1 && d.h == IH && d.w == IW, "IDX shape %lld,%lld,%lld,%lld", (long long)d.n, (long long)d.c,
              (long long)d.h, (long long)d.w);
        float want[IN * IH * IW];
        for (int i = 0; i < IN * IH * IW; i++) want[i] = level(PIX[i]);
        tu_close(gz ? "IDX gzip pixels" : "IDX plain pixels", d.images, want, IN * IH * IW, 0, 0);
        int labels_ok = d.labels != NULL;
        for (int i = 0; labels_ok && i < IN; i++) labels_ok = d.labels[i] == LAB[i] && d.source_index[i] == i;
        CHECK(labels_ok, "IDX labels or source indices wrong (gz=%d)", gz);
        CHECK(strcmp(d.names[3], "idx_000003") == 0, "name %s", d.names[3]);
        da_dataset_free(&d);
    }
    /* an IDX images file with no labels file beside it: unlabelled */
    write_idx("pixels.idx", false, 3, idims, PIX, sizeof PIX);
    td_path(path, sizeof path, DIR_, "pixels.idx");
    da_dataset d;
    CHECK(da_dataset_load(path, NULL, &d, ERR, sizeof ERR) == 0 && d.labels == NULL && d.n == IN, "unlabelled IDX: %s", ERR);
    da_dataset_free(&d);
    da_data_opts cls = {.classes = "1"};
    expect_fail(path, &cls, "labels", "--classes on an unlabelled set");

    /* damaged files */
    write_idx("short-images-idx3-ubyte", false, 3, idims, PIX, sizeof PIX - 7);
    td_path(path, sizeof path, DIR_, "short-images-idx3-ubyte");
    expect_fail(path, NULL, "short-images-idx3-ubyte", "truncated IDX");
    expect_fail(path, NULL, "truncated", "truncated IDX says so");
    write_idx("shortgz-images-idx3-ubyte.gz", true, 3, idims, PIX, sizeof PIX - 1);
    td_path(path, sizeof path, DIR_, "shortgz-images-idx3-ubyte.gz");
    expect_fail(path, NULL, "truncated", "truncated gzip IDX");
    write_idx("long-images-idx3-ubyte", false, 3, idims, PIX, sizeof PIX);
    td_path(path, sizeof path, DIR_, "long-images-idx3-ubyte");
    {
        FILE *f = fopen(path, "ab");
        fputc(1, f);
        fclose(f);
    }
    expect_fail(path, NULL, "long-images-idx3-ubyte", "IDX with trailing bytes");
    write_idx("odd-images-idx3-ubyte", false, 3, idims, PIX, sizeof PIX);
    int l39[1] = {IN - 1};
    write_idx("odd-labels-idx1-ubyte", false, 1, l39, LAB, IN - 1);
    td_path(path, sizeof path, DIR_, "odd-images-idx3-ubyte");
    expect_fail(path, NULL, "odd-labels-idx1-ubyte", "label count differs from image count");
    td_path(path, sizeof path, DIR_, "train-labels-idx1-ubyte");
    expect_fail(path, NULL, "labels file", "a labels file given as images");
    /* a gzip stream damaged in the middle */
    {
        td_path(path, sizeof path, DIR_, "t10k-images-idx3-ubyte.gz");
        FILE *f = fopen(path, "rb");
        unsigned char buf[4096];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        for (size_t i = 20; i < n - 8; i++) buf[i] ^= 0x5a;
        td_write(DIR_, "broken-images-idx3-ubyte.gz", buf, n);
        td_path(path, sizeof path, DIR_, "broken-images-idx3-ubyte.gz");
        expect_fail(path, NULL, "broken-images-idx3-ubyte.gz", "damaged gzip");
        expect_fail(path, NULL, "damaged", "damaged gzip says so");
    }
    td_write_text(DIR_, "notes.txt", "hello, this is not a data set\n");
    td_path(path, sizeof path, DIR_, "notes.txt");
    expect_fail(path, NULL, "notes.txt", "a text file");
    td_path(path, sizeof path, DIR_, "nothing-here");
    expect_fail(path, NULL, "nothing-here", "a missing path");
    expect_fail(path, &(da_data_opts){.attr = "Male"}, "CelebA", "--attr outside CelebA");
}

static bool contains(const int64_t *a, int64_t n, int64_t v) {
    for (int64_t i = 0; i < n; i++)
        if (a[i] == v) return true;
    return false;
}

static void test_choice(void) {
    char path[4096];
    td_path(path, sizeof path, DIR_, "train-images-idx3-ubyte");
    da_dataset d;
    /* classes "2,0": label 2 → 0, label 0 → 1, the rest dropped, source order kept */
    da_data_opts o = {.classes = "2,0"};
    CHECK(da_dataset_load(path, &o, &d, ERR, sizeof ERR) == 0, "%s", ERR);
    int ok = d.n == IN / 2;
    for (int64_t i = 0; ok && i < d.n; i++) {
        int64_t src = d.source_index[i];
        ok = (LAB[src] == 2 ? d.labels[i] == 0 : LAB[src] == 0 && d.labels[i] == 1) && (i == 0 || src > d.source_index[i - 1]);
        ok = ok && d.images[i * IH * IW] == level(PIX[src * IH * IW]);
    }
    CHECK(ok, "classes filter/relabel wrong (n=%lld)", (long long)d.n);
    da_dataset_free(&d);

    /* take/seed: reproducible, sorted; skip gives a disjoint draw; both together = a take of 10 */
    da_dataset a, b, c, u;
    o = (da_data_opts){.take = 5, .seed = 9};
    CHECK(da_dataset_load(path, &o, &a, ERR, sizeof ERR) == 0, "%s", ERR);
    CHECK(da_dataset_load(path, &o, &b, ERR, sizeof ERR) == 0, "%s", ERR);
    CHECK(a.n == 5 && b.n == 5 && memcmp(a.source_index, b.source_index, 5 * sizeof(int64_t)) == 0, "take is not reproducible");
    for (int i = 1; i < 5; i++) CHECK(a.source_index[i] > a.source_index[i - 1], "take is not in source order");
    o.skip = 5;
    CHECK(da_dataset_load(path, &o, &c, ERR, sizeof ERR) == 0 && c.n == 5, "%s", ERR);
    o = (da_data_opts){.take = 10, .seed = 9};
    CHECK(da_dataset_load(path, &o, &u, ERR, sizeof ERR) == 0 && u.n == 10, "%s", ERR);
    int disjoint = 1, union_ok = 1;
    for (int i = 0; i < 5; i++) {
        if (contains(a.source_index, 5, c.source_index[i])) disjoint = 0;
        if (!contains(u.source_index, 10, a.source_index[i]) || !contains(u.source_index, 10, c.source_index[i])) union_ok = 0;
    }
    CHECK(disjoint, "skip 5 take 5 overlaps take 5");
    CHECK(union_ok, "take 5 + skip 5 take 5 is not take 10");
    for (int i = 0; i < 5; i++) CHECK(a.labels[i] == LAB[a.source_index[i]], "label of chosen image %d", i);
    da_dataset_free(&b);
    o = (da_data_opts){.take = 5, .seed = 10};
    CHECK(da_dataset_load(path, &o, &b, ERR, sizeof ERR) == 0, "%s", ERR);
    CHECK(memcmp(a.source_index, b.source_index, 5 * sizeof(int64_t)) != 0, "seeds 9 and 10 chose the same images");
    da_dataset_free(&a);
    da_dataset_free(&b);
    da_dataset_free(&c);
    da_dataset_free(&u);
    /* skip without take keeps the rest */
    o = (da_data_opts){.skip = 30, .seed = 9};
    CHECK(da_dataset_load(path, &o, &a, ERR, sizeof ERR) == 0 && a.n == 10, "skip 30 of 40 gave %lld: %s", (long long)a.n, ERR);
    da_dataset_free(&a);
    /* classes and take together: take counts within the chosen classes */
    o = (da_data_opts){.classes = "3", .take = 4, .seed = 1};
    CHECK(da_dataset_load(path, &o, &a, ERR, sizeof ERR) == 0 && a.n == 4, "%s", ERR);
    for (int64_t i = 0; i < a.n; i++) CHECK(a.labels[i] == 0 && LAB[a.source_index[i]] == 3, "class 3 relabelled to 0");
    da_dataset_free(&a);

    expect_fail(path, &(da_data_opts){.take = 41}, "only 40", "take more than there are");
    expect_fail(path, &(da_data_opts){.classes = "1", .take = 6, .skip = 5}, "only 10", "skip+take beyond a class");
    expect_fail(path, &(da_data_opts){.classes = "7"}, "no image has a label", "classes that match nothing");
    expect_fail(path, &(da_data_opts){.classes = "1,x"}, "1,x", "malformed classes");
    expect_fail(path, &(da_data_opts){.classes = "1,1"}, "twice", "repeated class");
    expect_fail(path, &(da_data_opts){.channels = 2}, "channels", "2 channels");
}

static void test_pad_and_channels(void) {
    /* 28×28 → 32×32 with pad 2: a -1 border, the image inside unchanged */
    enum { N = 3, S = 28 };
    unsigned char *px = malloc(N * S * S);
    for (int i = 0; i < N * S * S; i++) px[i] = (unsigned char)(i * 13 % 251);
    int dims[3] = {N, S, S};
    write_idx("pad-images-idx3-ubyte", false, 3, dims, px, N * S * S);
    char path[4096];
    td_path(path, sizeof path, DIR_, "pad-images-idx3-ubyte");
    da_dataset d;
    da_data_opts o = {.pad = 2};
    CHECK(da_dataset_load(path, &o, &d, ERR, sizeof ERR) == 0, "%s", ERR);
    CHECK(d.h == 32 && d.w == 32 && d.c == 1, "pad gave %lldx%lld", (long long)d.h, (long long)d.w);
    int border = 1, inside = 1;
    for (int i = 0; i < N && d.h == 32; i++)
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++) {
                float v = d.images[(i * 32 + y) * 32 + x];
                if (y < 2 || y >= 30 || x < 2 || x >= 30) border &= v == -1.0f;
                else inside &= v == level(px[(i * S + y - 2) * S + x - 2]);
            }
    CHECK(border && inside, "padding wrong (border %d, inside %d)", border, inside);
    da_dataset_free(&d);

    /* grey → RGB copies the plane; together with pad */
    o = (da_data_opts){.pad = 2, .channels = 3};
    CHECK(da_dataset_load(path, &o, &d, ERR, sizeof ERR) == 0 && d.c == 3, "%s", ERR);
    if (d.c == 3) {
        tu_close("grey to rgb, G", d.images + 32 * 32, d.images, 32 * 32, 0, 0);
        tu_close("grey to rgb, B", d.images + 2 * 32 * 32, d.images, 32 * 32, 0, 0);
    }
    da_dataset_free(&d);
    free(px);

    /* RGB → grey from a safetensors set */
    float rgb[2 * 3 * 2 * 2];
    for (int i = 0; i < 24; i++) rgb[i] = (float)(i % 7) / 3.5f - 1.0f;
    da_dataset src = {.n = 2, .c = 3, .h = 2, .w = 2, .images = rgb};
    td_path(path, sizeof path, DIR_, "rgb.safetensors");
    CHECK(da_dataset_save(&src, path, ERR, sizeof ERR) == 0, "%s", ERR);
    o = (da_data_opts){.channels = 1};
    CHECK(da_dataset_load(path, &o, &d, ERR, sizeof ERR) == 0 && d.c == 1 && d.n == 2, "%s", ERR);
    float grey[8];
    for (int i = 0; i < 2; i++)
        for (int p = 0; p < 4; p++)
            grey[i * 4 + p] = 0.299f * rgb[i * 12 + p] + 0.587f * rgb[i * 12 + 4 + p] + 0.114f * rgb[i * 12 + 8 + p];
    if (d.c == 1) tu_close("rgb to grey", d.images, grey, 8, 1e-7, 0);
    da_dataset_free(&d);
}

static void test_safetensors(void) {
    enum { N = 6, C = 3, H = 4, W = 5 };
    float img[N * C * H * W];
    int64_t lab[N] = {3, 1, 4, 1, 5, 9};
    for (int i = 0; i < N * C * H * W; i++) img[i] = (float)((i * 31) % 200) / 100.0f - 1.0f;
    da_dataset src = {.n = N, .c = C, .h = H, .w = W, .images = img, .labels = lab};
    char path[4096];
    td_path(path, sizeof path, DIR_, "set.safetensors");
    CHECK(da_dataset_save(&src, path, ERR, sizeof ERR) == 0, "%s", ERR);
    da_dataset d;
    CHECK(da_dataset_load(path, NULL, &d, ERR, sizeof ERR) == 0, "%s", ERR);
    CHECK(d.n == N && d.c == C && d.h == H && d.w == W && d.labels, "round trip shape");
    if (d.n == N && d.labels) {
        tu_close("safetensors round trip", d.images, img, N * C * H * W, 0, 0);
        CHECK(memcmp(d.labels, lab, sizeof lab) == 0, "labels differ after the round trip");
    }
    da_dataset_free(&d);
    /* unlabelled */
    src.labels = NULL;
    CHECK(da_dataset_save(&src, path, ERR, sizeof ERR) == 0, "%s", ERR);
    CHECK(da_dataset_load(path, NULL, &d, ERR, sizeof ERR) == 0 && d.labels == NULL && d.n == N, "%s", ERR);
    da_dataset_free(&d);

    /* I32 labels, written by hand */
    const char *json = "{\"images\":{\"dtype\":\"F32\",\"shape\":[2,1,1,2],\"data_offsets\":[0,16]},"
                       "\"labels\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[16,24]}}";
    size_t hl = strlen(json), size = 8 + hl + 24;
    unsigned char *buf = calloc(1, size);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, json, hl);
    float px[4] = {-1.0f, 0.5f, 1.0f, 0.0f};
    int32_t l32[2] = {7, 2};
    memcpy(buf + 8 + hl, px, 16);
    memcpy(buf + 8 + hl + 16, l32, 8);
    td_write(DIR_, "i32.safetensors", buf, size);
    td_path(path, sizeof path, DIR_, "i32.safetensors");
    CHECK(da_dataset_load(path, NULL, &d, ERR, sizeof ERR) == 0 && d.labels && d.labels[0] == 7 && d.labels[1] == 2,
          "I32 labels: %s", ERR);
    if (d.n == 2) tu_close("I32 file pixels", d.images, px, 4, 0, 0);
    da_dataset_free(&d);
    /* out-of-range pixels (0..255 data) are refused */
    px[1] = 255.0f;
    memcpy(buf + 8 + hl, px, 16);
    td_write(DIR_, "range.safetensors", buf, size);
    td_path(path, sizeof path, DIR_, "range.safetensors");
    expect_fail(path, NULL, "[-1,1]", "pixels out of range");
    free(buf);
    /* no `images` tensor */
    st_writer *w = st_writer_new();
    int64_t shape[1] = {N};
    st_writer_add_i64(w, "labels", 1, shape, lab);
    td_path(path, sizeof path, DIR_, "noimages.safetensors");
    CHECK(st_writer_save(w, path, ERR, sizeof ERR) == 0, "%s", ERR);
    st_writer_free(w);
    expect_fail(path, NULL, "noimages.safetensors", "a file without images");
    expect_fail(path, NULL, "`images`", "a file without images says what is needed");
}

/* Writes a w×h 8-bit image file (PNG, or JPEG when the name ends in .jpg) with pixel values from f. */
static void write_image(const char *dir, const char *name, int c, int h, int w, int seed) {
    unsigned char *px = malloc((size_t)c * h * w);
    for (int i = 0; i < c * h * w; i++) px[i] = (unsigned char)((i * 11 + seed * 40) % 256);
    char path[4096];
    td_path(path, sizeof path, dir, name);
    int ok = strstr(name, ".jpg") ? stbi_write_jpg(path, w, h, c, px, 95) : stbi_write_png(path, w, h, c, px, w * c);
    if (!ok) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    free(px);
}

static void test_folder(void) {
    char dir[4096], sub[4096], path[4096];
    td_path(dir, sizeof dir, DIR_, "folder");
    mkdir(dir, 0755);
    write_image(dir, "c.png", 1, 6, 6, 2);
    write_image(dir, "a.png", 1, 6, 6, 0);
    write_image(dir, "b.png", 3, 6, 6, 1);
    write_image(dir, "d.png", 1, 6, 6, 3);
    td_write_text(dir, "readme.txt", "not an image, ignored\n");
    td_write_text(dir, "labels.csv", "file,label\r\nd.png,2\nb.png, 1\na.png,0\n\"c.png\",7\n");
    da_dataset d;
    CHECK(da_dataset_load(dir, NULL, &d, ERR, sizeof ERR) == 0, "%s", ERR);
    if (d.n == 4) {
        CHECK(strcmp(d.names[0], "a.png") == 0 && strcmp(d.names[3], "d.png") == 0, "names not sorted: %s %s", d.names[0], d.names[3]);
        CHECK(d.labels && d.labels[0] == 0 && d.labels[1] == 1 && d.labels[2] == 7 && d.labels[3] == 2, "folder labels wrong");
        CHECK(d.c == 3 && d.h == 6 && d.w == 6, "one RGB file makes the set RGB (c=%lld)", (long long)d.c);
        float *a;
        int c, h, w;
        td_path(path, sizeof path, dir, "a.png");
        CHECK(da_image_read(path, 3, &a, &c, &h, &w, ERR, sizeof ERR) == 0, "%s", ERR);
        tu_close("folder image a.png", d.images, a, 3 * 36, 0, 0);
        free(a);
    } else {
        CHECK(0, "folder gave %lld images", (long long)d.n);
    }
    da_dataset_free(&d);
    da_data_opts o = {.channels = 1, .classes = "7,0"};
    CHECK(da_dataset_load(dir, &o, &d, ERR, sizeof ERR) == 0 && d.n == 2 && d.c == 1, "%s", ERR);
    if (d.n == 2) CHECK(d.labels[0] == 1 && d.labels[1] == 0 && strcmp(d.names[1], "c.png") == 0, "folder classes");
    da_dataset_free(&d);

    /* labels.csv that does not match the files */
    td_write_text(dir, "labels.csv", "file,label\na.png,0\nb.png,1\nc.png,2\nd.png,3\nghost.png,4\n");
    expect_fail(dir, NULL, "ghost.png", "labels.csv names a missing file");
    td_write_text(dir, "labels.csv", "file,label\na.png,0\nb.png,1\nc.png,2\n");
    expect_fail(dir, NULL, "d.png", "an image without a label");
    td_write_text(dir, "labels.csv", "file,label\na.png,0\nb.png,cat\nc.png,2\nd.png,3\n");
    expect_fail(dir, NULL, "b.png", "a non-integer label names the file");
    expect_fail(dir, NULL, "cat", "a non-integer label shows the value");
    td_write_text(dir, "labels.csv", "file,label\na.png,0\nb.png,1.5\nc.png,2\nd.png,3\n");
    expect_fail(dir, NULL, "b.png", "a fractional label");
    td_write_text(dir, "labels.csv", "a.png,0\nb.png,1\nc.png,2\nd.png,3\n");
    expect_fail(dir, NULL, "file,label", "a missing header");
    td_write_text(dir, "labels.csv", "file,label\na.png,0\nb.png,1\nc.png,2\nd.png,3\na.png,1\n");
    expect_fail(dir, NULL, "twice", "a file labelled twice");
    td_write_text(dir, "labels.csv", "file,label\na.png,0\nb.png,1\nc.png,2\nd.png,-3\n");
    expect_fail(dir, NULL, "d.png", "a negative label");

    /* a corrupt image is named; different sizes need --size */
    td_write_text(dir, "labels.csv", "file,label\na.png,0\nb.png,1\nc.png,2\nd.png,3\ne.png,4\n");
    static const unsigned char junk[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0};
    td_write(dir, "e.png", junk, sizeof junk);
    expect_fail(dir, NULL, "e.png", "a corrupt PNG");
    o = (da_data_opts){.take = 2, .seed = 3, .classes = "0,1"};
    CHECK(da_dataset_load(dir, &o, &d, ERR, sizeof ERR) == 0 && d.n == 2, "a corrupt file that is not chosen is not read: %s", ERR);
    da_dataset_free(&d);
    write_image(dir, "e.png", 3, 9, 12, 4);
    expect_fail(dir, NULL, "--size", "mixed sizes without --size");
    o = (da_data_opts){.size = 8};
    CHECK(da_dataset_load(dir, &o, &d, ERR, sizeof ERR) == 0 && d.n == 5 && d.h == 8 && d.w == 8, "mixed sizes with --size: %s", ERR);
    da_dataset_free(&d);

    /* no labels.csv: unlabelled; empty folder: error */
    td_path(path, sizeof path, dir, "labels.csv");
    remove(path);
    o = (da_data_opts){.size = 8};
    CHECK(da_dataset_load(dir, &o, &d, ERR, sizeof ERR) == 0 && d.labels == NULL, "%s", ERR);
    da_dataset_free(&d);
    td_path(sub, sizeof sub, DIR_, "empty");
    mkdir(sub, 0755);
    expect_fail(sub, NULL, "no images", "an empty folder");
}

static void test_celeba(void) {
    char dir[4096], img[4096];
    td_path(dir, sizeof dir, DIR_, "celeba");
    mkdir(dir, 0755);
    td_path(img, sizeof img, dir, "img_align_celeba");
    mkdir(img, 0755);
    for (int i = 1; i <= 6; i++) {
        char name[32];
        snprintf(name, sizeof name, "%06d.jpg", i);
        write_image(img, name, 3, 10, 8, i); /* taller than wide, as CelebA */
    }
    td_write_text(dir, "list_attr_celeba.txt",
                  "6\nSmiling Male Young \n"
                  "000001.jpg -1  1  1\n000002.jpg  1 -1  1\n000003.jpg -1 -1 -1\n"
                  "000004.jpg  1  1 -1\n000005.jpg -1  1  1\n000006.jpg  1 -1 -1\n");
    td_write_text(dir, "list_eval_partition.txt",
                  "000001.jpg 0\n000002.jpg 0\n000003.jpg 0\n000004.jpg 1\n000005.jpg 2\n000006.jpg 2\n");
    char spec[4200];
    snprintf(spec, sizeof spec, "celeba:%s", dir);
    da_dataset d;
    da_data_opts o = {.attr = "Male", .split = "train", .size = 4};
    CHECK(da_dataset_load(spec, &o, &d, ERR, sizeof ERR) == 0, "%s", ERR);
    CHECK(d.n == 3 && d.c == 3 && d.h == 4 && d.w == 4, "celeba train shape %lld %lld %lld", (long long)d.n, (long long)d.c, (long long)d.h);
    if (d.n == 3) {
        CHECK(d.labels && d.labels[0] == 1 && d.labels[1] == 0 && d.labels[2] == 0, "Male labels of the train split");
        CHECK(strcmp(d.names[1], "000002.jpg") == 0 && d.source_index[2] == 2, "celeba names/indices");
    }
    da_dataset_free(&d);
    o = (da_data_opts){.attr = "smiling", .split = "test"};
    CHECK(da_dataset_load(spec, &o, &d, ERR, sizeof ERR) == 0 && d.n == 2 && d.h == 10 && d.w == 8, "%s", ERR);
    if (d.n == 2) CHECK(d.labels[0] == 0 && d.labels[1] == 1 && d.source_index[0] == 4, "Smiling labels of the test split");
    da_dataset_free(&d);
    o = (da_data_opts){.split = "valid"};
    CHECK(da_dataset_load(spec, &o, &d, ERR, sizeof ERR) == 0 && d.n == 1 && d.labels == NULL, "%s", ERR);
    da_dataset_free(&d);
    o = (da_data_opts){.attr = "Young", .classes = "1", .size = 4};
    CHECK(da_dataset_load(spec, &o, &d, ERR, sizeof ERR) == 0 && d.n == 3, "%s", ERR);
    da_dataset_free(&d);

    expect_fail(spec, &(da_data_opts){.attr = "Bald"}, "Smiling, Male, Young", "an unknown attribute lists the known ones");
    expect_fail(spec, &(da_data_opts){.split = "dev"}, "dev", "an unknown split");
    char path[4096];
    td_path(path, sizeof path, img, "000003.jpg");
    remove(path);
    expect_fail(spec, &(da_data_opts){.attr = "Male"}, "000003.jpg", "a missing image file");
    write_image(img, "000003.jpg", 3, 10, 8, 3);
    td_write_text(dir, "list_attr_celeba.txt", "6\nSmiling Male Young\n000001.jpg -1 1 1\n000002.jpg 1 -1 1\n"
                                               "000003.jpg -1 2 -1\n000004.jpg 1 1 -1\n000005.jpg -1 1 1\n000006.jpg 1 -1 -1\n");
    expect_fail(spec, &(da_data_opts){.attr = "Male"}, "000003.jpg", "a bad attribute value names the file");
    td_write_text(dir, "list_attr_celeba.txt", "7\nSmiling Male Young\n000001.jpg -1 1 1\n000002.jpg 1 -1 1\n");
    expect_fail(spec, &(da_data_opts){.attr = "Male"}, "list_attr_celeba.txt", "a truncated attribute list");
    td_write_text(dir, "list_attr_celeba.txt", "2\nSmiling Male Young\n000001.jpg -1 1 1\n000009.jpg 1 -1 1\n");
    expect_fail(spec, &(da_data_opts){.split = "train"}, "000009.jpg", "a file missing from the partition list");
    snprintf(spec, sizeof spec, "celeba:%s/nowhere", DIR_);
    expect_fail(spec, NULL, "img_align_celeba", "no CelebA folder");
}

static void test_fashion_mnist(void) {
    struct stat st;
    if (stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", &st) != 0 ||
        stat("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", &st) != 0) {
        printf("fashion-mnist part skipped: /usr/share/datasets/fashion-mnist is missing (apt-get install dataset-fashion-mnist)\n");
        return;
    }
    da_dataset d;
    CHECK(da_dataset_load("fashion-mnist:test", NULL, &d, ERR, sizeof ERR) == 0, "%s", ERR);
    CHECK(d.n == 10000 && d.c == 1 && d.h == 28 && d.w == 28 && d.labels, "fashion-mnist:test shape");
    if (d.n == 10000 && d.labels) {
        int64_t count[10] = {0};
        int bad = 0;
        for (int64_t i = 0; i < d.n; i++) {
            if (d.labels[i] < 0 || d.labels[i] > 9) bad = 1;
            else count[d.labels[i]]++;
        }
        for (int k = 0; k < 10; k++) bad |= count[k] != 1000;
        CHECK(!bad, "the test set has 1000 images of each of 10 classes");
        /* bright objects on a black background: the corners are black */
        double corner = 0;
        for (int64_t i = 0; i < d.n; i++) corner += d.images[i * 784];
        CHECK(corner / (double)d.n < -0.99, "corner pixels are not black (mean %g)", corner / (double)d.n);
    }
    da_dataset_free(&d);
    da_data_opts o = {.classes = "5,7", .take = 100, .seed = 1, .pad = 2};
    CHECK(da_dataset_load("fashion-mnist", &o, &d, ERR, sizeof ERR) == 0 && d.n == 100 && d.h == 32, "%s", ERR);
    int both = 0;
    for (int64_t i = 0; i < d.n; i++) both |= 1 << (int)d.labels[i];
    CHECK(both == 3 && d.source_index[99] < 60000, "sandal/sneaker draw from the train set");
    da_dataset_free(&d);
    expect_fail("fashion-mnist:valid", NULL, "fashion-mnist:valid", "unknown fashion-mnist part");
}

int main(void) {
    td_make(DIR_, sizeof DIR_, "dataset");
    test_resize_golden();
    test_idx();
    test_choice();
    test_pad_and_channels();
    test_safetensors();
    test_folder();
    test_celeba();
    test_fashion_mnist();
    td_remove(DIR_);
    return tu_finish("test_dataset");
}
