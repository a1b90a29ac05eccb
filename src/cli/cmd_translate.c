/* cmd_translate.c — `diffadapt translate`: every image of a labelled data set is inverted with the
 * original model and generated with the fine-tuned one; PNGs in source order, labels kept, shards. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "diffadapt.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/diffusion_cli.h"
#include "cli/option_fragments.h"
#include "data/image.h"
#include "diffusion/finetune.h"
#include "io/safetensors.h"
#include "util/atomic.h"
#include "util/files.h"
#include "util/progress.h"

#define CMD "translate"
#define MANIFEST_FORMAT "diffadapt-translation"

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s && s[1] ? s + 1 : path;
}

/* The output file of image i: DIR/000123.png */
static void out_name(char *buf, size_t len, const char *dir, int64_t i) {
    snprintf(buf, len, "%s/%06lld.png", dir, (long long)i);
}

/* The metadata value `key` of a safetensors file as a new string, or NULL. */
static char *file_meta(const char *path, const char *key) {
    st_file f;
    char err[512];
    if (st_open(path, &f, err, sizeof err)) return NULL;
    const char *v = st_meta_get(&f, key);
    char *s = v ? strdup(v) : NULL;
    st_close(&f);
    return s;
}

/* The settings that must agree between runs writing into one folder (they fix every byte). The
 * thread count is one of them: the UNet's sums split differently over 1 and 2 threads
 * (docs/determinism.md), which can move a pixel by one level. */
static const char *const KEYS[] = {"model_hash", "finetuned_hash", "data_hash", "images", "t0", "inv_steps", "gen_steps",
                                   "batch", "threads", "precision"};

/* 0 when an existing manifest agrees with `now` (or there is none); else prints the difference. */
static int check_manifest(const char *path, const cJSON *now) {
    char *text = da_read_file(path, NULL, NULL, 0);
    if (!text) return 0;
    cJSON *old = cJSON_Parse(text);
    free(text);
    int rc = 0;
    if (!old) {
        fprintf(stderr, "error: %s is not valid JSON; choose another --out folder\n", path);
        return -1;
    }
    for (size_t i = 0; i < sizeof KEYS / sizeof KEYS[0]; i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(old, KEYS[i]), *b = cJSON_GetObjectItemCaseSensitive(now, KEYS[i]);
        if (!a && !b) continue;   /* a key written only when it differs from the default */
        if (!a || !cJSON_Compare(a, b, true)) {
            char *sa = a ? cJSON_PrintUnformatted(a) : NULL, *sb = cJSON_PrintUnformatted(b);
            fprintf(stderr,
                    "error: %s was written with %s = %s, this run has %s: use another --out, the same settings, "
                    "or --force to translate everything again\n",
                    path, KEYS[i], sa ? sa : "(missing)", sb);
            free(sa);
            free(sb);
            rc = -1;
            break;
        }
    }
    if (!rc) {
        /* model_ratio is written only when below 1 */
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(old, "model_ratio"), *b = cJSON_GetObjectItemCaseSensitive(now, "model_ratio");
        double ra = cJSON_IsNumber(a) ? a->valuedouble : 1.0, rb = cJSON_IsNumber(b) ? b->valuedouble : 1.0;
        if (ra != rb) {
            fprintf(stderr, "error: %s was written with model_ratio = %g, this run has %g: use another --out, the same "
                    "settings, or --force to translate everything again\n", path, ra, rb);
            rc = -1;
        }
    }
    cJSON_Delete(old);
    return rc;
}

/* A name this command writes into its folder: NNNNNN.png (6+ digits), labels.csv, grid.png,
 * manifest.json. */
static bool our_name(const char *n) {
    size_t d = strspn(n, "0123456789");
    return (d >= 6 && !strcmp(n + d, ".png")) || !strcmp(n, "labels.csv") || !strcmp(n, "grid.png") ||
           !strcmp(n, "manifest.json");
}

