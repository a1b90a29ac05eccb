/* experiment.h — the end-to-end experiment of `diffadapt experiment`: data, the diffusion model,
 * the CLIP model, DiffusionCLIP fine-tuning, translation, the CNN runs and the report. */
#ifndef DA_EXPERIMENT_H
#define DA_EXPERIMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"
#include "diffusion/finetune.h"
#include "nn/clip.h"
#include "nn/unet.h"

/* The training sets and evaluation sets of the CNN runs, by their metrics.csv names. */
#define DA_EXP_N_TRAIN 2
#define DA_EXP_N_EVAL 6
extern const char *const DA_EXP_TRAIN_NAMES[DA_EXP_N_TRAIN];   /* "original", "adapted" */
/* "source", "target-heldout" (pencil), "target-hatching", "target-stipple", "validation", "target-self" */
extern const char *const DA_EXP_EVAL_NAMES[DA_EXP_N_EVAL];
/* The evaluation sets by index. The three target-panel sets are test images drawn by the
 * held-out renderers of data/styles.h (nothing is tuned on them); `validation` is training
 * images outside the labelled draw, drawn by the validation renderer (recipes are chosen on it). */
enum {
    DA_EXP_EV_SOURCE,
    DA_EXP_EV_PENCIL,
    DA_EXP_EV_HATCHING,
    DA_EXP_EV_STIPPLE,
    DA_EXP_EV_VALIDATION,
    DA_EXP_EV_SELF,
};
#define DA_EXP_PANEL_FIRST DA_EXP_EV_PENCIL
#define DA_EXP_PANEL_N 3
#define DA_EXP_MAX_STAGES 16

typedef enum { DA_EXP_FASHION, DA_EXP_CELEBA, DA_EXP_OTHER } da_exp_data_kind;

/* Every setting of a run. da_exp_defaults fills the default run; da_exp_quick scales it down. */
typedef struct {
    /* data */
    const char *data;         /* "fashion-mnist" (default), "celeba:DIR", or any --data spec */
    const char *task;         /* "2,4" (a pair), "all" (every class), or NULL (CelebA: the attribute) */
    const char *attr;         /* CelebA attribute that becomes the 0/1 label ("Male") */
    int size;                 /* > 0: centre-crop and resize to size×size (CelebA: 256) */
    int pad;                  /* > 0: pad every side (Fashion-MNIST: 2, 28 -> 32) */
    int channels;             /* 0 = as stored, 1, 3 */
    int train_n, test_n;      /* labelled training and test images (1200, 300) */
    int val_n;                /* validation images: training images outside the labelled draw (300) */
    int pool_n;               /* unlabelled images to train the models on when they must be trained (0 = all) */
    int data_seed;            /* the seeded draws of the training and test images */
    /* models */
    const char *models_dir;   /* shipped default checkpoints (NULL: $DIFFADAPT_MODELS, ./models, <bin>/../share/diffadapt/models, next to the binary) */
    const char *model;        /* diffusion model file (NULL: shipped default, cache, or train) */
    const char *model_config; /* its config (YAML/JSON) when the file has none */
    const char *finetuned;    /* a fine-tuned copy of the model (e.g. a released DiffusionCLIP checkpoint): used
                               * instead of fine-tuning here (NULL: fine-tune) */
    const char *clip;         /* CLIP .safetensors or HF folder (NULL: mini-CLIP shipped, cache, or train) */
    const char *vocab;        /* tokenizer for --clip when the model has none */
    int diff_steps, diff_batch;   /* training a diffusion model when none is given or shipped */
    int diff_ch;              /* its base width (the shipped one: see models/README.md) */
    int clip_steps, clip_batch;   /* training a mini-CLIP when none is given or shipped */
    bool tiny_models;         /* ignore shipped checkpoints and train tiny models (--smoke) */
    /* DiffusionCLIP fine-tuning and translation: the method's own settings (diffusion/finetune.h);
     * the experiment's defaults differ only in ddim_batch (50) */
    da_ft_config ft;
    /* image-guided direction: a few unlabelled target images (NULL = the text direction only) */
    const char *tgt_images;   /* "STYLE:N": N training images outside the labelled and validation draws, drawn by
                               * that renderer; or any --data spec of unlabelled target images */
    /* the CNN */
    int seeds, epochs, batch;
    float lr;
    int cnn_c1, cnn_c2, cnn_c3, cnn_hidden;   /* 0 = the reference widths */
    /* the run */
    const char *out;          /* output folder */
    const char *cache;        /* cache folder (NULL: OUT/cache) */
    bool force;               /* overwrite the outputs of an earlier run */
    bool quick;               /* the scaled-down run (for the record in the report) */
    const char *level;        /* "default", "quick", "smoke": for the report */
    int threads;
    da_precision precision;   /* of the translation's convolutions (resolved from --precision) */
} da_exp_config;

