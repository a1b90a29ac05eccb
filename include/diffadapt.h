/* diffadapt.h — the public C API of libdiffadapt: text-guided domain adaptation with diffusion
 * models. Load a diffusion model and a CLIP model, fine-tune the diffusion model toward a text
 * (DiffusionCLIP), translate images in memory or a data set on disk, and train and evaluate the
 * reference CNN classifier.
 *
 * Conventions, the same for every function:
 *   - Functions that can fail return 0 on success and -1 on failure; then err (errlen bytes, may
 *     be NULL when errlen is 0) holds a one-line message that names the file or setting at
 *     fault. Nothing is printed.
 *   - Handles are opaque (da_model, da_clip_model, da_finetune_run, da_classifier_model); a handle
 *     returned through an out-pointer belongs to the caller and is released with its _free
 *     function (which accepts NULL). On failure *out is set to NULL.
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

/* Loads a CLIP model as da_clip_model_load does, with the tokenizer vocabulary from vocab_path
 * (bpe_simple_vocab_16e6.txt.gz, or a folder with vocab.json + merges.txt) when it is not NULL,
 * else the model's own. Errors: those of da_clip_model_load, an unreadable vocabulary. */
int da_clip_model_load_vocab(const char *path, const char *vocab_path, da_clip_model **out, char *err, size_t errlen);

/* Loads a CLIP model without a tokenizer: it can only embed images (e.g. as the identity network
 * of fine-tuning), and a model that carries no vocabulary loads too. */
int da_clip_model_load_image_only(const char *path, da_clip_model **out, char *err, size_t errlen);

/* A one-line description of the CLIP model's architecture into buf (len bytes); returns buf. */
const char *da_clip_model_describe(const da_clip_model *c, char *buf, size_t len);

/* 16 hex digits (and a NUL) that identify the weights: equal files give equal hashes. */
void da_clip_model_hash(const da_clip_model *c, char out[17]);

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
    /* (fields added after the first release: keep new ones at the end) */
    int ddim_batch;     /* images per model call when inverting the images and generating previews (8) */
    int identity;       /* what the l1 identity term compares: a DA_FINETUNE_ID_ value (pixels) */
    float id_weight;    /* weight of the identity network's term (0: off; needs an identity model) */
    int recompute;      /* chain mode: rebuild each step's tape during backward; less memory, same result (0) */
    int views;          /* the CLIP loss also over this many random views of the images (0: the image only) */
    float view_min_scale;   /* smallest crop side of a view, as a fraction of the image (0.6) */
} da_finetune_settings;

/* settings.identity: what the l1 identity term compares between the generated and the source image. */
enum {
    DA_FINETUNE_ID_PIXELS = 0,        /* |x̂0 - x0| (DiffusionCLIP) */
    DA_FINETUNE_ID_EDGES = 1,         /* the magnitudes of neighbour differences: outlines stay, colours may change */
    DA_FINETUNE_ID_COARSE_EDGES = 2,  /* the same on 4×4 block maxima: an outline may become a stroke */
};

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

/* A fine-tuning run that goes epoch by epoch, with its state saved and restored between epochs
 * (da_finetune_text is one whole run). In order:
 *   da_finetune_run_create                      checks, the CLIP direction, the optimiser
 *   da_finetune_run_invert or _set_latents      the images' DDIM latents, from the unchanged model
 *   da_finetune_run_load_state (optional)       continue a run saved with da_finetune_run_save_state
 *   da_finetune_run_epoch until epochs_done == settings.epochs (save_state after each to resume)
 *   da_finetune_run_save_model, da_finetune_run_free
 * Epoch e (0-based) uses the learning rate lr·lr_gamma^e and the same dropout seeds however the
 * run was split, so a resumed run ends with the weights of an uninterrupted one, bit for bit. */
typedef struct da_finetune_run da_finetune_run;

/* The images a run learns from, in memory. */
typedef struct {
    const float *images;      /* n×C×H×W in the model's image shape; settings.images > 0 takes the first ones */
    int64_t n;
    /* target images for the image-guided direction (NULL: settings.tgt_images, if any, is loaded
     * instead; giving both is an error): n_tgt×C×H×W in the same shape */
    const float *tgt_images;
    int64_t n_tgt;
    /* what names the images and the target images in the run's settings text, which a saved
     * state must match to be loaded: 0 = a hash of the images themselves */
    uint64_t data_id, tgt_id;
} da_finetune_data;

