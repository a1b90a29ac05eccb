/* cache.c — where the experiment keeps what it computed (keyed by a hash of everything that
 * determines it) and where it finds the shipped default checkpoints. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "experiment/experiment.h"
#include "nn/params.h"
#include "util/atomic.h"
#include "util/files.h"

void da_exp_key(const char *desc, char out[17]) {
    uint64_t h = da_fnv1a64(DA_FNV1A64_INIT, desc, strlen(desc));
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

void da_exp_cache_path(const da_experiment *e, const char *stem, const char *key, char *buf, size_t len) {
    snprintf(buf, len, "%s/%s-%s.safetensors", e->cache_dir, stem, key);
}

/* How long a cached result took to compute is kept beside it in <file>.seconds, so that a later
 * run that reads the result can still say what it cost. The note is optional: a missing or
 * unreadable one only means the time is unknown. */
void da_exp_cache_note_seconds(const char *path, double seconds) {
    char p[4600], text[64], err[512];
    snprintf(p, sizeof p, "%s.seconds", path);
    int n = snprintf(text, sizeof text, "%.3f\n", seconds);
    if (da_atomic_write(p, text, (size_t)n, err, sizeof err) != 0)
        fprintf(stderr, "[experiment] warning: could not note the stage time: %s\n", err);
}

static double cache_seconds(const char *path) {
    char p[4600], text[64] = "";
    snprintf(p, sizeof p, "%s.seconds", path);
    FILE *f = fopen(p, "r");
    if (!f) return -1;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    char *end;
    double v = strtod(text, &end);
    return end != text && v >= 0 && v < 1e9 ? v : -1;
}

const char *da_exp_cache_time_text(const char *path, int64_t n_items, char *buf, size_t len) {
    double s = cache_seconds(path);
    if (s < 0) snprintf(buf, len, "read from the cache");
    else if (n_items > 0) snprintf(buf, len, "read from the cache; computing it took %.0f s, %.2f s per image", s,
                                   s / (double)n_items);
    else snprintf(buf, len, "read from the cache; computing it took %.0f s", s);
    return buf;
}

const char *da_exp_models_dir(const da_exp_config *c, char *buf, size_t len) {
    if (c->models_dir) {
        snprintf(buf, len, "%s", c->models_dir);
        return da_is_dir(buf) ? buf : NULL;
    }
    const char *env = getenv("DIFFADAPT_MODELS");
    if (env && *env) {
        snprintf(buf, len, "%s", env);
        if (da_is_dir(buf)) return buf;
    }
    snprintf(buf, len, "models");
    if (da_is_dir(buf)) return buf;
    /* next to the binary: build/diffadapt -> build/../models */
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        /* an installed binary: P/bin/diffadapt -> P/share/diffadapt/models (cmake --install, .deb) */
        char *bin = strrchr(exe, '/');
        if (bin) {
            *bin = 0;
            if (snprintf(buf, len, "%s/../share/diffadapt/models", exe) < (int)len && da_is_dir(buf)) return buf;
            *bin = '/';
        }
        for (int up = 0; up < 3; up++) {
            char *slash = strrchr(exe, '/');
            if (!slash) break;
            *slash = 0;
            if (snprintf(buf, len, "%s/models", exe) < (int)len && da_is_dir(buf)) return buf;
        }
    }
    return NULL;
}
