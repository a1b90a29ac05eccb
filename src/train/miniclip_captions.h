/* miniclip_captions.h — what the mini-CLIP reads: captions made from style words and our
 * templates (miniclip_captions.c), and the BPE vocabulary learned from them (miniclip_merges.c). */
#ifndef DA_MINICLIP_CAPTIONS_H
#define DA_MINICLIP_CAPTIONS_H

#include <stddef.h>

#include "data/styles.h"

#define DA_MINICLIP_MAX_STYLES 64

/* A caption is a template (a "{}" hole for one word) filled with a word of the image's style:
 * the style's name or one of its synonyms (styles.h). Captions describe the style only: no
 * template names a class of any data set, and no training caption uses a word of the held-out
 * style. */

/* The training templates; *n receives their count. */
const char *const *da_miniclip_templates(int *n);
/* Templates kept out of training, used by the zero-shot evaluation (prompt generalisation). */
const char *const *da_miniclip_eval_templates(int *n);
/* The indices (into da_style_get) of the styles captions may use: every style that is not
 * held out. Returns their count (at most max). */
int da_miniclip_train_styles(int *idx, int max);
/* The words of style s: its name, then its synonyms (NULL-terminated order of styles.h).
 * Returns their count (at most max). */
int da_miniclip_style_words(const da_style *s, const char **words, int max);
/* template with its "{}" replaced by word, into buf (truncated to len). Returns buf. */
char *da_miniclip_fill(const char *tmpl, const char *word, char *buf, size_t len);

/* Calls fn for every training caption in a fixed order: styles, then words, then templates.
 * The vocabulary learner and the trainer both walk the captions with it, so they see the same
 * corpus in the same order. */
typedef void (*da_miniclip_caption_fn)(void *user, int style, const char *caption);
void da_miniclip_for_each_caption(da_miniclip_caption_fn fn, void *user);

/* The vocabulary (miniclip_merges.c): BPE merges learned from the training captions (every
 * template with every word of every training style), most frequent pair first (ties: the
 * smaller pair in byte order), while a pair occurs at least twice and at most max_merges times; 0 = byte level.
 * Returns malloc'ed OpenAI-format merges text (a "#version" header line, then "a b" per line)
 * for da_bpe_from_openai / the model's "bpe_merges" metadata. */
char *da_miniclip_learn_merges(int max_merges);

#endif
