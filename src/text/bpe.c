/* bpe.c — the CLIP byte-pair tokenizer (see bpe.h): vocabulary loading, the reference text
 * cleaning and pre-split over Unicode classes, and the rank-ordered merge loop with a cache. */
#include "text/bpe.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "text/unicode_tables.h"
#include "util/errf.h"
#include "util/xalloc.h"

/* where an allocation failed, for da_xmalloc's message */
#define OOM "in the tokenizer"

#define CACHE_MAX_WORDS 16384    /* the word cache is emptied when it grows past this */

/* ---- small containers ------------------------------------------------------------------- */

static char *xstrndup(const char *s, size_t n) {
    char *d = da_xmalloc(n + 1, OOM);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull; x ^= x >> 33;
    return x;
}

/* String -> int map, open addressing; keys are owned by the map. */
typedef struct {
    char **keys;
    size_t *klen;
    int64_t *vals;
    size_t cap, n;
} strmap;

static void strmap_init(strmap *m, size_t cap) {
    m->cap = 16;
    while (m->cap < cap * 2) m->cap *= 2;
    m->keys = da_xcalloc(m->cap, sizeof *m->keys, OOM);
    m->klen = da_xcalloc(m->cap, sizeof *m->klen, OOM);
    m->vals = da_xcalloc(m->cap, sizeof *m->vals, OOM);
    m->n = 0;
}

static void strmap_free(strmap *m) {
    if (!m->keys) return;
    for (size_t i = 0; i < m->cap; i++) free(m->keys[i]);
    free(m->keys); free(m->klen); free(m->vals);
    memset(m, 0, sizeof *m);
}

static size_t strmap_slot(const strmap *m, const char *k, size_t n) {
    size_t i = (size_t)hash_bytes(k, n) & (m->cap - 1);
    while (m->keys[i] && !(m->klen[i] == n && !memcmp(m->keys[i], k, n))) i = (i + 1) & (m->cap - 1);
    return i;
}

static void strmap_put(strmap *m, const char *k, size_t n, int64_t v) {
    if ((m->n + 1) * 2 > m->cap) {
        strmap old = *m;
        strmap_init(m, old.cap);
        for (size_t i = 0; i < old.cap; i++)
            if (old.keys[i]) {
                size_t s = strmap_slot(m, old.keys[i], old.klen[i]);
                m->keys[s] = old.keys[i]; m->klen[s] = old.klen[i]; m->vals[s] = old.vals[i];
                m->n++;
            }
        free(old.keys); free(old.klen); free(old.vals);
    }
    size_t s = strmap_slot(m, k, n);
    if (!m->keys[s]) { m->keys[s] = xstrndup(k, n); m->klen[s] = n; m->n++; }
    m->vals[s] = v;   /* a later duplicate wins, as in a Python dict built from a list */
}

static bool strmap_get(const strmap *m, const char *k, size_t n, int64_t *v) {
    size_t s = strmap_slot(m, k, n);
    if (!m->keys[s]) return false;
    *v = m->vals[s];
    return true;
}

/* (left id, right id) -> (rank, merged id). */
typedef struct {
    uint64_t *keys;
    int32_t *rank, *merged;
    size_t cap;
} pairmap;

static uint64_t pair_key(int64_t a, int64_t b) { return ((uint64_t)(a + 1) << 32) | (uint64_t)(b + 1); }

static void pairmap_init(pairmap *m, size_t n) {
    m->cap = 16;
    while (m->cap < n * 2) m->cap *= 2;
    m->keys = da_xcalloc(m->cap, sizeof *m->keys, OOM);
    m->rank = da_xcalloc(m->cap, sizeof *m->rank, OOM);
    m->merged = da_xcalloc(m->cap, sizeof *m->merged, OOM);
}

static size_t pairmap_slot(const pairmap *m, uint64_t k) {
    size_t i = (size_t)hash_u64(k) & (m->cap - 1);
    while (m->keys[i] && m->keys[i] != k) i = (i + 1) & (m->cap - 1);
    return i;
}

/* ---- the tokenizer ---------------------------------------------------------------------- */

