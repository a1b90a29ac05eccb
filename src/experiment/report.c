/* report.c — the outputs of the experiment: results.json (per train × eval set statistics over
 * seeds), report.md (tables, gains with 95 % intervals, timings, settings, reading), plots, grids. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/image.h"
#include "experiment/experiment.h"
#include "experiment/stats.h"
#include "nn/clip_loss.h"
#include "util/atomic.h"
#include "util/plot.h"
#include "util/progress.h"

const char *const DA_EXP_OUTPUTS[] = {"metrics.csv", "results.json", "report.md", "accuracy_original.png",
                                      "accuracy_adapted.png", "examples.png", "examples_source.png",
                                      "examples_adapted.png", "examples_target_heldout.png",
                                      "examples_target_self.png", NULL};

#define LEVEL 0.95

/* ---- statistics over seeds ---------------------------------------------------------------- */

typedef struct {
    double mean, std;
    int epoch;               /* 1-based */
} summary;

/* Accuracies of every seed for (train set, epoch, eval set) into v (seeds). */
static void seed_values(const da_exp_runs *r, int tr, int ep, int ev, double *v) {
    for (int s = 0; s < r->seeds; s++) v[s] = r->acc[da_exp_acc_index(r, tr, s, ep, ev)];
}

static summary at_epoch(const da_exp_runs *r, int tr, int ep, int ev) {
    double v[1024];
    seed_values(r, tr, ep, ev, v);
    summary s = {0, 0, ep + 1};
    da_stat_mean_std(v, r->seeds, &s.mean, &s.std);
    return s;
}

/* The epoch with the best mean accuracy (the first on ties). */
static summary best_epoch(const da_exp_runs *r, int tr, int ev) {
    summary best = at_epoch(r, tr, 0, ev);
    for (int ep = 1; ep < r->epochs; ep++) {
        summary s = at_epoch(r, tr, ep, ev);
        if (s.mean > best.mean) best = s;
    }
    return best;
}

/* adapted - original at the last epoch, paired by seed (and Welch for comparison). */
static da_stat_interval gain(const da_exp_runs *r, int ev, bool welch) {
    double a[1024], b[1024];
    seed_values(r, 0, r->epochs - 1, ev, a);
    seed_values(r, 1, r->epochs - 1, ev, b);
    return welch ? da_stat_welch_interval(a, r->seeds, b, r->seeds, LEVEL) : da_stat_paired_interval(a, b, r->seeds, LEVEL);
}

/* The same for the mean over the three target-panel sets: seed s's panel accuracy is the mean of
 * its three panel accuracies, so the interval is paired over seeds as above. */
static da_stat_interval panel_gain(const da_exp_runs *r, bool welch) {
    double a[1024] = {0}, b[1024] = {0}, v[1024];
    for (int k = 0; k < DA_EXP_PANEL_N; k++) {
        seed_values(r, 0, r->epochs - 1, DA_EXP_PANEL_FIRST + k, v);
        for (int s = 0; s < r->seeds; s++) a[s] += v[s] / DA_EXP_PANEL_N;
        seed_values(r, 1, r->epochs - 1, DA_EXP_PANEL_FIRST + k, v);
        for (int s = 0; s < r->seeds; s++) b[s] += v[s] / DA_EXP_PANEL_N;
    }
    return welch ? da_stat_welch_interval(a, r->seeds, b, r->seeds, LEVEL) : da_stat_paired_interval(a, b, r->seeds, LEVEL);
}

/* ---- diagnostics ---------------------------------------------------------------------------- */

/* Mean of the normalised embeddings of every template filled with word, normalised (E). */
static int text_class(const da_experiment *e, da_bpe *bpe, const char *word, float *out, char *err, size_t errlen) {
    int nt;
    const char *const *tmpl = da_clip_templates(&nt);
    char **texts = calloc((size_t)nt, sizeof(char *));
    if (!texts) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < nt; i++) {
        const char *hole = strstr(tmpl[i], "{}");
        size_t len = strlen(tmpl[i]) + strlen(word) + 1;
        texts[i] = malloc(len);
        if (texts[i] && hole) snprintf(texts[i], len, "%.*s%s%s", (int)(hole - tmpl[i]), tmpl[i], word, hole + 2);
        else if (texts[i]) snprintf(texts[i], len, "%s", tmpl[i]);
    }
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_set_grad(&ctx, false);
    int rc = -1;
    da_tensor *f = da_clip_encode_texts(&ctx, &e->clip, bpe, (const char *const *)texts, nt, false, err, errlen);
    if (f) {
        int64_t E = f->shape[1];
        double *acc = calloc((size_t)E, sizeof(double)), norm = 0;
        for (int i = 0; acc && i < nt; i++) {
            double n2 = 0;
            for (int64_t j = 0; j < E; j++) n2 += (double)f->data[i * E + j] * f->data[i * E + j];
            n2 = sqrt(n2) + 1e-12;
            for (int64_t j = 0; j < E; j++) acc[j] += f->data[i * E + j] / n2;
        }
        for (int64_t j = 0; acc && j < E; j++) norm += acc[j] * acc[j];
        norm = sqrt(norm) + 1e-12;
        for (int64_t j = 0; acc && j < E; j++) out[j] = (float)(acc[j] / norm);
        rc = acc ? 0 : -1;
        if (!acc) snprintf(err, errlen, "out of memory");
        free(acc);
    }
    da_ctx_free(&ctx);
    for (int i = 0; i < nt; i++) free(texts[i]);
    free(texts);
    return rc;
}

