/* clip_loss.h — DiffusionCLIP's directional CLIP loss: a text direction from prompt templates
 * (source word -> target word) and the loss of how far generated images moved along it. */
#ifndef DA_CLIP_LOSS_H
#define DA_CLIP_LOSS_H

#include "nn/clip.h"
#include "text/bpe.h"

/* Our built-in prompt templates ("a {} of an object." ...; "{}" takes the word); *n receives
 * their count. */
const char *const *da_clip_templates(int *n);

/* The text direction ΔT (E floats into dir):
 *   normalise( mean over templates of ( norm(E_T(template(target))) - norm(E_T(template(source))) ) ).
 * templates NULL = the built-in ones. Runs without recording a tape. Returns -1 with err set
 * on a tokenizer problem (e.g. a word so long that a prompt exceeds the context). */
int da_clip_text_direction(const da_clip *m, da_bpe *bpe, const char *source, const char *target,
                           const char *const *templates, int n_templates, float *dir, char *err, size_t errlen);

/* The image direction of a few target images (StyleGAN-NADA's image-guided mode), E floats into dir:
 *   normalise( mean over tgt of norm(E_I(tgt)) - mean over src of norm(E_I(src)) ),
 * images (n,C,H,W) in [-1,1], without a tape. Returns -1 with err set when a set is empty or the
 * two means coincide (no direction). */
int da_clip_image_direction(const da_clip *m, const float *src, int64_t n_src, const float *tgt, int64_t n_tgt,
                            int64_t C, int64_t H, int64_t W, float *dir, char *err, size_t errlen);
/* out (E) = normalise((1 - w)·text + w·image) for two normalised directions; w in [0,1]
 * (0: the text direction, 1: the image direction). Returns -1 when they cancel. */
int da_clip_mix_directions(const float *text, const float *image, float w, int64_t E, float *out);

/* The loss from image features: src (B,E) features of the source images x0 (treated as
 * constants), gen (B,E) features of the generated images, text_dir (E):
 *   ΔI = norm(gen) - norm(src),  L_dir = mean over the batch of (1 - cos(ΔI, ΔT)),
 *   L_clip = -log((2 - L_dir) / 2)        (the batch mean is inside the log, as DiffusionCLIP does)
 * Returns a 0-d tensor; *l_dir (may be NULL) receives L_dir. */
da_tensor *da_clip_directional_loss_features(da_ctx *ctx, da_tensor *src, da_tensor *gen, const float *text_dir,
                                             float *l_dir);
/* Same from generated images x (B,C,H,W) in [-1,1] (through da_clip_image_features, so the
 * gradient reaches x; freeze the model with da_clip_requires_grad(m, false) to get only that). */
da_tensor *da_clip_directional_loss(da_ctx *ctx, const da_clip *m, da_tensor *src, da_tensor *x, const float *text_dir,
                                    float *l_dir);

#endif