struct da_bpe {
    char **tok;                /* (vocab) id -> token string (UTF-8 of byte-unicode chars), or NULL */
    int vocab, tok_cap;
    int n_merges;
    strmap encoder;            /* token string -> id */
    pairmap ranks;
    int64_t byte_id[256];      /* id of the one-byte token, without and with </w> */
    int64_t byte_eow_id[256];
    int64_t sot, eot;
    strmap cache;              /* word bytes -> offset into cache_ids; ids stored as count, ids... */
    int64_t *cache_ids;
    size_t cache_len, cache_cap;
};

/* GPT-2/CLIP byte-to-unicode table: printable Latin-1 bytes map to themselves, the others to
 * U+0100 onwards in byte order; the base vocabulary lists them printable ones first. */
static void byte_unicode(uint32_t b2u[256], int order[256]) {
    int n = 0, extra = 0;
    bool printable[256] = {false};
    for (int b = '!'; b <= '~'; b++) printable[b] = true;
    for (int b = 0xA1; b <= 0xAC; b++) printable[b] = true;
    for (int b = 0xAE; b <= 0xFF; b++) printable[b] = true;
    for (int b = 0; b < 256; b++)
        if (printable[b]) { b2u[b] = (uint32_t)b; order[n++] = b; }
    for (int b = 0; b < 256; b++)
        if (!printable[b]) { b2u[b] = 256u + (uint32_t)extra++; order[n++] = b; }
}

static int utf8_put(uint32_t c, char *out) {
    if (c < 0x80) { out[0] = (char)c; return 1; }
    if (c < 0x800) { out[0] = (char)(0xC0 | (c >> 6)); out[1] = (char)(0x80 | (c & 0x3F)); return 2; }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | (c >> 12)); out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (c >> 18)); out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3F)); out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* Decodes one UTF-8 sequence at s[0..n); invalid or truncated input gives U+FFFD for one byte. */
static uint32_t utf8_get(const unsigned char *s, size_t n, size_t *used) {
    unsigned char c = s[0];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    *used = 1;
    if (len == 1) return c;
    if (len == 0 || (size_t)len > n) return 0xFFFD;
    uint32_t cp = c & (0x7F >> len);
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0xFFFD;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0xFFFD;
    *used = (size_t)len;
    return cp;
}

static da_bpe *bpe_new(void) {
    da_bpe *b = da_xcalloc(1, sizeof *b, OOM);
    strmap_init(&b->encoder, 65536);
    strmap_init(&b->cache, 1024);
    return b;
}

void da_bpe_free(da_bpe *b) {
    if (!b) return;
    for (int i = 0; i < b->vocab; i++) free(b->tok[i]);
    free(b->tok);
    strmap_free(&b->encoder);
    strmap_free(&b->cache);
    free(b->ranks.keys); free(b->ranks.rank); free(b->ranks.merged);
    free(b->cache_ids);
    free(b);
}

static void set_token(da_bpe *b, int64_t id, const char *s, size_t n) {
    if (id >= b->tok_cap) {   /* grow geometrically: ids mostly arrive one by one */
        int cap = b->tok_cap ? b->tok_cap : 1024;
        while (cap <= id) cap *= 2;
        b->tok = da_xrealloc(b->tok, sizeof(char *) * (size_t)cap, OOM);
        for (int i = b->tok_cap; i < cap; i++) b->tok[i] = NULL;
        b->tok_cap = cap;
    }
    if (id >= b->vocab) b->vocab = (int)id + 1;
    free(b->tok[id]);
    b->tok[id] = xstrndup(s, n);
}

/* A merge line "a b": the two token strings. Returns false when it is not two fields. */
static bool split_merge(const char *line, size_t n, const char **a, size_t *na, const char **bb, size_t *nb) {
    while (n && (line[n - 1] == '\r' || line[n - 1] == ' ')) n--;
    const char *sp = memchr(line, ' ', n);
    if (!sp || sp == line || (size_t)(sp - line) + 1 >= n || memchr(sp + 1, ' ', n - (size_t)(sp - line) - 1)) return false;
    *a = line; *na = (size_t)(sp - line);
    *bb = sp + 1; *nb = n - *na - 1;
    return true;
}

