/* cmd_sample.c — `diffadapt sample`: draws images from a diffusion model with DDIM from pure
 * noise at t = T-1, as a PNG grid or an `images` tensor file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/diffusion_cli.h"
#include "cli/option_fragments.h"
#include "cli/outputs.h"
#include "data/image.h"
#include "tensor/rng.h"

#define CMD "sample"

int cmd_sample(int argc, char **argv) {
    int n = 16, steps = 50, cols = 0;
    float eta = 0.0f;
    bool clip_x0 = false;
    da_common co = {.seed = 0, .batch = 16};
    da_option opts[24] = {
        {"--n", DA_OPT_INT, &n, "N", "number of images", false},
        {"--steps", DA_OPT_INT, &steps, "S", "DDIM steps (model calls) from t = T-1 down", false},
        {"--eta", DA_OPT_FLOAT, &eta, "E", "DDIM eta: 0 = deterministic, 1 = DDPM-like noise", false},
        {"--clip-x0", DA_OPT_FLAG, &clip_x0, NULL, "clip every step's x0 estimate to [-1,1] (DDPM-style; not in the reference DDIM)", false},
        {"--cols", DA_OPT_INT, &cols, "N", "grid columns (0 = about sqrt(n))", false},
    };
    static const da_common_words words = {
        .out_metavar = "grid.png|X.safetensors", .out = "a PNG grid, or `images` (N,C,H,W) in [-1,1]",
        .seed = "seed of the starting noise (and of eta's noise)"};
    const da_fragments shared = {
        .common = &co, .words = &words,
        .common_parts = DA_COPT_MODEL | DA_COPT_OUT | DA_COPT_SEED | DA_COPT_BATCH | DA_COPT_THREADS | DA_COPT_PRECISION | DA_COPT_FORCE};
    da_fragments_add(&shared, opts);
    static const da_cmd_info info = {
        CMD, "--model M --out grid.png|X.safetensors [--n N] [--steps S] [--eta E]",
        "Samples N images: x_T ~ N(0, I) (seeded), then DDIM generation with the timestep sequence\n"
        "int(linspace(0,1,S)*(T-1)) walked from T-1 down to -1 (S model calls).",
        NULL};
    int rc;
    if (!da_fragments_parse(&info, opts, &shared, argc, argv, &rc)) return rc;
    const char *model = co.model, *out = co.out;
    const int seed = co.seed;
    bool png = da_ends_with(out, ".png"), st = da_ends_with(out, ".safetensors");
    if (!png && !st) {
        fprintf(stderr, "diffadapt " CMD ": --out must end in .png (a grid) or .safetensors (tensors), got '%s'\n", out);
        return 2;
    }
    if (n < 1 || n > 100000 || cols < 0) {
        fprintf(stderr, "diffadapt " CMD ": --n must lie in 1..100000 and --cols must not be negative\n");
        return 2;
    }
    if (da_check_output(out, co.force)) return 1;
    da_set_threads(co.threads);
    da_model *m = NULL;
    if (da_cli_load_model(model, co.config, co.precision, &m)) return 1;
    int channels, side;
    da_model_image_shape(m, &channels, &side);
    int64_t C = channels, R = side, per = C * R * R;
    float *x = malloc(sizeof(float) * (size_t)(n * per));
    da_rng rng;
    da_rng_init(&rng, (uint64_t)seed);
    da_rng_normal(&rng, x, n * per, 0.0f, 1.0f);
    int status = 1;
    /* from pure noise: the whole schedule, t0 = T-1 */
    const da_ddim_settings ds = {da_model_timesteps(m) - 1, steps, co.batch, eta, (uint64_t)seed + 1, clip_x0};
    if (da_cli_ddim("sample", m, NULL, 1.0f, DA_CLI_GENERATE, &ds, x, n)) goto done;
    for (int64_t i = 0; i < n * per; i++) x[i] = fminf(1.0f, fmaxf(-1.0f, x[i]));
    if (png) {
        char err[2048];
        if (!cols) cols = (int)ceil(sqrt((double)n));
        if (da_image_write_grid(out, x, n, (int)C, (int)R, (int)R, cols, err, sizeof err)) {
            fprintf(stderr, "error: %s\n", err);
            goto done;
        }
    } else {
        char s_steps[32], s_eta[32], s_seed[32];
        snprintf(s_steps, sizeof s_steps, "%d", steps);
        snprintf(s_eta, sizeof s_eta, "%g", (double)eta);
        snprintf(s_seed, sizeof s_seed, "%d", seed);
        const char *meta[] = {"model", model, "steps", s_steps, "eta", s_eta, "seed", s_seed, NULL};
        if (da_cli_write_images(out, x, n, C, R, R, NULL, meta)) goto done;
    }
    fprintf(stderr, "wrote %d samples to %s\n", n, out);
    status = 0;
done:
    free(x);
    da_model_free(m);
    return status;
}
