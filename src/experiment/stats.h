/* stats.h — the statistics of the experiment report: mean and standard deviation over seeds,
 * Student-t quantiles, and 95 % intervals of a paired difference or of a Welch difference. */
#ifndef DA_EXP_STATS_H
#define DA_EXP_STATS_H

/* Mean and sample standard deviation (divisor n-1; 0 when n < 2) of x (n). */
void da_stat_mean_std(const double *x, int n, double *mean, double *std);

/* P(T <= t) for Student's t with df > 0 degrees of freedom (df may be fractional, as Welch's). */
double da_stat_t_cdf(double t, double df);
/* The p-quantile (0 < p < 1) of Student's t with df > 0 degrees of freedom. */
double da_stat_t_quantile(double p, double df);

typedef struct {
    double mean;        /* the estimated difference b - a, in the units of the data */
    double lo, hi;      /* the interval at the requested level (NaN when it cannot be computed) */
    double df;          /* degrees of freedom of the t distribution used */
    int n;              /* pairs (paired) or the smaller sample size (Welch) */
} da_stat_interval;

/* Paired difference d_i = b_i - a_i over n pairs: mean(d) ± t_{(1+level)/2, n-1}·sd(d)/sqrt(n).
 * With n < 2 the interval is NaN. When every difference is equal the interval is a point. */
da_stat_interval da_stat_paired_interval(const double *a, const double *b, int n, double level);
/* Welch's interval for mean(b) - mean(a) with the Welch–Satterthwaite degrees of freedom. */
da_stat_interval da_stat_welch_interval(const double *a, int na, const double *b, int nb, double level);

#endif
