/* config.c — the settings of the default, --quick and --smoke experiment runs, and the
 * bookkeeping of a run (state, stage timings). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "experiment/experiment.h"
#include "util/progress.h"

const char *const DA_EXP_TRAIN_NAMES[DA_EXP_N_TRAIN] = {"original", "adapted"};
const char *const DA_EXP_EVAL_NAMES[DA_EXP_N_EVAL] = {"source", "target-heldout", "target-hatching",
                                                               "target-stipple", "validation", "target-self"};

void da_exp_defaults(da_exp_config *c) {
    memset(c, 0, sizeof *c);
    c->data = "fashion-mnist";
    c->task = "5,7";                 /* chosen by measurement: docs/experiment.md */
    c->train_n = 1200;
    c->test_n = 300;
    c->val_n = 300;
    c->data_seed = 0;
    c->diff_steps = 2000;
    c->diff_batch = 64;
    c->diff_ch = 32;
    c->clip_steps = 1500;
    c->clip_batch = 128;
    da_ft_config_default(&c->ft);
    c->ft.ddim_batch = 50;
    c->tgt_images = NULL;
    c->seeds = 5;
    c->epochs = 10;
    c->batch = 32;
    c->lr = 1e-3f;
    c->out = "out/experiment";
    c->level = "default";
}

void da_exp_quick(da_exp_config *c) {
    c->train_n = 200;
    c->test_n = 100;
    c->val_n = 100;
    /* models trained on the spot only when none is shipped: tiny ones, briefly */
    c->pool_n = 2000;
    c->diff_steps = 100;
    c->diff_batch = 32;
    c->clip_steps = 100;
    c->clip_batch = 64;
    c->ft.inv_steps = 10;
    c->ft.train_steps = 3;
    c->ft.gen_steps = 3;
    c->ft.images = 8;
    c->ft.epochs = 1;
    c->seeds = 2;
    c->epochs = 3;
    c->quick = true;
    c->level = "quick";
}

void da_exp_smoke(da_exp_config *c) {
    da_exp_quick(c);
    /* 16x16 images and tiny models trained for a few steps: every stage and output, in seconds */
    c->size = 16;
    c->train_n = 32;
    c->test_n = 16;
    c->val_n = 16;
    c->pool_n = 64;
    c->diff_steps = 4;
    c->diff_batch = 8;
    c->clip_steps = 4;
    c->clip_batch = 16;
    c->ft.inv_steps = 3;
    c->ft.train_steps = 2;
    c->ft.gen_steps = 2;
    c->ft.images = 2;
    c->epochs = 2;
    c->cnn_c1 = 8;
    c->cnn_c2 = 8;
    c->cnn_c3 = 16;
    c->cnn_hidden = 16;
    c->tiny_models = true;
    c->level = "smoke";
}

da_exp_data_kind da_exp_kind(const char *data) {
    if (!data || strncmp(data, "fashion-mnist", 13) == 0) return DA_EXP_FASHION;
    if (strncmp(data, "celeba:", 7) == 0) return DA_EXP_CELEBA;
    return DA_EXP_OTHER;
}

void da_exp_init(da_experiment *e, const da_exp_config *cfg) {
    memset(e, 0, sizeof *e);
    e->cfg = *cfg;
    e->kind = da_exp_kind(cfg->data);
    e->t_start = da_now();
}

void da_exp_runs_free(da_exp_runs *r) {
    free(r->acc);
    free(r->train_acc);
    free(r->train_loss);
    memset(r, 0, sizeof *r);
}

void da_exp_free(da_experiment *e) {
    da_dataset_free(&e->train);
    da_dataset_free(&e->test);
    da_dataset_free(&e->adapted);
    da_dataset_free(&e->target_heldout);
    da_dataset_free(&e->target_hatching);
    da_dataset_free(&e->target_stipple);
    da_dataset_free(&e->validation);
    da_dataset_free(&e->target_self);
    if (e->have_model) da_unet_free(&e->model);
    if (e->have_finetuned) da_unet_free(&e->finetuned);
    if (e->have_clip) da_clip_free(&e->clip);
    da_exp_runs_free(&e->runs);
    memset(e, 0, sizeof *e);
}

da_exp_stage *da_exp_add_stage(da_experiment *e, const char *name, double seconds, const char *source, const char *fmt, ...) {
    int i = e->n_stages < DA_EXP_MAX_STAGES ? e->n_stages++ : DA_EXP_MAX_STAGES - 1;
    da_exp_stage *s = &e->stages[i];
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->source, sizeof s->source, "%s", source);
    s->seconds = seconds;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->detail, sizeof s->detail, fmt, ap);
    va_end(ap);
    fprintf(stderr, "[experiment] stage %-16s %8.1f s  (%s) %s\n", s->name, s->seconds, s->source, s->detail);
    return s;
}