/* The output folder must be new, empty of the names we write, or one of our own translations (its
 * manifest.json says so); and never the --data folder itself. --force does not lift this: it
 * only redoes our own work. Prints why and returns -1. */
static int check_out_folder(const char *out, const char *data_spec) {
    struct stat so, sd;
    if (!out[0]) {
        fprintf(stderr, "error: --out is empty; give a folder\n");
        return -1;
    }
    const char *data_dir = !strncmp(data_spec, "celeba:", 7) ? data_spec + 7 : data_spec;
    if (stat(out, &so) != 0) return 0;   /* a new folder */
    if (!S_ISDIR(so.st_mode)) {
        fprintf(stderr, "error: --out %s exists and is not a folder\n", out);
        return -1;
    }
    if (stat(data_dir, &sd) == 0 && S_ISDIR(sd.st_mode) && sd.st_dev == so.st_dev && sd.st_ino == so.st_ino) {
        fprintf(stderr, "error: --out %s is the --data folder; translating there would overwrite its images and "
                "labels.csv. Choose another --out\n", out);
        return -1;
    }
    char path[4400];
    snprintf(path, sizeof path, "%s/manifest.json", out);
    char *text = da_read_file(path, NULL, NULL, 0);
    if (text) {
        cJSON *m = cJSON_Parse(text);
        const cJSON *fmt = m ? cJSON_GetObjectItemCaseSensitive(m, "format") : NULL;
        bool ours = cJSON_IsString(fmt) && !strcmp(fmt->valuestring, MANIFEST_FORMAT);
        cJSON_Delete(m);
        free(text);
        if (ours) return 0;
        fprintf(stderr, "error: %s was not written by diffadapt translate; choose a new or empty --out folder\n", path);
        return -1;
    }
    DIR *d = opendir(out);
    if (!d) {
        fprintf(stderr, "error: cannot read --out %s: %s\n", out, strerror(errno));
        return -1;
    }
    char first[256] = "";
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (our_name(e->d_name) && n++ == 0) snprintf(first, sizeof first, "%s", e->d_name);
    closedir(d);
    if (n) {
        fprintf(stderr, "error: --out %s holds %d file%s this command would write (%s%s) but no manifest.json, so they "
                "are not an earlier translation; they are left alone. Choose a new or empty --out folder\n", out, n,
                n > 1 ? "s" : "", first, n > 1 ? ", ..." : "");
        return -1;
    }
    return 0;
}

/* The translation's hooks: which batches still miss an image, and writing a finished batch. */
typedef struct {
    const char *out;
    bool force;
    int64_t c, h, w;          /* image shape */
    int64_t written;
} batch_writer;

static int batch_missing(void *user, int64_t i0, int64_t n) {
    const batch_writer *w = user;
    char path[4400];
    for (int64_t i = i0; i < i0 + n; i++) {
        out_name(path, sizeof path, w->out, i);
        if (w->force || !da_path_exists(path)) return true;
    }
    return false;
}

static int write_batch(void *user, int64_t i0, int64_t n, const float *x, char *err, size_t errlen) {
    batch_writer *w = user;
    char path[4400];
    const int64_t per = w->c * w->h * w->w;
    for (int64_t i = i0; i < i0 + n; i++) {
        out_name(path, sizeof path, w->out, i);
        if (!w->force && da_path_exists(path)) continue;
        if (da_image_write_png(path, x + (i - i0) * per, (int)w->c, (int)w->h, (int)w->w, err, errlen)) return -1;
        w->written++;
    }
    return 0;
}

/* "I/N" into shard I of N; prints the error and returns 2. */
static int parse_shard(const char *s, int *shard, int *n_shards) {
    char *end;
    long a = strtol(s, &end, 10), b = 0;
    bool ok = end != s && *end == '/';
    if (ok) {
        const char *p = end + 1;
        b = strtol(p, &end, 10);
        ok = end != p && !*end && a >= 0 && b >= 1 && a < b && b <= 1000000;
    }
    if (!ok) {
        fprintf(stderr, "diffadapt " CMD ": --shard expects I/N with 0 <= I < N (e.g. 0/4), got '%s'\n", s);
        return 2;
    }
    *shard = (int)a;
    *n_shards = (int)b;
    return 0;
}

