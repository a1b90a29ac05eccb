/* progress.c — progress lines with rate and ETA (see progress.h). */
#include "util/progress.h"

#include <stdio.h>
#include <unistd.h>

void da_progress_begin(da_progress *p, const char *label, int64_t total, const char *unit) {
    p->label = label;
    p->unit = unit ? unit : "it";
    p->total = total;
    p->start = p->last_print = da_now();
    p->tty = isatty(fileno(stderr));
}

static void format_time(double s, char *buf, size_t n) {
    if (s < 0 || s > 1e7) { snprintf(buf, n, "?"); return; }
    int t = (int)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%dh%02dm", t / 3600, (t / 60) % 60);
    else snprintf(buf, n, "%dm%02ds", t / 60, t % 60);
}

static void print_line(da_progress *p, int64_t done, const char *msg, bool final) {
    double now = da_now(), el = now - p->start;
    double rate = el > 0 ? (double)done / el : 0;
    char eta[32], elapsed[32];
    format_time(rate > 0 ? (double)(p->total - done) / rate : -1, eta, sizeof eta);
    format_time(el, elapsed, sizeof elapsed);
    int width = 24, fill = p->total > 0 ? (int)(width * done / p->total) : 0;
    char bar[32];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "%s%s [%s] %lld/%lld %s  %.2f %s/s  %s %s  %s%s", p->tty ? "\r" : "", p->label, bar,
            (long long)done, (long long)p->total, p->unit, rate, p->unit, final ? "took" : "ETA",
            final ? elapsed : eta, msg ? msg : "", p->tty ? "\033[K" : "\n");
    if (final && p->tty) fprintf(stderr, "\n");
    fflush(stderr);
    p->last_print = now;
}

void da_progress_update(da_progress *p, int64_t done, const char *msg) {
    double now = da_now();
    if (now - p->last_print < (p->tty ? 0.2 : 10.0) && done < p->total) return;
    print_line(p, done, msg, false);
}

void da_progress_end(da_progress *p, int64_t done, const char *msg) { print_line(p, done, msg, true); }