/* Share (percent) of the first n images of d closer to tgt than to src in CLIP space. */
static double tgt_share(const da_experiment *e, const da_dataset *d, int64_t n, const float *src, const float *tgt) {
    const int64_t per = d->c * d->h * d->w, E = e->clip.cfg.embed_dim, B = 16;
    int64_t hits = 0;
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_set_grad(&ctx, false);
    for (int64_t b0 = 0; b0 < n; b0 += B) {
        int64_t bs = n - b0 < B ? n - b0 : B;
        da_ctx_reset(&ctx);
        da_tensor *x = da_from_data(&ctx, DA_SHAPE(bs, d->c, d->h, d->w), d->images + b0 * per);
        da_tensor *f = da_clip_image_features(&ctx, &e->clip, x);   /* (bs,E) */
        for (int64_t i = 0; i < bs; i++) {
            double cs = 0, ct = 0;
            for (int64_t j = 0; j < E; j++) {
                cs += (double)f->data[i * E + j] * src[j];
                ct += (double)f->data[i * E + j] * tgt[j];
            }
            hits += ct > cs;
        }
    }
    da_ctx_free(&ctx);
    return 100.0 * (double)hits / (double)n;
}

int da_exp_diagnostics(da_experiment *e, char *err, size_t errlen) {
    double t0 = da_now();
    const int64_t per = e->train.c * e->train.h * e->train.w;
    double l1 = 0;
    for (int64_t i = 0; i < e->train.n * per; i++) l1 += fabs((double)e->adapted.images[i] - e->train.images[i]);
    e->adapt_l1 = l1 / (double)(e->train.n * per);
    const da_dataset *sets[5] = {&e->train, &e->adapted, &e->test, &e->target_heldout, &e->target_self};
    for (int i = 0; i < 5; i++) {
        double sum = 0;
        for (int64_t j = 0; j < sets[i]->n * per; j++) sum += sets[i]->images[j];
        e->mean_px[i] = sum / (double)(sets[i]->n * per);
    }
    /* the CLIP judgement on up to 200 images per set; the reconstruction baseline on up to 64 */
    int64_t n = 200, n_rec = e->train.n / 4 < 64 ? e->train.n / 4 : 64;
    for (int i = 0; i < 5; i++)
        if (sets[i]->n < n) n = sets[i]->n;
    if (n_rec < 1) n_rec = 1;
    da_bpe *bpe = da_clip_vocab(&e->clip, e->cfg.vocab, err, errlen);
    if (!bpe) return -1;
    int64_t E = e->clip.cfg.embed_dim;
    float *src = malloc(sizeof(float) * (size_t)E), *tgt = malloc(sizeof(float) * (size_t)E);
    da_dataset rec = {0};
    rec.n = n_rec;
    rec.c = e->train.c;
    rec.h = e->train.h;
    rec.w = e->train.w;
    rec.images = malloc(sizeof(float) * (size_t)(n_rec * per));
    int rc = -1;
    if (!src || !tgt || !rec.images) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    if (text_class(e, bpe, e->cfg.ft.src_text, src, err, errlen) != 0 ||
        text_class(e, bpe, e->cfg.ft.tgt_text, tgt, err, errlen) != 0)
        goto done;
    for (int i = 0; i < 5; i++) e->clip_tgt_pct[i] = tgt_share(e, sets[i], n, src, tgt);
    e->clip_diag_n = (int)n;
    if (da_exp_reconstruct(e, e->train.images, n_rec, rec.images, err, errlen) != 0) goto done;
    l1 = 0;
    for (int64_t i = 0; i < n_rec * per; i++) l1 += fabs((double)rec.images[i] - e->train.images[i]);
    e->recon_l1 = l1 / (double)(n_rec * per);
    e->clip_tgt_pct[5] = tgt_share(e, &rec, n_rec, src, tgt);
    e->recon_n = (int)n_rec;
    da_exp_add_stage(e, "diagnostics", da_now() - t0, "computed",
                     "CLIP '%s' vs '%s' on %lld images per set: originals %.0f%%, adapted %.0f%%, test %.0f%%, "
                     "target-heldout %.0f%%, target-self %.0f%%, source-model reconstructions %.0f%% (%d); mean pixel "
                     "change %.3f (reconstruction %.3f)", e->cfg.ft.tgt_text, e->cfg.ft.src_text, (long long)n,
                     e->clip_tgt_pct[0], e->clip_tgt_pct[1], e->clip_tgt_pct[2], e->clip_tgt_pct[3], e->clip_tgt_pct[4],
                     e->clip_tgt_pct[5], e->recon_n, e->adapt_l1, e->recon_l1);
    rc = 0;
done:
    free(src);
    free(tgt);
    free(rec.images);
    da_bpe_free(bpe);
    return rc;
}

/* ---- results.json ------------------------------------------------------------------------- */

static cJSON *summary_json(summary s, bool with_epoch) {
    cJSON *o = cJSON_CreateObject();
    if (with_epoch) cJSON_AddNumberToObject(o, "epoch", s.epoch);
    cJSON_AddNumberToObject(o, "mean", s.mean);
    cJSON_AddNumberToObject(o, "std", s.std);
    return o;
}

static cJSON *interval_json(da_stat_interval g, const char *method) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "mean", g.mean);
    cJSON *ci = cJSON_AddArrayToObject(o, "ci95");
    cJSON_AddItemToArray(ci, isfinite(g.lo) ? cJSON_CreateNumber(g.lo) : cJSON_CreateNull());
    cJSON_AddItemToArray(ci, isfinite(g.hi) ? cJSON_CreateNumber(g.hi) : cJSON_CreateNull());
    if (isfinite(g.df)) cJSON_AddNumberToObject(o, "df", g.df);
    else cJSON_AddNullToObject(o, "df");
    cJSON_AddStringToObject(o, "method", method);
    return o;
}