/* The FNV-1a hash of the images and labels, as 16 hex digits. */
static void data_hash(const da_dataset *d, char dh[17]) {
    uint64_t h = DA_FNV1A64_INIT;
    int64_t dims[4] = {d->n, d->c, d->h, d->w};
    h = da_fnv1a64(h, dims, sizeof dims);
    h = da_fnv1a64(h, d->images, sizeof(float) * (size_t)(d->n * d->c * d->h * d->w));
    if (d->labels) h = da_fnv1a64(h, d->labels, sizeof(int64_t) * (size_t)d->n);
    snprintf(dh, 17, "%016" PRIx64, h);
}

/* What manifest.json records: the same bytes whichever shard writes it. */
typedef struct {
    const char *model, *finetuned, *data_spec;
    const da_model *m, *ft;
    const da_dataset *d;
    const da_cli_data *dd;
    const da_ft_config *cfg;
} manifest_inputs;

static cJSON *build_manifest(const manifest_inputs *in) {
    const da_dataset *d = in->d;
    const da_cli_data *dd = in->dd;
    char mh[17], fh[17], dh[17];
    da_model_hash(in->m, mh);
    da_model_hash(in->ft, fh);
    data_hash(d, dh);
    char *ft_src = file_meta(in->finetuned, "finetune_src_text"), *ft_tgt = file_meta(in->finetuned, "finetune_tgt_text");
    cJSON *man = cJSON_CreateObject();
    cJSON_AddStringToObject(man, "format", MANIFEST_FORMAT);
    cJSON_AddStringToObject(man, "model", base_name(in->model));
    cJSON_AddStringToObject(man, "model_hash", mh);
    cJSON_AddStringToObject(man, "finetuned", base_name(in->finetuned));
    cJSON_AddStringToObject(man, "finetuned_hash", fh);
    if (ft_src && ft_tgt) {
        cJSON_AddStringToObject(man, "src_text", ft_src);
        cJSON_AddStringToObject(man, "tgt_text", ft_tgt);
    }
    free(ft_src);
    free(ft_tgt);
    cJSON_AddStringToObject(man, "data", in->data_spec);
    cJSON_AddStringToObject(man, "data_hash", dh);
    {
        cJSON *o = cJSON_AddObjectToObject(man, "data_options");
        if (dd->classes) cJSON_AddStringToObject(o, "classes", dd->classes);
        if (dd->attr) cJSON_AddStringToObject(o, "attr", dd->attr);
        if (dd->split) cJSON_AddStringToObject(o, "split", dd->split);
        cJSON_AddNumberToObject(o, "take", dd->take);
        cJSON_AddNumberToObject(o, "skip", dd->skip);
        cJSON_AddNumberToObject(o, "data_seed", dd->data_seed);
        cJSON_AddNumberToObject(o, "size", dd->size);
        cJSON_AddNumberToObject(o, "pad", dd->pad);
        cJSON_AddNumberToObject(o, "channels", dd->channels);
    }
    cJSON_AddNumberToObject(man, "t0", in->cfg->t0);
    cJSON_AddNumberToObject(man, "inv_steps", in->cfg->inv_steps);
    cJSON_AddNumberToObject(man, "gen_steps", in->cfg->gen_steps);
    /* only when it mixes: a manifest of plain translation stays as it was */
    if (in->cfg->model_ratio < 1) cJSON_AddNumberToObject(man, "model_ratio", in->cfg->model_ratio);
    cJSON_AddNumberToObject(man, "eta", 0);
    cJSON_AddNumberToObject(man, "batch", in->cfg->ddim_batch);
    cJSON_AddNumberToObject(man, "threads", da_get_threads());
    /* only when it is not float32: a float32 manifest stays as it was */
    if (strcmp(da_model_precision(in->m), "fp32") != 0) cJSON_AddStringToObject(man, "precision", da_model_precision(in->m));
    cJSON_AddNumberToObject(man, "images", (double)d->n);
    cJSON *sz = cJSON_AddArrayToObject(man, "image_shape");
    cJSON_AddItemToArray(sz, cJSON_CreateNumber((double)d->c));
    cJSON_AddItemToArray(sz, cJSON_CreateNumber((double)d->h));
    cJSON_AddItemToArray(sz, cJSON_CreateNumber((double)d->w));
    char last[32];
    snprintf(last, sizeof last, "%06lld.png", (long long)(d->n - 1));
    cJSON_AddStringToObject(man, "first_file", "000000.png");
    cJSON_AddStringToObject(man, "last_file", last);
    if (d->labels) {
        /* images per label, in label order */
        int64_t maxl = 0;
        for (int64_t i = 0; i < d->n; i++)
            if (d->labels[i] > maxl) maxl = d->labels[i];
        cJSON *lc = cJSON_AddObjectToObject(man, "label_counts");
        for (int64_t l = 0; l <= maxl && l < 100000; l++) {
            int64_t c = 0;
            for (int64_t i = 0; i < d->n; i++) c += d->labels[i] == l;
            if (!c) continue;
            char k[32];
            snprintf(k, sizeof k, "%lld", (long long)l);
            cJSON_AddNumberToObject(lc, k, (double)c);
        }
        cJSON_AddStringToObject(man, "labels_file", "labels.csv");
    } else {
        cJSON_AddNullToObject(man, "labels_file");
    }
    return man;
}

