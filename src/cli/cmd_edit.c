/* cmd_edit.c — `diffadapt edit`: invert images with one model and generate with another (or the
 * same), writing the results, a side-by-side PNG grid and the reconstruction PSNR. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/diffusion_cli.h"
#include "cli/option_fragments.h"
#include "cli/outputs.h"
#include "diffusion/ddim.h"
#include "data/image.h"

#define CMD "edit"

int cmd_edit(int argc, char **argv) {
    const char *model_gen = NULL, *config_gen = NULL, *input = NULL, *grid = NULL;
    int grid_n = 16;
    float eta = 0.0f;
    da_common co = {.seed = 0, .batch = 16};
    da_ft_config cfg;
    da_ft_config_default(&cfg);
    da_cli_data dd = {0};
    da_option opts[40] = {
        {"--model-gen", DA_OPT_STRING, &model_gen, "M2.safetensors", "the model that generates (default: --model)", false},
        {"--config-gen", DA_OPT_STRING, &config_gen, "FILE", "config of --model-gen when its file has none", false},
        {"--input", DA_OPT_STRING, &input, "DATA", "source images " DA_DATA_SOURCES, true},
        {"--grid", DA_OPT_STRING, &grid, "FILE.png", "side-by-side grid, source then result (default DIR/grid.png or Y_grid.png)", false},
        {"--grid-n", DA_OPT_INT, &grid_n, "N", "pairs shown in the grid", false},
        {"--eta", DA_OPT_FLOAT, &eta, "E", "DDIM eta of the generation (0 = deterministic)", false},
    };
    static const da_common_words words = {
        .model = "the model that inverts", .config = "config of --model when its file has none",
        .out_metavar = "DIR|Y.safetensors", .out = "edited images: PNG folder (+ labels.csv) or `images` tensors",
        .seed = "seed of eta's noise", .force = "overwrite existing outputs"};
    const da_fragments shared = {
        .common = &co, .words = &words,
        .common_parts = DA_COPT_MODEL | DA_COPT_OUT | DA_COPT_SEED | DA_COPT_BATCH | DA_COPT_THREADS | DA_COPT_PRECISION | DA_COPT_FORCE,
        .method = &cfg, .method_parts = DA_MOPT_T0 | DA_MOPT_INVERT | DA_MOPT_GENERATE,
        .data = &dd, .data_parts = DA_DATA_ALL};
    da_fragments_add(&shared, opts);
    static const da_cmd_info info = {
        CMD, "--model M [--model-gen M2] --input DATA --out DIR|Y.safetensors [--t0 T] [--inv-steps N] [--gen-steps N]",
        "Inverts every image with --model (DDIM, eta 0, from 0 up to t0) and generates from the\n"
        "latents with --model-gen (from t0 down to -1). With the same model this is a reconstruction;\n"
        "the PSNR between inputs and outputs is printed either way.",
        NULL};
    int rc;
    if (!da_fragments_parse(&info, opts, &shared, argc, argv, &rc)) return rc;
    const char *model = co.model, *out = co.out;
    const int t0 = cfg.t0, inv_steps = cfg.inv_steps, gen_steps = cfg.gen_steps;
    const float ratio = cfg.model_ratio;
    if (grid_n < 1) { fprintf(stderr, "diffadapt " CMD ": --grid-n must be >= 1\n"); return 2; }
    char err[2048];
    char grid_buf[4200];
    bool grid_in_out = !grid && !da_ends_with(out, ".safetensors");   /* DIR/grid.png: DIR is made later */
    if (!grid) {
        if (da_ends_with(out, ".safetensors")) da_sibling_path(grid_buf, sizeof grid_buf, out, "_grid.png");
        else
            snprintf(grid_buf, sizeof grid_buf, "%s/grid.png", out);
        grid = grid_buf;
    }
    if (da_check_output(out, co.force) || (!grid_in_out && da_check_output(grid, co.force))) return 1;
    da_set_threads(co.threads);
    da_model *m = NULL, *m2 = NULL;
    if (da_cli_load_model(model, co.config, co.precision, &m)) return 1;
    if (model_gen && da_cli_load_model(model_gen, config_gen, co.precision, &m2)) { da_model_free(m); return 1; }
    const da_model *gen = model_gen ? m2 : m;
    da_dataset d;
    memset(&d, 0, sizeof d);
    int status = 1;
    float *x = NULL;
    if (da_cli_check_same_models(m, "--model", gen, "--model-gen", NULL)) goto done;
    if (da_cli_load_data(CMD, "--input", input, &dd, &d)) goto done;
    if (da_cli_check_images_fit_model(&d, m)) goto done;
    int64_t per = d.c * d.h * d.w, total = d.n * per;
    x = malloc(sizeof(float) * (size_t)total);
    memcpy(x, d.images, sizeof(float) * (size_t)total);
    const da_ddim_settings inv = {t0, inv_steps, co.batch, 0.0f, 0, 0}, generation = {t0, gen_steps, co.batch, eta, (uint64_t)co.seed, 0};
    if (da_cli_ddim("invert", m, NULL, 1.0f, DA_CLI_INVERT, &inv, x, d.n) ||
        da_cli_ddim("generate", gen, m, ratio, DA_CLI_GENERATE, &generation, x, d.n))
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
    da_model_free(m);
    da_model_free(m2);
    return status;
}