static cJSON *settings_json(const da_experiment *e) {
    const da_exp_config *c = &e->cfg;
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "level", c->level);
    cJSON_AddStringToObject(s, "data", c->data);
    if (c->task) cJSON_AddStringToObject(s, "task", c->task);
    if (c->attr) cJSON_AddStringToObject(s, "attr", c->attr);
    cJSON_AddNumberToObject(s, "train_n", (double)e->train.n);
    cJSON_AddNumberToObject(s, "test_n", (double)e->test.n);
    cJSON_AddNumberToObject(s, "data_seed", c->data_seed);
    cJSON *shape = cJSON_AddArrayToObject(s, "image_chw");
    cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)e->train.c));
    cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)e->train.h));
    cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)e->train.w));
    cJSON_AddStringToObject(s, "src_text", c->ft.src_text);
    cJSON_AddStringToObject(s, "tgt_text", c->ft.tgt_text);
    cJSON_AddNumberToObject(s, "t0", c->ft.t0);
    cJSON_AddNumberToObject(s, "inv_steps", c->ft.inv_steps);
    cJSON_AddNumberToObject(s, "train_gen_steps", c->ft.train_steps);
    cJSON_AddNumberToObject(s, "gen_steps", c->ft.gen_steps);
    cJSON_AddNumberToObject(s, "model_ratio", c->ft.model_ratio);
    cJSON_AddStringToObject(s, "translation_precision", da_precision_name(c->precision));
    cJSON_AddNumberToObject(s, "ft_images", c->ft.images);
    cJSON_AddNumberToObject(s, "ft_epochs", c->ft.epochs);
    cJSON_AddNumberToObject(s, "ft_batch", c->ft.batch);
    cJSON_AddNumberToObject(s, "ft_lr", c->ft.lr);
    cJSON_AddNumberToObject(s, "ft_lr_gamma", c->ft.lr_gamma);
    cJSON_AddNumberToObject(s, "clip_weight", c->ft.clip_weight);
    cJSON_AddNumberToObject(s, "l1_weight", c->ft.l1_weight);
    cJSON_AddStringToObject(s, "ft_mode", DA_FT_MODE_NAMES[c->ft.mode]);
    cJSON_AddStringToObject(s, "ft_identity", DA_FT_IDENTITY_NAMES[c->ft.identity]);
    cJSON_AddNumberToObject(s, "ft_views", c->ft.views);
    cJSON_AddNumberToObject(s, "ft_view_scale", c->ft.view_min_scale);
    if (c->tgt_images) cJSON_AddStringToObject(s, "tgt_images", c->tgt_images);
    cJSON_AddNumberToObject(s, "tgt_weight", c->tgt_images ? c->ft.tgt_weight : 0);
    cJSON_AddNumberToObject(s, "seeds", c->seeds);
    cJSON_AddNumberToObject(s, "epochs", c->epochs);
    cJSON_AddNumberToObject(s, "batch", c->batch);
    cJSON_AddNumberToObject(s, "lr", c->lr);
    cJSON_AddNumberToObject(s, "threads", da_get_threads());
    return s;
}

static int write_results_json(const da_experiment *e, const char *path, char *err, size_t errlen) {
    const da_exp_runs *r = &e->runs;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "task", e->task_desc);
    cJSON_AddStringToObject(root, "classes", e->class_names);
    cJSON_AddNumberToObject(root, "n_classes", r->n_classes);
    cJSON_AddNumberToObject(root, "n_seeds", r->seeds);
    cJSON_AddNumberToObject(root, "epochs", r->epochs);
    cJSON_AddItemToObject(root, "settings", settings_json(e));
    cJSON *res = cJSON_AddObjectToObject(root, "results");
    for (int tr = 0; tr < DA_EXP_N_TRAIN; tr++) {
        cJSON *t = cJSON_AddObjectToObject(res, DA_EXP_TRAIN_NAMES[tr]);
        for (int ev = 0; ev < DA_EXP_N_EVAL; ev++) {
            cJSON *o = cJSON_AddObjectToObject(t, DA_EXP_EVAL_NAMES[ev]);
            cJSON_AddNumberToObject(o, "n_seeds", r->seeds);
            cJSON_AddItemToObject(o, "last", summary_json(at_epoch(r, tr, r->epochs - 1, ev), true));
            cJSON_AddItemToObject(o, "best", summary_json(best_epoch(r, tr, ev), true));
            cJSON *pm = cJSON_AddArrayToObject(o, "per_epoch_mean"), *ps = cJSON_AddArrayToObject(o, "per_epoch_std");
            for (int ep = 0; ep < r->epochs; ep++) {
                summary s = at_epoch(r, tr, ep, ev);
                cJSON_AddItemToArray(pm, cJSON_CreateNumber(s.mean));
                cJSON_AddItemToArray(ps, cJSON_CreateNumber(s.std));
            }
        }
    }
    cJSON *g = cJSON_AddObjectToObject(root, "gain");
    for (int ev = 0; ev < DA_EXP_N_EVAL; ev++) {
        cJSON *o = interval_json(gain(r, ev, false), "paired t-interval over seeds of (adapted - original) at the last epoch");
        cJSON_AddItemToObject(o, "welch", interval_json(gain(r, ev, true), "Welch t-interval"));
        cJSON_AddItemToObject(g, DA_EXP_EVAL_NAMES[ev], o);
    }
    cJSON *pg = interval_json(panel_gain(r, false), "paired t-interval over seeds of the gain averaged over the three "
                                                     "target-panel sets (target-heldout, target-hatching, target-stipple)");
    cJSON_AddItemToObject(pg, "welch", interval_json(panel_gain(r, true), "Welch t-interval"));
    cJSON_AddItemToObject(g, "target-panel-mean", pg);
    cJSON *ft = cJSON_AddObjectToObject(root, "finetune");
    cJSON_AddNumberToObject(ft, "first_epoch_dir_loss", e->ft_first_dir);
    cJSON_AddNumberToObject(ft, "last_epoch_dir_loss", e->ft_last_dir);
    cJSON_AddNumberToObject(ft, "first_epoch_l1", e->ft_first_l1);
    cJSON_AddNumberToObject(ft, "last_epoch_l1", e->ft_last_l1);
    cJSON *dg = cJSON_AddObjectToObject(root, "diagnostics");
    cJSON_AddNumberToObject(dg, "images_per_set", e->clip_diag_n);
    cJSON_AddNumberToObject(dg, "reconstructions", e->recon_n);
    const char *dn[6] = {"original", "adapted", "source", "target-heldout", "target-self", "reconstruction"};
    cJSON *cs = cJSON_AddObjectToObject(dg, "clip_tgt_percent");
    for (int i = 0; i < 6; i++) cJSON_AddNumberToObject(cs, dn[i], e->clip_tgt_pct[i]);
    cJSON_AddNumberToObject(dg, "mean_pixel_change", e->adapt_l1);
    cJSON_AddNumberToObject(dg, "mean_pixel_change_reconstruction", e->recon_l1);
    cJSON *mp = cJSON_AddObjectToObject(dg, "mean_pixel_value");
    for (int i = 0; i < 5; i++) cJSON_AddNumberToObject(mp, dn[i], e->mean_px[i]);
    cJSON *models = cJSON_AddObjectToObject(root, "models");
    cJSON_AddStringToObject(models, "diffusion", e->model_desc);
    cJSON_AddStringToObject(models, "diffusion_hash", e->model_hash);
    cJSON_AddStringToObject(models, "finetuned_hash", e->finetuned_hash);
    cJSON_AddStringToObject(models, "clip", e->clip_desc);
    cJSON_AddStringToObject(models, "clip_hash", e->clip_hash);
    cJSON *st = cJSON_AddArrayToObject(root, "stages");
    double total = 0;
    for (int i = 0; i < e->n_stages; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", e->stages[i].name);
        cJSON_AddNumberToObject(o, "seconds", e->stages[i].seconds);
        cJSON_AddStringToObject(o, "source", e->stages[i].source);
        cJSON_AddStringToObject(o, "detail", e->stages[i].detail);
        cJSON_AddItemToArray(st, o);
        total += e->stages[i].seconds;
    }
    cJSON_AddNumberToObject(root, "stages_seconds", total);
    char *txt = cJSON_Print(root);
    cJSON_Delete(root);
    if (!txt) {
        snprintf(err, errlen, "out of memory writing %s", path);
        return -1;
    }
    size_t len = strlen(txt);
    txt[len] = '\n';
    int rc = da_atomic_write(path, txt, len + 1, err, errlen);
    free(txt);
    return rc;
}