void da_exp_defaults(da_exp_config *c);
/* The --quick settings over c (smaller n, fewer seeds/epochs/steps). */
void da_exp_quick(da_exp_config *c);
/* The --smoke settings (even smaller: sanitizer builds). */
void da_exp_smoke(da_exp_config *c);
da_exp_data_kind da_exp_kind(const char *data);

/* One timed stage. */
typedef struct {
    char name[48];
    double seconds;
    char source[32];          /* "trained", "shipped", "cache", "given", "computed" */
    char detail[512];         /* what it did, for the report */
} da_exp_stage;

/* The accuracy of every CNN run. */
typedef struct {
    int seeds, epochs;
    int n_classes;
    double *acc;              /* (DA_EXP_N_TRAIN, seeds, epochs, DA_EXP_N_EVAL) percent */
    double *train_acc;        /* (DA_EXP_N_TRAIN, seeds, epochs) */
    double *train_loss;       /* (DA_EXP_N_TRAIN, seeds, epochs) */
} da_exp_runs;

static inline int64_t da_exp_acc_index(const da_exp_runs *r, int tr, int s, int ep, int ev) {
    return (((int64_t)tr * r->seeds + s) * r->epochs + ep) * DA_EXP_N_EVAL + ev;
}

/* The state of a run: data, models and timings. */
typedef struct {
    da_exp_config cfg;
    da_exp_data_kind kind;
    char cache_dir[4096];
    char task_desc[256];      /* "2 pullover vs 4 coat" */
    char class_names[256];    /* "pullover,coat" for the report */
    /* labelled sets (C,H,W) equal */
    da_dataset train;         /* `original`: the labelled training images */
    da_dataset test;          /* `source`: the labelled test images */
    da_dataset adapted;       /* the training images translated */
    da_dataset target_heldout;/* the test images in the held-out pencil renderer */
    da_dataset target_hatching, target_stipple;   /* the test images in the other two panel renderers */
    da_dataset validation;    /* val_n training images outside the labelled draw, in the validation renderer */
    da_dataset target_self;   /* the test images translated by the fine-tuned model */
    /* models */
    da_unet model;            /* the source diffusion model */
    bool have_model;
    da_unet finetuned;        /* its DiffusionCLIP fine-tuned copy */
    bool have_finetuned;
    da_clip clip;
    bool have_clip;
    char model_hash[17], finetuned_hash[17], clip_hash[17];
    char model_desc[256], clip_desc[256];
    double ft_first_dir, ft_last_dir, ft_first_l1, ft_last_l1;   /* directional loss and L1, first and last epoch */
    /* diagnostics for the report (da_exp_diagnostics) */
    double clip_tgt_pct[6];   /* share of images the CLIP model calls tgt_text rather than src_text:
                               * training originals, adapted, test originals, target-heldout, target-self,
                               * and the source model's reconstructions of the training originals */
    int clip_diag_n;          /* images per set it looked at (0: not computed) */
    int recon_n;              /* reconstructions looked at */
    double adapt_l1;          /* mean |adapted - original| over the training images (pixels in [-1,1]) */
    double recon_l1;          /* the same for the reconstructions */
    double mean_px[5];        /* mean pixel value (in [-1,1]) of: original, adapted, source, target-heldout, target-self */
    /* timings */
    da_exp_stage stages[DA_EXP_MAX_STAGES];
    int n_stages;
    double t_start;
    da_exp_runs runs;
} da_experiment;

