/* test_bpe.c — the CLIP tokenizer: cleaning rules and a byte-level vocabulary (always), then,
 * with ../shared/clip present, the README encodings, 200 golden texts from an independent
 * Python reference (golden/gen_bpe.py), the Hugging Face file layout, truncation and the CLI. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "test_util.h"
#include "text/bpe.h"

static int same_ids(const int64_t *a, int na, const int64_t *b, int nb) {
    if (na != nb) return 0;
    for (int i = 0; i < na; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

static void print_ids(const char *what, const int64_t *a, int n) {
    fprintf(stderr, "  %s:", what);
    for (int i = 0; i < n; i++) fprintf(stderr, " %lld", (long long)a[i]);
    fprintf(stderr, "\n");
}

/* Encodes with start/end tokens and no length limit. Returns the count; *out malloc'ed. */
static int encode_full(da_bpe *b, const char *text, int64_t **out) {
    int64_t *raw;
    int n = da_bpe_encode_raw(b, text, &raw);
    int64_t *ids = malloc(sizeof(int64_t) * (size_t)(n + 2));
    ids[0] = da_bpe_sot(b);
    memcpy(ids + 1, raw, sizeof(int64_t) * (size_t)n);
    ids[n + 1] = da_bpe_eot(b);
    free(raw);
    *out = ids;
    return n + 2;
}

static void check_encodes_alike(da_bpe *b, const char *x, const char *y) {
    int64_t *a, *c;
    int na = encode_full(b, x, &a), nc = encode_full(b, y, &c);
    CHECK(same_ids(a, na, c, nc), "\"%s\" and \"%s\" should give the same ids", x, y);
    free(a);
    free(c);
}

static void check_clean(const char *in, const char *want) {
    char *got = da_bpe_clean(in);
    CHECK(!strcmp(got, want), "clean(\"%s\") = \"%s\", expected \"%s\"", in, got, want);
    free(got);
}

static void test_cleaning(void) {
    check_clean("  Hello   WORLD \t\n ", "hello world");
    check_clean("", "");
    check_clean("ΟΔΟΣ ΣΟΦΟΣ.", "οδος σοφος.");           /* final sigma before a non-letter */
    check_clean("ΣΑ", "σα");
    check_clean("\xC4\xB0", "i\xCC\x87");                  /* U+0130 lowers to i + U+0307 */
    check_clean("Tom &amp; Jerry", "tom & jerry");
    check_clean("&lt;b&gt; &#x41;&#66; &ampersand", "<b> ab &ersand");
    check_clean("&amp;amp;amp;amp;", "&");                  /* ftfy unescapes to a fixed point */
    check_clean("<b>&amp;amp;amp;</b>", "<b>&amp;</b>");    /* ...but not in HTML-like text */
    check_clean("don\xE2\x80\x99t \xE2\x80\x9Cyes\xE2\x80\x9D", "don't \"yes\"");   /* curly quotes */
    check_clean("\xEF\xAC\x81sh", "fish");                  /* the fi ligature */
    check_clean("\xEF\xBC\xA3\xEF\xBC\xAC\xEF\xBC\xA9\xEF\xBC\xB0", "clip");   /* fullwidth */
    check_clean("\x1B[31mred\x1B[0m", "red");               /* terminal colour codes */
    check_clean("a\x01" "b\x7F", "ab");                     /* control characters */
    check_clean("\xC2\x96", "\xE2\x80\x93");                 /* C1 control read as Windows-1252 */
    check_clean("bad \xFF byte", "bad \xEF\xBF\xBD byte");   /* invalid UTF-8 -> U+FFFD */
}

