/* finetune_state.c — what a fine-tuning run (diffadapt.h) writes to disk: its state to resume from
 * (model weights, Adam's moments, epochs done, the settings text it must match) and the finished
 * model with its provenance. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "io/safetensors.h"
#include "nn/params.h"

#define STATE_FORMAT "diffadapt-finetune-checkpoint"
#define ADAM_KEY "optimizer.adam_state"

int da_finetune_run_save_state(const da_finetune_run *run, const char *path, char *err, size_t errlen) {
    if (!run || !path) return da_api_fail(err, errlen, "da_finetune_run_save_state: an argument is missing");
    const da_unet *m = &run->model->unet;
    int64_t n = da_adam_state_size(&run->opt);
    float *state = malloc(sizeof(float) * (size_t)(n ? n : 1));   /* (n) Adam's moments and step */
    char *js = da_unet_config_to_json(&m->cfg);
    if (!state || !js) {
        free(state);
        free(js);
        return da_api_fail(err, errlen, "out of memory");
    }
    da_adam_export(&run->opt, state);
    st_writer *w = st_writer_new();
    for (int i = 0; i < m->params.n; i++) {
        const da_tensor *t = m->params.items[i].t;
        st_writer_add_f32(w, m->params.items[i].name, t->ndim, t->shape, t->data);
    }
    st_writer_add_f32(w, ADAM_KEY, 1, &n, state);
    char s_epoch[16];
    snprintf(s_epoch, sizeof s_epoch, "%d", run->epochs_done);
    st_writer_set_meta(w, "format", STATE_FORMAT);
    st_writer_set_meta(w, "epochs_done", s_epoch);
    st_writer_set_meta(w, "settings", run->settings);
    st_writer_set_meta(w, "config", js);
    int rc = st_writer_save(w, path, err, errlen);   /* a temporary renamed over path */
    st_writer_free(w);
    free(js);
    free(state);
    return rc;
}

/* "12" -> 12; -1 for anything but a plain non-negative number of at most 9 digits. */
static int parse_epochs(const char *s) {
    int v = 0, digits = 0;
    for (; *s; s++, digits++) {
        if (*s < '0' || *s > '9' || digits == 9) return -1;
        v = v * 10 + (*s - '0');
    }
    return digits ? v : -1;
}

/* Everything is checked and read before the model and the optimiser change, so that a file that
 * fails leaves the run as it was. */
static int load_state(da_finetune_run *run, const st_file *f, const char *path, char *err, size_t errlen) {
    const char *fmt = st_meta_get(f, "format"), *s = st_meta_get(f, "settings"), *ep = st_meta_get(f, "epochs_done");
    const st_tensor_info *ta = st_find(f, ADAM_KEY);
    int epochs = ep ? parse_epochs(ep) : -1;
    if (!fmt || strcmp(fmt, STATE_FORMAT) || !s || !ta || epochs < 0)
        return da_api_fail(err, errlen, "%s is not a fine-tuning checkpoint of diffadapt", path);
    if (strcmp(s, run->settings))
        return da_api_fail(err, errlen, "%s was made with other settings, so it cannot be resumed:\n  checkpoint: %s\n"
                           "  now:        %s", path, s, run->settings);
    const int64_t n = da_adam_state_size(&run->opt);
    if (ta->ndim != 1 || ta->numel != n)
        return da_api_fail(err, errlen, "%s: the optimiser state holds %lld values, the run's %lld", path,
                           (long long)ta->numel, (long long)n);
    float *state = malloc(sizeof(float) * (size_t)(n ? n : 1));   /* (n) */
    if (!state) return da_api_fail(err, errlen, "out of memory");
    char e2[2048];
    int rc = -1;
    if (st_read_f32(f, ta, state, e2, sizeof e2)) {
        da_api_fail(err, errlen, "%s: optimiser state: %s", path, e2);
    } else if (da_params_load(&run->model->unet.params, f, NULL, DA_LOAD_ALLOW_EXTRA | DA_LOAD_QUIET, NULL, e2,
                              sizeof e2)) {
        da_api_fail(err, errlen, "%s: %s", path, e2);
    } else if (da_adam_import(&run->opt, state, n, e2, sizeof e2)) {   /* the size is checked above: cannot fail */
        da_api_fail(err, errlen, "%s: optimiser state: %s", path, e2);
    } else {
        run->epochs_done = epochs;
        rc = 0;
    }
    free(state);
    return rc;
}

int da_finetune_run_load_state(da_finetune_run *run, const char *path, char *err, size_t errlen) {
    if (!run || !path) return da_api_fail(err, errlen, "da_finetune_run_load_state: an argument is missing");
    if (!run->lat)
        return da_api_fail(err, errlen, "da_finetune_run_load_state: compute or set the latents first (they come from "
                           "the original model, which the state replaces)");
    st_file f;
    if (st_open(path, &f, err, errlen)) return -1;
    int rc = load_state(run, &f, path, err, errlen);
    st_close(&f);
    if (rc == 0) {
        run->started = true;
        run->failed = false;
    }
    return rc;
}

int da_finetune_run_save_model(const da_finetune_run *run, const char *path, const char *base_name, char *err,
                               size_t errlen) {
    if (!run || !path) return da_api_fail(err, errlen, "da_finetune_run_save_model: an argument is missing");
    char s_epochs[16], base[4200];
    snprintf(s_epochs, sizeof s_epochs, "%d", run->epochs_done);
    if (base_name) snprintf(base, sizeof base, "%s (%s)", base_name, run->model_hash);
    else snprintf(base, sizeof base, "%s", run->model_hash);
    const char *extra[] = {"finetune_src_text", run->src_text, "finetune_tgt_text", run->tgt_text, "finetune_settings",
                           run->settings, "finetune_epochs", s_epochs, "base_model", base};
    return da_unet_save(&run->model->unet, path, extra, 5, err, errlen);
}
