/* plot.c — PNG line plots with PLplot's pngcairo driver (see plot.h).
 * Each call opens its own PLplot stream and ends it, so calls do not disturb one another. */
#include "util/plot.h"

#include <errno.h>
#include <math.h>
#include <plplot.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/atomic.h"

/* cmap0: 0 background, 1 axes and text, 2 grid, 3.. series (a colour-blind friendly set). */
static const int PALETTE[][3] = {
    {255, 255, 255}, {0, 0, 0}, {215, 215, 215},
    {31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189}, {140, 86, 75},
    {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}, {0, 0, 128}, {128, 0, 0},
};
#define N_PALETTE (int)(sizeof PALETTE / sizeof PALETTE[0])

static int check_series(int n_series, const da_plot_series *s, double *xr, double *yr, char *err, size_t errlen) {
    if (n_series < 1 || n_series > DA_PLOT_MAX_SERIES) {
        snprintf(err, errlen, "a plot takes 1 to %d series, got %d", DA_PLOT_MAX_SERIES, n_series);
        return -1;
    }
    xr[0] = yr[0] = INFINITY;
    xr[1] = yr[1] = -INFINITY;
    for (int k = 0; k < n_series; k++) {
        if (s[k].n < 1 || !s[k].x || !s[k].y) {
            snprintf(err, errlen, "plot series %d (%s) has no points", k, s[k].label ? s[k].label : "");
            return -1;
        }
        for (int i = 0; i < s[k].n; i++) {
            double e = s[k].err ? fabs(s[k].err[i]) : 0;
            if (!isfinite(s[k].x[i]) || !isfinite(s[k].y[i]) || !isfinite(e)) {
                snprintf(err, errlen, "plot series %d (%s) has a non-finite value at point %d", k,
                         s[k].label ? s[k].label : "", i);
                return -1;
            }
            xr[0] = fmin(xr[0], s[k].x[i]);
            xr[1] = fmax(xr[1], s[k].x[i]);
            yr[0] = fmin(yr[0], s[k].y[i] - e);
            yr[1] = fmax(yr[1], s[k].y[i] + e);
        }
    }
    return 0;
}

int da_plot_lines(const char *path, const da_plot_opts *opts, int n_series, const da_plot_series *series,
                  char *err, size_t errlen) {
    double xr[2], yr[2];
    if (check_series(n_series, series, xr, yr, err, errlen) != 0) return -1;
    /* Margins so that markers at the ends stay visible; a flat range still gets a window. */
    double dx = xr[1] - xr[0], dy;
    if (dx <= 0) dx = 1;
    xr[0] -= 0.04 * dx;
    xr[1] += 0.04 * dx;
    if (opts && opts->ymax > opts->ymin) {
        yr[0] = opts->ymin;
        yr[1] = opts->ymax;
    } else {
        dy = yr[1] - yr[0];
        if (dy <= 0) dy = fabs(yr[0]) > 0 ? 0.1 * fabs(yr[0]) : 1;
        yr[0] -= 0.08 * dy;
        yr[1] += 0.08 * dy;
    }
    int width = opts && opts->width > 0 ? opts->width : 800;
    int height = opts && opts->height > 0 ? opts->height : 560;

    /* PLplot exits the process when it cannot open its output: make sure it can first. */
    char tmp[4200];
    int fd = da_tmp_create(path, tmp, sizeof tmp, err, errlen);
    if (fd < 0) return -1;
    close(fd);

    PLINT old_stream, stream;
    plgstrm(&old_stream);
    plmkstrm(&stream);
    plsdev("pngcairo");
    plsfnam(tmp);
    plspage(0, 0, width, height, 0, 0);
    plscmap0n(N_PALETTE);
    for (int i = 0; i < N_PALETTE; i++) plscol0(i, PALETTE[i][0], PALETTE[i][1], PALETTE[i][2]);
    plinit();
    pladv(0);
    plvsta();
    plwind(xr[0], xr[1], yr[0], yr[1]);
    plcol0(2);
    plwidth(0.5);
    plbox("g", 0, 0, "g", 0, 0);
    plcol0(1);
    plwidth(1.0);
    plbox("bcnst", 0, 0, "bcnstv", 0, 0);
    pllab(opts && opts->xlabel ? opts->xlabel : "", opts && opts->ylabel ? opts->ylabel : "",
          opts && opts->title ? opts->title : "");

    PLINT opt_array[DA_PLOT_MAX_SERIES], colors[DA_PLOT_MAX_SERIES], styles[DA_PLOT_MAX_SERIES];
    PLINT sym_numbers[DA_PLOT_MAX_SERIES];
    PLFLT widths[DA_PLOT_MAX_SERIES], sym_scales[DA_PLOT_MAX_SERIES];
    const char *texts[DA_PLOT_MAX_SERIES], *symbols[DA_PLOT_MAX_SERIES];
    for (int k = 0; k < n_series; k++) {
        const da_plot_series *s = &series[k];
        int color = 3 + k % (N_PALETTE - 3);
        plcol0(color);
        plwidth(2.0);
        if (s->err) {
            double lo[256], hi[256];
            for (int i0 = 0; i0 < s->n; i0 += 256) {
                int m = s->n - i0 < 256 ? s->n - i0 : 256;
                for (int i = 0; i < m; i++) {
                    lo[i] = s->y[i0 + i] - fabs(s->err[i0 + i]);
                    hi[i] = s->y[i0 + i] + fabs(s->err[i0 + i]);
                }
                plerry(m, s->x + i0, lo, hi);
            }
        }
        if (s->n > 1) plline(s->n, s->x, s->y);
        plstring(s->n, s->x, s->y, "#(728)");  /* a filled dot on every point */
        opt_array[k] = PL_LEGEND_LINE | PL_LEGEND_SYMBOL;
        colors[k] = color;
        styles[k] = 1;
        widths[k] = 2.0;
        sym_scales[k] = 1.0;
        sym_numbers[k] = 1;
        symbols[k] = "#(728)";
        texts[k] = s->label ? s->label : "";
    }
    plwidth(1.0);
    PLFLT legend_w, legend_h;
    pllegend(&legend_w, &legend_h, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
             PL_POSITION_BOTTOM | PL_POSITION_RIGHT | PL_POSITION_INSIDE | PL_POSITION_VIEWPORT, 0.02, 0.03,
             0.08, 0, 1, 1, 0, 0, n_series, opt_array, 1.0, 0.9, 2.0, 0.0, colors, texts, NULL, NULL, NULL,
             NULL, colors, styles, widths, colors, sym_scales, sym_numbers, symbols);
    plend1();
    plsstrm(old_stream);

    struct stat st;
    if (stat(tmp, &st) != 0 || st.st_size == 0) {
        snprintf(err, errlen, "PLplot wrote no image to %s (is the pngcairo driver installed? "
                 "Debian: plplot-driver-cairo)", tmp);
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}