static void test_byte_level(void) {
    char err[256];
    const char *text = "#version: 0.2\n";
    da_bpe *b = da_bpe_from_openai(text, strlen(text), 0, err, sizeof err);
    CHECK(b != NULL, "byte-level vocabulary: %s", err);
    if (!b) return;
    CHECK(da_bpe_vocab_size(b) == 514 && da_bpe_sot(b) == 512 && da_bpe_eot(b) == 513, "byte-level sizes %d",
          da_bpe_vocab_size(b));
    int64_t *ids;
    int n = encode_full(b, "ab!", &ids);
    /* 'a' is byte 97, the 64th printable byte (after '!'..'`'); "!" ends its word */
    int64_t want[] = {512, 'a' - '!', 256 + 'b' - '!', 256 + 0, 513};
    CHECK(same_ids(ids, n, want, 5), "byte-level ids of \"ab!\"");
    if (!same_ids(ids, n, want, 5)) print_ids("got", ids, n);
    char *back = da_bpe_decode(b, ids, n);
    CHECK(!strcmp(back, "<|startoftext|>ab ! <|endoftext|>"), "decode gave \"%s\"", back);
    free(back);
    free(ids);
    da_bpe_free(b);

    const char *bad = "#version\nab\n";
    b = da_bpe_from_openai(bad, strlen(bad), 0, err, sizeof err);
    CHECK(b == NULL && strstr(err, "line 2"), "a malformed merge line is refused (%s)", err);
    da_bpe_free(b);
    b = da_bpe_load("/nonexistent/vocab.txt.gz", err, sizeof err);
    CHECK(b == NULL && strstr(err, "does not exist"), "a missing vocabulary is refused (%s)", err);
}

static const char *find_vocab(void) {
    static char path[4200];
    const char *src = getenv("DA_SOURCE_DIR");
    const char *cands[] = {"../../shared/clip", "../shared/clip"};
    if (src) {
        snprintf(path, sizeof path, "%s/../shared/clip/bpe_simple_vocab_16e6.txt.gz", src);
        if (access(path, R_OK) == 0) return path;
    }
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/bpe_simple_vocab_16e6.txt.gz", cands[i]);
        if (access(path, R_OK) == 0) return path;
    }
    return NULL;
}

static void test_golden(da_bpe *b) {
    FILE *f = fopen("golden/bpe_expected.txt", "r");
    CHECK(f != NULL, "golden/bpe_expected.txt is missing (run from tests/)");
    if (!f) return;
    char line[16384];
    int rows = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        *tab = 0;
        cJSON *s = cJSON_Parse(line);
        if (!cJSON_IsString(s)) { cJSON_Delete(s); bad++; continue; }
        int64_t want[4096];
        int nw = 0;
        for (char *p = tab + 1; *p && *p != '\n' && nw < 4096;) {
            char *end;
            want[nw++] = strtoll(p, &end, 10);
            if (end == p) break;
            p = end;
            while (*p == ' ') p++;
        }
        int64_t *got;
        int ng = encode_full(b, s->valuestring, &got);
        if (!same_ids(got, ng, want, nw)) {
            bad++;
            fprintf(stderr, "FAIL golden text %s\n", line);
            print_ids("want", want, nw);
            print_ids("got ", got, ng);
        }
        free(got);
        cJSON_Delete(s);
        rows++;
    }
    fclose(f);
    CHECK(rows >= 150 && bad == 0, "%d of %d golden texts differ", bad, rows);
    printf("golden texts: %d, differing: %d\n", rows, bad);
}

