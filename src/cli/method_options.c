/* method_options.c — the DiffusionCLIP options, one table (see method_options.h). */
#include "cli/method_options.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "diffusion/ddim.h"

typedef struct {
    unsigned part;
    const char *name;            /* the commands' name */
    const char *experiment_name; /* the experiment's, when it differs */
    da_opt_kind kind;
    size_t offset;               /* of the field in da_ft_config */
    const char *metavar, *help;
    /* the accepted range of a number (checked by da_method_options_check); lo = hi = 0: any (the
     * step counts are checked against t0 and the schedule by diffusion/schedule.c) */
    double lo, hi;
    bool lo_open;                /* lo itself is not accepted */
} method_option;

#define ANY 0, 0, false
#define AT_LEAST(x) x, INFINITY, false
#define ABOVE(x) x, INFINITY, true
#define WITHIN(a, b) a, b, false

#define F(field) offsetof(da_ft_config, field)

static const method_option OPTIONS[] = {
    {DA_MOPT_TEXTS, "--src-text", NULL, DA_OPT_STRING, F(src_text), "TEXT", "the source domain in words, e.g. photo", ANY},
    {DA_MOPT_TEXTS, "--tgt-text", NULL, DA_OPT_STRING, F(tgt_text), "TEXT", "the target domain in words, e.g. sketch", ANY},
    {DA_MOPT_T0, "--t0", NULL, DA_OPT_INT, F(t0), "T", "return step: images are inverted up to this timestep", ANY},
    {DA_MOPT_INVERT, "--inv-steps", NULL, DA_OPT_INT, F(inv_steps), "N", "inversion sequence length (N-1 model calls)", ANY},
    {DA_MOPT_TRAIN, "--train-steps", NULL, DA_OPT_INT, F(train_steps), "N", "generation steps while fine-tuning", ANY},
    {DA_MOPT_GENERATE, "--gen-steps", NULL, DA_OPT_INT, F(gen_steps), "N", "generation steps when translating", ANY},
    {DA_MOPT_GENERATE, "--model-ratio", NULL, DA_OPT_FLOAT, F(model_ratio), "R",
     "degree of change: generate with R*eps(fine-tuned) + (1-R)*eps(original) at every step (1 = the fine-tuned "
     "model alone, 0 = a reconstruction)", ANY},
    {DA_MOPT_TRAIN, "--images", "--ft-images", DA_OPT_INT, F(images), "N",
     "fine-tuning images: the first N of the data (their labels are not used)", AT_LEAST(1)},
    {DA_MOPT_TRAIN, "--epochs", "--ft-epochs", DA_OPT_INT, F(epochs), "N", "passes over the fine-tuning images", AT_LEAST(1)},
    {DA_MOPT_TRAIN, "--batch", "--ft-batch", DA_OPT_INT, F(batch), "N", "fine-tuning images per optimiser step", AT_LEAST(1)},
    {DA_MOPT_TRAIN, "--lr", "--ft-lr", DA_OPT_FLOAT, F(lr), "LR", "Adam learning rate of the first fine-tuning epoch", ABOVE(0)},
    {DA_MOPT_TRAIN, "--lr-gamma", "--ft-lr-gamma", DA_OPT_FLOAT, F(lr_gamma), "G", "learning rate factor after every epoch", ABOVE(0)},
    {DA_MOPT_TRAIN, "--seed", "--ft-seed", DA_OPT_INT, F(seed), "N", "seed of the dropout masks while fine-tuning", AT_LEAST(0)},
    {DA_MOPT_TRAIN, "--mode", "--ft-mode", DA_OPT_CHOICE, F(mode), "chain|per-step",
     "chain (gradient through all generation steps, one Adam step per batch) or per-step (a loss on each step's "
     "x0_t, one Adam step per step)", ANY},
    {DA_MOPT_TRAIN, "--clip-weight", NULL, DA_OPT_FLOAT, F(clip_weight), "W", "weight of the directional CLIP loss", AT_LEAST(0)},
    {DA_MOPT_TRAIN, "--l1-weight", NULL, DA_OPT_FLOAT, F(l1_weight), "W", "weight of the L1 identity term", AT_LEAST(0)},
    {DA_MOPT_TRAIN, "--identity", NULL, DA_OPT_CHOICE, F(identity), "pixels|edges|coarse-edges",
     "what the L1 identity term compares: the pixels (DiffusionCLIP), the edge magnitudes (outlines stay, paper "
     "colour and polarity may change) or their 4x4 block maxima (an outline may also become a stroke)", ANY},
    {DA_MOPT_TRAIN, "--views", NULL, DA_OPT_INT, F(views), "N",
     "average the directional loss over the image and N random views (crop, low-pass, mirror) of the output and the "
     "source alike (0 = the image only)", WITHIN(0, 64)},
    {DA_MOPT_TRAIN, "--view-scale", NULL, DA_OPT_FLOAT, F(view_min_scale), "S",
     "smallest crop side of a view, as a share of the image side (0 < S <= 1)", 0, 1, true},
    {DA_MOPT_TRAIN, "--tgt-weight", NULL, DA_OPT_FLOAT, F(tgt_weight), "W",
     "with --tgt-images: weight of the image direction against the text direction (1 = images only, 0 = text only)", WITHIN(0, 1)},
    {DA_MOPT_ID_MODEL, "--id-weight", NULL, DA_OPT_FLOAT, F(id_weight), "W",
     "weight of 1 - cos(identity embeddings of x0 and the output) (needs --id-model)", AT_LEAST(0)},
    {DA_MOPT_ID_MODEL, "--recompute", NULL, DA_OPT_FLAG, F(recompute), NULL,
     "chain: rebuild each step's tape during backward (memory of one step, one extra forward)", ANY},
};

