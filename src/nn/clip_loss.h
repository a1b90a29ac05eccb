/* clip_loss.h — DiffusionCLIP's directional CLIP loss: a text direction from prompt templates
 * (source word -> target word) and the loss of how far generated images moved along it. */
#ifndef DA_CLIP_LOSS_H
#define DA_CLIP_LOSS_H

#include "nn/bpe.h"
#include "nn/clip.h"

/* Our built-in prompt templates ("a {} of an object." ...; "{}" takes the word); *n receives
 * their count. */
const char *const *da_clip_templates(int *n);

/* The text direction ΔT (E floats into dir):
 *   normalise( mean over templates of ( norm(E_T(template(target))) - norm(E_T(template(source))) ) ).
 * templates NULL = the built-in ones. Runs without recording a tape. Returns -1 with err set
 * on a tokenizer problem (e.g. a word so long that a prompt exceeds the context). */
int da_clip_text_direction(const da_clip *m, da_bpe *bpe, const char *source, const char *target,
                           const char *const *templates, int n_templates, float *dir, char *err, size_t errlen);

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
