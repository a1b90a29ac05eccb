/* diffusion_cli.c — shared helpers of the diffusion sub-commands: model loading and shape checks,
 * writing image sets (PNG folder or safetensors), DDIM progress lines and PSNR. */
#include "cli/diffusion_cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/common_options.h"
#include "cli/outputs.h"
#include "data/image.h"
#include "diffusion/ddim.h"
#include "diffusion/ddim_set.h"
#include "io/safetensors.h"
#include "util/atomic.h"
#include "util/files.h"
#include "util/progress.h"

int da_cli_load_model(const char *path, const char *config_path, int precision, da_model **m) {
    char err[4096], desc[512];
    if (da_model_load(path, config_path, m, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        return -1;
    }
    const char *want = da_common_precision_name(precision);
    if (da_model_set_precision(*m, want, err, sizeof err)) {
        fprintf(stderr, "error: --precision %s: %s\n", want, err);
        da_model_free(*m);
        *m = NULL;
        return -1;
    }
    fprintf(stderr, "model %s: %s; convolutions in %s%s\n", path, da_model_describe(*m, desc, sizeof desc),
            da_model_precision(*m), precision == DA_CLI_PRECISION_AUTO ? " (--precision auto)" : "");
    return 0;
}

int da_cli_check_images_fit_model(const da_dataset *d, const da_model *m) {
    int channels, side;
    da_model_image_shape(m, &channels, &side);
    return da_cli_check_images_shape(d, channels, side);
}

int da_cli_check_same_models(const da_model *a, const char *a_name, const da_model *b, const char *b_name,
                             const char *advice) {
    int ca, sa, cb, sb;
    da_model_image_shape(a, &ca, &sa);
    da_model_image_shape(b, &cb, &sb);
    if (ca == cb && sa == sb) return 0;
    fprintf(stderr, "error: %s takes %dx%dx%d images but %s %dx%dx%d%s%s\n", a_name, sa, sa, ca, b_name, sb, sb, cb,
            advice ? "; " : "", advice ? advice : "");
    return -1;
}

int da_cli_load_unet(const char *path, const char *config_path, da_unet *m) {
    char err[2048];
    if (da_unet_load(m, path, config_path, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        return -1;
    }
    char cs[256];
    fprintf(stderr, "model %s: %s, %.2f M parameters\n", path, da_unet_config_str(&m->cfg, cs, sizeof cs),
            (double)da_unet_num_params(m) / 1e6);
    return 0;
}

int da_cli_check_images_shape(const da_dataset *d, int channels, int side) {
    if (d->c == channels && d->h == side && d->w == side) return 0;
    fprintf(stderr, "error: the images are %lldx%lldx%lld (HxWxC) but the model takes %dx%dx%d; use --size, --pad or "
            "--channels\n", (long long)d->h, (long long)d->w, (long long)d->c, side, side, channels);
    return -1;
}

int da_cli_check_images_fit(const da_dataset *d, const da_unet *m) {
    return da_cli_check_images_shape(d, m->cfg.in_channels, m->cfg.resolution);
}

int da_cli_write_images(const char *out, const float *images, int64_t n, int64_t c, int64_t h, int64_t w,
                        const int64_t *labels, const char *const *meta) {
    char err[2048];
    if (da_ends_with(out, ".safetensors")) {
        st_writer *wr = st_writer_new();
        int64_t shape[4] = {n, c, h, w};
        st_writer_add_f32(wr, "images", 4, shape, images);
        if (labels) st_writer_add_i64(wr, "labels", 1, &n, labels);
        for (int i = 0; meta && meta[i]; i += 2) st_writer_set_meta(wr, meta[i], meta[i + 1]);
        int rc = st_writer_save(wr, out, err, sizeof err);
        st_writer_free(wr);
        if (rc) { fprintf(stderr, "error: %s\n", err); return -1; }
        return 0;
    }
    if (da_mkdirs(out, err, sizeof err)) { fprintf(stderr, "error: %s\n", err); return -1; }
    int64_t per = c * h * w;
    for (int64_t i = 0; i < n; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%06lld.png", out, (long long)i);
        if (da_image_write_png(path, images + i * per, (int)c, (int)h, (int)w, err, sizeof err)) {
            fprintf(stderr, "error: %s\n", err);
            return -1;
        }
    }
    if (labels) {
        /* labels.csv in the layout the folder reader takes back */
        char path[4200];
        snprintf(path, sizeof path, "%s/labels.csv", out);
        da_atomic_file af;
        if (da_atomic_open(&af, path, err, sizeof err)) { fprintf(stderr, "error: %s\n", err); return -1; }
        fprintf(af.f, "file,label\n");
        for (int64_t i = 0; i < n; i++) fprintf(af.f, "%06lld.png,%lld\n", (long long)i, (long long)labels[i]);
        if (da_atomic_commit(&af, err, sizeof err)) { fprintf(stderr, "error: %s\n", err); return -1; }
    }
    return 0;
}

void da_cli_set_progress(void *user, const da_set_progress *p) {
    char msg[64];
    snprintf(msg, sizeof msg, "model call %lld/%lld", (long long)p->calls_done, (long long)p->calls_total);
    da_progress_update(user, p->images_done, msg);
}

/* The library's progress on a progress line, begun at the first report (when the total is known). */
typedef struct {
    da_progress line;
    const char *label;
    bool begun;
} api_line;

static void on_api_progress(void *user, const char *stage, int64_t done, int64_t total) {
    (void)stage;
    api_line *l = user;
    if (!l->begun) da_progress_begin(&l->line, l->label, total, "img");
    l->begun = true;
    da_progress_update(&l->line, done, NULL);
}

int da_cli_ddim(const char *label, const da_model *m, const da_model *orig, float ratio, da_cli_ddim_mode mode,
                const da_ddim_settings *s, float *x, int64_t n) {
    char err[1024];
    api_line l = {.label = label};
    int rc = mode == DA_CLI_INVERT ? da_invert_images(m, s, x, n, on_api_progress, &l, err, sizeof err)
                                   : da_generate_images(m, orig, ratio, s, x, n, on_api_progress, &l, err, sizeof err);
    if (rc) {
        fprintf(stderr, "\nerror: %s: %s\n", label, err);
        return -1;
    }
    if (l.begun) da_progress_end(&l.line, n, NULL);
    return 0;
}

double da_psnr(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        s += d * d;
    }
    double mse = s / (double)n;
    return mse > 0 ? 10.0 * log10(4.0 / mse) : INFINITY;
}