static const char *option_name(const method_option *o, da_mopt_naming naming) {
    return naming == DA_MOPT_EXPERIMENT && o->experiment_name ? o->experiment_name : o->name;
}

int da_method_options(da_ft_config *c, unsigned parts, da_mopt_naming naming, bool texts_required, da_option *out) {
    int n = 0;
    for (size_t i = 0; i < sizeof OPTIONS / sizeof OPTIONS[0] && n < DA_MOPT_MAX; i++) {
        const method_option *o = &OPTIONS[i];
        if (!(o->part & parts)) continue;
        out[n++] = (da_option){option_name(o, naming), o->kind, (char *)c + o->offset, o->metavar, o->help,
                               texts_required && o->part == DA_MOPT_TEXTS};
    }
    return n;
}

/* A text with something in it besides blanks. */
static bool has_words(const char *s) { return s && s[strspn(s, " \t\n")]; }

int da_method_options_check(const da_ft_config *c, unsigned parts, da_mopt_naming naming, const char *cmd) {
    for (size_t i = 0; i < sizeof OPTIONS / sizeof OPTIONS[0]; i++) {
        const method_option *o = &OPTIONS[i];
        if (!(o->part & parts) || (o->lo == 0 && o->hi == 0)) continue;
        const void *field = (const char *)c + o->offset;
        double v = o->kind == DA_OPT_INT ? *(const int *)field : (double)*(const float *)field;
        bool ok = (o->lo_open ? v > o->lo : v >= o->lo) && v <= o->hi;
        if (ok) continue;
        const char *name = option_name(o, naming);
        if (isinf(o->hi))
            fprintf(stderr, "diffadapt %s: %s must be %s %g, got %g\n", cmd, name, o->lo_open ? "greater than" : "at least",
                    o->lo, v);
        else
            fprintf(stderr, "diffadapt %s: %s must lie in %s%g, %g], got %g\n", cmd, name, o->lo_open ? "(" : "[", o->lo,
                    o->hi, v);
        return 2;
    }
    char err[256];
    if ((parts & DA_MOPT_GENERATE) && da_eps_mix_check_ratio(c->model_ratio, err, sizeof err)) {
        fprintf(stderr, "diffadapt %s: %s\n", cmd, err);   /* the degree of change lies in [0,1] */
        return 2;
    }
    if ((parts & DA_MOPT_TEXTS) &&
        (!has_words(c->src_text) || !has_words(c->tgt_text) || strcmp(c->src_text, c->tgt_text) == 0)) {
        /* an empty or repeated text gives no direction to move along */
        fprintf(stderr, "diffadapt %s: --src-text and --tgt-text must be two different, non-empty texts, got \"%s\" and "
                "\"%s\"\n", cmd, c->src_text ? c->src_text : "", c->tgt_text ? c->tgt_text : "");
        return 2;
    }
    return 0;
}
