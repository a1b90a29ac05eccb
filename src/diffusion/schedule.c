/* schedule.c — linear beta schedule, ā, SNR, P2 weights and DDIM timestep sequences.
 * Kept in float64 (the reference computes betas in float64 with numpy). */
#include "diffusion/schedule.h"

#include <math.h>
#include <stdio.h>

int da_schedule_linear(da_schedule *s, int T, double beta_start, double beta_end, char *err, size_t errlen) {
    if (T < 2 || T > DA_SCHEDULE_MAX_T) {
        snprintf(err, errlen, "num_diffusion_timesteps %d is out of range (2..%d)", T, DA_SCHEDULE_MAX_T);
        return -1;
    }
    if (!(beta_start > 0 && beta_end < 1 && beta_start <= beta_end)) {
        snprintf(err, errlen, "beta range %g..%g is invalid (need 0 < beta_start <= beta_end < 1)", beta_start, beta_end);
        return -1;
    }
    s->T = T;
    /* numpy linspace: start + i*step, with the last element set to stop exactly */
    double step = (beta_end - beta_start) / (double)(T - 1);
    double prod = 1.0;
    for (int t = 0; t < T; t++) {
        s->beta[t] = t == T - 1 ? beta_end : beta_start + (double)t * step;
        prod *= 1.0 - s->beta[t];
        s->abar[t] = prod;
    }
    return 0;
}

double da_schedule_abar(const da_schedule *s, int t) { return t < 0 ? 1.0 : s->abar[t]; }

double da_schedule_snr(const da_schedule *s, int t) {
    double a = da_schedule_abar(s, t);
    return a / (1.0 - a);
}

double da_schedule_p2_weight(const da_schedule *s, int t, double k, double gamma) {
    if (gamma == 0) return 1.0;
    return 1.0 / pow(k + da_schedule_snr(s, t), gamma);
}

void da_ddim_timesteps(int n, int t0, int *seq, int *seq_next) {
    /* numpy: y = arange(n) * (1/(n-1)); y[-1] = 1; then y * t0 truncated by int() */
    double step = 1.0 / (double)(n - 1);
    for (int i = 0; i < n; i++) {
        double y = i == n - 1 ? 1.0 : (double)i * step;
        seq[i] = (int)(y * (double)t0);
    }
    if (seq_next) {
        seq_next[0] = -1;
        for (int i = 1; i < n; i++) seq_next[i] = seq[i - 1];
    }
}

int da_ddim_check_steps(const da_schedule *s, int n, int t0, char *err, size_t errlen) {
    if (t0 < 1 || t0 >= s->T) {
        snprintf(err, errlen, "--t0 %d is out of range: it must lie in 1..%d", t0, s->T - 1);
        return -1;
    }
    if (n < 2 || n > t0 + 1) {
        snprintf(err, errlen, "the number of DDIM steps %d is out of range: it must lie in 2..%d (t0 + 1)", n, t0 + 1);
        return -1;
    }
    return 0;
}
