/* bpe.h — the CLIP byte-pair tokenizer: the OpenAI merges file or Hugging Face vocab.json +
 * merges.txt, the reference text cleaning, regex pre-split, byte-to-unicode mapping and
 * rank-ordered merges; ids are the ones OpenAI's simple_tokenizer gives. */
#ifndef DA_BPE_H
#define DA_BPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DA_CLIP_CONTEXT 77        /* tokens per text, start and end tokens included */
#define DA_CLIP_MERGES 48894      /* merges the OpenAI models use (49152 - 256 - 2) */

typedef struct da_bpe da_bpe;

/* Loads a vocabulary from `path`: the OpenAI file (bpe_simple_vocab_16e6.txt.gz, or the same
 * uncompressed), a Hugging Face folder holding vocab.json + merges.txt, or the path of either of
 * those two files (its partner is taken from the same folder). NULL with err set on failure. */
da_bpe *da_bpe_load(const char *path, char *err, size_t errlen);
/* From OpenAI-format text in memory: a header line, then one merge "a b" per line, in rank
 * order. At most max_merges merges are used (<= 0: DA_CLIP_MERGES). Vocabulary: 256 byte
 * tokens, the same with </w>, one token per merge, <|startoftext|>, <|endoftext|>. With no
 * merges at all this is a plain byte-level vocabulary of 514 tokens. */
da_bpe *da_bpe_from_openai(const char *text, size_t len, int max_merges, char *err, size_t errlen);
/* From Hugging Face vocab.json and merges.txt contents ("#version" header line optional). */
da_bpe *da_bpe_from_hf(const char *vocab_json, size_t vocab_len, const char *merges, size_t merges_len,
                       char *err, size_t errlen);
void da_bpe_free(da_bpe *b);

int da_bpe_vocab_size(const da_bpe *b);       /* 1 + the largest id */
int da_bpe_n_merges(const da_bpe *b);
int64_t da_bpe_sot(const da_bpe *b);           /* <|startoftext|> (49406 in the OpenAI vocabulary) */
int64_t da_bpe_eot(const da_bpe *b);           /* <|endoftext|> (49407); also the largest id there */
/* The token string of an id in the byte-to-unicode alphabet ("photo</w>"), NULL if unused. */
const char *da_bpe_token(const da_bpe *b, int64_t id);

/* The reference cleaning, as UTF-8 (malloc'ed): the rule-based part of ftfy.fix_text, repeated
 * until stable (HTML entities when the text has no '<', C1 controls, terminal escapes, Latin
 * ligatures, character width, curly quotes, control characters; not its mojibake repair nor
 * NFC), then html.unescape twice, strip, white space collapsed, lower case. */
char *da_bpe_clean(const char *text);

/* The ids of text without start/end tokens (no length limit). Returns the count and sets *ids
 * (malloc'ed; free it) — never fails except for memory. Not thread-safe: b caches words. */
int da_bpe_encode_raw(da_bpe *b, const char *text, int64_t **ids);
/* Start token, ids, end token into ids[0..context). When they do not fit: with truncate the
 * first context-1 are kept and the last becomes the end token (as clip.tokenize does), else
 * -1 with err saying how long the text is. Returns the number of ids written. */
int da_bpe_encode(da_bpe *b, const char *text, int context, bool truncate, int64_t *ids,
                  char *err, size_t errlen);
/* Back to text (malloc'ed): tokens joined, bytes restored, "</w>" read as a space. */
char *da_bpe_decode(const da_bpe *b, const int64_t *ids, int n);

#endif
