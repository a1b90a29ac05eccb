/* test_safetensors.c — the safetensors reader and writer: round trips, golden files from PyTorch
 * (F16/BF16/F64/I32/I64, "module." prefixes), every malformed-header case, truncation and atomic
 * writes that fail (disk full, target is a directory, read-only directory). */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "test_util.h"
#include "util/atomic.h"

static char ERR[1024];

/* A buffer: 8-byte little-endian header length, the JSON text, then data_len bytes 0..255. */
static unsigned char *mk(const char *json, size_t data_len, size_t *size) {
    size_t hl = strlen(json);
    *size = 8 + hl + data_len;
    unsigned char *b = malloc(*size);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, json, hl);
    for (size_t i = 0; i < data_len; i++) b[8 + hl + i] = (unsigned char)i;
    return b;
}

/* The header must be rejected with a message containing `needle`. */
static void expect_bad(const char *json, size_t data_len, const char *needle) {
    size_t size;
    unsigned char *b = mk(json, data_len, &size);
    st_file f;
    ERR[0] = 0;
    int rc = st_open_memory(b, size, &f, ERR, sizeof ERR);
    CHECK(rc == -1, "accepted bad header %s", json);
    CHECK(strstr(ERR, needle) != NULL, "header %s: message '%s' does not mention '%s'", json, ERR, needle);
    CHECK(f.n_tensors == 0 && f.tensors == NULL, "file not left empty for %s", json);
    st_close(&f);
    free(b);
}

static void expect_good(const char *json, size_t data_len, int n_tensors) {
    size_t size;
    unsigned char *b = mk(json, data_len, &size);
    st_file f;
    int rc = st_open_memory(b, size, &f, ERR, sizeof ERR);
    CHECK(rc == 0, "rejected good header %s: %s", json, ERR);
    if (rc == 0) {
        CHECK(f.n_tensors == n_tensors, "%s: %d tensors, expected %d", json, f.n_tensors, n_tensors);
        for (int i = 0; i < f.n_tensors; i++) {
            float *tmp = malloc(sizeof(float) * (size_t)(f.tensors[i].numel + 1));
            CHECK(st_read_f32(&f, &f.tensors[i], tmp, ERR, sizeof ERR) == 0, "read: %s", ERR);
            free(tmp);
        }
    }
    st_close(&f);
    free(b);
}

