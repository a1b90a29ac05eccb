/* diffadapt.h — the public C API of libdiffadapt: text-guided domain adaptation with diffusion
 * models. Load a diffusion model and a CLIP model, fine-tune the diffusion model toward a text
 * (DiffusionCLIP), translate images in memory or a data set on disk, and train and evaluate the
 * reference CNN classifier.
 *
 * Conventions, the same for every function:
 *   - Functions that can fail return 0 on success and -1 on failure; then err (errlen bytes, may
 *     be NULL when errlen is 0) holds a one-line message that names the file or setting at
 *     fault. Nothing is printed.
 *   - Handles are opaque; a handle returned through an out-pointer belongs to the caller and is
 *     released with its _free function (which accepts NULL). On failure *out is set to NULL.
 *   - Images are float arrays N×C×H×W, row-major, values in [-1, 1].
 *   - A data set is named by a spec: a folder of PNG/JPEG (+ optional labels.csv), an IDX file,
 *     fashion-mnist[:train|:test], a .safetensors file with `images` (+ `labels`), or celeba:DIR.
 *   - Long calls report through an optional progress callback; it is called from the calling
 *     thread.
 *   - The only global state is the worker thread count (da_threads_set). One handle must not be
 *     used by two threads at once; different handles may.
 *   - Linking: pkg-config --cflags --libs diffadapt.
 */
#ifndef DIFFADAPT_H
#define DIFFADAPT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- library ---------------------------------------------------------------------------- */

/* The library version, e.g. "0.3.0". A static string. */
const char *da_version(void);

/* Writes what a bug report needs into buf (len bytes, truncated to fit, always terminated):
 * version, commit, compiler, CPU model and vector extensions, OpenBLAS kernel and configuration,
 * thread count — one "key: value" per line. Returns the length the full text needs. */
size_t da_build_info(char *buf, size_t len);

/* Sets the number of worker threads for every later call (OpenMP; OpenBLAS is kept at one thread
 * because the library parallelises around it). n <= 0 means all cores. */
void da_threads_set(int n);
/* The current worker thread count. */
int da_threads_get(void);

/* Progress of a long call: `stage` names the phase ("invert", "generate", "finetune", "train",
 * ...; a static string), done of total units of that stage are finished. */
typedef void (*da_progress_fn)(void *user, const char *stage, int64_t done, int64_t total);

/* ---- diffusion models ------------------------------------------------------------------- */

typedef struct da_model da_model;

/* Loads a diffusion UNet: diffadapt .safetensors (config in its metadata), a PyTorch checkpoint
 * (.pt/.pth/.ckpt/.bin, FILE#key for a nested state dict) or a Hugging Face folder. config_path
 * (may be NULL) is a YAML/JSON model config for files that carry none. *out receives a new
 * handle. Errors: missing/corrupt file, unknown layout, bad config. */
int da_model_load(const char *path, const char *config_path, da_model **out, char *err, size_t errlen);

/* Saves the model (weights and config) to a .safetensors file, atomically. */
int da_model_save(const da_model *m, const char *path, char *err, size_t errlen);

/* The image shape the model works on: channels and side (images are side×side). */
void da_model_image_shape(const da_model *m, int *channels, int *side);

/* 16 hex digits (and a NUL) that identify the weights: equal files give equal hashes. */
void da_model_hash(const da_model *m, char out[17]);

/* A one-line description ("ch 128, ch_mult 1,1,2,2,4,4, ..., 113.67 M parameters") into buf. */
const char *da_model_describe(const da_model *m, char *buf, size_t len);

void da_model_free(da_model *m);

/* ---- CLIP ------------------------------------------------------------------------------- */

typedef struct da_clip_model da_clip_model;

/* Loads a CLIP model: diffadapt .safetensors (the built-in mini-CLIP), an OpenAI CLIP PyTorch
 * checkpoint, or a Hugging Face CLIP folder/file. Its tokenizer vocabulary comes with it.
 * *out receives a new handle. */
int da_clip_model_load(const char *path, da_clip_model **out, char *err, size_t errlen);

void da_clip_model_free(da_clip_model *c);

/* The number of timesteps T of the model's noise schedule (1000 for the public models). */
int da_model_timesteps(const da_model *m);

