/* test_vlb.c — the learned-variance bound term and the hybrid loss (diffusion/vlb.h): finite
 * differences of d L_t / d v over KL and decoder timesteps and all three decoder bins, L_t = 0
 * for a perfect model with Σ = β̃, the golden float64 computation (golden/gen_vlb.py) of L_t,
 * the loss and d loss / d output, and training a tiny learned-variance ADM (both output halves
 * get gradients, 30 steps lower the bound on a fixed batch; a model without learn_sigma keeps
 * the plain ε-MSE). */
#include <math.h>
#include <string.h>

#include "diffusion/ddim.h"
#include "diffusion/train.h"
#include "diffusion/vlb.h"
#include "gradcheck.h"
#include "io/safetensors.h"
#include "test_util.h"
#include "unet_golden_weights.h"

enum { N = 4, C = 2, H = 3, W = 3, PER = C * H * W };

/* ---- finite differences ---------------------------------------------------------------------- */

typedef struct {
    da_schedule s;
    da_tensor *eps, *x0, *xt;   /* (N,C,H,W) */
    int t[N];
} fd_case;

static da_tensor *build_vlb(da_ctx *ctx, da_tensor **in, void *user) {
    fd_case *fc = user;
    return da_vlb_bpd(ctx, &fc->s, in[0], fc->eps, fc->x0, fc->xt, fc->t);
}

/* Fills x0 on the 8-bit grid with both ends present, noise, x_t and an ε near the noise. */
static void make_inputs(fd_case *fc, float eps_err, uint64_t seed) {
    da_rng r;
    da_rng_init(&r, seed);
    float noise[N * PER];
    da_rng_normal(&r, noise, N * PER, 0.0f, 1.0f);
    da_rng_normal(&r, fc->eps->data, N * PER, 0.0f, 1.0f);
    for (int64_t n = 0; n < N; n++) {
        double a = da_schedule_abar(&fc->s, fc->t[n]);
        for (int64_t i = 0; i < PER; i++) {
            int64_t k = n * PER + i;
            float x = (float)((double)da_rng_int(&r, 256) / 127.5 - 1.0);
            if (i == 0) x = -1.0f;
            if (i == 1) x = 1.0f;
            fc->x0->data[k] = x;
            fc->xt->data[k] = (float)(sqrt(a) * x + sqrt(1.0 - a) * noise[k]);
            fc->eps->data[k] = noise[k] + eps_err * fc->eps->data[k];
        }
    }
}

static void check_fd(void) {
    fd_case fc;
    char err[256];
    CHECK(da_schedule_linear(&fc.s, 1000, 1e-4, 0.02, err, sizeof err) == 0, "%s", err);
    int ts[N] = {0, 0, 3, 700};
    memcpy(fc.t, ts, sizeof ts);
    fc.eps = da_persistent(DA_SHAPE(N, C, H, W), false);
    fc.x0 = da_persistent(DA_SHAPE(N, C, H, W), false);
    fc.xt = da_persistent(DA_SHAPE(N, C, H, W), false);
    da_tensor *v = da_persistent(DA_SHAPE(N, C, H, W), true);
    make_inputs(&fc, 0.05f, 7);
    da_rng r;
    da_rng_init(&r, 8);
    da_rng_uniform(&r, v->data, v->numel, -1.2f, 1.2f);
    gradcheck("vlb_bpd d/dv", build_vlb, 1, &v, &fc, 1e-2f, 2e-5, 2e-3, 1000);

    /* a larger ε error: the decoder's outer bins and the KL's mean term dominate */
    make_inputs(&fc, 0.5f, 9);
    gradcheck("vlb_bpd d/dv (large eps error)", build_vlb, 1, &v, &fc, 1e-2f, 2e-5, 2e-3, 1000);

    /* ε, x0 and x_t get no gradient from the bound (the reference's stop-gradient) */
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_tensor *e2 = gc_input(&r, DA_SHAPE(N, C, H, W), 1.0f);   /* an ε that wants a gradient */
    da_tensor *out = da_vlb_bpd(&ctx, &fc.s, v, e2, fc.x0, fc.xt, fc.t);
    da_backward(&ctx, da_mean(&ctx, out, 0, NULL, false));
    double gsum = 0;
    for (int64_t i = 0; i < e2->numel; i++) gsum += fabs(e2->grad[i]);
    CHECK(gsum == 0, "the bound term sent a gradient to eps (sum |g| %g)", gsum);

    /* a perfect model (ε = noise) with Σ = β̃ (v = -1): every KL term is 0 */
    int tk[N] = {1, 10, 500, 999};
    memcpy(fc.t, tk, sizeof tk);
    make_inputs(&fc, 0.0f, 10);
    for (int64_t i = 0; i < v->numel; i++) v->data[i] = -1.0f;
    da_ctx_reset(&ctx);
    out = da_vlb_bpd(&ctx, &fc.s, v, fc.eps, fc.x0, fc.xt, fc.t);
    float zeros[N] = {0};
    tu_close("L_t of a perfect model with the true variance", out->data, zeros, N, 1e-6, 0);
    da_ctx_free(&ctx);
    da_tensor_free(v);
    da_tensor_free(e2);
    da_tensor_free(fc.eps);
    da_tensor_free(fc.x0);
    da_tensor_free(fc.xt);
}