/* The same vocabulary written as Hugging Face vocab.json + merges.txt must give the same ids. */
static void test_hf_layout(da_bpe *openai, const char *gz_path) {
    gzFile gz = gzopen(gz_path, "rb");
    size_t cap = 8 << 20, n = 0;
    char *text = malloc(cap);
    int got;
    while ((got = gzread(gz, text + n, (unsigned)(cap - n - 1))) > 0) {
        n += (size_t)got;
        if (cap - n < 65536) { cap *= 2; text = realloc(text, cap); }
    }
    gzclose(gz);
    text[n] = 0;
    char dir[] = "/tmp/da_test_bpe_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[256];
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    FILE *f = fopen(path, "w");
    fputs("#version: 0.2\n", f);
    char *p = strchr(text, '\n') + 1;   /* skip the OpenAI header */
    for (int i = 0; i < DA_CLIP_MERGES; i++) {
        char *nl = strchr(p, '\n');
        fwrite(p, 1, (size_t)(nl - p) + 1, f);
        p = nl + 1;
    }
    fclose(f);
    free(text);
    cJSON *v = cJSON_CreateObject();
    for (int i = 0; i < da_bpe_vocab_size(openai); i++) cJSON_AddNumberToObject(v, da_bpe_token(openai, i), i);
    char *js = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    f = fopen(path, "w");
    fputs(js, f);
    fclose(f);
    free(js);

    char err[512];
    da_bpe *hf = da_bpe_load(dir, err, sizeof err);
    CHECK(hf != NULL, "HF layout: %s", err);
    if (hf) {
        CHECK(da_bpe_vocab_size(hf) == 49408 && da_bpe_sot(hf) == 49406 && da_bpe_eot(hf) == 49407,
              "HF vocab %d", da_bpe_vocab_size(hf));
        const char *texts[] = {"a photo of a cat", "Ærøskøbing 東京 😀 it's 2024!", "supercalifragilisticexpialidocious"};
        for (int i = 0; i < 3; i++) check_encodes_alike(hf, texts[i], texts[i]);
        for (int i = 0; i < 3; i++) {
            int64_t *a, *c;
            int na = encode_full(openai, texts[i], &a), nc = encode_full(hf, texts[i], &c);
            CHECK(same_ids(a, na, c, nc), "HF and OpenAI files differ on \"%s\"", texts[i]);
            free(a);
            free(c);
        }
        da_bpe_free(hf);
    }
    /* the partner file is found beside a named one */
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    hf = da_bpe_load(path, err, sizeof err);
    CHECK(hf != NULL, "HF vocab.json path: %s", err);
    da_bpe_free(hf);
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    unlink(path);
    hf = da_bpe_load(dir, err, sizeof err);
    CHECK(hf == NULL && strstr(err, "merges.txt"), "missing merges.txt is reported (%s)", err);
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    unlink(path);
    rmdir(dir);
}

static void test_context(da_bpe *b) {
    char err[512];
    int64_t ids[DA_CLIP_CONTEXT];
    int n = da_bpe_encode(b, "", DA_CLIP_CONTEXT, false, ids, err, sizeof err);
    CHECK(n == 2 && ids[0] == 49406 && ids[1] == 49407, "empty text gives start + end (%d ids)", n);
    n = da_bpe_encode(b, "   \t ", DA_CLIP_CONTEXT, false, ids, err, sizeof err);
    CHECK(n == 2, "blank text gives start + end (%d ids)", n);

    char longtext[2000] = "";
    for (int i = 0; i < 20; i++) strcat(longtext, "a photo of a cat ");   /* 100 tokens + 2 */
    n = da_bpe_encode(b, longtext, DA_CLIP_CONTEXT, false, ids, err, sizeof err);
    CHECK(n == -1 && strstr(err, "102 tokens") && strstr(err, "--truncate"), "over-long text is refused: %s", err);
    n = da_bpe_encode(b, longtext, DA_CLIP_CONTEXT, true, ids, err, sizeof err);
    int64_t *full;
    int nf = encode_full(b, longtext, &full);
    CHECK(n == 77 && nf == 102 && ids[76] == 49407 && same_ids(ids, 76, full, 76),
          "truncation keeps the first 76 ids and ends with the end token (%d)", n);
    free(full);
    /* exactly 77 fits */
    char fits[2000] = "";
    for (int i = 0; i < 15; i++) strcat(fits, "a photo of a cat ");   /* 75 + 2 */
    n = da_bpe_encode(b, fits, DA_CLIP_CONTEXT, false, ids, err, sizeof err);
    CHECK(n == 77 && ids[76] == 49407, "75 tokens + start + end fit (%d)", n);
}

