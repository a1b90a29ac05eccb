/* schedule.h — the DDPM noise schedule (linear betas), the DDIM timestep sequences and the
 * P2 loss weights, all as in the DiffusionCLIP/DDIM reference code (design.md §2). */
#ifndef DA_SCHEDULE_H
#define DA_SCHEDULE_H

#include <stddef.h>

#define DA_SCHEDULE_MAX_T 4000

typedef struct {
    int T;                               /* number of diffusion steps, t = 0..T-1 */
    double beta[DA_SCHEDULE_MAX_T];      /* (T) */
    double abar[DA_SCHEDULE_MAX_T];      /* (T) ā_t = prod_{s<=t} (1 - beta_s) */
} da_schedule;

/* beta = linspace(beta_start, beta_end, T) in float64. Returns -1 with err set on a bad range. */
int da_schedule_linear(da_schedule *s, int T, double beta_start, double beta_end, char *err, size_t errlen);
/* ā_t; ā_{-1} = 1 (the "next" step of the last generation step). */
double da_schedule_abar(const da_schedule *s, int t);
/* Signal-to-noise ratio ā_t / (1 - ā_t). */
double da_schedule_snr(const da_schedule *s, int t);
/* P2 weight 1 / (k + SNR_t)^gamma (Choi et al. 2022); gamma = 0 gives 1. */
double da_schedule_p2_weight(const da_schedule *s, int t, double k, double gamma);

/* seq[i] = int(linspace(0, 1, n)[i] * t0) (numpy's linspace, float64, truncation), i < n;
 * seq_next = [-1] + seq[:-1] (may be NULL). n >= 2 and 0 <= t0 < T are the caller's to check
 * (da_ddim_check_steps). */
void da_ddim_timesteps(int n, int t0, int *seq, int *seq_next);
/* Validates user-supplied step counts; returns -1 with a clear message otherwise. */
int da_ddim_check_steps(const da_schedule *s, int n, int t0, char *err, size_t errlen);

#endif