/* ---- golden ------------------------------------------------------------------------------------ */

/* The "network" of the golden cases: a fixed output, whatever the input. */
static da_tensor *fixed_out(da_ctx *ctx, da_tensor *x, const int *t, void *user) {
    (void)ctx; (void)x; (void)t;
    return user;
}

typedef struct { const char *name; int T; double b0, b1; float gamma, k; } golden_case;

static void check_golden_case(const st_file *g, const golden_case *gc) {
    char key[64], err[256];
    int64_t nt, nx;
    snprintf(key, sizeof key, "%s.x0", gc->name);
    float *x0 = golden_f32(g, key, &nx);
    snprintf(key, sizeof key, "%s.noise", gc->name);
    float *noise = golden_f32(g, key, NULL);
    snprintf(key, sizeof key, "%s.out", gc->name);
    float *outv = golden_f32(g, key, NULL);
    snprintf(key, sizeof key, "%s.vb", gc->name);
    float *vb_ref = golden_f32(g, key, NULL);
    snprintf(key, sizeof key, "%s.loss", gc->name);
    float *loss_ref = golden_f32(g, key, NULL);
    snprintf(key, sizeof key, "%s.grad", gc->name);
    float *grad_ref = golden_f32(g, key, NULL);
    snprintf(key, sizeof key, "%s.t", gc->name);
    const st_tensor_info *ti = st_find(g, key);
    nt = ti ? ti->numel : 0;
    int64_t t64[16] = {0};
    int t[16] = {0};
    CHECK(ti && nt <= 16 && st_read_i64(g, ti, t64, err, sizeof err) == 0, "golden %s", key);
    for (int64_t n = 0; n < nt; n++) t[n] = (int)t64[n];
    int64_t per = nx / nt, ch = per / 16;   /* the cases are (N,3,4,4) */
    int64_t shape[4] = {nt, ch, 4, 4};

    da_schedule s;
    CHECK(da_schedule_linear(&s, gc->T, gc->b0, gc->b1, err, sizeof err) == 0, "%s", err);
    da_tensor *out = da_persistent(DA_SHAPE(nt, 2 * ch, 4, 4), true);
    memcpy(out->data, outv, sizeof(float) * (size_t)out->numel);
    da_ctx ctx;
    da_ctx_init(&ctx);
    float vb_mean;
    da_tensor *loss = da_hybrid_loss(&ctx, &s, fixed_out, out, x0, noise, t, shape, gc->k, gc->gamma, &vb_mean);
    char what[128];
    snprintf(what, sizeof what, "%s: hybrid loss", gc->name);
    tu_close(what, loss->data, loss_ref, 1, 1e-6, 1e-5);
    da_backward(&ctx, loss);
    snprintf(what, sizeof what, "%s: d loss / d output (eps and v halves)", gc->name);
    tu_close(what, out->grad, grad_ref, (long)out->numel, 1e-7, 1e-4);
    double mean_ref = 0;
    for (int64_t n = 0; n < nt; n++) mean_ref += vb_ref[n] / (double)nt;
    CHECK(fabs(vb_mean - mean_ref) <= 1e-5 * fabs(mean_ref) + 1e-7, "%s: reported L_t mean %g, golden %g", gc->name,
          (double)vb_mean, mean_ref);

    /* L_t per sample through da_vlb_bpd itself, x_t built as da_diffusion_loss builds it */
    da_ctx_reset(&ctx);
    da_tensor *xt = da_new(&ctx, 4, shape), *x0t = da_from_data(&ctx, 4, shape, x0);
    for (int64_t n = 0; n < nt; n++) {
        double a = da_schedule_abar(&s, t[n]);
        float ca = (float)sqrt(a), cn = (float)sqrt(1.0 - a);
        for (int64_t i = 0; i < per; i++) xt->data[n * per + i] = ca * x0[n * per + i] + cn * noise[n * per + i];
    }
    da_tensor *o = da_from_data(&ctx, 4, out->shape, out->data);
    da_tensor *vb = da_vlb_bpd(&ctx, &s, da_slice(&ctx, o, 1, ch, 2 * ch), da_slice(&ctx, o, 1, 0, ch), x0t, xt, t);
    snprintf(what, sizeof what, "%s: L_t per sample (bits/dim)", gc->name);
    tu_close(what, vb->data, vb_ref, (long)nt, 1e-7, 1e-5);

    da_ctx_free(&ctx);
    da_tensor_free(out);
    free(x0); free(noise); free(outv); free(vb_ref); free(loss_ref); free(grad_ref);
}