/* ---- report.md ---------------------------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap + (size_t)n + 1) * 2;
        char *p = realloc(b->buf, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->buf = p;
        b->cap = cap;
    }
}

static const char *fmt_time(double s, char *buf, size_t len) {
    if (s < 60) snprintf(buf, len, "%.1f s", s);
    else snprintf(buf, len, "%dm %02ds", (int)(s / 60), (int)s % 60);
    return buf;
}

static void fmt_ci(da_stat_interval g, char *buf, size_t len) {
    if (isfinite(g.lo)) snprintf(buf, len, "%+.1f [%+.1f, %+.1f]", g.mean, g.lo, g.hi);
    else snprintf(buf, len, "%+.1f [n/a: one seed]", g.mean);
}

/* The paragraph that says what the numbers show, built from the numbers themselves. */
static void reading(const da_experiment *e, sbuf *b) {
    const da_exp_runs *r = &e->runs;
    const int last = r->epochs - 1;
    summary os = at_epoch(r, 0, last, DA_EXP_EV_SOURCE), oh = at_epoch(r, 0, last, DA_EXP_EV_PENCIL),
            ot = at_epoch(r, 0, last, DA_EXP_EV_SELF);
    summary as = at_epoch(r, 1, last, DA_EXP_EV_SOURCE), ah = at_epoch(r, 1, last, DA_EXP_EV_PENCIL),
            at = at_epoch(r, 1, last, DA_EXP_EV_SELF);
    da_stat_interval gs = gain(r, DA_EXP_EV_SOURCE, false), gh = gain(r, DA_EXP_EV_PENCIL, false),
                     gt = gain(r, DA_EXP_EV_SELF, false);
    double chance = r->n_classes > 0 ? 100.0 / r->n_classes : 50;
    sb_printf(b, "## What the numbers show\n\n");
    if (strcmp(e->cfg.level, "default") != 0)
        sb_printf(b, "**This is a `--%s` run**: its data, steps and seeds are far too small to judge the method; it "
                  "checks that every stage runs and every output is written. Read the default run's report for results.\n\n",
                  e->cfg.level);
    sb_printf(b, "Trained on the original images, the CNN reaches %.1f %% on the source test set and %.1f %% on the "
              "held-out sketch renderer (%+.1f points; chance is %.0f %%). ", os.mean, oh.mean, oh.mean - os.mean, chance);
    bool helped = isfinite(gh.lo) && gh.lo > 0, hurt = isfinite(gh.hi) && gh.hi < 0;
    if (helped)
        sb_printf(b, "Trained on the adapted images it reaches %.1f %% there: adaptation **helped on the held-out target**, "
                  "by %.1f points (95 %% interval %.1f to %.1f over %d paired seeds). ", ah.mean, gh.mean, gh.lo, gh.hi,
                  r->seeds);
    else if (hurt)
        sb_printf(b, "Trained on the adapted images it reaches %.1f %% there: adaptation **hurt on the held-out target**, "
                  "by %.1f points (95 %% interval %.1f to %.1f). ", ah.mean, -gh.mean, gh.lo, gh.hi);
    else
        sb_printf(b, "Trained on the adapted images it reaches %.1f %% there: **no clear effect on the held-out target** "
                  "(%+.1f points, 95 %% interval %s%.1f to %.1f, which includes 0). ", ah.mean, gh.mean,
                  isfinite(gh.lo) ? "" : "n/a ", gh.lo, gh.hi);
    sb_printf(b, "On the reference protocol's target (the test images translated by the same fine-tuned model) the "
              "gain is %+.1f points (%.1f %% -> %.1f %%)", gt.mean, ot.mean, at.mean);
    if (gt.mean > gh.mean + 2)
        sb_printf(b, ", larger than on the independent renderer: a target made by the adapting model itself overstates "
                  "the benefit, because the classifier is tested on exactly the distribution it was trained on. ");
    else
        sb_printf(b, ". ");
    sb_printf(b, "On the source domain, training on adapted images changes accuracy by %+.1f points (%.1f %% -> %.1f %%).\n\n",
              gs.mean, os.mean, as.mean);
    if (e->clip_diag_n > 0) {
        const char *tt = e->cfg.ft.tgt_text, *st = e->cfg.ft.src_text;
        const double *p = e->clip_tgt_pct;
        sb_printf(b, "Why: the CLIP model that guided the fine-tuning calls %.0f %% of the original training images "
                  "\"%s\" rather than \"%s\", %.0f %% of the source model's own reconstructions of them (inversion and "
                  "generation without fine-tuning), %.0f %% of the adapted images, %.0f %% of the held-out sketches and "
                  "%.0f %% of target-self; translation changed pixels by %.3f on average, the reconstruction alone by %.3f "
                  "(pixels in [-1, 1]). ", p[0], tt, st, p[5], p[1], p[3], p[4], e->adapt_l1, e->recon_l1);
        double base = p[0] > p[5] ? p[0] : p[5];
        bool moved = p[1] > base + 15;
        if (!moved)
            sb_printf(b, "So the fine-tuning lowered its directional loss (%.3f in the first epoch, %.3f in the last: the "
                      "change from each image to its translation points more along \"%s\" -> \"%s\" in CLIP's space) "
                      "without carrying the images over to what the CLIP model calls \"%s\": a small step in the right "
                      "direction, which leaves the adapted set close to the original one as far as the target is "
                      "concerned. ", e->ft_first_dir, e->ft_last_dir, st, tt, tt);
        else if (!helped)
            sb_printf(b, "So the fine-tuning did reach its own objective (CLIP now calls the adapted images \"%s\"), but "
                      "the style it produced is not the style of the held-out renderer: a CLIP model can be satisfied by "
                      "changes (contrast, texture, thin strokes) that do not make the images look like that target, so "
                      "what happens on target-self (%+.1f points) says little about the held-out target. ", tt, gt.mean);
        else
            sb_printf(b, "So the fine-tuning reached its objective (CLIP calls the adapted images \"%s\" far more often "
                      "than the reconstructions) and the style it produced carries over to a renderer %s. ", tt,
                      e->cfg.clip ? "independent of the translation" : "the mini-CLIP never saw");
        if (!helped && fabs(e->mean_px[1] - e->mean_px[3]) > 0.4)
            sb_printf(b, "The images differ in a way CLIP barely weighs but a small CNN does: the held-out sketches are "
                      "%s on average (mean pixel value %.2f on [-1, 1]) while the adapted images stay %s (%.2f, the "
                      "originals %.2f), so a classifier trained on them still meets an unfamiliar background on the "
                      "held-out target. ", e->mean_px[3] > e->mean_px[1] ? "much lighter" : "much darker",
                      e->mean_px[3], e->mean_px[1] < e->mean_px[3] ? "dark" : "light", e->mean_px[1], e->mean_px[0]);
        if (p[3] < 50)
            sb_printf(b, "Note that the CLIP model itself calls only %.0f %% of the held-out sketches \"%s\": that target "
                      "is far from what the model takes the word to mean, which limits what any text-guided translation "
                      "can do for it.", p[3], tt);
        sb_printf(b, "\n\n");
    }
}