/* The arithmetic of the model's convolutions in inversion, generation and translation (never in
 * fine-tuning, which differentiates through them; attention and linear layers stay float32):
 *   "fp32"  float32 throughout: what a loaded model does until this is called;
 *   "bf16"  bfloat16 inputs and weights, float32 sums and outputs (oneDNN; AVX-512 CPUs). Its
 *           error against fp32 is bounded and tested (docs/precision.md);
 *   "auto"  bf16 where the CPU has AMX tiles (the only place it measured faster), else fp32.
 * Errors: an unknown name; "bf16" where this build or CPU cannot run it (no oneDNN, AVX2 only). */
int da_model_set_precision(da_model *m, const char *precision, char *err, size_t errlen);

/* The precision in effect: "fp32" or "bf16" (a static string). */
const char *da_model_precision(const da_model *m);

/* ---- DDIM inversion and generation ------------------------------------------------------ */

typedef struct {
    int t0;             /* the latents' timestep: inversion goes up to it, generation starts there (500) */
    int steps;          /* inversion: sequence length, steps-1 model calls; generation: model calls (40) */
    int batch;          /* images per model call (8) */
    float eta;          /* generation: DDIM eta, 0 = deterministic (0) */
    uint64_t seed;      /* generation with eta > 0: the batch starting at image i draws from (seed, i) (0) */
    int clip_x0;        /* generation: clip each step's x0 estimate to [-1,1] (0; not the reference DDIM) */
} da_ddim_settings;

/* Fills s with the defaults above. */
void da_ddim_defaults(da_ddim_settings *s);

/* Deterministic DDIM inversion (eta 0) of n images x (n×C×H×W) in place, from t = 0 up to t0.
 * Errors: bad step settings, a model whose output is not its input's shape, a NaN/inf result. */
int da_invert_images(const da_model *m, const da_ddim_settings *s, float *x, int64_t n, da_progress_fn progress,
                     void *user, char *err, size_t errlen);

/* DDIM generation of n latents x (n×C×H×W) at t0 in place, down to images. With `original`
 * (may be NULL) and ratio < 1, every step uses ratio·eps(m) + (1-ratio)·eps(original) (the
 * degree of change of a fine-tuned m). */
int da_generate_images(const da_model *m, const da_model *original, float ratio, const da_ddim_settings *s, float *x,
                       int64_t n, da_progress_fn progress, void *user, char *err, size_t errlen);

/* ---- translation ------------------------------------------------------------------------ */

typedef struct {
    int t0;          /* return step: how far the images are noised (500) */
    int inv_steps;   /* inversion sequence length, inv_steps-1 model calls (40) */
    int gen_steps;   /* generation steps (6) */
    int batch;       /* images per model call (8) */
    float ratio;     /* degree of change: ε = ratio·ε_finetuned + (1-ratio)·ε_original (1) */
} da_translate_settings;

/* Fills s with the defaults above (the command line's translate defaults). */
void da_translate_defaults(da_translate_settings *s);

/* Translates n images x (n×C×H×W, the model's shape) in place: DDIM inversion (η = 0) with
 * `original` up to t0, then generation with `finetuned` (mixed with `original` when ratio < 1).
 * Both models are only read. The result does not depend on the thread count beyond float
 * rounding. Errors: shapes that differ between the models, bad step settings, a NaN/inf
 * result (x is then undefined). */
int da_translate_images(const da_model *original, const da_model *finetuned, const da_translate_settings *s,
                        float *x, int64_t n, da_progress_fn progress, void *user, char *err, size_t errlen);

/* Checks the settings against the two models before any work: the shapes the models take, the
 * step counts against t0 and the schedules, the ratio and the batch. */
int da_translate_check(const da_model *original, const da_model *finetuned, const da_translate_settings *s, char *err,
                       size_t errlen);

/* A translation over a set in batches, for programs that keep its results as they come (write
 * each batch, resume, split the work): all fields optional (zero = everything, no hooks). */
typedef struct {
    /* the batches [first_batch, end_batch) of the fixed partition into s->batch images; 0, 0 = all */
    int64_t first_batch, end_batch;
    /* 0 skips the batch starting at image `first` (e.g. its images are already written); must
     * answer the same during the whole call */
    int (*want_batch)(void *user, int64_t first, int64_t n);
    /* receives each finished batch (n×C×H×W); a non-zero return stops the call (set err) */
    int (*on_batch)(void *user, int64_t first, int64_t n, const float *images, char *err, size_t errlen);
    void *user;
} da_translate_hooks;

