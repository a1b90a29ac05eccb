/* miniclip_merges.c — the mini-CLIP's vocabulary: BPE merges learned from its own training
 * captions (da_miniclip_learn_merges, see miniclip_captions.h), with the same pre-split and
 * byte alphabet as the tokenizer (text/bpe.h) so that the learned merges apply exactly. */
#include "train/miniclip_captions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/params.h"   /* da_fnv1a64 */
#include "text/bpe.h"
#include "util/xalloc.h"

/* where an allocation failed, for da_xcalloc's message */
#define OOM "in the mini-CLIP vocabulary learner"

typedef struct {
    char **sym;         /* symbols of the word in the byte-to-unicode alphabet, the last with </w> */
    int n;
    int64_t count;      /* occurrences in the caption corpus */
} bpe_word;

typedef struct {
    da_bpe *bytes;      /* byte-level vocabulary: splits captions into words exactly as da_bpe does */
    bpe_word *w;
    int n, cap;
} word_table;

static void add_word(word_table *t, char **sym, int n) {
    for (int i = 0; i < t->n; i++) {
        if (t->w[i].n != n) continue;
        int k = 0;
        while (k < n && !strcmp(t->w[i].sym[k], sym[k])) k++;
        if (k == n) {
            t->w[i].count++;
            for (k = 0; k < n; k++) free(sym[k]);
            return;
        }
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->w = da_xrealloc(t->w, sizeof *t->w * (size_t)t->cap, OOM);
    }
    bpe_word *w = &t->w[t->n++];
    w->sym = da_xcalloc((size_t)n, sizeof *w->sym, OOM);
    memcpy(w->sym, sym, sizeof *sym * (size_t)n);
    w->n = n;
    w->count = 1;
}

static void collect_words(void *user, int style, const char *caption) {
    (void)style;
    word_table *t = user;
    int64_t *ids = NULL;
    int n = da_bpe_encode_raw(t->bytes, caption, &ids);
    char **sym = da_xcalloc((size_t)n, sizeof *sym, OOM);
    int k = 0;
    for (int i = 0; i < n; i++) {
        const char *tok = da_bpe_token(t->bytes, ids[i]);
        da_check(tok != NULL, "miniclip", "byte token %lld has no string", (long long)ids[i]);
        sym[k++] = da_xstrdup(tok, OOM);
        size_t len = strlen(tok);
        if (len >= 4 && !strcmp(tok + len - 4, "</w>")) {   /* end of a pre-split word */
            add_word(t, sym, k);
            k = 0;
        }
    }
    for (int i = 0; i < k; i++) free(sym[i]);   /* never happens: the last byte carries </w> */
    free(sym);
    free(ids);
}

/* Pair counts in an open-addressing table keyed by "left right". */
typedef struct {
    char **key;
    int64_t *count;
    size_t cap;
} pair_table;

static size_t pair_slot(const pair_table *p, const char *key) {
    size_t h = (size_t)da_fnv1a64(DA_FNV1A64_INIT, key, strlen(key)) & (p->cap - 1);
    while (p->key[h] && strcmp(p->key[h], key)) h = (h + 1) & (p->cap - 1);
    return h;
}

char *da_miniclip_learn_merges(int max_merges) {
    static const char header[] = "#version: diffadapt mini-CLIP merges learned from its caption templates\n";
    char err[256];
    word_table t = {0};
    t.bytes = da_bpe_from_openai(header, sizeof header - 1, 0, err, sizeof err);
    da_check(t.bytes != NULL, "miniclip", "byte-level vocabulary: %s", err);
    da_miniclip_for_each_caption(collect_words, &t);
    da_bpe_free(t.bytes);

    size_t out_cap = 4096, out_len = strlen(header);
    char *out = da_xcalloc(out_cap, 1, OOM);
    memcpy(out, header, out_len);
    int n_sym = 0;
    for (int i = 0; i < t.n; i++) n_sym += t.w[i].n;
    pair_table p = {0};
    p.cap = 1;
    while (p.cap < 4 * (size_t)n_sym + 16) p.cap <<= 1;
    p.key = da_xcalloc(p.cap, sizeof *p.key, OOM);
    p.count = da_xcalloc(p.cap, sizeof *p.count, OOM);
    for (int m = 0; m < max_merges; m++) {
        for (size_t i = 0; i < p.cap; i++) { free(p.key[i]); p.key[i] = NULL; p.count[i] = 0; }
        const char *best = NULL;
        int64_t best_count = 0;
        char key[512];
        for (int i = 0; i < t.n; i++)
            for (int k = 0; k + 1 < t.w[i].n; k++) {
                snprintf(key, sizeof key, "%s %s", t.w[i].sym[k], t.w[i].sym[k + 1]);
                size_t h = pair_slot(&p, key);
                if (!p.key[h]) p.key[h] = da_xstrdup(key, OOM);
                p.count[h] += t.w[i].count;
            }
        for (size_t i = 0; i < p.cap; i++)
            if (p.key[i] && (p.count[i] > best_count || (p.count[i] == best_count && strcmp(p.key[i], best) < 0))) {
                best = p.key[i];
                best_count = p.count[i];
            }
        if (!best || best_count < 2) break;
        size_t len = strlen(best);
        if (out_len + len + 2 > out_cap) {
            while (out_len + len + 2 > out_cap) out_cap *= 2;
            out = da_xrealloc(out, out_cap, OOM);
        }
        memcpy(out + out_len, best, len);
        out_len += len;
        out[out_len++] = '\n';
        out[out_len] = '\0';
        /* apply the merge to every word */
        const char *space = strchr(best, ' ');
        size_t ll = (size_t)(space - best);
        for (int i = 0; i < t.n; i++) {
            bpe_word *w = &t.w[i];
            int o = 0;
            for (int k = 0; k < w->n; k++) {
                if (k + 1 < w->n && strlen(w->sym[k]) == ll && !strncmp(w->sym[k], best, ll) &&
                    !strcmp(w->sym[k + 1], space + 1)) {
                    size_t a = strlen(w->sym[k]), b = strlen(w->sym[k + 1]);
                    char *joined = da_xcalloc(a + b + 1, 1, OOM);
                    memcpy(joined, w->sym[k], a);
                    memcpy(joined + a, w->sym[k + 1], b);
                    free(w->sym[k]);
                    free(w->sym[k + 1]);
                    w->sym[o++] = joined;
                    k++;
                } else {
                    w->sym[o++] = w->sym[k];
                }
            }
            w->n = o;
        }
    }
    for (size_t i = 0; i < p.cap; i++) free(p.key[i]);
    free(p.key);
    free(p.count);
    for (int i = 0; i < t.n; i++) {
        for (int k = 0; k < t.w[i].n; k++) free(t.w[i].sym[k]);
        free(t.w[i].sym);
    }
    free(t.w);
    return out;
}