/* Creates a run that fine-tunes `model` IN PLACE (borrowed: it must outlive the run, and nothing
 * else may change it meanwhile) toward the CLIP direction from src_text to tgt_text (mixed with
 * the image direction to the target images, if any). clip (with its tokenizer) and id_model (an
 * identity network used when settings.id_weight > 0; may be NULL otherwise; its tokenizer is not
 * needed) are only read and must outlive the run. The run copies the images and the texts. The
 * model's hash is taken here: it names the original in the settings text. *out receives a new
 * handle. Errors: a missing argument, bad settings (the message names the setting), no images,
 * target images given twice or of another shape, a CLIP model without a tokenizer, id_weight
 * without an identity model, text and image directions that cancel. */
int da_finetune_run_create(da_model *model, const da_clip_model *clip, const da_clip_model *id_model,
                           const char *src_text, const char *tgt_text, const da_finetune_data *data,
                           const da_finetune_settings *s, da_finetune_run **out, char *err, size_t errlen);

/* Computes the images' latents: DDIM inversion (η = 0) up to settings.t0 in settings.inv_steps
 * steps, settings.ddim_batch images per model call, with the model as it is now. Allowed only
 * before the first epoch and before load_state (the latents come from the original model).
 * progress (may be NULL) reports stage "invert" in images. */
int da_finetune_run_invert(da_finetune_run *run, da_progress_fn progress, void *user, char *err, size_t errlen);

/* Sets the latents instead (n×C×H×W for the n images the run uses, e.g. from a cache of an
 * earlier da_finetune_run_latents): copied. Same rule as da_finetune_run_invert. */
int da_finetune_run_set_latents(da_finetune_run *run, const float *latents, char *err, size_t errlen);

/* The run's latents (n×C×H×W, owned by the run, valid until it is freed), or NULL before they
 * are computed or set. */
const float *da_finetune_run_latents(const da_finetune_run *run);

/* The number of images the run learns from (n×C×H×W of the latents). */
int64_t da_finetune_run_images(const da_finetune_run *run);

/* What one training batch reports (epochs are 1-based here). */
typedef struct {
    int epoch, epochs;
    int64_t first, n, images;         /* images first .. first+n-1 of the run's `images` */
    double loss;                      /* clip_weight·clip + l1_weight·l1 + id_weight·id */
    double clip, dir, l1, id;         /* the terms: -log((2 - dir)/2), mean(1 - cos), identity, identity network */
    double lr, seconds;               /* the epoch's learning rate; the batch's wall time */
} da_finetune_batch_report;

/* What a finished epoch reports: the means of the terms over its images, and memory. */
typedef struct {
    int epoch, epochs;
    double loss, clip, dir, l1, id;
    double lr, seconds;
    int64_t arena_peak_bytes;         /* the step arena at its largest so far */
    int64_t model_bytes;              /* model parameters + gradients + Adam's two moments */
    int64_t frozen_bytes;             /* the CLIP and identity networks' weights */
} da_finetune_epoch_report;

typedef void (*da_finetune_batch_fn)(void *user, const da_finetune_batch_report *r);

/* Trains the next epoch (epochs_done + 1 of settings.epochs) over the run's images,
 * settings.batch at a time in order; computes the latents first (without progress) when neither
 * invert nor set_latents was called. on_batch (may be NULL) is called after every batch with
 * `user`; report (may be NULL) receives the epoch's figures. Errors: every epoch is done, a loss or
 * gradient that became NaN/inf (the message names the epoch and image; the model then holds the
 * last good step and epochs_done is unchanged). */
int da_finetune_run_epoch(da_finetune_run *run, da_finetune_batch_fn on_batch, void *user,
                          da_finetune_epoch_report *report, char *err, size_t errlen);

/* The epochs finished so far (by this run or the state it loaded). */
int da_finetune_run_epochs_done(const da_finetune_run *run);

/* The learning rate of the next epoch (after a failed epoch: of that epoch). */
double da_finetune_run_learning_rate(const da_finetune_run *run);

/* The direction the run moves along: writes min(len, dim) floats to dir (may be NULL) and returns
 * dim, the CLIP embedding size. Normalised. */
int da_finetune_run_direction(const da_finetune_run *run, float *dir, int len);

/* What a saved state must agree with to be loaded: the method's settings (not the epoch count, the
 * threads or recompute), the hashes of the original model, the images, CLIP and the identity
 * network. Owned by the run, valid until it is freed. */
const char *da_finetune_run_settings_text(const da_finetune_run *run);

/* Generates n images in place from latents x (n×C×H×W, e.g. of held-back images) with the model
 * as it is now: settings.train_steps DDIM steps from t0, dropout off. For previews between epochs;
 * it does not change the run. */
int da_finetune_run_generate(const da_finetune_run *run, float *x, int64_t n, char *err, size_t errlen);

/* Saves the state to continue from (a .safetensors file, written atomically: an existing file is
 * replaced only once the new one is complete): the model's weights, Adam's moments, epochs_done
 * and the settings text. */