static void test_cli(const char *vocab) {
    const char *bin = getenv("DA_BIN");
    if (!bin) { printf("DA_BIN not set: CLI checks skipped\n"); return; }
    char cmd[8192], out[4096];
    snprintf(cmd, sizeof cmd, "'%s' tokenize --vocab '%s' -- 'a photo of a cat' '' 'A PHOTO OF A DOG.' 2>&1", bin, vocab);
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    int rc = pclose(p);
    CHECK(rc == 0 && !strcmp(out, "49406 320 1125 539 320 2368 49407\n49406 49407\n49406 320 1125 539 320 1929 269 49407\n"),
          "tokenize CLI output:\n%s", out);
    snprintf(cmd, sizeof cmd, "env -u DIFFADAPT_CLIP_VOCAB '%s' tokenize 'x' 2>&1", bin);
    p = popen(cmd, "r");
    n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    rc = pclose(p);
    CHECK(WEXITSTATUS(rc) == 2 && strstr(out, "--vocab"), "tokenize without a vocabulary says to pass --vocab: %s", out);
    char longtext[2000] = "";
    for (int i = 0; i < 20; i++) strcat(longtext, "a photo of a cat ");
    snprintf(cmd, sizeof cmd, "'%s' tokenize --vocab '%s' '%s' 2>&1", bin, vocab, longtext);
    p = popen(cmd, "r");
    n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    rc = pclose(p);
    CHECK(WEXITSTATUS(rc) == 1 && strstr(out, "--truncate"), "over-long text fails in the CLI: %s", out);
    snprintf(cmd, sizeof cmd, "'%s' tokenize --truncate --vocab '%s' '%s' 2>&1 | wc -w", bin, vocab, longtext);
    p = popen(cmd, "r");
    n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    pclose(p);
    CHECK(atoi(out) == 77, "--truncate prints 77 ids (%s)", out);
}

int main(void) {
    test_cleaning();
    test_byte_level();
    const char *vocab = find_vocab();
    if (!vocab) {
        if (tu_failed) return tu_finish("test_bpe");
        tu_skip("../shared/clip/bpe_simple_vocab_16e6.txt.gz not found (the vocabulary-free checks passed)");
    }
    char err[512];
    da_bpe *b = da_bpe_load(vocab, err, sizeof err);
    CHECK(b != NULL, "loading %s: %s", vocab, err);
    if (!b) return tu_finish("test_bpe");
    CHECK(da_bpe_vocab_size(b) == 49408 && da_bpe_n_merges(b) == DA_CLIP_MERGES, "vocab %d merges %d",
          da_bpe_vocab_size(b), da_bpe_n_merges(b));
    struct { const char *text; int64_t ids[9]; int n; } readme[] = {
        {"a photo of a cat", {49406, 320, 1125, 539, 320, 2368, 49407}, 7},
        {"a sketch of a face", {49406, 320, 5269, 539, 320, 1710, 49407}, 7},
        {"A PHOTO OF A DOG.", {49406, 320, 1125, 539, 320, 1929, 269, 49407}, 8},
    };
    for (int i = 0; i < 3; i++) {
        int64_t ids[DA_CLIP_CONTEXT];
        int n = da_bpe_encode(b, readme[i].text, DA_CLIP_CONTEXT, false, ids, err, sizeof err);
        CHECK(same_ids(ids, n, readme[i].ids, readme[i].n), "README encoding of \"%s\"", readme[i].text);
    }
    test_golden(b);
    /* ftfy's rewrites, checked as equalities */
    check_encodes_alike(b, "don\xE2\x80\x99t", "don't");
    check_encodes_alike(b, "it&rsquo;s", "it's");
    check_encodes_alike(b, "\xEF\xAC\x81sh", "fish");
    check_encodes_alike(b, "\xEF\xBC\xA3\xEF\xBC\xAC\xEF\xBC\xA9\xEF\xBC\xB0", "clip");
    test_context(b);
    test_hf_layout(b, vocab);
    test_cli(vocab);
    da_bpe_free(b);
    return tu_finish("test_bpe");
}