static void check_golden(void) {
    st_file g;
    char err[256];
    if (st_open("golden/vlb.safetensors", &g, err, sizeof err)) {
        CHECK(0, "%s", err);
        return;
    }
    static const golden_case cases[] = {
        {"t1000", 1000, 1e-4, 0.02, 0.0f, 1.0f},
        {"p2", 1000, 1e-4, 0.02, 1.0f, 1.0f},
        {"t50", 50, 2e-3, 0.4, 0.0f, 1.0f},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_golden_case(&g, &cases[i]);
    st_close(&g);
}

/* ---- training ---------------------------------------------------------------------------------- */

static const char *TINY_ADM =
    "{\"data\": {\"image_size\": 8, \"channels\": 3}, \"model\": {\"type\": \"adm\", \"in_channels\": 3,"
    " \"num_channels\": 32, \"num_res_blocks\": 1, \"channel_mult\": \"1,2\", \"attention_resolutions\": \"4\","
    " \"num_head_channels\": 16, \"use_scale_shift_norm\": true, \"resblock_updown\": true, \"learn_sigma\": %s}}";

/* The model's whole output (ε and v), for evaluating the bound on a fixed batch. */
static da_tensor *full_out(da_ctx *ctx, da_tensor *x, const int *t, void *user) {
    float tf[8];
    for (int64_t b = 0; b < x->shape[0]; b++) tf[b] = (float)t[b];
    return da_unet_forward(ctx, user, x, tf);
}

/* Mean L_t (bits/dim) of the model on a fixed batch: the 4 images twice, fixed noise, KL terms
 * from t = 1 to 999 (the decoder term at t = 0 moves little in a few steps). */
static float fixed_vb(const da_unet *m, const float *img) {
    static const int t[8] = {1, 5, 30, 80, 150, 400, 700, 999};
    float x0[8 * 3 * 64], noise[8 * 3 * 64], vb;
    for (int i = 0; i < 8 * 3 * 64; i++) x0[i] = img[i % (4 * 3 * 64)];
    da_rng r;
    da_rng_init(&r, 99);
    da_rng_normal(&r, noise, 8 * 3 * 64, 0.0f, 1.0f);
    da_schedule s;
    char err[128];
    da_schedule_linear(&s, 1000, 1e-4, 0.02, err, sizeof err);
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_set_grad(&ctx, false);
    da_hybrid_loss(&ctx, &s, full_out, (void *)m, x0, noise, t, (const int64_t[]){8, 3, 8, 8}, 1.0f, 0.0f, &vb);
    da_ctx_free(&ctx);
    return vb;
}

/* Steps on a tiny ADM; returns the gradient sums of out.2.weight's ε rows and v rows after
 * the last, and the bound on a fixed batch before and after. */
static void train_tiny(bool learn_sigma, int steps, float *vb, double *g_eps, double *g_v, float *vb0, float *vb1) {
    char js[1024], err[512];
    snprintf(js, sizeof js, TINY_ADM, learn_sigma ? "true" : "false");
    da_unet_config cfg;
    da_unet_config_default(&cfg);
    CHECK(da_unet_config_from_json(js, "tiny ADM", &cfg, err, sizeof err) == 0, "%s", err);
    float img[4 * 3 * 64];
    for (int i = 0; i < 4 * 3 * 64; i++) img[i] = sinf(0.37f * (float)i);
    da_dataset d = {.n = 4, .c = 3, .h = 8, .w = 8, .images = img};
    da_diff_train_opts o;
    da_diff_train_opts_default(&o);
    o.batch = 4;
    o.warmup = 0;
    o.lr = 1e-3f;
    da_diff_trainer tr;
    CHECK(da_diff_trainer_init(&tr, &cfg, &o, &d, err, sizeof err) == 0, "%s", err);
    CHECK(da_diff_trainer_learns_sigma(&tr) == learn_sigma, "learns_sigma %d", learn_sigma);
    float loss, gn;
    if (learn_sigma) *vb0 = fixed_vb(&tr.model, img);
    for (int s = 0; s < steps; s++) CHECK(da_diff_trainer_step(&tr, &loss, &gn, err, sizeof err) == 0, "%s", err);
    if (learn_sigma) *vb1 = fixed_vb(&tr.model, img);
    *vb = tr.vb;
    /* out.2.weight (out_channels, 32, 3, 3): the ε rows first, then the variance rows */
    da_tensor *w = da_unet_param(&tr.model, "out.2.weight");
    int64_t row = w->numel / w->shape[0];
    *g_eps = *g_v = 0;
    for (int64_t i = 0; i < w->numel; i++) {
        if (i / row < 3) *g_eps += fabs(w->grad[i]);
        else *g_v += fabs(w->grad[i]);
    }
    da_diff_trainer_free(&tr);
}

static void check_training(void) {
    float vb, vb0 = 0, vb1 = 0;
    double ge, gv;
    train_tiny(true, 30, &vb, &ge, &gv, &vb0, &vb1);
    CHECK(isfinite(vb) && vb > 0, "learn_sigma: L_t %g", (double)vb);
    CHECK(ge > 0 && gv > 0, "learn_sigma: gradient on the eps rows %g and the variance rows %g", ge, gv);
    /* training lowers the bound on a fixed batch (t from 1 to 999) */
    printf("fixed-batch L_t: %.5f bits/dim before, %.5f after 30 steps\n", (double)vb0, (double)vb1);
    CHECK(vb1 < 0.97f * vb0, "30 steps did not lower the bound: %g -> %g bits/dim", (double)vb0, (double)vb1);
    train_tiny(false, 2, &vb, &ge, &gv, &vb0, &vb1);
    CHECK(isnan(vb), "without learn_sigma no bound term is computed (vb %g)", (double)vb);
    CHECK(ge > 0 && gv == 0, "without learn_sigma: eps rows %g, no variance rows %g", ge, gv);
}

int main(void) {
    check_fd();
    check_golden();
    check_training();
    return tu_finish("test_vlb");
}