/* Translates n images src (n×C×H×W) as da_translate_images does, batch by batch (s->batch
 * images a batch; a batch is always translated whole), into dst (may be src; may be NULL when
 * on_batch keeps the results). progress reports images of the translated batches. */
int da_translate_batches(const da_model *original, const da_model *finetuned, const da_translate_settings *s,
                         const float *src, float *dst, int64_t n, const da_translate_hooks *hooks,
                         da_progress_fn progress, void *user, char *err, size_t errlen);

/* Translates every image of the data set `data_spec` (it must have the model's shape) and writes
 * out_dir/000000.png, ... in source order, and out_dir/labels.csv (file,label) when the data
 * has labels. out_dir is created when missing; existing files of these names are replaced.
 * The CLI's `translate` adds resuming, shards and a manifest on top. */
int da_translate_dataset(const da_model *original, const da_model *finetuned, const da_translate_settings *s,
                         const char *data_spec, const char *out_dir, da_progress_fn progress, void *user, char *err,
                         size_t errlen);

/* ---- fine-tuning (DiffusionCLIP) -------------------------------------------------------- */

typedef struct {
    int t0;             /* return step (500) */
    int inv_steps;      /* inversion sequence length (40) */
    int train_steps;    /* generation steps while training (6) */
    int epochs;         /* passes over the images (1; the command line's run takes 5) */
    int batch;          /* images per optimiser step (1) */
    int images;         /* how many images of the data set to use; 0 = all (0) */
    float lr;           /* Adam learning rate of the first epoch (8e-6) */
    float lr_gamma;     /* factor on the learning rate after every epoch (1.3) */
    float clip_weight;  /* weight of the directional CLIP loss (3) */
    float l1_weight;    /* weight of the pixel identity loss |x̂0 - x0| (1) */
    int per_step;       /* 0: gradient through the whole generation chain; 1: a loss per step */
    uint64_t seed;      /* dropout masks (0) */
    /* Image-guided direction (NULL: the text direction only): a data set of a few unlabelled target
     * images; the direction becomes normalise((1-w)·text + w·image), image = their mean CLIP
     * embedding minus the fine-tuning images'. */
    const char *tgt_images;
    float tgt_weight;   /* w (1: the images alone) */
} da_finetune_settings;

/* Fills s with the defaults above (the DiffusionCLIP recipe: the same values as the command
 * line's, from one place). */
void da_finetune_defaults(da_finetune_settings *s);

/* Fine-tunes `model` IN PLACE so that, from the DDIM latents of the images of `data_spec`, it
 * generates images moved along the CLIP direction from `src_text` to `tgt_text` (e.g. "photo"
 * -> "sketch"). Keep an unchanged copy (a second da_model_load) to translate with. The CLIP
 * model is only read. Errors: bad settings, data of another shape than the model's, a loss or
 * gradient that became NaN/inf (the model then holds the last good step). */
int da_finetune_text(da_model *model, const da_clip_model *clip, const char *src_text, const char *tgt_text,
                     const char *data_spec, const da_finetune_settings *s, da_progress_fn progress, void *user,
                     char *err, size_t errlen);

/* ---- classifier ------------------------------------------------------------------------- */

typedef struct da_classifier_model da_classifier_model;

typedef struct {
    int epochs;         /* 10 */
    int batch;          /* 32 */
    float lr;           /* Adam learning rate (1e-3) */
    uint64_t seed;      /* initialisation and shuffling (0) */
} da_classifier_settings;

/* Fills s with the defaults above. */
void da_classifier_defaults(da_classifier_settings *s);

/* Trains the reference CNN on the labelled data set `train_spec` (two label values: one logit,
 * more: one per class). *out receives a new handle. Errors: no labels, more than 256 classes,
 * unreadable data. */
int da_classifier_model_train(const char *train_spec, const da_classifier_settings *s, da_progress_fn progress,
                              void *user, da_classifier_model **out, char *err, size_t errlen);

/* Accuracy in percent of the classifier on the labelled data set `data_spec` (same image shape
 * as the training set, labels among the training labels) into *accuracy. */
int da_classifier_model_evaluate(const da_classifier_model *c, const char *data_spec, double *accuracy, char *err,
                                 size_t errlen);

void da_classifier_model_free(da_classifier_model *c);

#ifdef __cplusplus
}
#endif

#endif
