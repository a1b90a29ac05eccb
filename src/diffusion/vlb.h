/* vlb.h — the learned-variance part of improved-DDPM training (Nichol & Dhariwal 2021): one term
 * L_t of the variational bound for a model that predicts ε and a variance interpolation v, and
 * the "hybrid" loss L_simple + λ·L_vlb that trains such a model (ADM configs with learn_sigma).
 *
 * The formulas follow improved_diffusion/gaussian_diffusion.py (_vb_terms_bpd with
 * model_var_type LEARNED_RANGE and clip_denoised=False) and losses.py (normal_kl,
 * discretized_gaussian_log_likelihood), all per element in float64:
 *   x̂0      = sqrt(1/ā_t)·x_t − sqrt(1/ā_t − 1)·ε                  (ε held fixed: stop-gradient)
 *   μ(a)    = c1_t·a + c2_t·x_t,  c1_t = β_t·sqrt(ā_{t−1})/(1−ā_t),  c2_t = (1−ā_{t−1})·sqrt(1−β_t)/(1−ā_t)
 *   β̃_t     = β_t·(1−ā_{t−1})/(1−ā_t),  ā_{−1} = 1;  log β̃ "clipped": log β̃_1 at t = 0
 *   log Σ   = f·log β_t + (1−f)·log β̃_t,  f = (v+1)/2
 *   t > 0:  KL( N(μ(x0), β̃_t) ‖ N(μ(x̂0), Σ) ) = ½(−1 + log Σ − log β̃ + β̃/Σ + (μ(x0)−μ(x̂0))²/Σ)
 *   t = 0:  −log P(x0) of the discretised Gaussian N(μ(x̂0), Σ) over bins of width 2/255 (the
 *           outer bins open-ended for x0 < −0.999 / > 0.999), with the tanh approximation of Φ
 *           and the reference's clamps at 1e-12
 * each averaged over the C·H·W elements of a sample and divided by ln 2 (bits per dimension). */
#ifndef DA_VLB_H
#define DA_VLB_H

#include <stdint.h>

#include "diffusion/ddim.h"
#include "diffusion/schedule.h"
#include "tensor/ops.h"

/* L_t per sample in bits/dim: v (N,C,H,W) the model's variance channels (differentiated),
 * eps, x0, xt (N,C,H,W) the model's ε, the data and the noised data (not differentiated: the
 * reference detaches ε here so that this term trains only the variance), t (N) timesteps in
 * 0..T-1 with T >= 2. Returns (N). */
da_tensor *da_vlb_bpd(da_ctx *ctx, const da_schedule *s, da_tensor *v, const da_tensor *eps, const da_tensor *x0,
                      const da_tensor *xt, const int *t);

/* The hybrid loss for a learned-variance model. out_fn returns the full output (N,2C,H,W), ε
 * first, then v. With x_t built from x0 and noise as in da_diffusion_loss:
 *   loss = mean_n [ λ_n · mean_{c,h,w} (ε_θ − noise)²  +  (T/1000) · L_{t_n} ]
 * λ_n the P2 weight (γ = 0: 1). This is the reference's RESCALED_MSE loss ("hybrid", its
 * default with learn_sigma): since t is uniform, T·E[L_t] = L_vlb, so (T/1000)·L_t is
 * λ·L_vlb with λ = 0.001. vb_out (may be NULL) gets the batch mean of L_t (bits/dim, before
 * the T/1000 factor). Returns a 0-d tensor. */
da_tensor *da_hybrid_loss(da_ctx *ctx, const da_schedule *s, da_eps_batch_fn out_fn, void *user, const float *x0,
                          const float *noise, const int *t, const int64_t shape[4], float p2_k, float p2_gamma,
                          float *vb_out);

#endif
