/* common_options.c — the options most sub-commands share, one table (see common_options.h). */
#include "cli/common_options.h"

#include <stddef.h>
#include <stdio.h>

typedef struct {
    unsigned part;
    const char *name;
    da_opt_kind kind;
    size_t offset;               /* of the field in da_common */
    size_t words_offset;         /* of the command's own words in da_common_words */
    const char *metavar, *help;  /* the shared words */
    bool required;
    int min;                     /* the smallest accepted value of an integer (checked by da_common_options_check) */
} common_option;

#define F(field) offsetof(da_common, field)
#define W(field) offsetof(da_common_words, field)
#define NO_MIN -1                /* any value (strings, flags, --threads: checked while parsing) */

static const common_option OPTIONS[] = {
    {DA_COPT_MODEL, "--model", DA_OPT_STRING, F(model), W(model), "M.safetensors", "the diffusion model", true, NO_MIN},
    {DA_COPT_MODEL, "--config", DA_OPT_STRING, F(config), W(config), "FILE",
     "model config (YAML/JSON) when the file has none", false, NO_MIN},
    {DA_COPT_CLIP, "--clip", DA_OPT_STRING, F(clip), 0, "C", "CLIP model: a .safetensors file or a Hugging Face folder",
     true, NO_MIN},
    {DA_COPT_CLIP, "--vocab", DA_OPT_STRING, F(vocab), 0, "V",
     "CLIP vocabulary when the model carries none (bpe_simple_vocab_16e6.txt.gz, or a folder with vocab.json + "
     "merges.txt)", false, NO_MIN},
    {DA_COPT_OUT, "--out", DA_OPT_STRING, F(out), W(out), "FILE", "the output", true, NO_MIN},
    {DA_COPT_SEED, "--seed", DA_OPT_INT, F(seed), W(seed), "N", "random seed", false, 0},
    {DA_COPT_BATCH, "--batch", DA_OPT_INT, F(batch), W(batch), "N", "images per model call", false, 1},
    {DA_COPT_THREADS, "--threads", DA_OPT_INT, F(threads), 0, "N", "worker threads (0 = all cores)", false, NO_MIN},
    {DA_COPT_PRECISION, "--precision", DA_OPT_CHOICE, F(precision), 0, DA_PRECISION_CHOICES,
     "convolution arithmetic of inversion and generation: fp32; bf16 products with fp32 sums (AVX-512); "
     "auto = bf16 where the CPU has AMX, else fp32 (docs/precision.md)", false, NO_MIN},
    {DA_COPT_FORCE, "--force", DA_OPT_FLAG, F(force), W(force), NULL, "overwrite an existing --out", false, NO_MIN},
};

#define N_OPTIONS (sizeof OPTIONS / sizeof OPTIONS[0])

/* The command's words for o when it gave some (0 as words_offset: the option has no own words). */
static const char *own_words(const da_common_words *words, size_t offset) {
    return words && offset ? *(const char *const *)((const char *)words + offset) : NULL;
}

const char *da_common_precision_name(int precision) {
    static const char *const NAMES[] = {"auto", "fp32", "bf16"};
    return precision >= 0 && precision < 3 ? NAMES[precision] : "auto";
}

int da_common_options(da_common *c, unsigned parts, const da_common_words *words, da_option *out) {
    int n = 0;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const common_option *o = &OPTIONS[i];
        if (!(o->part & parts)) continue;
        const char *help = own_words(words, o->words_offset);
        const char *metavar = o->part == DA_COPT_OUT && words && words->out_metavar ? words->out_metavar : o->metavar;
        out[n++] = (da_option){o->name, o->kind, (char *)c + o->offset, metavar, help ? help : o->help, o->required};
    }
    return n;
}

int da_common_options_check(const da_common *c, unsigned parts, const char *cmd) {
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const common_option *o = &OPTIONS[i];
        if (!(o->part & parts) || o->min == NO_MIN) continue;
        int v = *(const int *)((const char *)c + o->offset);
        if (v >= o->min) continue;
        fprintf(stderr, "diffadapt %s: %s must be at least %d, got %d\n", cmd, o->name, o->min, v);
        return 2;
    }
    return 0;
}