static void test_bad_headers(void) {
    /* shorter than the 8-byte length */
    for (size_t n = 0; n < 8; n++) {
        unsigned char b[8] = {2, 0, 0, 0, 0, 0, 0, 0};
        st_file f;
        CHECK(st_open_memory(b, n, &f, ERR, sizeof ERR) == -1, "accepted %zu-byte file", n);
        CHECK(strstr(ERR, "shorter") != NULL, "message: %s", ERR);
        st_close(&f);
    }
    /* header length beyond the file, and beyond 100 MB */
    {
        unsigned char b[16] = {200, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
        st_file f;
        CHECK(st_open_memory(b, 16, &f, ERR, sizeof ERR) == -1, "accepted long header length");
        CHECK(strstr(ERR, "exceeds file size") != NULL, "message: %s", ERR);
        unsigned char c[16] = {0, 0, 0, 0x10, 0, 0, 0, 0, '{', '}'};   /* 256 MB */
        CHECK(st_open_memory(c, 16, &f, ERR, sizeof ERR) == -1, "accepted 256 MB header");
        CHECK(strstr(ERR, "100 MB") != NULL, "message: %s", ERR);
        unsigned char d[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
        CHECK(st_open_memory(d, 16, &f, ERR, sizeof ERR) == -1, "accepted 2^64-1 header");
        CHECK(strstr(ERR, "100 MB") != NULL, "message: %s", ERR);
        st_close(&f);
    }
    /* JSON syntax and top-level type */
    expect_bad("{\"a\":", 0, "not valid JSON");
    expect_bad("{\"a\":{\"dtype\":\"F32\"", 0, "not valid JSON");
    expect_bad("\x01\x02\x03", 0, "not valid JSON");
    expect_bad("[1,2]   ", 0, "not a JSON object");
    expect_bad("\"str\"   ", 0, "not a JSON object");
    expect_bad("{}  x   ", 0, "trailing");
    /* a header of a million tiny values would make the JSON tree huge: refused before parsing */
    {
        size_t nv = 1100000;
        char *big = malloc(2 * nv + 16);
        strcpy(big, "{\"a\":[");
        size_t o = strlen(big);
        for (size_t i = 0; i < nv; i++) { big[o++] = '0'; big[o++] = ','; }
        strcpy(big + o - 1, "]}");
        expect_bad(big, 0, "too many JSON values");
        /* commas inside strings do not count */
        memset(big, ',', 2 * nv);
        memcpy(big, "{\"a\":\"", 6);
        strcpy(big + 2 * nv, "\"}");
        expect_bad(big, 0, "not a JSON object");   /* parses: a string entry, not a tensor */
        free(big);
    }
    /* entries */
    expect_bad("{\"a\":5}", 0, "not a JSON object");
    expect_bad("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "missing 'dtype'");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "missing 'shape'");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "missing 'data_offsets'");
    expect_bad("{\"a\":{\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "dtype must be a string");
    expect_bad("{\"a\":{\"dtype\":\"F8\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype 'F8'");
    expect_bad("{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}}", 4, "shape must be an array");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":{},\"data_offsets\":[0,4]}}", 4, "shape must be an array");
    /* shape dims */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "shape dim 0");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1.5],\"data_offsets\":[0,4]}}", 4, "shape dim 1");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4, "shape dim 0");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[null],\"data_offsets\":[0,4]}}", 4, "shape dim 0");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,4]}}", 4, "shape dim 0");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4, "overflow");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "too many dims");
    /* data_offsets */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 8, "not ascending");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 8, "non-negative");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0.5,4]}}", 8, "non-negative integers");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",4]}}", 8, "non-negative integers");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 8, "two integers");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8, "two integers");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":4}}", 8, "two integers");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "beyond the data section");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,18446744073709551615]}}", 8, "data_offsets");
    /* byte length vs shape x dtype */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "byte length 8");
    expect_bad("{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "byte length 4");
    expect_bad("{\"a\":{\"dtype\":\"F16\",\"shape\":[],\"data_offsets\":[0,1]}}", 8, "byte length 1");
    /* overlapping tensors and duplicate names */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 16, "overlap");
    expect_bad("{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16, "overlap");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
               "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[2,2]},"
               "\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}", 16, "overlap");
    expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
               "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4, "overlap");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "duplicate tensor name 'a'");
    /* metadata */
    expect_bad("{\"__metadata__\":[1]}", 0, "__metadata__");
    expect_bad("{\"__metadata__\":\"x\"}", 0, "__metadata__");
    expect_bad("{\"__metadata__\":{\"k\":1}}", 0, "__metadata__ value of 'k' is not a string");
    expect_bad("{\"__metadata__\":{\"k\":{}}}", 0, "not a string");
    expect_bad("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, "duplicate __metadata__ key");
    expect_bad("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate __metadata__");

    /* allowed: gaps in the data section, zero-size tensors sharing an offset, empty header */
    expect_good("{}      ", 0, 0);
    expect_good("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 32, 1);
    expect_good("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[2,0],\"data_offsets\":[4,4]},"
                "\"c\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4, 3);
    expect_good("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                "\"z\":{\"dtype\":\"F32\",\"shape\":[3,0],\"data_offsets\":[8,8]}}", 16, 2);
    expect_good("{\"a\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[0,2]},\"x\":{\"dtype\":\"I16\","
                "\"shape\":[1],\"data_offsets\":[2,4]},\"__metadata__\":{}}", 4, 2);

    /* I8/U8/BOOL/I16 conversions from known bytes (data bytes are 0,1,2,...) */
    {
        size_t size;
        unsigned char *b = mk("{\"u\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
                              "\"h\":{\"dtype\":\"I16\",\"shape\":[1],\"data_offsets\":[2,4]},"
                              "\"i\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[4,6]},"
                              "\"b\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[6,8]}}", 8, &size);
        b[size - 4] = 0xff;   /* i[0] = -1 */
        b[size - 2] = 0;      /* b = {0, 7} */
        st_file f;
        CHECK(st_open_memory(b, size, &f, ERR, sizeof ERR) == 0, "%s", ERR);
        int64_t iv[2];
        float fv[2];
        CHECK(st_read_i64(&f, st_find(&f, "u"), iv, ERR, sizeof ERR) == 0 && iv[0] == 0 && iv[1] == 1, "U8");
        CHECK(st_read_i64(&f, st_find(&f, "h"), iv, ERR, sizeof ERR) == 0 && iv[0] == 2 + 256 * 3, "I16");
        CHECK(st_read_i64(&f, st_find(&f, "i"), iv, ERR, sizeof ERR) == 0 && iv[0] == -1 && iv[1] == 5, "I8");
        CHECK(st_read_i64(&f, st_find(&f, "b"), iv, ERR, sizeof ERR) == 0 && iv[0] == 0 && iv[1] == 1, "BOOL");
        CHECK(st_read_f32(&f, st_find(&f, "i"), fv, ERR, sizeof ERR) == 0 && fv[0] == -1.0f && fv[1] == 5.0f, "I8 f32");
        CHECK(st_read_f32(&f, st_find(&f, "b"), fv, ERR, sizeof ERR) == 0 && fv[0] == 0.0f && fv[1] == 1.0f, "BOOL f32");
        st_close(&f);
        free(b);
    }
}

static void test_round_trip(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/rt.safetensors", dir);
    float a[6] = {1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 1e-30f};
    int64_t ids[4] = {0, -1, INT64_MAX, INT64_MIN};
    float s0 = 7.0f;
    st_writer *w = st_writer_new();
    st_writer_add_f32(w, "layer.weight", 2, (const int64_t[]){2, 3}, a);
    st_writer_add_i64(w, "ids", 1, (const int64_t[]){4}, ids);
    st_writer_add_f32(w, "scalar", 0, NULL, &s0);
    st_writer_add_f32(w, "empty", 2, (const int64_t[]){0, 5}, NULL);
    st_writer_add_f32(w, "quote\"and\\back\nslash", 1, (const int64_t[]){1}, &s0);
    st_writer_set_meta(w, "format", "pt");
    st_writer_set_meta(w, "weird", "a \"quoted\"\tvalue\\ with \xc3\xa9 and\nnewline");
    st_writer_set_meta(w, "format", "diffadapt");   /* replaces */
    CHECK(st_writer_save(w, path, ERR, sizeof ERR) == 0, "save: %s", ERR);
    st_writer_free(w);

    st_file f;
    CHECK(st_open(path, &f, ERR, sizeof ERR) == 0, "open: %s", ERR);
    CHECK(f.mapped, "a regular file should be memory-mapped");
    CHECK(f.n_tensors == 5, "n_tensors %d", f.n_tensors);
    if (f.n_tensors == 5) {
        CHECK(!strcmp(f.tensors[0].name, "layer.weight") && !strcmp(f.tensors[1].name, "ids") &&
              !strcmp(f.tensors[4].name, "quote\"and\\back\nslash"), "order/names");
        CHECK(f.tensors[0].begin == 0, "first tensor starts at 0");
    }
    /* header padded to a multiple of 8 with spaces */
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | ((const unsigned char *)f.map)[i];
    CHECK(hl % 8 == 0, "header length %llu not a multiple of 8", (unsigned long long)hl);
    CHECK(((const char *)f.map)[8 + hl - 1] == ' ' || ((const char *)f.map)[8 + hl - 1] == '}', "padding");
    CHECK(f.data_size == 6 * 4 + 4 * 8 + 4 + 4, "data size %zu", f.data_size);

    const st_tensor_info *t = st_find(&f, "layer.weight");
    CHECK(t && t->dtype == ST_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && t->numel == 6, "weight info");
    float got[6] = {0};
    if (t) {
        CHECK(st_read_f32(&f, t, got, ERR, sizeof ERR) == 0, "%s", ERR);
        CHECK(!memcmp(got, a, sizeof a), "F32 values differ after round trip");
    }
    t = st_find(&f, "ids");
    int64_t gi[4] = {0};
    CHECK(t && t->dtype == ST_I64 && t->numel == 4, "ids info");
    if (t) {
        CHECK(st_read_i64(&f, t, gi, ERR, sizeof ERR) == 0 && !memcmp(gi, ids, sizeof ids), "I64 values");
        float fi[4];
        CHECK(st_read_f32(&f, t, fi, ERR, sizeof ERR) == 0 && fi[1] == -1.0f, "I64 as f32");
    }
    t = st_find(&f, "layer.weight");
    CHECK(t && st_read_i64(&f, t, gi, ERR, sizeof ERR) == -1 && strstr(ERR, "F32"), "F32 read as int must fail: %s", ERR);
    t = st_find(&f, "scalar");
    CHECK(t && t->ndim == 0 && t->numel == 1, "0-d tensor");
    float sv = 0;
    CHECK(t && st_read_f32(&f, t, &sv, ERR, sizeof ERR) == 0 && sv == 7.0f, "0-d value");
    t = st_find(&f, "empty");
    CHECK(t && t->numel == 0 && t->ndim == 2 && t->shape[1] == 5, "empty tensor");
    CHECK(st_find(&f, "nope") == NULL, "absent name found");
    CHECK(st_find(&f, "weight") == NULL, "suffix match is not a match");
    const char *m = st_meta_get(&f, "format");
    CHECK(m && !strcmp(m, "diffadapt"), "meta format = %s", m ? m : "(null)");
    m = st_meta_get(&f, "weird");
    CHECK(m && !strcmp(m, "a \"quoted\"\tvalue\\ with \xc3\xa9 and\nnewline"), "meta escaping: %s", m ? m : "(null)");
    CHECK(f.n_meta == 2, "n_meta %d", f.n_meta);
    CHECK(st_meta_get(&f, "absent") == NULL, "absent meta");

    /* every strict prefix of the file must be rejected cleanly (the last tensor ends at EOF) */
    size_t full = f.map_size;
    unsigned char *copy = malloc(full);
    memcpy(copy, f.map, full);
    st_close(&f);
    int accepted_prefix = 0;
    for (size_t n = 0; n < full; n++) {
        unsigned char *p = malloc(n ? n : 1);   /* exact-size buffer so ASan sees over-reads */
        memcpy(p, copy, n);
        st_file g;
        ERR[0] = 0;
        if (st_open_memory(p, n, &g, ERR, sizeof ERR) == 0) accepted_prefix++;
        else if (!ERR[0]) accepted_prefix += 1000;
        st_close(&g);
        free(p);
    }
    CHECK(accepted_prefix == 0, "%d truncated prefixes accepted (or rejected without message)", accepted_prefix);
    /* trailing bytes after the last tensor are allowed */
    unsigned char *longer = malloc(full + 5);
    memcpy(longer, copy, full);
    memset(longer + full, 0xab, 5);
    CHECK(st_open_memory(longer, full + 5, &f, ERR, sizeof ERR) == 0, "trailing bytes: %s", ERR);
    st_close(&f);
    free(longer);
    free(copy);

    /* writer errors are reported by save, and nothing is written */
    char bad[512];
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
    w = st_writer_new();
    st_writer_add_f32(w, "x", 1, (const int64_t[]){1}, &s0);
    st_writer_add_f32(w, "x", 1, (const int64_t[]){1}, &s0);
    CHECK(st_writer_save(w, bad, ERR, sizeof ERR) == -1 && strstr(ERR, "duplicate"), "duplicate: %s", ERR);
    st_writer_free(w);
    w = st_writer_new();
    st_writer_add_f32(w, "__metadata__", 1, (const int64_t[]){1}, &s0);
    CHECK(st_writer_save(w, bad, ERR, sizeof ERR) == -1 && strstr(ERR, "reserved"), "reserved: %s", ERR);
    st_writer_free(w);
    CHECK(access(bad, F_OK) != 0, "failed save created the file");
}

static void test_golden(void) {
    st_file f;
    if (st_open("golden/safetensors_dtypes.safetensors", &f, ERR, sizeof ERR)) {
        CHECK(0, "golden file: %s", ERR);
        return;
    }
    const char *pairs[][2] = {{"f16", "f16_as_f32"}, {"bf16", "bf16_as_f32"}, {"f64", "f64_as_f32"},
                              {"f16_special", "f16_special_as_f32"}, {"i32", "i32_as_i64"}};
    for (int k = 0; k < 5; k++) {
        const st_tensor_info *a = st_find(&f, pairs[k][0]), *b = st_find(&f, pairs[k][1]);
        CHECK(a && b && a->numel == b->numel && a->ndim == b->ndim, "golden %s", pairs[k][0]);
        if (!a || !b || a->numel != b->numel) continue;
        float *x = malloc(sizeof(float) * (size_t)a->numel), *y = malloc(sizeof(float) * (size_t)a->numel);
        CHECK(st_read_f32(&f, a, x, ERR, sizeof ERR) == 0, "%s", ERR);
        CHECK(st_read_f32(&f, b, y, ERR, sizeof ERR) == 0, "%s", ERR);
        tu_close(pairs[k][0], x, y, (long)a->numel, 0, 0);   /* conversions are exact */
        free(x);
        free(y);
    }
    const st_tensor_info *t = st_find(&f, "f16");
    CHECK(t && t->dtype == ST_F16 && t->shape[0] == 3 && t->shape[1] == 5, "f16 info");
    CHECK((t = st_find(&f, "bf16")) && t->dtype == ST_BF16, "bf16 dtype");
    CHECK((t = st_find(&f, "f64")) && t->dtype == ST_F64, "f64 dtype");
    /* signed zero survives F16 conversion */
    t = st_find(&f, "f16_special");
    float sp[8];
    if (t && st_read_f32(&f, t, sp, ERR, sizeof ERR) == 0) CHECK(signbit(sp[5]) && sp[5] == 0.0f, "-0");
    const char *infnan[2] = {"f16_inf_nan", "bf16_inf_nan"};
    for (int k = 0; k < 2; k++) {
        float v[3] = {0};
        t = st_find(&f, infnan[k]);
        CHECK(t && st_read_f32(&f, t, v, ERR, sizeof ERR) == 0, "%s", infnan[k]);
        CHECK(isinf(v[0]) && v[0] > 0 && isinf(v[1]) && v[1] < 0 && isnan(v[2]), "%s: %g %g %g", infnan[k], v[0], v[1], v[2]);
    }
    /* integers, read both ways */
    t = st_find(&f, "i32");
    const st_tensor_info *r = st_find(&f, "i32_as_i64");
    int64_t a6[6], b6[6];
    CHECK(t && r && t->dtype == ST_I32 && r->dtype == ST_I64, "i32 dtypes");
    if (t && r) {
        CHECK(st_read_i64(&f, t, a6, ERR, sizeof ERR) == 0 && st_read_i64(&f, r, b6, ERR, sizeof ERR) == 0, "%s", ERR);
        CHECK(!memcmp(a6, b6, sizeof a6) && a6[0] == INT32_MIN && a6[5] == INT32_MAX, "I32 -> I64");
    }
    t = st_find(&f, "i64");
    int64_t i5[5];
    CHECK(t && st_read_i64(&f, t, i5, ERR, sizeof ERR) == 0 && i5[0] == -((int64_t)1 << 62) && i5[4] == ((int64_t)1 << 40), "I64");
    t = st_find(&f, "scalar");
    float s = 0;
    CHECK(t && t->ndim == 0 && st_read_f32(&f, t, &s, ERR, sizeof ERR) == 0 && s == 3.25f, "0-d");
    t = st_find(&f, "empty");
    CHECK(t && t->numel == 0 && t->ndim == 3, "empty");
    CHECK(st_meta_get(&f, "format") && !strcmp(st_meta_get(&f, "format"), "pt"), "meta");
    float wref[12], bref[3];
    const st_tensor_info *wr = st_find(&f, "module_weight_ref"), *br = st_find(&f, "module_bias_ref");
    CHECK(wr && br && st_read_f32(&f, wr, wref, ERR, sizeof ERR) == 0 && st_read_f32(&f, br, bref, ERR, sizeof ERR) == 0, "refs");
    st_close(&f);

    /* DataParallel names: "module.weight" is found as "weight" */
    if (st_open("golden/safetensors_module.safetensors", &f, ERR, sizeof ERR)) {
        CHECK(0, "golden module file: %s", ERR);
        return;
    }
    const st_tensor_info *w = st_find(&f, "weight"), *b = st_find(&f, "bias"), *p = st_find(&f, "position_ids");
    CHECK(w && !strcmp(w->name, "module.weight") && w->ndim == 2 && w->shape[0] == 3 && w->shape[1] == 4, "module.weight");
    CHECK(st_find(&f, "module.weight") == w, "exact name still works");
    float wv[12], bv[3];
    if (w && b) {
        CHECK(st_read_f32(&f, w, wv, ERR, sizeof ERR) == 0 && st_read_f32(&f, b, bv, ERR, sizeof ERR) == 0, "%s", ERR);
        tu_close("module.weight", wv, wref, 12, 0, 0);
        tu_close("module.bias", bv, bref, 3, 0, 0);
    }
    int64_t pid[6];
    CHECK(p && p->dtype == ST_I64 && st_read_i64(&f, p, pid, ERR, sizeof ERR) == 0 && pid[0] == 0 && pid[5] == 5,
          "position_ids (unaligned I64)");
    st_close(&f);
}

static int read_first_f32(const char *path, float *v) {
    st_file f;
    if (st_open(path, &f, ERR, sizeof ERR)) return -1;
    int rc = f.n_tensors > 0 ? st_read_f32(&f, &f.tensors[0], v, ERR, sizeof ERR) : -1;
    st_close(&f);
    return rc;
}

/* Files in dir named like our temporaries (util/atomic.h). */
static int count_temporaries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += da_tmp_parse(e->d_name, NULL);
    if (d) closedir(d);
    return n;
}

static void test_open_errors_and_atomic(const char *dir) {
    char path[512], tmp[600];
    st_file f;
    /* st_open errors */
    snprintf(path, sizeof path, "%s/missing.safetensors", dir);
    CHECK(st_open(path, &f, ERR, sizeof ERR) == -1 && strstr(ERR, "cannot open") && strstr(ERR, path), "missing: %s", ERR);
    st_close(&f);
    CHECK(st_open(dir, &f, ERR, sizeof ERR) == -1 && strstr(ERR, "directory"), "directory: %s", ERR);
    st_close(&f);
    snprintf(path, sizeof path, "%s/empty.safetensors", dir);
    FILE *fp = fopen(path, "wb");
    fclose(fp);
    CHECK(st_open(path, &f, ERR, sizeof ERR) == -1 && strstr(ERR, "shorter"), "empty: %s", ERR);
    st_close(&f);
    fp = fopen(path, "wb");
    fputs("\x10\0\0\0\0\0\0\0{\"a\":1}        ", fp);
    fclose(fp);
    CHECK(st_open(path, &f, ERR, sizeof ERR) == -1 && strstr(ERR, path), "file errors name the path: %s", ERR);
    st_close(&f);

    /* a good file, then failing saves over it must leave it untouched */
    snprintf(path, sizeof path, "%s/keep.safetensors", dir);
    float old = 1.0f, neu = 2.0f, v = 0;
    st_writer *w = st_writer_new();
    st_writer_add_f32(w, "v", 1, (const int64_t[]){1}, &old);
    CHECK(st_writer_save(w, path, ERR, sizeof ERR) == 0, "%s", ERR);
    st_writer_free(w);

    /* disk full: a child process whose files may not grow beyond 16 bytes (RLIMIT_FSIZE; the
     * temporary name is unpredictable, so a link to /dev/full can no longer be planted there) */
    pid_t full = fork();
    if (full == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {16, 16};
        if (setrlimit(RLIMIT_FSIZE, &rl)) _exit(3);
        w = st_writer_new();
        st_writer_add_f32(w, "v", 1, (const int64_t[]){1}, &neu);
        int rc = st_writer_save(w, path, ERR, sizeof ERR);
        st_writer_free(w);
        if (rc != -1) _exit(1);
        if (!strstr(ERR, strerror(EFBIG))) { fprintf(stderr, "disk-full message: %s\n", ERR); _exit(2); }
        _exit(0);
    }
    int fstatus = -1;
    waitpid(full, &fstatus, 0);
    CHECK(WIFEXITED(fstatus) && WEXITSTATUS(fstatus) == 0, "save to a full disk: child status %d", fstatus);
    CHECK(count_temporaries(dir) == 0, "temporary file left behind");
    CHECK(read_first_f32(path, &v) == 0 && v == 1.0f, "old file damaged by failed save (%g)", v);

    /* the target is a directory: rename fails, temp file removed */
    char sub[512];
    snprintf(sub, sizeof sub, "%s/adir", dir);
    mkdir(sub, 0755);
    w = st_writer_new();
    st_writer_add_f32(w, "v", 1, (const int64_t[]){1}, &neu);
    CHECK(st_writer_save(w, sub, ERR, sizeof ERR) == -1, "save over a directory succeeded");
    CHECK(ERR[0] != 0, "no message");
    CHECK(count_temporaries(dir) == 0, "temporary file left behind after failed rename");
    /* a directory that does not exist */
    snprintf(tmp, sizeof tmp, "%s/no/such/dir/x.safetensors", dir);
    CHECK(st_writer_save(w, tmp, ERR, sizeof ERR) == -1 && strstr(ERR, "No such file"), "missing dir: %s", ERR);
    st_writer_free(w);
    rmdir(sub);

    /* a read-only directory; root ignores permissions, so then a child process drops to
     * the "nobody" user first */
    chmod(dir, 0555);
    pid_t child = fork();
    if (child == 0) {
        if (geteuid() == 0 && (setgid(65534) || setuid(65534))) _exit(3);
        w = st_writer_new();
        st_writer_add_f32(w, "v", 1, (const int64_t[]){1}, &neu);
        int rc = st_writer_save(w, path, ERR, sizeof ERR);
        st_writer_free(w);
        if (rc == 0) _exit(1);
        _exit(strstr(ERR, "Permission denied") && strstr(ERR, "cannot create") ? 0 : 2);
    }
    int status = -1;
    waitpid(child, &status, 0);
    chmod(dir, 0755);
    CHECK(child > 0 && WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 3),
          "save into a read-only directory: child status %d", status);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 3) printf("note: cannot drop privileges; read-only case not run\n");
    CHECK(read_first_f32(path, &v) == 0 && v == 1.0f, "old file damaged by failed save");

    /* and a successful save replaces it */
    w = st_writer_new();
    st_writer_add_f32(w, "v", 1, (const int64_t[]){1}, &neu);
    CHECK(st_writer_save(w, path, ERR, sizeof ERR) == 0, "%s", ERR);
    st_writer_free(w);
    CHECK(read_first_f32(path, &v) == 0 && v == 2.0f, "replacement not visible");
    unlink(path);
    snprintf(path, sizeof path, "%s/empty.safetensors", dir);
    unlink(path);
}