int da_finetune_run_save_state(const da_finetune_run *run, const char *path, char *err, size_t errlen);

/* Restores a state saved by da_finetune_run_save_state: the model's weights, Adam's moments and
 * epochs_done. Needs the latents first (invert or set_latents). The file's settings text must equal
 * the run's (settings.epochs may differ: a run can be extended). Errors (nothing is changed then):
 * an unreadable or truncated file, a file that is no fine-tuning state, other settings (the
 * message shows both texts on lines of their own), tensors of another shape. */
int da_finetune_run_load_state(da_finetune_run *run, const char *path, char *err, size_t errlen);

/* Saves the fine-tuned model (as da_model_save) with what it was made from in its metadata: the
 * texts, the settings text, the epochs done and base_name (e.g. the original's path; may be NULL)
 * with the original's hash. */
int da_finetune_run_save_model(const da_finetune_run *run, const char *path, const char *base_name, char *err,
                               size_t errlen);

/* Frees the run (the model keeps its fine-tuned weights). Accepts NULL. */
void da_finetune_run_free(da_finetune_run *run);

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

/* Labelled (or unlabelled) images in memory. */
typedef struct {
    const float *images;      /* n×c×h×w */
    const int64_t *labels;    /* n label values, or NULL */
    int64_t n;
    int c, h, w;
} da_image_set;

/* A set evaluated after every epoch of a training. */
typedef struct {
    const char *name;         /* its name in reports and metrics.csv: non-empty, no commas or quotes */
    da_image_set set;         /* labelled, the training images' shape, labels among the training labels */
} da_classifier_eval;

#define DA_CLASSIFIER_MAX_EVAL 16
/* The columns of the metrics CSV (accuracy in percent). */
#define DA_CLASSIFIER_METRICS_HEADER "train_set,seed,epoch,train_loss,train_acc,eval_set,eval_acc"

/* What a finished epoch of a classifier training reports. */
typedef struct {
    int epoch, epochs;        /* 1-based */
    double train_loss;        /* mean loss per image over the epoch's batches */
    double train_acc;         /* accuracy in percent on the epoch's training batches */
    int n_eval;
    const double *eval_acc;   /* (n_eval) accuracy in percent of each eval set after the epoch */
    double seconds;           /* the epoch's wall time, evaluation included */
    double elapsed;           /* the training's wall time so far */
} da_classifier_epoch_report;

/* What a training does besides training; every field is optional (zero: nothing). */
typedef struct {
    const da_classifier_eval *evals;   /* n_eval (at most DA_CLASSIFIER_MAX_EVAL) sets to evaluate */
    int n_eval;
    const char *train_name;            /* the train_set column of the metrics ("train") */
    /* a CSV that gets n_eval rows after every epoch: created with DA_CLASSIFIER_METRICS_HEADER,
     * or appended to when it starts with that header (several trainings may share it); every
     * write replaces the file atomically */
    const char *metrics_path;
    void (*on_epoch)(void *user, const da_classifier_epoch_report *r);   /* after every epoch */
    void *user;
} da_classifier_train_options;

/* Trains the reference CNN on labelled images in memory as da_classifier_model_train does, with
 * eval sets, metrics and a report after every epoch (o may be NULL). The images are only read.
 * *out receives a new handle. Errors: those of da_classifier_model_train, eval sets without
 * labels, of another shape, with unknown labels or bad names, a metrics file with another header
 * or that cannot be written, a training loss that became NaN/inf. */
int da_classifier_model_train_set(const da_image_set *train, const da_classifier_settings *s,
                                  const da_classifier_train_options *o, da_classifier_model **out, char *err,
                                  size_t errlen);

/* The label values behind the classifier's classes, in class order: writes min(max, count) of
 * them to values (may be NULL) and returns the count. */
int da_classifier_model_classes(const da_classifier_model *c, int64_t *values, int max);

/* Saves the classifier to a .safetensors file, atomically: weights, architecture and the
 * metadata "classes", a comma-separated name per class (class_names, e.g. "5,7" or
 * "shirt,sneaker"; NULL: the label values). */
int da_classifier_model_save(const da_classifier_model *c, const char *path, const char *class_names, char *err,
                             size_t errlen);

/* Loads a classifier saved by da_classifier_model_save (or `diffadapt train-classifier`). Its
 * label values come from the "classes" metadata when that lists one integer per class, else
 * they are 0..K-1. *out receives a new handle. Errors: unreadable file, not a classifier,
 * tensors of another shape. */
int da_classifier_model_load(const char *path, da_classifier_model **out, char *err, size_t errlen);

void da_classifier_model_free(da_classifier_model *c);

#ifdef __cplusplus
}
#endif

#endif
