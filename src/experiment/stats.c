/* stats.c — mean/std over seeds, the Student-t distribution (through the regularised incomplete
 * beta function) and the paired and Welch intervals that the experiment report prints. */
#include "experiment/stats.h"

#include <math.h>

void da_stat_mean_std(const double *x, int n, double *mean, double *std) {
    double m = 0, ss = 0;
    for (int i = 0; i < n; i++) m += x[i];
    m = n > 0 ? m / n : NAN;
    for (int i = 0; i < n; i++) ss += (x[i] - m) * (x[i] - m);
    *mean = m;
    *std = n > 1 ? sqrt(ss / (n - 1)) : 0;
}

/* The continued fraction of the incomplete beta function, evaluated with the modified Lentz
 * method; converges quickly for x < (a+1)/(a+b+2). */
static double beta_cf(double a, double b, double x) {
    const double tiny = 1e-300, eps = 1e-15;
    double c = 1, d = 1 - (a + b) * x / (a + 1);
    if (fabs(d) < tiny) d = tiny;
    d = 1 / d;
    double h = d;
    for (int m = 1; m <= 1000; m++) {
        /* even term */
        double num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
        d = 1 + num * d;
        c = 1 + num / c;
        if (fabs(d) < tiny) d = tiny;
        if (fabs(c) < tiny) c = tiny;
        d = 1 / d;
        h *= d * c;
        /* odd term */
        num = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1));
        d = 1 + num * d;
        c = 1 + num / c;
        if (fabs(d) < tiny) d = tiny;
        if (fabs(c) < tiny) c = tiny;
        d = 1 / d;
        double step = d * c;
        h *= step;
        if (fabs(step - 1) < eps) break;
    }
    return h;
}

/* Regularised incomplete beta I_x(a, b). */
static double beta_inc(double a, double b, double x) {
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    double ln_front = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
    if (x < (a + 1) / (a + b + 2)) return exp(ln_front) * beta_cf(a, b, x) / a;
    return 1 - exp(ln_front) * beta_cf(b, a, 1 - x) / b;
}

double da_stat_t_cdf(double t, double df) {
    if (isnan(t) || !(df > 0)) return NAN;
    if (isinf(t)) return t > 0 ? 1 : 0;
    /* P(|T| > |t|) = I_{df/(df+t²)}(df/2, 1/2) */
    double tail = 0.5 * beta_inc(df / 2, 0.5, df / (df + t * t));
    return t > 0 ? 1 - tail : tail;
}

double da_stat_t_quantile(double p, double df) {
    if (!(p > 0 && p < 1) || !(df > 0)) return NAN;
    if (p == 0.5) return 0;
    if (p < 0.5) return -da_stat_t_quantile(1 - p, df);
    /* bracket, then bisect: the CDF is monotone, so this cannot fail */
    double lo = 0, hi = 1;
    while (da_stat_t_cdf(hi, df) < p && hi < 1e300) {
        lo = hi;
        hi *= 2;
    }
    for (int i = 0; i < 200 && hi - lo > 1e-13 * (1 + hi); i++) {
        double mid = 0.5 * (lo + hi);
        if (da_stat_t_cdf(mid, df) < p) lo = mid;
        else hi = mid;
    }
    return 0.5 * (lo + hi);
}

da_stat_interval da_stat_paired_interval(const double *a, const double *b, int n, double level) {
    da_stat_interval r = {NAN, NAN, NAN, NAN, n};
    if (n < 1) return r;
    double m = 0, ss = 0;
    for (int i = 0; i < n; i++) m += b[i] - a[i];
    m /= n;
    r.mean = m;
    if (n < 2) return r;
    for (int i = 0; i < n; i++) ss += (b[i] - a[i] - m) * (b[i] - a[i] - m);
    double se = sqrt(ss / (n - 1) / n);
    r.df = n - 1;
    double q = da_stat_t_quantile(0.5 + level / 2, r.df);
    r.lo = m - q * se;
    r.hi = m + q * se;
    return r;
}

da_stat_interval da_stat_welch_interval(const double *a, int na, const double *b, int nb, double level) {
    da_stat_interval r = {NAN, NAN, NAN, NAN, na < nb ? na : nb};
    if (na < 1 || nb < 1) return r;
    double ma, sa, mb, sb;
    da_stat_mean_std(a, na, &ma, &sa);
    da_stat_mean_std(b, nb, &mb, &sb);
    r.mean = mb - ma;
    if (na < 2 || nb < 2) return r;
    double va = sa * sa / na, vb = sb * sb / nb, se2 = va + vb;
    if (se2 == 0) {
        /* both samples constant: the difference is known exactly */
        r.lo = r.hi = r.mean;
        r.df = na + nb - 2;
        return r;
    }
    r.df = se2 * se2 / (va * va / (na - 1) + vb * vb / (nb - 1));
    double q = da_stat_t_quantile(0.5 + level / 2, r.df);
    r.lo = r.mean - q * sqrt(se2);
    r.hi = r.mean + q * sqrt(se2);
    return r;
}
