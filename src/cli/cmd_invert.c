/* cmd_invert.c — `diffadapt invert`: deterministic DDIM inversion (eta 0) of images from 0 up to
 * t0, writing the latents x_t0 (N,C,H,W) with the labels and the settings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/diffusion_cli.h"
#include "cli/method_options.h"
#include "io/safetensors.h"

#define CMD "invert"

int cmd_invert(int argc, char **argv) {
    const char *model = NULL, *config = NULL, *input = NULL, *out = NULL;
    int batch = 16, threads = 0;
    da_ft_config cfg;
    da_ft_config_default(&cfg);
    bool force = false;
    da_cli_data dd = {0};
    da_option opts[24] = {
        {"--model", DA_OPT_STRING, &model, "M.safetensors", "the diffusion model", true},
        {"--config", DA_OPT_STRING, &config, "FILE", "model config (YAML/JSON) when the file has none", false},
        {"--input", DA_OPT_STRING, &input, "DATA", "images to invert (folder, IDX, .safetensors, fashion-mnist[:test], celeba:DIR)", true},
        {"--out", DA_OPT_STRING, &out, "L.safetensors", "latents (N,C,H,W), labels when the data have them", true},
        {"--steps", DA_OPT_INT, &cfg.inv_steps, "N", "length of the timestep sequence (N-1 model calls)", false},
        {"--batch", DA_OPT_INT, &batch, "N", "images per model call", false},
        {"--threads", DA_OPT_INT, &threads, "N", "worker threads (0 = all cores)", false},
        {"--force", DA_OPT_FLAG, &force, NULL, "overwrite an existing --out", false},
    };
    int n_opts = 0;
    while (opts[n_opts].name) n_opts++;
    n_opts += da_method_options(&cfg, DA_MOPT_T0, DA_MOPT_COMMAND, false, opts + n_opts);
    da_cli_data_options(&dd, opts + n_opts);
    static const da_cmd_info info = {
        CMD, "--model M --input DATA --out L.safetensors [--t0 T] [--steps N]",
        "Deterministic DDIM inversion: with seq = int(linspace(0,1,N)*t0), steps (t, t_next) in\n"
        "zip(seq[:-1], seq[1:]) take each image from t = 0 to the latent at t0 (N-1 model calls).\n"
        "The output holds `latents` (N,C,H,W) (+ `labels`) and t0/steps in its metadata, so\n"
        "`generate` can take the same t0.",
        NULL};
    int rc = da_parse_args(&info, opts, argc, argv, NULL, NULL);
    if (rc) return da_args_exit(rc);
    const int t0 = cfg.t0, steps = cfg.inv_steps;
    if (!da_ends_with(out, ".safetensors")) {
        fprintf(stderr, "diffadapt " CMD ": --out must end in .safetensors, got '%s'\n", out);
        return 2;
    }
    if (da_check_output(out, force)) return 1;
    da_set_threads(threads);
    da_unet m;
    if (da_cli_load_unet(model, config, &m)) return 1;
    da_dataset d;
    if (da_cli_load_data(CMD, "--input", input, &dd, &d)) {
        da_unet_free(&m);
        return 1;
    }
    int status = 1;
    if (d.c != m.cfg.in_channels || d.h != m.cfg.resolution || d.w != m.cfg.resolution) {
        fprintf(stderr, "error: the images are %lldx%lldx%lld (HxWxC) but the model takes %dx%dx%d; use --size, --pad or --channels\n",
                (long long)d.h, (long long)d.w, (long long)d.c, m.cfg.resolution, m.cfg.resolution, m.cfg.in_channels);
        goto done;
    }
    if (da_cli_ddim("invert", &m, d.images, d.n, batch, DA_CLI_INVERT, steps, t0, 0.0f, 0, false)) goto done;
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
    da_unet_free(&m);
    return status;
}