/* Fills byte ids and the pair table from the merges, once the encoder is complete. */
static int finish(da_bpe *b, const char *merges, size_t len, int skip_header, int max_merges,
                  const char *what, char *err, size_t errlen) {
    uint32_t b2u[256];
    int order[256];
    byte_unicode(b2u, order);
    for (int i = 0; i < 256; i++) {
        char s[8];
        int n = utf8_put(b2u[i], s);
        memcpy(s + n, "</w>", 4);
        if (!strmap_get(&b->encoder, s, (size_t)n, &b->byte_id[i]) ||
            !strmap_get(&b->encoder, s, (size_t)n + 4, &b->byte_eow_id[i])) {
            da_errf(err, errlen, "%s: the vocabulary lacks the token for byte 0x%02X; is this a CLIP vocabulary?", what, i);
            return -1;
        }
    }
    pairmap_init(&b->ranks, (size_t)(b->n_merges > 0 ? b->n_merges : 1));
    const char *p = merges, *end = merges + len;
    int line_no = 0, rank = 0;
    char *joined = NULL;
    size_t joined_cap = 0;
    while (p < end && rank < max_merges) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const char *line = p;
        p = nl ? nl + 1 : end;
        line_no++;
        if (line_no <= skip_header) continue;
        if (n == 0 || (n == 1 && line[0] == '\r')) continue;
        const char *a, *c;
        size_t na, nc;
        if (!split_merge(line, n, &a, &na, &c, &nc)) {
            da_errf(err, errlen, "%s: line %d is not a merge of two tokens (\"%.40s\")", what, line_no, line);
            free(joined);
            return -1;
        }
        int64_t ia, ic, im;
        if (na + nc + 1 > joined_cap) { joined_cap = (na + nc + 1) * 2; joined = da_xrealloc(joined, joined_cap, OOM); }
        memcpy(joined, a, na);
        memcpy(joined + na, c, nc);
        if (!strmap_get(&b->encoder, a, na, &ia) || !strmap_get(&b->encoder, c, nc, &ic) ||
            !strmap_get(&b->encoder, joined, na + nc, &im)) {
            da_errf(err, errlen, "%s: the merge on line %d (\"%.*s\") uses a token missing from the vocabulary",
                    what, line_no, (int)(n > 60 ? 60 : n), line);
            free(joined);
            return -1;
        }
        uint64_t k = pair_key(ia, ic);
        size_t s = pairmap_slot(&b->ranks, k);
        b->ranks.keys[s] = k;
        b->ranks.rank[s] = rank++;    /* a repeated pair takes its later rank, like a dict */
        b->ranks.merged[s] = (int32_t)im;
    }
    free(joined);
    b->n_merges = rank;
    return 0;
}

static int count_lines(const char *text, size_t len) {
    int n = 0;
    for (size_t i = 0; i < len; i++) n += text[i] == '\n';
    return n + 1;
}

da_bpe *da_bpe_from_openai(const char *text, size_t len, int max_merges, char *err, size_t errlen) {
    if (max_merges <= 0) max_merges = DA_CLIP_MERGES;
    da_bpe *b = bpe_new();
    uint32_t b2u[256];
    int order[256];
    byte_unicode(b2u, order);
    /* ids: 256 byte tokens in table order, the same with </w>, merges, then the two specials */
    for (int i = 0; i < 256; i++) {
        char s[8];
        int n = utf8_put(b2u[order[i]], s);
        set_token(b, i, s, (size_t)n);
        memcpy(s + n, "</w>", 4);
        set_token(b, 256 + i, s, (size_t)n + 4);
    }
    int64_t id = 512;
    int line_no = 0;
    size_t joined_cap = 64;
    char *joined = da_xmalloc(joined_cap, OOM);
    for (const char *p = text, *end = text + len; p < end && id - 512 < max_merges;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const char *line = p;
        p = nl ? nl + 1 : end;
        if (++line_no == 1 || n == 0 || (n == 1 && line[0] == '\r')) continue;
        const char *a, *c;
        size_t na, nc;
        if (!split_merge(line, n, &a, &na, &c, &nc)) {
            da_errf(err, errlen, "merges file: line %d is not a merge of two tokens (\"%.40s\")", line_no, line);
            free(joined);
            da_bpe_free(b);
            return NULL;
        }
        if (na + nc > joined_cap) { joined_cap = (na + nc) * 2; joined = da_xrealloc(joined, joined_cap, OOM); }
        memcpy(joined, a, na);
        memcpy(joined + na, c, nc);
        set_token(b, id++, joined, na + nc);
    }
    free(joined);
    b->n_merges = (int)(id - 512);
    set_token(b, id, "<|startoftext|>", 15);
    set_token(b, id + 1, "<|endoftext|>", 13);
    b->sot = id;
    b->eot = id + 1;
    for (int i = 0; i < b->vocab; i++) strmap_put(&b->encoder, b->tok[i], strlen(b->tok[i]), i);
    if (finish(b, text, len, 1, b->n_merges, "merges file", err, errlen)) { da_bpe_free(b); return NULL; }
    return b;
}