/* Random byte edits of a valid file (mostly in the header): each mutant must be rejected with a
 * message or open so that every tensor converts; a small in-suite complement to the fuzzer. */
static void test_mutations(void) {
    FILE *fp = fopen("golden/safetensors_module.safetensors", "rb");
    CHECK(fp != NULL, "golden module file");
    if (!fp) return;
    unsigned char orig[4096];
    size_t n = fread(orig, 1, sizeof orig, fp);
    fclose(fp);
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    int opened = 0, rejected = 0, silent = 0, read_fail = 0;
    for (int it = 0; it < 3000; it++) {
        size_t len = n;
        unsigned char *b = malloc(n + 16);
        memcpy(b, orig, n);
        int edits = 1 + it % 4;
        for (int e = 0; e < edits; e++) {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            size_t pos = (size_t)(s >> 32) % (it % 3 ? 260 : n);   /* header mostly */
            static const char pick[] = "{}[]\":,0123456789-.e ";
            b[pos] = (s & 1) ? (unsigned char)(s >> 8) : (unsigned char)pick[(s >> 8) % (sizeof pick - 1)];
        }
        if (it % 7 == 0) len = (size_t)(s >> 40) % (n + 16);   /* truncated or padded */
        unsigned char *exact = malloc(len ? len : 1);
        memcpy(exact, b, len < n ? len : n);
        if (len > n) memset(exact + n, 0, len - n);
        st_file f;
        ERR[0] = 0;
        if (st_open_memory(exact, len, &f, ERR, sizeof ERR) == 0) {
            opened++;
            for (int i = 0; i < f.n_tensors; i++) {
                float *x = malloc(sizeof(float) * (size_t)(f.tensors[i].numel + 1));
                if (st_read_f32(&f, &f.tensors[i], x, ERR, sizeof ERR)) read_fail++;
                free(x);
            }
        } else if (ERR[0]) {
            rejected++;
        } else {
            silent++;
        }
        st_close(&f);
        free(exact);
        free(b);
    }
    CHECK(silent == 0 && read_fail == 0, "%d silent rejections, %d failed reads", silent, read_fail);
    CHECK(opened > 0 && rejected > 0, "mutations: %d opened, %d rejected", opened, rejected);
}

int main(void) {
    char dir[] = "/tmp/da_test_st_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_bad_headers();
    test_round_trip(dir);
    test_golden();
    test_open_errors_and_atomic(dir);
    test_mutations();
    char p[600];
    snprintf(p, sizeof p, "%s/rt.safetensors", dir);
    unlink(p);
    rmdir(dir);
    return tu_finish("test_safetensors");
}
