/* cmd_generate.c — `diffadapt generate`: DDIM generation from latents x_t0 (written by `invert`)
 * down to images, as PNG files or an `images` tensor file in [-1,1]. */
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
#include "io/safetensors.h"

#define CMD "generate"

int cmd_generate(int argc, char **argv) {
    const char *latents = NULL, *original = NULL;
    int t0 = 0, steps = 40;
    float eta = 0.0f, ratio = 1.0f;
    da_common co = {.seed = 0, .batch = 16};
    da_option opts[24] = {
        {"--original", DA_OPT_STRING, &original, "M0.safetensors", "the original model that --model was fine-tuned from (needed when --model-ratio < 1)", false},
        {"--model-ratio", DA_OPT_FLOAT, &ratio, "R", "degree of change: eps = R*eps(--model) + (1-R)*eps(--original) at every step (1 = --model alone, 0 = --original alone)", false},
        {"--latents", DA_OPT_STRING, &latents, "L.safetensors", "`latents` (N,C,H,W), e.g. from invert", true},
        {"--t0", DA_OPT_INT, &t0, "T", "timestep of the latents (default: the t0 stored by invert)", false},
        {"--steps", DA_OPT_INT, &steps, "N", "DDIM steps (model calls) from t0 down", false},
        {"--eta", DA_OPT_FLOAT, &eta, "E", "DDIM eta (0 = deterministic)", false},
    };
    static const da_common_words words = {
        .config = "model config (YAML/JSON) when the file has none (used for --original too)",
        .out_metavar = "DIR|Y.safetensors", .out = "a folder of PNG files, or `images` (N,C,H,W) in [-1,1]",
        .seed = "seed of eta's noise"};
    const da_fragments shared = {
        .common = &co, .words = &words,
        .common_parts = DA_COPT_MODEL | DA_COPT_OUT | DA_COPT_SEED | DA_COPT_BATCH | DA_COPT_THREADS | DA_COPT_PRECISION | DA_COPT_FORCE};
    da_fragments_add(&shared, opts);
    static const da_cmd_info info = {
        CMD, "--model M --latents L --out DIR|Y.safetensors [--t0 T] [--steps N]",
        "DDIM generation: with seq = int(linspace(0,1,N)*t0) and seq_next = [-1] + seq[:-1], steps\n"
        "(t, t_next) in zip(reversed(seq), reversed(seq_next)) take the latents from t0 to images\n"
        "(N model calls). Labels in the latents file are copied (labels.csv in a PNG folder).\n"
        "With --model-ratio R < 1 every step mixes the fine-tuned and the original model's eps\n"
        "(R*eps(--model) + (1-R)*eps(--original)), the reference's \"degree of change\".",
        NULL};
    int rc;
    if (!da_fragments_parse(&info, opts, &shared, argc, argv, &rc)) return rc;
    const char *model = co.model, *config = co.config, *out = co.out;
    char err[2048];
    if (da_eps_mix_check_ratio(ratio, err, sizeof err)) { fprintf(stderr, "diffadapt " CMD ": %s\n", err); return 2; }
    if (ratio < 1 && !original) {
        fprintf(stderr, "diffadapt " CMD ": --model-ratio %g below 1 mixes in the original model: pass --original\n", (double)ratio);
        return 2;
    }
    if (da_check_output(out, co.force)) return 1;
    da_set_threads(co.threads);

    st_file f;
    if (st_open(latents, &f, err, sizeof err)) {
        fprintf(stderr, "error: cannot read latents %s: %s\n", latents, err);
        return 1;
    }
    const st_tensor_info *li = st_find(&f, "latents"), *lab = st_find(&f, "labels");
    if (!li || li->ndim != 4) {
        fprintf(stderr, "error: %s has no `latents` tensor of shape (N,C,H,W); make one with `diffadapt invert`\n", latents);
        st_close(&f);
        return 1;
    }
    if (!t0) {
        const char *s = st_meta_get(&f, "t0");
        t0 = s ? atoi(s) : 0;
        if (!t0) {
            fprintf(stderr, "error: %s does not record its t0; pass --t0\n", latents);
            st_close(&f);
            return 1;
        }
    }
    int64_t n = li->shape[0], C = li->shape[1], H = li->shape[2], W = li->shape[3];
    float *x = malloc(sizeof(float) * (size_t)li->numel);
    int64_t *labels = NULL;
    int status = 1;
    da_model *m = NULL, *m0 = NULL;
    if (st_read_f32(&f, li, x, err, sizeof err)) { fprintf(stderr, "error: %s: %s\n", latents, err); goto done; }
    if (lab) {
        if (lab->numel != n) {
            fprintf(stderr, "error: %s holds %lld labels for %lld latents\n", latents, (long long)lab->numel, (long long)n);
            goto done;
        }
        labels = malloc(sizeof(int64_t) * (size_t)n);
        if (st_read_i64(&f, lab, labels, err, sizeof err)) { fprintf(stderr, "error: %s: %s\n", latents, err); goto done; }
    }
    if (da_cli_load_model(model, config, co.precision, &m)) goto done;
    int channels, side;
    da_model_image_shape(m, &channels, &side);
    if (C != channels || H != side || W != side) {
        fprintf(stderr, "error: the latents are (%lld,%lld,%lld,%lld) but the model takes (N,%d,%d,%d)\n", (long long)n,
                (long long)C, (long long)H, (long long)W, channels, side, side);
        goto done;
    }
    if (ratio < 1) {
        if (da_cli_load_model(original, config, co.precision, &m0)) goto done;
        if (da_cli_check_same_models(m0, "--original", m, "--model", "pass the model --model was fine-tuned from"))
            goto done;
    }
    for (int64_t i = 0; i < li->numel; i++)
        if (!isfinite(x[i])) { fprintf(stderr, "error: %s holds non-finite values\n", latents); goto done; }
    const da_ddim_settings ds = {t0, steps, co.batch, eta, (uint64_t)co.seed, 0};
    if (da_cli_ddim("generate", m, ratio < 1 ? m0 : NULL, ratio, DA_CLI_GENERATE, &ds, x, n)) goto done;
    for (int64_t i = 0; i < li->numel; i++) x[i] = fminf(1.0f, fmaxf(-1.0f, x[i]));
    char s_t0[32], s_steps[32];
    snprintf(s_t0, sizeof s_t0, "%d", t0);
    snprintf(s_steps, sizeof s_steps, "%d", steps);
    char s_ratio[32];
    snprintf(s_ratio, sizeof s_ratio, "%g", (double)ratio);
    /* the ratio is recorded only when it mixes, so that default outputs stay as they were */
    const char *meta[] = {"model", model, "latents", latents, "t0", s_t0, "gen_steps", s_steps,
                          ratio < 1 ? "model_ratio" : NULL, s_ratio, ratio < 1 ? "original" : NULL, original, NULL};
    if (da_cli_write_images(out, x, n, C, H, W, labels, meta)) goto done;
    fprintf(stderr, "wrote %lld images to %s\n", (long long)n, out);
    status = 0;
done:
    st_close(&f);
    free(x);
    free(labels);
    da_model_free(m);
    da_model_free(m0);
    return status;
}