/* "| <first> | source | target-heldout | ... |" and its rule line. */
static void table_header(sbuf *b, const char *first) {
    sb_printf(b, "| %s |", first);
    for (int ev = 0; ev < DA_EXP_N_EVAL; ev++) sb_printf(b, " %s |", DA_EXP_EVAL_NAMES[ev]);
    sb_printf(b, "\n|---|");
    for (int ev = 0; ev < DA_EXP_N_EVAL; ev++) sb_printf(b, "---|");
    sb_printf(b, "\n");
}

static void epoch_table(const da_exp_runs *r, int tr, sbuf *b) {
    table_header(b, "epoch");
    for (int ep = 0; ep < r->epochs; ep++) {
        sb_printf(b, "| %d |", ep + 1);
        for (int ev = 0; ev < DA_EXP_N_EVAL; ev++) {
            summary s = at_epoch(r, tr, ep, ev);
            sb_printf(b, " %.1f ± %.1f |", s.mean, s.std);
        }
        sb_printf(b, "\n");
    }
    sb_printf(b, "\n");
}

/* One row of the settings table: reference value, this run's value, and why they differ. */
static void setting_row(sbuf *b, const da_exp_config *c, const char *label, double ref, double ours,
                        double level_default) {
    const char *why;
#define SAME(a, b) (fabs((a) - (b)) <= 1e-6 * fabs(b))
    if (SAME(ours, ref)) why = "same";
    else if (!SAME(ours, level_default)) why = "set on the command line";
    else if (strcmp(c->level, "default") != 0) why = strcmp(c->level, "quick") == 0 ? "the `--quick` scale" : "the `--smoke` scale";
#undef SAME
    else why = "our default";
    sb_printf(b, "| %s | %g | %g | %s |\n", label, ref, ours, why);
}

