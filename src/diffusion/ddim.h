/* ddim.h — DDIM steps, inversion and generation over any ε-predicting denoiser, kept apart
 * from the network (a callback), and the ε-MSE training loss with optional P2 weighting. */
#ifndef DA_DDIM_H
#define DA_DDIM_H

#include <stdint.h>

#include "diffusion/schedule.h"
#include "tensor/ops.h"
#include "tensor/rng.h"

/* ε prediction for x (N,C,H,W) at timestep t (the same for the whole batch); returns an arena
 * tensor of x's shape. Records on the tape when ctx has grad enabled. */
typedef da_tensor *(*da_eps_fn)(da_ctx *ctx, da_tensor *x, int t, void *user);

/* The "degree of change" of the reference's translation (its model_ratio): at every step
 *   ε = r·ε_a(x, t) + (1−r)·ε_b(x, t),   a = the fine-tuned model, b = the original one.
 * r = 1 is plain generation with a, r = 0 a reconstruction with b. */
typedef struct {
    da_eps_fn a;
    void *a_user;
    da_eps_fn b;
    void *b_user;
    float r;                      /* in [0,1] */
} da_eps_mix;
/* An ε function with user = const da_eps_mix *. At r = 1 only a is called and at r = 0 only b,
 * so those ends give exactly the single models' outputs; between, both are called and mixed
 * with differentiable ops. */
da_tensor *da_eps_mixed(da_ctx *ctx, da_tensor *x, int t, void *user);
/* The ε function and user to pass to the loops below: straight a when r == 1 (or b is NULL),
 * else the mix. */
void da_eps_mix_use(da_eps_mix *mix, da_eps_fn *fn, void **user);
/* 0 when r lies in [0,1]; else -1 with a message naming --model-ratio. */
int da_eps_mix_check_ratio(float r, char *err, size_t errlen);

/* One DDIM step from t to t_next (t_next = -1 means ā_next = 1), differentiable in x and eps:
 *   x0_t   = (x - sqrt(1-ā_t)·eps) / sqrt(ā_t)
 *   x_next = sqrt(ā_next)·x0_t + c2·eps + c1·z,  c1 = η·sqrt((1-ā_t/ā_next)(1-ā_next)/(1-ā_t)),
 *   c2 = sqrt(1-ā_next-c1²)   (η = 0: c1 = 0, c2 = sqrt(1-ā_next); z may then be NULL).
 * z is standard normal noise of x's shape (not differentiated). x0_out (may be NULL) gets x0_t. */
da_tensor *da_ddim_step(da_ctx *ctx, const da_schedule *s, da_tensor *x, da_tensor *eps, int t, int t_next,
                        float eta, da_tensor *z, da_tensor **x0_out);

/* Runs the model calls for the pairs (ts[i], ts_next[i]), i < n_calls, all on ctx (so with grad
 * enabled the whole chain stays on the tape, for gradients through every step). Noise for η > 0
 * comes from rng (may be NULL when eta == 0). Returns the final x. */
da_tensor *da_ddim_run(da_ctx *ctx, const da_schedule *s, da_eps_fn eps_fn, void *user, da_tensor *x,
                       const int *ts, const int *ts_next, int n_calls, float eta, da_rng *rng);

/* Progress hook for the loops below: called after each model call (may be NULL). */
typedef void (*da_ddim_progress_fn)(void *user, int done, int total);

/* Inference loops over a float buffer x (N,C,H,W) updated in place, with bounded memory (one
 * scratch context reset after every step, no tape). Inversion: n-1 calls with
 * (t, t_next) in zip(seq[:-1], seq[1:]), from 0 up to t0, η = 0. Generation: n calls with
 * (t, t_next) in zip(reversed(seq), reversed(seq_next)), from t0 down to -1; η > 0 draws noise
 * from a stream seeded `seed`. Both check n and t0 and return -1 with err set when invalid. */
int da_ddim_invert(const da_schedule *s, da_eps_fn eps_fn, void *user, float *x, const int64_t shape[4],
                   int n, int t0, da_ddim_progress_fn progress, void *progress_user, char *err, size_t errlen);
int da_ddim_generate(const da_schedule *s, da_eps_fn eps_fn, void *user, float *x, const int64_t shape[4],
                     int n, int t0, float eta, uint64_t seed, da_ddim_progress_fn progress, void *progress_user,
                     char *err, size_t errlen);

/* Generation as above; with clip_x0 every step clips x0_t to [-1,1] and recomputes ε from the
 * clipped x0 (ε = (x - sqrt(ā_t)·x0)/sqrt(1-ā_t)), as DDPM-style samplers do ("clip_denoised").
 * Not part of the reference DDIM (nor invertible); `sample` offers it for short-trained models
 * whose x0 estimates at large t overshoot. */
int da_ddim_generate_ex(const da_schedule *s, da_eps_fn eps_fn, void *user, float *x, const int64_t shape[4],
                        int n, int t0, float eta, uint64_t seed, bool clip_x0, da_ddim_progress_fn progress,
                        void *progress_user, char *err, size_t errlen);

/* The training loss at per-sample timesteps t (N): x_t = sqrt(ā_t)·x0 + sqrt(1-ā_t)·noise is
 * built from data (x0, noise (N,C,H,W) are not differentiated), and
 *   loss = mean_n λ_n · mean_{c,h,w} (eps_fn(x_t, t_n) - noise)²,  λ_n = 1/(k + SNR_{t_n})^γ
 * (γ = 0: plain ε-MSE). The denoiser here takes per-sample timesteps. Returns a 0-d tensor. */
typedef da_tensor *(*da_eps_batch_fn)(da_ctx *ctx, da_tensor *x, const int *t, void *user);
da_tensor *da_diffusion_loss(da_ctx *ctx, const da_schedule *s, da_eps_batch_fn eps_fn, void *user,
                             const float *x0, const float *noise, const int *t, const int64_t shape[4],
                             float p2_k, float p2_gamma);

#endif