void da_exp_init(da_experiment *e, const da_exp_config *cfg);
void da_exp_free(da_experiment *e);
/* Adds a stage record; returns it to fill. */
da_exp_stage *da_exp_add_stage(da_experiment *e, const char *name, double seconds, const char *source, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* ---- data (data.c) ----------------------------------------------------------------- */
/* Loads the labelled training and test images; sets task_desc and class_names. */
int da_exp_load_data(da_experiment *e, char *err, size_t errlen);
/* The unlabelled target images of --tgt-images (labels dropped): "STYLE:N" draws N training
 * images after the labelled and validation draws and renders them with STYLE; anything else is
 * loaded as a --data spec with the experiment's size, padding and channels. */
int da_exp_load_target_images(const da_experiment *e, da_dataset *out, char *err, size_t errlen);
/* The unlabelled images the diffusion model / mini-CLIP may be trained on (labels dropped). */
int da_exp_load_pool(const da_experiment *e, da_dataset *pool, char *err, size_t errlen);
/* Class names of Fashion-MNIST ("t-shirt", ...), NULL beyond 9. */
const char *da_exp_fashion_class(int label);

/* ---- cache (cache.c) --------------------------------------------------------------- */
/* FNV-1a of a description string as 16 hex digits; the key of a cached stage result. */
void da_exp_key(const char *desc, char out[17]);
/* CACHE/<stem>-<key>.safetensors into buf. */
void da_exp_cache_path(const da_experiment *e, const char *stem, const char *key, char *buf, size_t len);
/* Where shipped default checkpoints live: --models, $DIFFADAPT_MODELS, ./models, or models/
 * one or two levels above the running binary. Returns the first folder that exists, or NULL. */
const char *da_exp_models_dir(const da_exp_config *c, char *buf, size_t len);
/* Notes beside a cache file how many seconds computing it took; and, for a stage that read the
 * file, "read from the cache; computing it took 372 s" (", 0.31 s per image" when n_items > 0;
 * without the time when there is no note) into buf. */
void da_exp_cache_note_seconds(const char *path, double seconds);
const char *da_exp_cache_time_text(const char *path, int64_t n_items, char *buf, size_t len);

/* One cached computation (da_exp_cached, contract in cache.c). compute writes the result to
 * job->path; it may use job->key (e.g. in the metadata of partial files it resumes from) and
 * sets job->time_is_partial when it resumed earlier work, so that its time is not noted. */
typedef struct {
    const char *path;         /* CACHE/<stem>-<key>.safetensors: where the result must be written */
    const char *key;          /* the 16 hex digits of the description */
    bool time_is_partial;     /* set by compute: the seconds it took are not what the result cost */
} da_exp_cache_job;
typedef int (*da_exp_compute_fn)(void *user, da_exp_cache_job *job, char *err, size_t errlen);
/* The result described by desc, under stem: read from the cache when present (*source "cache"),
 * else computed by compute(user, ...) and saved there (*source = computed_as, "trained" or
 * "computed"). Its path into path (path_len), its key into key (may be NULL). */
int da_exp_cached(const da_experiment *e, const char *stem, const char *desc, const char *computed_as,
                  da_exp_compute_fn compute, void *user, char *path, size_t path_len, char key[17],
                  const char **source, char *err, size_t errlen);

/* ---- the model stages (stages.c) ---------------------------------------------------- */
int da_exp_stage_diffusion(da_experiment *e, char *err, size_t errlen);
int da_exp_stage_clip(da_experiment *e, char *err, size_t errlen);
int da_exp_stage_finetune(da_experiment *e, char *err, size_t errlen);
/* Translates the training images (-> adapted) and the test images (-> target_self). */
int da_exp_stage_translate(da_experiment *e, char *err, size_t errlen);
/* The source model's own round trip of n images x (n,C,H,W) into out: inversion and generation
 * with the same steps as translation but without the fine-tuned model (the reconstruction
 * baseline that tells the fine-tuning's effect from the round trip's). */
int da_exp_reconstruct(const da_experiment *e, const float *x, int64_t n, float *out, char *err, size_t errlen);
/* Renders the test images in the three held-out panel styles (-> target_heldout, target_hatching,
 * target_stipple) and the validation images in the validation style (-> validation). */
int da_exp_stage_heldout(da_experiment *e, char *err, size_t errlen);

/* ---- the CNN runs (classify.c) ------------------------------------------------------ */
/* Trains cfg.seeds CNNs on each training set, evaluates every epoch on the three eval sets,
 * writes OUT/metrics.csv and fills e->runs. */
int da_exp_classify(da_experiment *e, const char *metrics_path, char *err, size_t errlen);
void da_exp_runs_free(da_exp_runs *r);

/* ---- outputs (report.c) ------------------------------------------------------------- */
/* The CLIP model's zero-shot "tgt_text vs src_text" share on every set, and how far translation
 * moved the pixels; fills the diagnostics above. */
int da_exp_diagnostics(da_experiment *e, char *err, size_t errlen);
/* results.json, report.md, accuracy_original.png, accuracy_adapted.png, examples grids. */
int da_exp_write_outputs(da_experiment *e, char *err, size_t errlen);
/* The names of every output file (NULL-terminated), for --force checks and the tests. */
extern const char *const DA_EXP_OUTPUTS[];

/* ---- choosing the pair (scan.c) ----------------------------------------------------- */
/* For every pair in `pairs` ("5,7;2,4;..."): trains the CNN on originals (and, with_styles, on
 * line drawings and on the held-out renderer itself) and evaluates on originals and on the
 * held-out renderer; writes OUT/pair_scan_metrics.csv and OUT/pair_scan.md. */
int da_exp_scan_pairs(const da_exp_config *cfg, const char *pairs, bool with_styles, char *err, size_t errlen);

#endif