static void settings_table(const da_experiment *e, sbuf *b) {
    const da_exp_config *c = &e->cfg;
    da_exp_config d;
    da_exp_defaults(&d);
    if (strcmp(c->level, "quick") == 0) da_exp_quick(&d);
    else if (strcmp(c->level, "smoke") == 0) da_exp_smoke(&d);
    /* the reference column of the method: its defaults, which are the DiffusionCLIP recipe */
    da_ft_config r;
    da_ft_config_default(&r);
    sb_printf(b, "\nDiffusionCLIP settings against its public defaults (CelebA-HQ recipe, design.md §2) and the reference "
              "experiment (40 inversion and 6 generation steps):\n\n| setting | reference | this run | why |\n|---|---|---|---|\n");
    setting_row(b, c, "return step t0", r.t0, c->ft.t0, d.ft.t0);
    setting_row(b, c, "inversion steps", r.inv_steps, c->ft.inv_steps, d.ft.inv_steps);
    setting_row(b, c, "generation steps while fine-tuning", r.train_steps, c->ft.train_steps, d.ft.train_steps);
    setting_row(b, c, "generation steps when translating", r.gen_steps, c->ft.gen_steps, d.ft.gen_steps);
    setting_row(b, c, "model_ratio: r·ε_ft + (1−r)·ε_orig when translating", r.model_ratio, c->ft.model_ratio,
                d.ft.model_ratio);
    setting_row(b, c, "fine-tuning images", r.images, c->ft.images, d.ft.images);
    setting_row(b, c, "fine-tuning epochs", r.epochs, c->ft.epochs, d.ft.epochs);
    setting_row(b, c, "fine-tuning batch", r.batch, c->ft.batch, d.ft.batch);
    setting_row(b, c, "learning rate (Adam)", r.lr, c->ft.lr, d.ft.lr);
    setting_row(b, c, "learning-rate factor per epoch", r.lr_gamma, c->ft.lr_gamma, d.ft.lr_gamma);
    setting_row(b, c, "directional CLIP loss weight", r.clip_weight, c->ft.clip_weight, d.ft.clip_weight);
    setting_row(b, c, "L1 loss weight", r.l1_weight, c->ft.l1_weight, d.ft.l1_weight);
    setting_row(b, c, "random views of the directional loss", r.views, c->ft.views, d.ft.views);
    setting_row(b, c, "image-direction weight (--tgt-images)", 0, c->tgt_images ? c->ft.tgt_weight : 0, 0);
    setting_row(b, c, "CNN seeds (the reference ran one)", 1, c->seeds, d.seeds);
    setting_row(b, c, "CNN epochs", 10, c->epochs, d.epochs);
    setting_row(b, c, "labelled training images", 1200, (double)e->train.n, d.train_n);
    setting_row(b, c, "test images", 300, (double)e->test.n, d.test_n);
    sb_printf(b, "\nGradient mode: `%s` (the gradient of each image's loss flows through all %d generation steps%s).\n",
              DA_FT_MODE_NAMES[c->ft.mode], c->ft.train_steps, c->ft.mode == DA_FT_CHAIN ? "" : "; per-step: one update per step");
}

