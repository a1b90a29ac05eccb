/* cache.c — where the experiment keeps what it computed (keyed by a hash of everything that
 * determines it) and where it finds the shipped default checkpoints.
 *
 * The keyed cache (da_exp_cached), the one way a stage reads or makes a cached result:
 * - The caller writes a description that names everything the result depends on (settings,
 *   hashes of input models and data, a version tag to bump when the computation changes); its
 *   FNV-1a is the key, and the result lives at CACHE/<stem>-<key>.safetensors. Settings added
 *   later should extend the description only when they are used, so older files stay valid.
 * - When a regular file is at that path it is the result: *source = "cache", compute is not
 *   called, and the stage reports the time its computation took from the .seconds note.
 * - Otherwise *source = computed_as and compute(user, job, err, errlen) runs. It must leave
 *   the complete result at job->path, written atomically (st_writer_save, da_atomic_write), so
 *   that a killed run never leaves a partial result under the final name; work it wants to
 *   resume goes to files of its own beside it (e.g. job->path + ".partial", tagged with
 *   job->key). It returns 0, or -1 with err set (nothing is noted then).
 * - After a successful compute the seconds since the call began are noted beside the file
 *   (<path>.seconds), unless compute set job->time_is_partial (it resumed earlier work).
 * - The helper neither loads nor checks the result: the caller reads the file at path in
 *   both cases (or keeps what compute left in user's state when *source is not "cache"). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "experiment/experiment.h"
#include "nn/params.h"
#include "util/atomic.h"
#include "util/clock.h"
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

int da_exp_cached(const da_experiment *e, const char *stem, const char *desc, const char *computed_as,
                  da_exp_compute_fn compute, void *user, char *path, size_t path_len, char key[17],
                  const char **source, char *err, size_t errlen) {
    double t0 = da_now();
    char k[17];
    da_exp_key(desc, k);
    if (key) memcpy(key, k, sizeof k);
    da_exp_cache_path(e, stem, k, path, path_len);
    if (da_is_file(path)) {
        *source = "cache";
        return 0;
    }
    *source = computed_as;
    da_exp_cache_job job = {path, k, false};
    if (compute(user, &job, err, errlen) != 0) return -1;
    if (!job.time_is_partial) da_exp_cache_note_seconds(path, da_now() - t0);
    return 0;
}
