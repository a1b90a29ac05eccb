/* miniclip_captions.c — the captions the mini-CLIP is trained on: our templates (training and
 * held-back evaluation ones), the words of each style, and the fixed walk over every training
 * caption that the vocabulary learner and the trainer share (see miniclip_captions.h). */
#include "train/miniclip_captions.h"

#include <stdio.h>
#include <string.h>

/* Our own wording. Neutral framings that name no kind of object and no style: the filled-in
 * style word is the only thing that tells captions apart (tests/test_miniclip.c checks both). */
static const char *const TRAIN_TEMPLATES[] = {
    "{}",
    "a {}.",
    "the {}.",
    "a {} of an object.",
    "a {} of a thing.",
    "a {} of something.",
    "a {} of one object.",
    "a {} of a small object.",
    "an object, {}.",
    "the object, {}.",
    "something in {} style.",
    "one object in {} style.",
    "an example in {} style.",
    "{} style.",
    "this looks {}.",
    "it looks {}.",
    "a {} rendering.",
    "a {} version.",
    "a {} copy.",
    "a {} sample.",
    "a {} view.",
    "shown as a {}.",
    "made to look {}.",
    "a {} on a square canvas.",
};

/* Never used in training: the evaluation asks whether the text tower generalises to them. */
static const char *const EVAL_TEMPLATES[] = {
    "a {} of the object.",
    "a {} of an item.",
    "here is a {}.",
    "a {} of a single thing.",
    "an item in {} style.",
    "the thing, {}.",
    "a centred {}.",
    "look: a {}.",
};

const char *const *da_miniclip_templates(int *n) {
    *n = (int)(sizeof TRAIN_TEMPLATES / sizeof TRAIN_TEMPLATES[0]);
    return TRAIN_TEMPLATES;
}

const char *const *da_miniclip_eval_templates(int *n) {
    *n = (int)(sizeof EVAL_TEMPLATES / sizeof EVAL_TEMPLATES[0]);
    return EVAL_TEMPLATES;
}

int da_miniclip_train_styles(int *idx, int max) {
    int n = 0;
    for (int i = 0; i < da_style_count() && n < max; i++)
        if (!da_style_get(i)->held_out) idx[n++] = i;
    return n;
}

int da_miniclip_style_words(const da_style *s, const char **words, int max) {
    int n = 0;
    if (n < max) words[n++] = s->name;
    for (const char *const *w = s->synonyms; w && *w && n < max; w++) words[n++] = *w;
    return n;
}

char *da_miniclip_fill(const char *tmpl, const char *word, char *buf, size_t len) {
    const char *hole = strstr(tmpl, "{}");
    if (!hole) snprintf(buf, len, "%s", tmpl);
    else snprintf(buf, len, "%.*s%s%s", (int)(hole - tmpl), tmpl, word, hole + 2);
    return buf;
}

void da_miniclip_for_each_caption(da_miniclip_caption_fn fn, void *user) {
    int styles[DA_MINICLIP_MAX_STYLES], nt;
    int ns = da_miniclip_train_styles(styles, DA_MINICLIP_MAX_STYLES);
    const char *const *tmpl = da_miniclip_templates(&nt);
    char buf[256];
    for (int k = 0; k < ns; k++) {
        const char *words[64];
        int nw = da_miniclip_style_words(da_style_get(styles[k]), words, 64);
        for (int w = 0; w < nw; w++)
            for (int t = 0; t < nt; t++) fn(user, styles[k], da_miniclip_fill(tmpl[t], words[w], buf, sizeof buf));
    }
}