static int write_report(const da_experiment *e, const char *path, char *err, size_t errlen) {
    const da_exp_runs *r = &e->runs;
    const da_exp_config *c = &e->cfg;
    sbuf b = {0};
    char t1[32];
    sb_printf(&b, "# Text-guided domain adaptation: \"%s\" -> \"%s\"\n\n", c->ft.src_text, c->ft.tgt_text);
    sb_printf(&b, "Task: **%s** (%s), %lld labelled training and %lld test images of %lldx%lldx%lld (CxHxW), drawn with "
              "seed %d from `%s`. Run level: `%s`.\n\n", e->task_desc, e->class_names, (long long)e->train.n,
              (long long)e->test.n, (long long)e->train.c, (long long)e->train.h, (long long)e->train.w, c->data_seed,
              c->data, c->level);
    sb_printf(&b, "The training images were translated with DiffusionCLIP (a diffusion model fine-tuned so that its "
              "generations move from \"%s\" to \"%s\" along a CLIP text direction) into the `adapted` set. The same "
              "CNN was then trained %d times (seeds 0..%d, %d epochs each) on `original` and on `adapted` images and "
              "evaluated after every epoch on these sets (the test sets are made from the same %lld test images):\n\n", c->ft.src_text,
              c->ft.tgt_text, r->seeds, r->seeds - 1, r->epochs, (long long)e->test.n);
    sb_printf(&b, "- `source`: the original test images;\n"
              "- the **target panel**, three held-out renderers %s: `target-heldout` (the test images as pencil "
              "sketches, colour dodge), `target-hatching` (pen-and-ink hatching) and `target-stipple` (stippled dots); "
              "their mean is **the headline target**;\n"
              "- `validation`: %lld *training* images outside the labelled draw, drawn by the validation renderer "
              "(xdog); recipes are chosen on it, never on the panel;\n"
              "- `target-self`: the test images translated by the fine-tuned model itself, as in the reference "
              "experiment (its sketch test set came from the same model that adapted the training set).\n\n",
              c->clip ? "made independently of the translation model" : "the mini-CLIP never saw in training",
              (long long)e->validation.n);

    sb_printf(&b, "## Accuracy after the last epoch (%d), mean ± std over %d seeds (%%)\n\n", r->epochs, r->seeds);
    table_header(&b, "trained on");
    for (int tr = 0; tr < DA_EXP_N_TRAIN; tr++) {
        sb_printf(&b, "| %s |", DA_EXP_TRAIN_NAMES[tr]);
        for (int ev = 0; ev < DA_EXP_N_EVAL; ev++) {
            summary s = at_epoch(r, tr, r->epochs - 1, ev);
            sb_printf(&b, " %.1f ± %.1f |", s.mean, s.std);
        }
        sb_printf(&b, "\n");
    }
    sb_printf(&b, "\nBest epoch (the epoch with the best mean; chosen on the test set itself, so optimistic):\n\n");
    table_header(&b, "trained on");
    for (int tr = 0; tr < DA_EXP_N_TRAIN; tr++) {
        sb_printf(&b, "| %s |", DA_EXP_TRAIN_NAMES[tr]);
        for (int ev = 0; ev < DA_EXP_N_EVAL; ev++) {
            summary s = best_epoch(r, tr, ev);
            sb_printf(&b, " %.1f ± %.1f (epoch %d) |", s.mean, s.std, s.epoch);
        }
        sb_printf(&b, "\n");
    }
    sb_printf(&b, "\n## Gain from adaptation (adapted − original), points, last epoch\n\n");
    sb_printf(&b, "| test set | original | adapted | gain [95 %% interval] | Welch interval |\n|---|---|---|---|---|\n");
    for (int ev = 0; ev < DA_EXP_N_EVAL; ev++) {
        summary so = at_epoch(r, 0, r->epochs - 1, ev), sa = at_epoch(r, 1, r->epochs - 1, ev);
        char ci[96], cw[96];
        fmt_ci(gain(r, ev, false), ci, sizeof ci);
        fmt_ci(gain(r, ev, true), cw, sizeof cw);
        sb_printf(&b, "| %s | %.1f | %.1f | %s | %s |\n", DA_EXP_EVAL_NAMES[ev], so.mean, sa.mean, ci, cw);
    }
    {
        double pm[2] = {0, 0};
        for (int tr = 0; tr < 2; tr++)
            for (int k = 0; k < DA_EXP_PANEL_N; k++) pm[tr] += at_epoch(r, tr, r->epochs - 1, DA_EXP_PANEL_FIRST + k).mean / DA_EXP_PANEL_N;
        char ci[96], cw[96];
        fmt_ci(panel_gain(r, false), ci, sizeof ci);
        fmt_ci(panel_gain(r, true), cw, sizeof cw);
        sb_printf(&b, "| **target panel (mean of the three)** | %.1f | %.1f | %s | %s |\n", pm[0], pm[1], ci, cw);
    }
    sb_printf(&b, "\nThe interval is a paired t-interval over seeds: seed s trains both CNNs from the same initial "
              "weights and the same shuffling, so d_s = adapted_s − original_s and mean(d) ± t(0.975, n−1)·sd(d)/√n "
              "(n = %d). Welch's interval, which ignores the pairing, is shown for comparison. Both reflect only "
              "the variation over CNN seeds: the data draw, the fine-tuned model and the test images are fixed.\n\n",
              r->seeds);
    reading(e, &b);

    sb_printf(&b, "## Accuracy per epoch (the reference figures as tables)\n\n");
    sb_printf(&b, "Trained on original images (reference: Figure 3) — plot: `accuracy_original.png`\n\n");
    epoch_table(r, 0, &b);
    sb_printf(&b, "Trained on adapted images (reference: Figure 4) — plot: `accuracy_adapted.png`\n\n");
    epoch_table(r, 1, &b);
    sb_printf(&b, "![trained on original](accuracy_original.png) ![trained on adapted](accuracy_adapted.png)\n\n");

    sb_printf(&b, "## Examples\n\n`examples.png`, rows from the top: training originals, the same images adapted; test "
              "originals (`source`), the same in the held-out renderer (`target-heldout`), the same translated "
              "(`target-self`). The sets alone: `examples_source.png`, `examples_adapted.png`, "
              "`examples_target_heldout.png`, `examples_target_self.png`.\n\n![examples](examples.png)\n\n");

    sb_printf(&b, "## Stages and wall time\n\n| stage | time | from | what |\n|---|---|---|---|\n");
    double total = 0;
    for (int i = 0; i < e->n_stages; i++) {
        const da_exp_stage *s = &e->stages[i];
        sb_printf(&b, "| %s | %s | %s | %s |\n", s->name, fmt_time(s->seconds, t1, sizeof t1), s->source, s->detail);
        total += s->seconds;
    }
    sb_printf(&b, "| **total** | **%s** | | %d thread(s) |\n\n", fmt_time(total, t1, sizeof t1), da_get_threads());

    sb_printf(&b, "## Settings\n\n");
    sb_printf(&b, "- diffusion model: %s, hash %s; fine-tuned copy hash %s\n", e->model_desc, e->model_hash,
              e->finetuned_hash);
    sb_printf(&b, "- CLIP model: %s, hash %s\n", e->clip_desc, e->clip_hash);
    sb_printf(&b, "- DiffusionCLIP: \"%s\" -> \"%s\", t0 %d, %d inversion steps, %d generation steps while fine-tuning "
              "and %d when translating, η = 0; %d fine-tuning images × %d epochs, batch %d, %s mode, Adam lr %g "
              "(× %g per epoch), loss %g·L_clip + %g·L1\n", c->ft.src_text, c->ft.tgt_text, c->ft.t0, c->ft.inv_steps,
              c->ft.train_steps, c->ft.gen_steps, c->ft.images, c->ft.epochs, c->ft.batch, DA_FT_MODE_NAMES[c->ft.mode], (double)c->ft.lr,
              (double)c->ft.lr_gamma, (double)c->ft.clip_weight, (double)c->ft.l1_weight);
    sb_printf(&b, "- identity term on %s; directional loss over the image and %d random views (crop side >= %g); "
              "direction: %s\n", c->ft.identity == DA_FT_ID_PIXELS ? "pixels" : c->ft.identity == DA_FT_ID_EDGES ? "edge magnitudes" : "4x4 block maxima of edge magnitudes", c->ft.views,
              (double)c->ft.view_min_scale, c->tgt_images ? "text and target images mixed (see below)" : "the text direction");
    if (c->tgt_images)
        sb_printf(&b, "- image-guided direction: `%s`, weight %g against the text direction (1 = images only)\n",
                  c->tgt_images, (double)c->ft.tgt_weight);
    sb_printf(&b, "- fine-tuning losses (epoch means): directional %.4f -> %.4f, L1 %.4f -> %.4f\n", e->ft_first_dir,
              e->ft_last_dir, e->ft_first_l1, e->ft_last_l1);
    sb_printf(&b, "- CNN: conv 32/64/128 + max-pool, FC 512%s; %s; Adam lr %g, batch %d, %d epochs, seeds 0..%d\n",
              c->cnn_c1 ? " (narrowed for this run level)" : "",
              r->n_classes == 2 ? "one logit, sigmoid + BCE" : "softmax + cross-entropy", (double)c->lr, c->batch,
              r->epochs, r->seeds - 1);
    sb_printf(&b, "- all rows of every run: `metrics.csv`; every statistic above: `results.json`\n");
    settings_table(e, &b);
    if (b.oom) {
        free(b.buf);
        snprintf(err, errlen, "out of memory writing %s", path);
        return -1;
    }
    int rc = da_atomic_write(path, b.buf, b.len, err, errlen);
    free(b.buf);
    return rc;
}

