/* diffusion_cli.c — shared helpers of the diffusion sub-commands: model loading and shape checks,
 * writing image sets (PNG folder or safetensors), DDIM progress lines and PSNR. */
#include "cli/diffusion_cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/outputs.h"
#include "data/image.h"
#include "diffusion/ddim.h"
#include "diffusion/ddim_set.h"
#include "io/safetensors.h"
#include "util/atomic.h"
#include "util/files.h"
#include "util/progress.h"

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

int da_cli_check_same_images(const da_unet *a, const char *a_name, const da_unet *b, const char *b_name,
                             const char *advice) {
    const da_unet_config *x = &a->cfg, *y = &b->cfg;
    if (x->in_channels == y->in_channels && x->out_ch == y->out_ch && x->resolution == y->resolution) return 0;
    fprintf(stderr, "error: %s takes %dx%dx%d images but %s %dx%dx%d%s%s\n", a_name, x->resolution, x->resolution,
            x->in_channels, b_name, y->resolution, y->resolution, y->in_channels, advice ? "; " : "", advice ? advice : "");
    return -1;
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

int da_cli_ddim(const char *label, const da_unet *m, float *x, int64_t n, int batch, da_cli_ddim_mode mode,
                int steps, int t0, float eta, uint64_t seed, bool clip_x0) {
    return da_cli_ddim_mixed(label, m, NULL, 1.0f, x, n, batch, mode, steps, t0, eta, seed, clip_x0);
}

int da_cli_ddim_mixed(const char *label, const da_unet *m, const da_unet *orig, float ratio, float *x, int64_t n,
                      int batch, da_cli_ddim_mode mode, int steps, int t0, float eta, uint64_t seed, bool clip_x0) {
    char err[1024];
    da_schedule s;
    if (da_schedule_linear(&s, m->cfg.num_timesteps, m->cfg.beta_start, m->cfg.beta_end, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        return -1;
    }
    da_eps_mix mix = {da_unet_eps, (void *)m, da_unet_eps, (void *)orig, ratio};
    da_set_job job = da_set_job_plain(da_unet_eps, (void *)m, &s);
    da_eps_mix_use(&mix, &job.gen.eps, &job.gen.user);
    job.t0 = t0;
    if (mode == DA_CLI_INVERT) job.inv_steps = steps;
    else job.gen_steps = steps;
    job.eta = eta;
    job.seed = seed;
    job.clip_x0 = clip_x0;
    job.batch = batch;
    job.progress = da_cli_set_progress;
    da_progress prog;
    job.progress_user = &prog;
    da_progress_begin(&prog, label, n, "img");
    const int64_t shape[4] = {n, m->cfg.in_channels, m->cfg.resolution, m->cfg.resolution};
    if (da_set_run(&job, x, x, shape, err, sizeof err)) {
        fprintf(stderr, "\nerror: %s: %s\n", label, err);
        return -1;
    }
    da_progress_end(&prog, n, NULL);
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