da_bpe *da_bpe_from_hf(const char *vocab_json, size_t vocab_len, const char *merges, size_t merges_len,
                       char *err, size_t errlen) {
    cJSON *root = cJSON_ParseWithLength(vocab_json, vocab_len);
    if (!root || !cJSON_IsObject(root)) {
        da_errf(err, errlen, "vocab.json: not a JSON object of token -> id");
        cJSON_Delete(root);
        return NULL;
    }
    da_bpe *b = bpe_new();
    for (cJSON *it = root->child; it; it = it->next) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > 1e7 || !it->string) {
            da_errf(err, errlen, "vocab.json: the entry \"%.40s\" has no valid id", it->string ? it->string : "?");
            cJSON_Delete(root);
            da_bpe_free(b);
            return NULL;
        }
        int64_t id = (int64_t)it->valuedouble;
        set_token(b, id, it->string, strlen(it->string));
        strmap_put(&b->encoder, it->string, strlen(it->string), id);
    }
    cJSON_Delete(root);
    if (!strmap_get(&b->encoder, "<|startoftext|>", 15, &b->sot) || !strmap_get(&b->encoder, "<|endoftext|>", 13, &b->eot)) {
        da_errf(err, errlen, "vocab.json: <|startoftext|> or <|endoftext|> is missing; is this a CLIP vocabulary?");
        da_bpe_free(b);
        return NULL;
    }
    int skip = merges_len >= 8 && !strncmp(merges, "#version", 8) ? 1 : 0;
    b->n_merges = count_lines(merges, merges_len);
    if (finish(b, merges, merges_len, skip, INT_MAX, "merges.txt", err, errlen)) { da_bpe_free(b); return NULL; }
    return b;
}

