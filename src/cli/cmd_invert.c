/* cmd_invert.c — `diffadapt invert`: deterministic DDIM inversion (eta 0) of images from 0 up to
 * t0, writing the latents x_t0 (N,C,H,W) with the labels and the settings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/diffusion_cli.h"
#include "cli/option_fragments.h"
#include "cli/outputs.h"
#include "io/safetensors.h"

#define CMD "invert"

int cmd_invert(int argc, char **argv) {
    const char *input = NULL;
    da_common co = {.batch = 16};
    da_ft_config cfg;
    da_ft_config_default(&cfg);
    da_cli_data dd = {0};
    da_option opts[32] = {
        {"--input", DA_OPT_STRING, &input, "DATA", "images to invert " DA_DATA_SOURCES, true},
        {"--steps", DA_OPT_INT, &cfg.inv_steps, "N", "length of the timestep sequence (N-1 model calls)", false},
    };
    static const da_common_words words = {
        .out_metavar = "L.safetensors", .out = "latents (N,C,H,W), labels when the data have them"};
    const da_fragments shared = {
        .common = &co, .words = &words,
        .common_parts = DA_COPT_MODEL | DA_COPT_OUT | DA_COPT_BATCH | DA_COPT_THREADS | DA_COPT_PRECISION | DA_COPT_FORCE,
        .method = &cfg, .method_parts = DA_MOPT_T0,
        .data = &dd, .data_parts = DA_DATA_ALL};
    da_fragments_add(&shared, opts);
    static const da_cmd_info info = {
        CMD, "--model M --input DATA --out L.safetensors [--t0 T] [--steps N]",
        "Deterministic DDIM inversion: with seq = int(linspace(0,1,N)*t0), steps (t, t_next) in\n"
        "zip(seq[:-1], seq[1:]) take each image from t = 0 to the latent at t0 (N-1 model calls).\n"
        "The output holds `latents` (N,C,H,W) (+ `labels`) and t0/steps in its metadata, so\n"
        "`generate` can take the same t0.",
        NULL};
    int rc;
    if (!da_fragments_parse(&info, opts, &shared, argc, argv, &rc)) return rc;
    if ((rc = da_check_suffix(CMD, "--out", co.out, ".safetensors"))) return rc;
    const char *model = co.model, *out = co.out;
    const int t0 = cfg.t0, steps = cfg.inv_steps;
    if (da_check_output(out, co.force)) return 1;
    da_set_threads(co.threads);
    da_model *m = NULL;
    if (da_cli_load_model(model, co.config, co.precision, &m)) return 1;
    da_dataset d;
    if (da_cli_load_data(CMD, "--input", input, &dd, &d)) {
        da_model_free(m);
        return 1;
    }
    int status = 1;
    da_ddim_settings ds;
    da_ddim_defaults(&ds);
    ds.t0 = t0;
    ds.steps = steps;
    ds.batch = co.batch;
    if (da_cli_check_images_fit_model(&d, m) || da_cli_ddim("invert", m, NULL, 1.0f, DA_CLI_INVERT, &ds, d.images, d.n))
        goto done;
    char s_t0[32], s_steps[32], err[2048];
    snprintf(s_t0, sizeof s_t0, "%d", t0);
    snprintf(s_steps, sizeof s_steps, "%d", steps);
    st_writer *w = st_writer_new();
    int64_t shape[4] = {d.n, d.c, d.h, d.w};
    st_writer_add_f32(w, "latents", 4, shape, d.images);
    if (d.labels) st_writer_add_i64(w, "labels", 1, &d.n, d.labels);
    st_writer_set_meta(w, "t0", s_t0);
    st_writer_set_meta(w, "inv_steps", s_steps);
    st_writer_set_meta(w, "model", model);
    st_writer_set_meta(w, "input", input);
    rc = st_writer_save(w, out, err, sizeof err);
    st_writer_free(w);
    if (rc) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }
    fprintf(stderr, "wrote %lld latents (t0 %d, %d steps) to %s\n", (long long)d.n, t0, steps, out);
    status = 0;
done:
    da_dataset_free(&d);
    da_model_free(m);
    return status;
}
