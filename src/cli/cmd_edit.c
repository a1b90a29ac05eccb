/* cmd_edit.c — `diffadapt edit`: invert images with one model and generate with another (or the
 * same), writing the results, a side-by-side PNG grid and the reconstruction PSNR. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/diffusion_cli.h"
#include "cli/method_options.h"
#include "diffusion/ddim.h"
#include "data/image.h"

#define CMD "edit"

int cmd_edit(int argc, char **argv) {
    const char *model = NULL, *model_gen = NULL, *config = NULL, *config_gen = NULL, *input = NULL, *out = NULL, *grid = NULL;
    int batch = 16, seed = 0, threads = 0, grid_n = 16;
    float eta = 0.0f;
    da_ft_config cfg;
    da_ft_config_default(&cfg);
    bool force = false;
    da_cli_data dd = {0};
    da_option opts[32] = {
        {"--model", DA_OPT_STRING, &model, "M.safetensors", "the model that inverts", true},
        {"--model-gen", DA_OPT_STRING, &model_gen, "M2.safetensors", "the model that generates (default: --model)", false},
        {"--config", DA_OPT_STRING, &config, "FILE", "config of --model when its file has none", false},
        {"--config-gen", DA_OPT_STRING, &config_gen, "FILE", "config of --model-gen when its file has none", false},
        {"--input", DA_OPT_STRING, &input, "DATA", "source images (folder, IDX, .safetensors, fashion-mnist[:test], celeba:DIR)", true},
        {"--out", DA_OPT_STRING, &out, "DIR|Y.safetensors", "edited images: PNG folder (+ labels.csv) or `images` tensors", true},
        {"--grid", DA_OPT_STRING, &grid, "FILE.png", "side-by-side grid, source then result (default DIR/grid.png or Y_grid.png)", false},
        {"--grid-n", DA_OPT_INT, &grid_n, "N", "pairs shown in the grid", false},
        {"--eta", DA_OPT_FLOAT, &eta, "E", "DDIM eta of the generation (0 = deterministic)", false},
        {"--seed", DA_OPT_INT, &seed, "N", "seed of eta's noise", false},
        {"--batch", DA_OPT_INT, &batch, "N", "images per model call", false},
        {"--threads", DA_OPT_INT, &threads, "N", "worker threads (0 = all cores)", false},
        {"--force", DA_OPT_FLAG, &force, NULL, "overwrite existing outputs", false},
    };
    int n_opts = 0;
    while (opts[n_opts].name) n_opts++;
    n_opts += da_method_options(&cfg, DA_MOPT_T0 | DA_MOPT_INVERT | DA_MOPT_GENERATE, DA_MOPT_COMMAND, false, opts + n_opts);
    da_cli_data_options(&dd, opts + n_opts);
    static const da_cmd_info info = {
        CMD, "--model M [--model-gen M2] --input DATA --out DIR|Y.safetensors [--t0 T] [--inv-steps N] [--gen-steps N]",
        "Inverts every image with --model (DDIM, eta 0, from 0 up to t0) and generates from the\n"
        "latents with --model-gen (from t0 down to -1). With the same model this is a reconstruction;\n"
        "the PSNR between inputs and outputs is printed either way.",
        NULL};
    int rc = da_parse_args(&info, opts, argc, argv, NULL, NULL);
    if (rc) return da_args_exit(rc);
    const int t0 = cfg.t0, inv_steps = cfg.inv_steps, gen_steps = cfg.gen_steps;
    const float ratio = cfg.model_ratio;
    if (grid_n < 1 || seed < 0) { fprintf(stderr, "diffadapt " CMD ": --grid-n must be >= 1 and --seed >= 0\n"); return 2; }
    char err[2048];
    if (da_eps_mix_check_ratio(ratio, err, sizeof err)) { fprintf(stderr, "diffadapt " CMD ": %s\n", err); return 2; }
    char grid_buf[4200];
    bool grid_in_out = !grid && !da_ends_with(out, ".safetensors");   /* DIR/grid.png: DIR is made later */
    if (!grid) {
        if (da_ends_with(out, ".safetensors"))
            snprintf(grid_buf, sizeof grid_buf, "%.*s_grid.png", (int)(strlen(out) - strlen(".safetensors")), out);
        else
            snprintf(grid_buf, sizeof grid_buf, "%s/grid.png", out);
        grid = grid_buf;
    }
    if (da_check_output(out, force) || (!grid_in_out && da_check_output(grid, force))) return 1;
    da_set_threads(threads);
    da_unet m, m2;
    memset(&m2, 0, sizeof m2);
    if (da_cli_load_unet(model, config, &m)) return 1;
    if (model_gen && da_cli_load_unet(model_gen, config_gen, &m2)) { da_unet_free(&m); return 1; }
    const da_unet *gen = model_gen ? &m2 : &m;
    da_dataset d;
    memset(&d, 0, sizeof d);
    int status = 1;
    float *x = NULL;
    if (gen->cfg.in_channels != m.cfg.in_channels || gen->cfg.resolution != m.cfg.resolution) {
        fprintf(stderr, "error: --model takes %dx%dx%d images but --model-gen %dx%dx%d\n", m.cfg.resolution, m.cfg.resolution,
                m.cfg.in_channels, gen->cfg.resolution, gen->cfg.resolution, gen->cfg.in_channels);
        goto done;
    }
    if (da_cli_load_data(CMD, "--input", input, &dd, &d)) goto done;
    if (d.c != m.cfg.in_channels || d.h != m.cfg.resolution || d.w != m.cfg.resolution) {
        fprintf(stderr, "error: the images are %lldx%lldx%lld (HxWxC) but the model takes %dx%dx%d; use --size, --pad or --channels\n",
                (long long)d.h, (long long)d.w, (long long)d.c, m.cfg.resolution, m.cfg.resolution, m.cfg.in_channels);
        goto done;
    }
    int64_t per = d.c * d.h * d.w, total = d.n * per;
    x = malloc(sizeof(float) * (size_t)total);
    memcpy(x, d.images, sizeof(float) * (size_t)total);
    if (da_cli_ddim("invert", &m, x, d.n, batch, DA_CLI_INVERT, inv_steps, t0, 0.0f, 0, false)) goto done;
    if (da_cli_ddim_mixed("generate", gen, &m, ratio, x, d.n, batch, DA_CLI_GENERATE, gen_steps, t0, eta, (uint64_t)seed, false))
        goto done;
    for (int64_t i = 0; i < total; i++) x[i] = fminf(1.0f, fmaxf(-1.0f, x[i]));
    char s_t0[32], s_inv[32], s_gen[32];
    snprintf(s_t0, sizeof s_t0, "%d", t0);
    snprintf(s_inv, sizeof s_inv, "%d", inv_steps);
    snprintf(s_gen, sizeof s_gen, "%d", gen_steps);
    const char *meta[] = {"model", model, "model_gen", model_gen ? model_gen : model, "t0", s_t0, "inv_steps", s_inv,
                          "gen_steps", s_gen, NULL};
    if (da_cli_write_images(out, x, d.n, d.c, d.h, d.w, d.labels, meta)) goto done;
    /* grid: pairs (source, result), four pairs per row */
    int64_t k = d.n < grid_n ? d.n : grid_n;
    float *pairs = malloc(sizeof(float) * (size_t)(2 * k * per));
    for (int64_t i = 0; i < k; i++) {
        memcpy(pairs + (2 * i) * per, d.images + i * per, sizeof(float) * (size_t)per);
        memcpy(pairs + (2 * i + 1) * per, x + i * per, sizeof(float) * (size_t)per);
    }
    int grc = da_image_write_grid(grid, pairs, 2 * k, (int)d.c, (int)d.h, (int)d.w, k < 4 ? (int)(2 * k) : 8, err, sizeof err);
    free(pairs);
    if (grc) { fprintf(stderr, "error: %s\n", err); goto done; }
    double psnr_mean = 0;
    for (int64_t i = 0; i < d.n; i++) psnr_mean += da_psnr(x + i * per, d.images + i * per, per) / (double)d.n;
    printf("edit: %lld images, t0 %d, %d inversion / %d generation steps: PSNR(input, output) mean %.2f dB "
           "(pooled %.2f dB)\n", (long long)d.n, t0, inv_steps, gen_steps, psnr_mean, da_psnr(x, d.images, total));
    fprintf(stderr, "wrote %s and the grid %s\n", out, grid);
    status = 0;
done:
    free(x);
    da_dataset_free(&d);
    da_unet_free(&m);
    da_unet_free(&m2);
    return status;
}