/* Reads a whole file, gunzipping when it is gzip (zlib reads plain files unchanged). */
static char *read_file(const char *path, size_t *len, char *err, size_t errlen) {
    gzFile f = gzopen(path, "rb");
    if (!f) { da_errf(err, errlen, "cannot open %s", path); return NULL; }
    size_t cap = 1 << 20, n = 0;
    char *buf = da_xmalloc(cap, OOM);
    for (;;) {
        if (cap - n < (1 << 16)) { cap *= 2; buf = da_xrealloc(buf, cap, OOM); }
        int got = gzread(f, buf + n, (unsigned)(cap - n - 1));
        if (got < 0) {
            int code;
            da_errf(err, errlen, "%s: read error (%s)", path, gzerror(f, &code));
            gzclose(f);
            free(buf);
            return NULL;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    gzclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

da_bpe *da_bpe_load(const char *path, char *err, size_t errlen) {
    struct stat st;
    if (stat(path, &st) != 0) {
        da_errf(err, errlen, "vocabulary %s does not exist (pass bpe_simple_vocab_16e6.txt.gz or a folder with vocab.json and merges.txt)", path);
        return NULL;
    }
    char dir[4096];
    bool hf = false;
    if (S_ISDIR(st.st_mode)) {
        snprintf(dir, sizeof dir, "%s", path);
        hf = true;
    } else if (ends_with(path, "vocab.json") || ends_with(path, "merges.txt")) {
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0; else snprintf(dir, sizeof dir, ".");
        hf = true;
    }
    if (!hf) {
        size_t len;
        char *text = read_file(path, &len, err, errlen);
        if (!text) return NULL;
        char sub[256];
        da_bpe *b = da_bpe_from_openai(text, len, 0, sub, sizeof sub);
        if (!b) da_errf(err, errlen, "%s: %s", path, sub);
        free(text);
        return b;
    }
    char vpath[4200], mpath[4200];
    snprintf(vpath, sizeof vpath, "%s/vocab.json", dir);
    snprintf(mpath, sizeof mpath, "%s/merges.txt", dir);
    size_t vlen, mlen;
    char *v = read_file(vpath, &vlen, err, errlen);
    if (!v) return NULL;
    char *m = read_file(mpath, &mlen, err, errlen);
    if (!m) { free(v); return NULL; }
    char sub[256];
    da_bpe *b = da_bpe_from_hf(v, vlen, m, mlen, sub, sizeof sub);
    if (!b) da_errf(err, errlen, "%s: %s", dir, sub);
    free(v);
    free(m);
    return b;
}

int da_bpe_vocab_size(const da_bpe *b) { return b->vocab; }
int da_bpe_n_merges(const da_bpe *b) { return b->n_merges; }
int64_t da_bpe_sot(const da_bpe *b) { return b->sot; }
int64_t da_bpe_eot(const da_bpe *b) { return b->eot; }
const char *da_bpe_token(const da_bpe *b, int64_t id) { return id >= 0 && id < b->vocab ? b->tok[id] : NULL; }

/* ---- text cleaning ---------------------------------------------------------------------- */

typedef struct {
    uint32_t *c;
    size_t n, cap;
} cps;

static void cps_push(cps *v, uint32_t c) {
    if (v->n == v->cap) { v->cap = v->cap ? v->cap * 2 : 64; v->c = da_xrealloc(v->c, v->cap * sizeof *v->c, OOM); }
    v->c[v->n++] = c;
}

static void cps_push_utf8(cps *v, const char *s) {
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t used;
        cps_push(v, utf8_get((const unsigned char *)s + i, n - i, &used));
        i += used;
    }
}

static bool ftfy_control(uint32_t c) {
    return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
           c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC) || (c >= 0x1D173 && c <= 0x1D17A) ||
           (c >= 0xE0000 && c <= 0xE007F);
}

/* One round of the parts of ftfy.fix_text that need no statistics: terminal escapes, C1
 * controls read as Windows-1252, Latin ligatures, character width, curly quotes, control
 * characters. */
static cps ftfy_lite(const cps *in) {
    cps out = {0};
    for (size_t i = 0; i < in->n; i++) {
        uint32_t c = in->c[i];
        if (c == 0x1B && i + 1 < in->n && in->c[i + 1] == '[') {   /* ESC [ digits/; letter */
            size_t j = i + 2;
            while (j < in->n && ((in->c[j] >= '0' && in->c[j] <= '9') || in->c[j] == ';')) j++;
            if (j < in->n && ((in->c[j] | 32) >= 'a' && (in->c[j] | 32) <= 'z')) { i = j; continue; }
        }
        if (c >= 0x80 && c <= 0x9F) c = (uint32_t)da_html_numeric(c);   /* the Windows-1252 reading */
        const char *lig = NULL;
        switch (c) {
        case 0x132: lig = "IJ"; break;
        case 0x133: lig = "ij"; break;
        case 0xFB00: lig = "ff"; break;
        case 0xFB01: lig = "fi"; break;
        case 0xFB02: lig = "fl"; break;
        case 0xFB03: lig = "ffi"; break;
        case 0xFB04: lig = "ffl"; break;
        case 0xFB05: lig = "\xC5\xBFt"; break;   /* long s + t */
        case 0xFB06: lig = "st"; break;
        default: break;
        }
        if (lig) { cps_push_utf8(&out, lig); continue; }
        uint32_t w[2];
        int nw = da_uni_width_fix(c, w);
        for (int k = 0; k < nw; k++) {
            uint32_t d = w[k];
            if (d >= 0x2018 && d <= 0x201B) d = '\'';
            else if (d >= 0x201C && d <= 0x201F) d = '"';
            if (!ftfy_control(d)) cps_push(&out, d);
        }
    }
    return out;
}

/* One pass of Python's html.unescape over code points. */
static cps html_unescape(const cps *in) {
    cps out = {0};
    const uint32_t *s = in->c;
    size_t n = in->n;
    for (size_t i = 0; i < n;) {
        if (s[i] != '&' || i + 1 >= n) { cps_push(&out, s[i++]); continue; }
        size_t j = i + 1;
        if (s[j] == '#') {
            bool hex = j + 1 < n && (s[j + 1] == 'x' || s[j + 1] == 'X');
            size_t k = j + 1 + (hex ? 1 : 0), d0 = k;
            uint64_t num = 0;
            for (; k < n; k++) {
                uint32_t c = s[k];
                int v = c >= '0' && c <= '9' ? (int)(c - '0')
                      : hex && (c | 32) >= 'a' && (c | 32) <= 'f' ? (int)((c | 32) - 'a' + 10) : -1;
                if (v < 0) break;
                num = num * (hex ? 16 : 10) + (uint64_t)v;
                if (num > 0x7FFFFFFF) num = 0x7FFFFFFF;   /* still "too large" */
            }
            if (k == d0) { cps_push(&out, s[i++]); continue; }   /* "&#" with no digits: kept */
            if (k < n && s[k] == ';') k++;
            int64_t r = da_html_numeric(num);
            if (r >= 0) cps_push(&out, (uint32_t)r);
            i = k;
            continue;
        }
        /* named: up to 32 characters other than \t \n \f space < & # ;, then an optional ';' */
        size_t k = j;
        while (k < n && k - j < 32 && s[k] != '\t' && s[k] != '\n' && s[k] != '\f' && s[k] != ' ' &&
               s[k] != '<' && s[k] != '&' && s[k] != '#' && s[k] != ';')
            k++;
        if (k == j) { cps_push(&out, s[i++]); continue; }
        bool semi = k < n && s[k] == ';';
        size_t name_end = k + (semi ? 1 : 0);
        /* one byte per character: entity names are ASCII, so 0xFF stands for any other */
        char name[40];
        size_t nl = 0;
        for (size_t q = j; q < name_end; q++) name[nl++] = s[q] < 0x80 ? (char)s[q] : (char)0xFF;
        const da_html_entity *e = da_html_find(name, nl);
        size_t used = nl;
        /* else the longest prefix that is an entity (legacy names without ';'), at least 2 long */
        for (size_t x = nl - 1; !e && x > 1; x--)
            if ((e = da_html_find(name, x))) used = x;
        if (!e) {
            cps_push(&out, '&');
            for (size_t q = j; q < name_end; q++) cps_push(&out, s[q]);
        } else {
            cps_push_utf8(&out, e->utf8);
            for (size_t q = j + used; q < name_end; q++) cps_push(&out, s[q]);
        }
        i = name_end;
    }
    return out;
}

/* Python's str.lower(), with its final-sigma rule and U+0130 -> "i" + U+0307. */
static cps py_lower(const cps *in) {
    cps out = {0};
    for (size_t i = 0; i < in->n; i++) {
        uint32_t c = in->c[i];
        if (c == 0x130) { cps_push(&out, 'i'); cps_push(&out, 0x307); continue; }
        if (c == 0x3A3) {
            size_t j = i;
            while (j > 0 && da_uni_is_case_ignorable(in->c[j - 1])) j--;
            bool final = j > 0 && da_uni_is_cased(in->c[j - 1]);
            if (final) {
                size_t k = i + 1;
                while (k < in->n && da_uni_is_case_ignorable(in->c[k])) k++;
                final = k == in->n || !da_uni_is_cased(in->c[k]);
            }
            cps_push(&out, final ? 0x3C2 : 0x3C3);
            continue;
        }
        cps_push(&out, da_uni_tolower(c));
    }
    return out;
}

static cps clean_cps(const char *text) {
    cps raw = {0};
    size_t n = strlen(text);
    for (size_t i = 0; i < n;) {
        size_t used;
        cps_push(&raw, utf8_get((const unsigned char *)text + i, n - i, &used));
        i += used;
    }
    /* ftfy first: it repeats its fixes until the text stops changing, unescaping HTML too when
     * the text holds no '<' (then it does not look like HTML source) */
    bool unescape = true;
    for (size_t i = 0; i < raw.n; i++)
        if (raw.c[i] == '<') unescape = false;
    cps a = raw;
    for (int round = 0; round < 16; round++) {
        cps u = a;
        if (unescape) u = html_unescape(&a);
        cps f = ftfy_lite(&u);
        if (u.c != a.c) free(u.c);
        bool same = f.n == a.n && (f.n == 0 || !memcmp(f.c, a.c, f.n * sizeof *f.c));
        free(a.c);
        a = f;
        if (same) break;
    }
    cps b = html_unescape(&a);
    free(a.c);
    cps c = html_unescape(&b);
    free(b.c);
    /* strip; runs of \s -> one space; strip */
    size_t lo = 0, hi = c.n;
    while (lo < hi && da_uni_is_pyspace(c.c[lo])) lo++;
    while (hi > lo && da_uni_is_pyspace(c.c[hi - 1])) hi--;
    cps d = {0};
    for (size_t i = lo; i < hi;) {
        if (da_uni_is_space(c.c[i])) {
            while (i < hi && da_uni_is_space(c.c[i])) i++;
            cps_push(&d, ' ');
        } else {
            cps_push(&d, c.c[i++]);
        }
    }
    free(c.c);
    lo = 0; hi = d.n;
    while (lo < hi && da_uni_is_pyspace(d.c[lo])) lo++;
    while (hi > lo && da_uni_is_pyspace(d.c[hi - 1])) hi--;
    cps e = {0};
    for (size_t i = lo; i < hi; i++) cps_push(&e, d.c[i]);
    free(d.c);
    cps f = py_lower(&e);
    free(e.c);
    return f;
}

char *da_bpe_clean(const char *text) {
    cps c = clean_cps(text);
    char *out = da_xmalloc(c.n * 4 + 1, OOM);
    size_t n = 0;
    for (size_t i = 0; i < c.n; i++) n += (size_t)utf8_put(c.c[i], out + n);
    out[n] = 0;
    free(c.c);
    return out;
}

/* ---- pre-split and merges --------------------------------------------------------------- */

static bool starts_with_ascii(const cps *t, size_t i, const char *lit) {
    for (size_t k = 0; lit[k]; k++)
        if (i + k >= t->n || t->c[i + k] != (uint32_t)(unsigned char)lit[k]) return false;
    return true;
}

/* Length of the pre-token at t[i] (t[i] is not white space): the alternatives of
 * <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+ in order. */
static size_t pretoken_len(const cps *t, size_t i) {
    if (starts_with_ascii(t, i, "<|startoftext|>")) return 15;
    if (starts_with_ascii(t, i, "<|endoftext|>")) return 13;
    uint32_t c = t->c[i];
    if (c == '\'' && i + 1 < t->n) {
        uint32_t d = t->c[i + 1];
        if (d == 0x17F) d = 's';   /* long s folds to s under the pattern's IGNORECASE */
        if (d == 's' || d == 't' || d == 'm' || d == 'd') return 2;
        uint32_t e = i + 2 < t->n ? t->c[i + 2] : 0;
        if ((d == 'r' && e == 'e') || (d == 'v' && e == 'e') || (d == 'l' && e == 'l')) return 3;
    }
    size_t j = i;
    if (da_uni_is_letter(c)) {
        while (j < t->n && da_uni_is_letter(t->c[j])) j++;
        return j - i;
    }
    if (da_uni_is_number(c)) return 1;
    while (j < t->n && !da_uni_is_space(t->c[j]) && !da_uni_is_letter(t->c[j]) && !da_uni_is_number(t->c[j])) j++;
    return j - i;
}

/* BPE of one word (its UTF-8 bytes); appends ids to *out. */
static void bpe_word(da_bpe *b, const char *w, size_t n, int64_t **out, int *nout, int *cap) {
    int64_t off;
    if (!strmap_get(&b->cache, w, n, &off)) {
        int64_t *sym = da_xmalloc(sizeof(int64_t) * n, OOM);
        for (size_t i = 0; i < n; i++) {
            unsigned char byte = (unsigned char)w[i];
            sym[i] = i + 1 == n ? b->byte_eow_id[byte] : b->byte_id[byte];
        }
        size_t len = n;
        while (len > 1) {
            int32_t best = INT32_MAX, merged = -1;
            int64_t first = -1, second = -1;
            for (size_t i = 0; i + 1 < len; i++) {
                uint64_t k = pair_key(sym[i], sym[i + 1]);
                size_t s = pairmap_slot(&b->ranks, k);
                if (b->ranks.keys[s] && b->ranks.rank[s] < best) {
                    best = b->ranks.rank[s];
                    merged = b->ranks.merged[s];
                    first = sym[i];
                    second = sym[i + 1];
                }
            }
            if (merged < 0) break;
            size_t j = 0;
            for (size_t i = 0; i < len;) {
                if (i + 1 < len && sym[i] == first && sym[i + 1] == second) { sym[j++] = merged; i += 2; }
                else sym[j++] = sym[i++];
            }
            len = j;
        }
        if (b->cache.n >= CACHE_MAX_WORDS) {
            strmap_free(&b->cache);
            strmap_init(&b->cache, 1024);
            b->cache_len = 0;
        }
        if (b->cache_len + len + 1 > b->cache_cap) {
            b->cache_cap = (b->cache_len + len + 1) * 2;
            b->cache_ids = da_xrealloc(b->cache_ids, b->cache_cap * sizeof(int64_t), OOM);
        }
        off = (int64_t)b->cache_len;
        b->cache_ids[b->cache_len++] = (int64_t)len;
        memcpy(b->cache_ids + b->cache_len, sym, len * sizeof(int64_t));
        b->cache_len += len;
        strmap_put(&b->cache, w, n, off);
        free(sym);
    }
    int64_t len = b->cache_ids[off];
    if (*nout + len > *cap) {
        *cap = (int)(*nout + len) * 2;
        *out = da_xrealloc(*out, sizeof(int64_t) * (size_t)*cap, OOM);
    }
    memcpy(*out + *nout, b->cache_ids + off + 1, (size_t)len * sizeof(int64_t));
    *nout += (int)len;
}

int da_bpe_encode_raw(da_bpe *b, const char *text, int64_t **ids) {
    cps t = clean_cps(text);
    int cap = 16, n = 0;
    int64_t *out = da_xmalloc(sizeof(int64_t) * (size_t)cap, OOM);
    char *word = da_xmalloc(t.n * 4 + 1, OOM);
    for (size_t i = 0; i < t.n;) {
        if (da_uni_is_space(t.c[i])) { i++; continue; }
        size_t len = pretoken_len(&t, i);
        size_t wn = 0;
        for (size_t k = i; k < i + len; k++) wn += (size_t)utf8_put(t.c[k], word + wn);
        int64_t special;
        if ((len == 15 || len == 13) && (word[0] == '<') && strmap_get(&b->encoder, word, wn, &special) &&
            (special == b->sot || special == b->eot)) {
            if (n + 1 > cap) { cap *= 2; out = da_xrealloc(out, sizeof(int64_t) * (size_t)cap, OOM); }
            out[n++] = special;
        } else {
            bpe_word(b, word, wn, &out, &n, &cap);
        }
        i += len;
    }
    free(word);
    free(t.c);
    *ids = out;
    return n;
}

int da_bpe_encode(da_bpe *b, const char *text, int context, bool truncate, int64_t *ids, char *err, size_t errlen) {
    int64_t *raw;
    int n = da_bpe_encode_raw(b, text, &raw);
    if (context < 2) context = 2;
    if (n + 2 > context && !truncate) {
        da_errf(err, errlen, "the text \"%.40s%s\" is %d tokens long with its start and end tokens; the model takes at most %d "
                "(shorten it, or pass --truncate to cut it to %d tokens)", text, strlen(text) > 40 ? "..." : "",
                n + 2, context, context);
        free(raw);
        return -1;
    }
    int keep = n + 2 > context ? context - 2 : n;
    ids[0] = b->sot;
    memcpy(ids + 1, raw, sizeof(int64_t) * (size_t)keep);
    ids[keep + 1] = b->eot;
    free(raw);
    return keep + 2;
}

char *da_bpe_decode(const da_bpe *b, const int64_t *ids, int n) {
    uint32_t b2u[256];
    int order[256];
    byte_unicode(b2u, order);
    int u2b[512];
    for (int i = 0; i < 512; i++) u2b[i] = -1;
    for (int i = 0; i < 256; i++) u2b[b2u[i]] = i;
    size_t total = 1;
    for (int i = 0; i < n; i++) {
        const char *t = da_bpe_token(b, ids[i]);
        total += t ? strlen(t) : 0;
    }
    char *bytes = da_xmalloc(total, OOM);
    size_t m = 0;
    for (int i = 0; i < n; i++) {
        const char *t = da_bpe_token(b, ids[i]);
        if (!t) continue;
        size_t tl = strlen(t);
        for (size_t k = 0; k < tl;) {
            size_t used;
            uint32_t c = utf8_get((const unsigned char *)t + k, tl - k, &used);
            k += used;
            if (c < 512 && u2b[c] >= 0) bytes[m++] = (char)u2b[c];
        }
    }
    bytes[m] = 0;
    /* "</w>" ends a word: read it as a space */
    char *out = da_xmalloc(m + 1, OOM);
    size_t o = 0;
    for (size_t i = 0; i < m;) {
        if (i + 4 <= m && !memcmp(bytes + i, "</w>", 4)) { out[o++] = ' '; i += 4; }
        else out[o++] = bytes[i++];
    }
    out[o] = 0;
    free(bytes);
    return out;
}