/* Creates the folder, checks an earlier manifest (unless force) and writes manifest.json and
 * labels.csv; prints the error and returns -1. */
static int write_manifest_and_labels(const char *out, const cJSON *man, const da_dataset *d, bool force) {
    char err[4096], path[4400];
    if (da_mkdirs(out, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        return -1;
    }
    snprintf(path, sizeof path, "%s/manifest.json", out);
    if (!force && check_manifest(path, man)) return -1;
    char *js = cJSON_Print(man);
    size_t n = strlen(js);
    js = realloc(js, n + 2);
    js[n] = '\n';
    js[n + 1] = 0;
    int wr = da_atomic_write(path, js, n + 1, err, sizeof err);
    free(js);
    if (wr) {
        fprintf(stderr, "error: %s\n", err);
        return -1;
    }
    if (!d->labels) {
        fprintf(stderr, "note: the data carry no labels, so no labels.csv is written\n");
        return 0;
    }
    snprintf(path, sizeof path, "%s/labels.csv", out);
    da_atomic_file af;
    if (da_atomic_open(&af, path, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        return -1;
    }
    fprintf(af.f, "file,label\n");
    for (int64_t i = 0; i < d->n; i++) fprintf(af.f, "%06lld.png,%lld\n", (long long)i, (long long)d->labels[i]);
    if (da_atomic_commit(&af, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        return -1;
    }
    return 0;
}

/* grid.png: the first k sources over their translations, read back from the files themselves so
 * that every shard would write the same bytes; skipped while an image is missing. A grid that
 * cannot be written (full disk) fails the run (returns -1 after printing); a re-run writes it. */
static int write_grid(const char *out, const da_dataset *d, int grid_images) {
    const int64_t per = d->c * d->h * d->w, k = grid_images < d->n ? grid_images : d->n;
    char path[4400], err[4096];
    bool all = k > 0;
    for (int64_t i = 0; i < k && all; i++) {
        out_name(path, sizeof path, out, i);
        all = da_path_exists(path);
    }
    if (!all) return 0;
    float *grid = malloc(sizeof(float) * (size_t)(2 * k * per));
    da_check(grid != NULL, CMD, "out of memory");
    memcpy(grid, d->images, sizeof(float) * (size_t)(k * per));
    for (int64_t i = 0; i < k && all; i++) {
        out_name(path, sizeof path, out, i);
        float *img = NULL;
        int c, h, w;
        if (da_image_read(path, (int)d->c, &img, &c, &h, &w, err, sizeof err) || h != d->h || w != d->w) {
            fprintf(stderr, "warning: no grid: %s\n", img ? "an output has another size" : err);
            all = false;
        } else {
            memcpy(grid + (k + i) * per, img, sizeof(float) * (size_t)per);
        }
        free(img);
    }
    snprintf(path, sizeof path, "%s/grid.png", out);
    int rc = 0;
    if (all && da_image_write_grid(path, grid, 2 * k, (int)d->c, (int)d->h, (int)d->w, (int)k, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        rc = -1;
    }
    free(grid);
    return rc;
}

/* The library's progress (images of the translated batches) on a progress line, begun at the
 * first report, when the total is known. */
static void on_progress(void *user, const char *stage, int64_t done, int64_t total) {
    (void)stage;
    da_progress *p = user;
    if (p->total < 0) da_progress_begin(p, "translate", total, "img");
    da_progress_update(p, done, NULL);
}

int cmd_translate(int argc, char **argv) {
    const char *finetuned = NULL, *data_spec = NULL, *shard_s = "0/1";
    int grid_images = 8;
    da_common co = {0};
    da_ft_config cfg;
    da_ft_config_default(&cfg);
    da_cli_data dd = {0};
    da_option opts[40] = {
        {"--finetuned", DA_OPT_STRING, &finetuned, "M_ft.safetensors", "the fine-tuned model (generates)", true},
        {"--data", DA_OPT_STRING, &data_spec, "DATA", "labelled source images " DA_DATA_SOURCES, true},
        {"--batch", DA_OPT_INT, &cfg.ddim_batch, "N", "images per model call; also fixes the partition shards share", false},
        {"--shard", DA_OPT_STRING, &shard_s, "I/N", "translate only the I-th of N equal parts of the batches (0-based)", false},
        {"--grid-images", DA_OPT_INT, &grid_images, "N", "how many of the first images grid.png shows (0 = no grid)", false},
    };
    static const da_common_words words = {
        .model = "the original diffusion model (inverts)", .config = "model config (YAML/JSON) when the files have none",
        .out_metavar = "DIR", .out = "output folder: 000000.png ..., labels.csv, manifest.json, grid.png",
        .force = "translate again even when the folder holds other settings or finished images"};
    const da_fragments shared = {
        .common = &co, .words = &words,
        .common_parts = DA_COPT_MODEL | DA_COPT_OUT | DA_COPT_THREADS | DA_COPT_PRECISION | DA_COPT_FORCE,
        .method = &cfg, .method_parts = DA_MOPT_T0 | DA_MOPT_INVERT | DA_MOPT_GENERATE,
        .data = &dd, .data_parts = DA_DATA_ALL};
    da_fragments_add(&shared, opts);
    static const da_cmd_info info = {
        CMD, "--model M --finetuned M_ft --data D --out DIR [--shard I/N] [options]",
        "Translates every image: DDIM inversion (eta 0) with --model up to --t0, then generation with\n"
        "--finetuned (with --model-ratio R < 1: R*eps(--finetuned) + (1-R)*eps(--model)). Writes DIR/000000.png, ... in source order (each file atomically), labels.csv\n"
        "(file,label) and manifest.json (settings, model hashes, counts). A re-run skips the images\n"
        "already written. With --shard I/N the batches are split into N contiguous parts and only part I\n"
        "is translated; the N shards (separate processes or machines, same --batch and --threads)\n"
        "together write the same bytes as one full run. grid.png shows the first images over their\n"
        "translations.",
        NULL};
    int rc;
    if (!da_fragments_parse(&info, opts, &shared, argc, argv, &rc)) return rc;
    const char *model = co.model, *config = co.config, *out = co.out;
    const bool force = co.force;
    int shard = 0, n_shards = 1;
    if (parse_shard(shard_s, &shard, &n_shards)) return 2;
    const int batch = cfg.ddim_batch;
    if (batch < 1 || grid_images < 0) {
        fprintf(stderr, "diffadapt " CMD ": --batch must be at least 1 and --grid-images not negative\n");
        return 2;
    }
    if (check_out_folder(out, data_spec)) return 1;
    da_set_threads(co.threads);

    int status = 1;
    da_model *m = NULL, *ft = NULL;
    da_dataset d = {0};
    cJSON *man = NULL;
    char err[4096];
    const da_translate_settings ts = {cfg.t0, cfg.inv_steps, cfg.gen_steps, cfg.ddim_batch, cfg.model_ratio};
    if (da_cli_load_model(model, config, co.precision, &m) || da_cli_load_model(finetuned, config, co.precision, &ft))
        goto done;
    if (da_translate_check(m, ft, &ts, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }
    if (da_cli_load_data(CMD, "--data", data_spec, &dd, &d)) goto done;
    if (d.n == 0) {
        fprintf(stderr, "error: --data %s selects no images\n", data_spec);
        goto done;
    }
    if (da_cli_check_images_fit_model(&d, m)) goto done;
    manifest_inputs mi = {model, finetuned, data_spec, m, ft, &d, &dd, &cfg};
    man = build_manifest(&mi);

    if (write_manifest_and_labels(out, man, &d, force)) goto done;
    /* only our own temporaries (see util/atomic.h), never a user file that merely looks like one */
    da_remove_stale_tmp(out, NULL);
    char path[4400];

    /* the batches of this shard: a contiguous part of the fixed partition into --batch images */
    int64_t n_batches = (d.n + batch - 1) / batch;
    int64_t b_first = n_batches * shard / n_shards, b_end = n_batches * (shard + 1) / n_shards;
    int64_t i_first = b_first * batch, i_end = b_end * batch < d.n ? b_end * batch : d.n;
    int64_t skipped = 0;
    for (int64_t i = i_first; i < i_end; i++) {
        out_name(path, sizeof path, out, i);
        skipped += !force && da_path_exists(path);
    }
    if (n_shards > 1)
        fprintf(stderr, "shard %d/%d: images %lld..%lld of %lld\n", shard, n_shards, (long long)i_first,
                (long long)i_end - 1, (long long)d.n);
    if (skipped) fprintf(stderr, "%lld of these images are already written and are skipped\n", (long long)skipped);
    batch_writer bw = {out, force, d.c, d.h, d.w, 0};
    /* a batch is translated whole even when only some of its images are missing: results must not
     * depend on which ones were */
    const da_translate_hooks hooks = {b_first, b_end, batch_missing, write_batch, &bw};
    da_progress prog;
    prog.total = -1;
    double t_start = da_now();
    if (da_translate_batches(m, ft, &ts, d.images, NULL, d.n, &hooks, on_progress, &prog, err, sizeof err)) {
        fprintf(stderr, "\nerror: %s\n", err);
        goto done;
    }
    int64_t done_imgs = bw.written;
    double secs = da_now() - t_start;
    if (prog.total >= 0) da_progress_end(&prog, prog.total, NULL);

    if (write_grid(out, &d, grid_images)) goto done;
    fprintf(stderr, "translated %lld images (%lld skipped) into %s in %.1f s", (long long)done_imgs, (long long)skipped,
            out, secs);
    if (done_imgs) fprintf(stderr, " (%.3f s per image)", secs / (double)done_imgs);
    fprintf(stderr, "\n");
    status = 0;
done:
    cJSON_Delete(man);
    da_dataset_free(&d);
    da_model_free(ft);
    da_model_free(m);
    return status;
}