/* ---- plots and grids ------------------------------------------------------------------------ */

static int write_plot(const da_experiment *e, int tr, const char *path, char *err, size_t errlen) {
    const da_exp_runs *r = &e->runs;
    double *x = malloc(sizeof(double) * (size_t)r->epochs);
    double *m = malloc(sizeof(double) * (size_t)(r->epochs * DA_EXP_N_EVAL));
    double *sd = malloc(sizeof(double) * (size_t)(r->epochs * DA_EXP_N_EVAL));
    if (!x || !m || !sd) {
        free(x);
        free(m);
        free(sd);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    da_plot_series series[DA_EXP_N_EVAL];
    for (int ev = 0; ev < DA_EXP_N_EVAL; ev++) {
        for (int ep = 0; ep < r->epochs; ep++) {
            summary s = at_epoch(r, tr, ep, ev);
            x[ep] = ep + 1;
            m[ev * r->epochs + ep] = s.mean;
            sd[ev * r->epochs + ep] = s.std;
        }
        series[ev] = (da_plot_series){DA_EXP_EVAL_NAMES[ev], r->epochs, x, m + ev * r->epochs, sd + ev * r->epochs};
    }
    char title[256];
    snprintf(title, sizeof title, "CNN trained on %s images: mean +- std over %d seeds", DA_EXP_TRAIN_NAMES[tr], r->seeds);
    da_plot_opts po = {title, "epoch", "accuracy (%)", 0, 100, 0, 0};
    int rc = da_plot_lines(path, &po, DA_EXP_N_EVAL, series, err, errlen);
    free(x);
    free(m);
    free(sd);
    return rc;
}

/* Up to `want` indices into d, taking the classes in turn (so every class shows). */
static int pick_examples(const da_dataset *d, int want, int64_t *idx) {
    int n = 0;
    int64_t maxl = 0;
    for (int64_t i = 0; i < d->n; i++)
        if (d->labels[i] > maxl) maxl = d->labels[i];
    bool *used = calloc((size_t)d->n, 1);
    if (!used) return 0;
    for (int round = 0; n < want && round < want; round++)
        for (int64_t cls = 0; cls <= maxl && n < want; cls++) {
            int64_t seen = 0;
            for (int64_t i = 0; i < d->n; i++)
                if (d->labels[i] == cls && !used[i] && seen++ == 0) {
                    used[i] = true;
                    idx[n++] = i;
                }
        }
    free(used);
    return n;
}

static void gather(const da_dataset *d, const int64_t *idx, int n, float *out) {
    const int64_t per = d->c * d->h * d->w;
    for (int i = 0; i < n; i++) memcpy(out + i * per, d->images + idx[i] * per, sizeof(float) * (size_t)per);
}

static int write_grids(const da_experiment *e, const char *dir, char *err, size_t errlen) {
    const int want = e->train.h > 64 ? 8 : 16;
    int64_t itr[16], ite[16];
    int ntr = pick_examples(&e->train, want, itr), nte = pick_examples(&e->test, want, ite);
    int cols = ntr < nte ? ntr : nte;
    const int64_t per = e->train.c * e->train.h * e->train.w;
    float *buf = malloc(sizeof(float) * (size_t)(5 * cols * per));
    if (!buf || cols < 1) {
        free(buf);
        snprintf(err, errlen, "no examples to show");
        return -1;
    }
    const da_dataset *rows[5] = {&e->train, &e->adapted, &e->test, &e->target_heldout, &e->target_self};
    const char *names[5] = {"examples_source.png", "examples_adapted.png", NULL, "examples_target_heldout.png",
                            "examples_target_self.png"};
    for (int k = 0; k < 5; k++) gather(rows[k], k < 2 ? itr : ite, cols, buf + k * cols * per);
    char path[4400];
    int rc = 0;
    for (int k = 0; k < 5 && rc == 0; k++) {
        if (!names[k]) continue;
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        rc = da_image_write_grid(path, buf + k * cols * per, cols, (int)e->train.c, (int)e->train.h, (int)e->train.w,
                                 cols > 8 ? 8 : cols, err, errlen);
    }
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/examples.png", dir);
        rc = da_image_write_grid(path, buf, 5 * cols, (int)e->train.c, (int)e->train.h, (int)e->train.w, cols, err,
                                 errlen);
    }
    free(buf);
    return rc;
}

int da_exp_write_outputs(da_experiment *e, char *err, size_t errlen) {
    const char *dir = e->cfg.out;
    char path[4400];
    snprintf(path, sizeof path, "%s/accuracy_original.png", dir);
    if (write_plot(e, 0, path, err, errlen) != 0) return -1;
    snprintf(path, sizeof path, "%s/accuracy_adapted.png", dir);
    if (write_plot(e, 1, path, err, errlen) != 0) return -1;
    if (write_grids(e, dir, err, errlen) != 0) return -1;
    snprintf(path, sizeof path, "%s/results.json", dir);
    if (write_results_json(e, path, err, errlen) != 0) return -1;
    snprintf(path, sizeof path, "%s/report.md", dir);
    return write_report(e, path, err, errlen);
}
