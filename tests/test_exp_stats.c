/* test_exp_stats.c — the statistics of the experiment report: Student-t CDF (closed forms for 1
 * and 2 degrees of freedom), quantiles against table values, paired and Welch intervals by hand. */
#include <math.h>

#include "experiment/stats.h"
#include "test_util.h"

static void test_cdf(void) {
    /* df = 1 is Cauchy, df = 2 has a closed form too */
    const double ts[] = {-30, -3.2, -1, -0.25, 0, 0.4, 1.7, 6, 45};
    for (int i = 0; i < 9; i++) {
        double t = ts[i];
        double c1 = 0.5 + atan(t) / M_PI, c2 = 0.5 + t / (2 * sqrt(2 + t * t));
        CHECK(fabs(da_stat_t_cdf(t, 1) - c1) < 1e-12, "cdf(%g, 1) = %.15g, expected %.15g", t, da_stat_t_cdf(t, 1), c1);
        CHECK(fabs(da_stat_t_cdf(t, 2) - c2) < 1e-12, "cdf(%g, 2) = %.15g, expected %.15g", t, da_stat_t_cdf(t, 2), c2);
    }
    /* symmetry and monotonicity at a fractional df */
    for (double t = 0.1; t < 10; t *= 1.7) {
        CHECK(fabs(da_stat_t_cdf(t, 6.68) + da_stat_t_cdf(-t, 6.68) - 1) < 1e-13, "symmetry at %g", t);
        CHECK(da_stat_t_cdf(t * 1.7, 6.68) > da_stat_t_cdf(t, 6.68), "monotone at %g", t);
    }
    /* large df approaches the normal distribution: Phi(1.959963985) = 0.975 */
    CHECK(fabs(da_stat_t_cdf(1.959963985, 1e7) - 0.975) < 1e-7, "normal limit %.9f", da_stat_t_cdf(1.959963985, 1e7));
    CHECK(isnan(da_stat_t_cdf(1, 0)) && isnan(da_stat_t_cdf(NAN, 3)), "bad arguments give NaN");
}

static void test_quantile(void) {
    /* two-sided 95 % and 99 % values of standard t tables */
    const struct { double p, df, q; } tab[] = {
        {0.975, 1, 12.7062047362}, {0.975, 2, 4.30265272975}, {0.975, 4, 2.7764451052}, {0.975, 9, 2.26215716280},
        {0.975, 30, 2.04227245630}, {0.995, 3, 5.84090929976}, {0.9, 30, 1.31041503}, {0.025, 4, -2.7764451052},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        double q = da_stat_t_quantile(tab[i].p, tab[i].df);
        CHECK(fabs(q - tab[i].q) < 1e-6 * fabs(tab[i].q), "t quantile p %g df %g: %.10g, expected %.10g", tab[i].p,
              tab[i].df, q, tab[i].q);
    }
    double q = da_stat_t_quantile(0.975, 6.6804);
    CHECK(fabs(da_stat_t_cdf(q, 6.6804) - 0.975) < 1e-10, "quantile inverts the cdf at a fractional df");
    CHECK(da_stat_t_quantile(0.5, 3) == 0 && isnan(da_stat_t_quantile(1, 3)) && isnan(da_stat_t_quantile(0.3, -1)),
          "edge cases");
}

static void test_intervals(void) {
    const double a[5] = {60, 62, 58, 61, 59}, b[5] = {75, 80, 77, 74, 79};
    double m, s;
    da_stat_mean_std(a, 5, &m, &s);
    CHECK(m == 60 && fabs(s - sqrt(2.5)) < 1e-12, "mean/std %g %g", m, s);
    /* d = 15 18 19 13 20: mean 17, sd sqrt(8.5), half-width 2.7764451052 * sqrt(8.5 / 5) */
    da_stat_interval p = da_stat_paired_interval(a, b, 5, 0.95);
    double hw = 2.7764451052 * sqrt(8.5 / 5);
    CHECK(p.mean == 17 && p.df == 4 && fabs(p.lo - (17 - hw)) < 1e-8 && fabs(p.hi - (17 + hw)) < 1e-8,
          "paired %g [%g, %g] df %g", p.mean, p.lo, p.hi, p.df);
    /* Welch: variances 2.5 and 6.5 over 5 each: se² = 1.8, df = 1.8² / (0.5²/4 + 1.3²/4) */
    da_stat_interval w = da_stat_welch_interval(a, 5, b, 5, 0.95);
    double df = 1.8 * 1.8 / (0.25 / 4 + 1.69 / 4), qw = da_stat_t_quantile(0.975, df);
    CHECK(w.mean == 17 && fabs(w.df - df) < 1e-10 && fabs(w.hi - w.lo - 2 * qw * sqrt(1.8)) < 1e-8,
          "welch %g [%g, %g] df %g", w.mean, w.lo, w.hi, w.df);
    /* one seed: the mean is known, the interval is not */
    da_stat_interval one = da_stat_paired_interval(a, b, 1, 0.95);
    CHECK(one.mean == 15 && isnan(one.lo) && isnan(one.hi), "one pair gives no interval");
    /* identical differences: a point */
    const double c[3] = {1, 2, 3}, d[3] = {3, 4, 5};
    da_stat_interval pt = da_stat_paired_interval(c, d, 3, 0.95);
    CHECK(pt.mean == 2 && pt.lo == 2 && pt.hi == 2, "constant differences [%g, %g]", pt.lo, pt.hi);
}

int main(void) {
    test_cdf();
    test_quantile();
    test_intervals();
    return tu_finish("test_exp_stats");
}
