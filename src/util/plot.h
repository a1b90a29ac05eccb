/* plot.h — line plots of several series with a legend, written as PNG files with PLplot.
 * Used for accuracy-vs-epoch figures (train-classifier, the experiment report). */
#ifndef DA_PLOT_H
#define DA_PLOT_H

#include <stddef.h>

typedef struct {
    const char *label;      /* legend text */
    int n;                  /* number of points */
    const double *x, *y;    /* (n) */
    const double *err;      /* (n) or NULL: draws y ± err as vertical bars (e.g. std over seeds) */
} da_plot_series;

typedef struct {
    const char *title, *xlabel, *ylabel;
    double ymin, ymax;      /* y range; ymin == ymax means "from the data" */
    int width, height;      /* pixels; 0 means 800 × 560 */
} da_plot_opts;

#define DA_PLOT_MAX_SERIES 12

/* Writes a PNG with one line (and point markers) per series, a legend, axis labels and a
 * title. The file is written under a temporary name and renamed, so a failure never leaves a
 * partial file at path. Returns 0, or -1 with a message in err. */
int da_plot_lines(const char *path, const da_plot_opts *opts, int n_series, const da_plot_series *series,
                  char *err, size_t errlen);

#endif
