/* test_finetune.c — DiffusionCLIP fine-tuning on a tiny UNet and a tiny random CLIP: chain-mode
 * gradients vs finite differences (and recomputation), per-step mode vs a hand-unrolled
 * reference, a short run lowering the directional loss, NaN stops, and the CLI (resume, cache). */
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "diffusion/ddim.h"
#include "diffusion/finetune.h"
#include "io/safetensors.h"
#include "nn/clip_loss.h"
#include "tensor/rng.h"
#include "test_util.h"
#include "tiny_clip.h"
#include "tmpdir.h"
#include "cli_run.h"

#define RES 8
#define CH 1

static void tiny_unet_config(da_unet_config *c, float dropout) {
    da_unet_config_default(c);
    c->in_channels = CH;
    c->out_ch = CH;
    c->ch = 32;
    c->ch_mult[0] = 1;
    c->ch_mult[1] = 2;
    c->n_levels = 2;
    c->num_res_blocks = 1;
    c->attn_resolutions[0] = 4;
    c->n_attn = 1;
    c->dropout = dropout;
    c->resolution = RES;
}

static void tiny_unet(da_unet *m, uint64_t seed, float dropout) {
    da_unet_config c;
    tiny_unet_config(&c, dropout);
    char err[512];
    int rc = da_unet_init(m, &c, seed, err, sizeof err);
    da_check(rc == 0, "test_finetune", "unet init: %s", err);
}

static void text_dir(da_clip *m, float *dir) {
    char err[512];
    da_bpe *bpe = da_clip_vocab(m, NULL, err, sizeof err);
    da_check(bpe != NULL, "test_finetune", "vocab: %s", err);
    int rc = da_clip_text_direction(m, bpe, "photo", "sketch", NULL, 0, dir, err, sizeof err);
    da_check(rc == 0, "test_finetune", "text direction: %s", err);
    da_bpe_free(bpe);
}

/* Smooth images in [-1,1] (n,CH,RES,RES): a gradient plus a blob, different per image. */
static void make_images(float *x, int n, uint64_t seed) {
    da_rng r;
    da_rng_init(&r, seed);
    for (int i = 0; i < n; i++) {
        float a = da_rng_uniform1(&r) * 2 - 1, b = da_rng_uniform1(&r) * 2 - 1;
        float cy = da_rng_uniform1(&r) * RES, cx = da_rng_uniform1(&r) * RES;
        for (int c = 0; c < CH; c++)
            for (int y = 0; y < RES; y++)
                for (int xx = 0; xx < RES; xx++) {
                    float d2 = (y - cy) * (y - cy) + (xx - cx) * (xx - cx);
                    float v = 0.4f * a * (float)y / RES + 0.3f * b * (float)xx / RES + 0.8f * expf(-d2 / 6.0f) - 0.3f;
                    x[((i * CH + c) * RES + y) * RES + xx] = v;
                }
    }
}

/* ---- chain mode: analytic gradient vs central differences; recompute gives the same --------- */

static double chain_loss(da_ctx *ctx, const da_finetuner *f, const float *x0, const float *src, const float *sid,
                         const float *lat, int64_t B, uint64_t seed) {
    da_ft_terms t;
    da_ft_chain(ctx, f, x0, src, sid, lat, B, seed, false, NULL, &t);
    return t.loss;
}

/* A weight of the model to probe: its name and element. */
typedef struct {
    const char *name;
    int64_t idx;
} probe;

/* Compares the chain-mode gradient already in the model's gradients with central differences of
 * the float32 loss at n_probe (<= 16) weights (h = 1e-2), within atol 2e-4 / rtol 2e-2. Returns 0
 * when a probed weight does not exist. */
static int check_probes(const char *what, da_ctx *ctx, const da_finetuner *f, da_unet *m, const probe *probes,
                        int n_probe, const float *x0, const float *src, const float *sid, const float *lat, int64_t B,
                        uint64_t seed, bool verbose) {
    float analytic[16], numeric[16];
    for (int i = 0; i < n_probe; i++) {
        da_tensor *p = da_unet_param(m, probes[i].name);
        CHECK(p != NULL, "no parameter %s", probes[i].name);
        if (!p) return 0;
        analytic[i] = p->grad[probes[i].idx];
        float keep = p->data[probes[i].idx];
        const float h = 1e-2f;
        p->data[probes[i].idx] = keep + h;
        double lp = chain_loss(ctx, f, x0, src, sid, lat, B, seed);
        p->data[probes[i].idx] = keep - h;
        double lm = chain_loss(ctx, f, x0, src, sid, lat, B, seed);
        p->data[probes[i].idx] = keep;
        numeric[i] = (float)((lp - lm) / (2.0 * h));
        if (verbose)
            fprintf(stderr, "  d loss / d %s[%lld]: analytic %.6g, finite differences %.6g\n", probes[i].name,
                    (long long)probes[i].idx, analytic[i], numeric[i]);
    }
    tu_close(what, analytic, numeric, n_probe, 2e-4, 2e-2);
    return 1;
}

static void test_chain_gradient(void) {
    da_unet m;
    tiny_unet(&m, 11, 0.1f);   /* dropout on: the masks must repeat with the seed */
    da_clip clip, idm;
    tiny_clip(&clip, 21);
    tiny_clip(&idm, 22);
    float dir[16];
    text_dir(&clip, dir);
    da_ft_config cfg;
    da_ft_config_default(&cfg);
    cfg.t0 = 300;
    cfg.inv_steps = 5;
    cfg.train_steps = 3;
    cfg.id_weight = 0.5f;
    da_finetuner f;
    char err[512];
    int rc = da_ft_init(&f, &cfg, &m, &clip, dir, &idm, err, sizeof err);
    CHECK(rc == 0, "init: %s", err);
    if (rc) return;
    const int64_t B = 2, per = CH * RES * RES;
    float x0[2 * CH * RES * RES], lat[2 * CH * RES * RES], src[2 * 16], sid[2 * 16];
    make_images(x0, (int)B, 5);
    da_rng r;
    da_rng_init(&r, 6);
    da_rng_normal(&r, lat, B * per, 0.0f, 1.0f);
    da_ft_source_features(&f, x0, B, src, sid);

    da_ctx ctx;
    da_ctx_init(&ctx);
    da_unet_zero_grad(&m);
    da_ft_terms t;
    da_ft_chain(&ctx, &f, x0, src, sid, lat, B, 77, true, NULL, &t);
    CHECK(isfinite(t.loss) && t.clip > 0 && t.l1 > 0 && t.id > 0, "terms: loss %g clip %g l1 %g id %g", t.loss, t.clip,
          t.l1, t.id);
    CHECK(fabs(t.loss - (3 * t.clip + t.l1 + 0.5 * t.id)) < 1e-5 * fabs(t.loss), "loss %g is not the weighted sum", t.loss);
    da_ft_check_frozen(&f);
    CHECK(clip.params.items[0].t->grad == NULL && idm.params.items[3].t->grad == NULL, "CLIP holds gradients");

    /* a few weights all over the network; central differences of the float32 loss */
    const probe probes[] = {
        {"conv_out.bias", 0}, {"conv_out.weight", 7}, {"conv_in.weight", 3}, {"conv_in.bias", 5},
        {"temb.dense.0.weight", 100}, {"down.0.block.0.conv1.weight", 41}, {"mid.attn_1.q.weight", 17},
        {"up.1.block.0.conv2.weight", 250}, {"norm_out.weight", 2},
    };
    if (!check_probes("chain-mode gradient vs finite differences", &ctx, &f, &m, probes,
                      (int)(sizeof probes / sizeof probes[0]), x0, src, sid, lat, B, 77, true))
        return;

    /* recomputing each step's tape during backward gives the same gradient */
    da_tensor *pw = da_unet_param(&m, "down.0.block.0.conv1.weight");
    float *g_plain = malloc(sizeof(float) * (size_t)pw->numel);
    memcpy(g_plain, pw->grad, sizeof(float) * (size_t)pw->numel);
    da_tensor *pb = da_unet_param(&m, "conv_out.bias");
    float gb_plain = pb->grad[0];
    size_t peak_plain = ctx.arena.peak;
    f.cfg.recompute = true;
    da_unet_zero_grad(&m);
    da_ctx rctx;
    da_ctx_init(&rctx);
    da_ft_terms tr;
    float xo[2 * CH * RES * RES], xo2[2 * CH * RES * RES];
    da_ft_chain(&rctx, &f, x0, src, sid, lat, B, 77, true, xo, &tr);
    CHECK(fabs(tr.loss - t.loss) <= 1e-6 * fabs(t.loss), "recompute loss %g vs %g", tr.loss, t.loss);
    tu_close("recomputed chain gradient (conv1 weight)", pw->grad, g_plain, (long)pw->numel, 1e-7, 1e-5);
    tu_close("recomputed chain gradient (conv_out bias)", &pb->grad[0], &gb_plain, 1, 1e-7, 1e-5);
    CHECK(rctx.arena.peak < peak_plain, "recompute peak %zu B should stay below the whole chain's %zu B",
          rctx.arena.peak, peak_plain);
    /* forward output = the no-grad generation with the same dropout masks */
    f.cfg.recompute = false;
    da_ft_chain(&ctx, &f, x0, src, sid, lat, B, 77, false, xo2, NULL);
    tu_close("chain output with and without the tape", xo, xo2, (long)(B * per), 1e-6, 1e-5);
    free(g_plain);
    da_ctx_free(&rctx);
    da_ctx_free(&ctx);
    da_ft_free(&f);
    da_unet_free(&m);
    da_clip_free(&clip);
    da_clip_free(&idm);
}

/* ---- per-step mode vs a hand-unrolled reference --------------------------------------------- */

/* Adam's eps in this comparison: large enough that weights whose true gradient is 0 (biases in
 * front of a GroupNorm, attention key biases) do not turn rounding noise into full-size steps. */
#define ADAM_EPS 1e-4

/* torch.optim.Adam for one parameter, in double, state in m/v (numel each), t = step number. */
static void ref_adam(da_tensor *p, double *mm, double *vv, int t, double lr) {
    const double b1 = 0.9, b2 = 0.999, eps = ADAM_EPS;
    double bc1 = 1 - pow(b1, t), bc2 = 1 - pow(b2, t);
    for (int64_t i = 0; i < p->numel; i++) {
        double g = p->grad[i];
        mm[i] = b1 * mm[i] + (1 - b1) * g;
        vv[i] = b2 * vv[i] + (1 - b2) * g * g;
        double denom = sqrt(vv[i]) / sqrt(bc2) + eps;
        p->data[i] = (float)((double)p->data[i] - lr / bc1 * mm[i] / denom);
    }
}

/* One generation step with its loss written out with plain ops (not finetune.c): returns the
 * loss; x is replaced by x_next, x0t_out gets x0_t, the gradient is accumulated into m. */
static double ref_step(da_unet *m, da_clip *clip, const float *dir, const float *x0, float *x, int64_t B, int t,
                       int t_next, uint64_t seed, float *x0t_out) {
    da_schedule s;
    char err[256];
    da_schedule_linear(&s, 1000, 1e-4, 0.02, err, sizeof err);
    double at = da_schedule_abar(&s, t), an = da_schedule_abar(&s, t_next);
    int64_t shape[4] = {B, CH, RES, RES}, per = CH * RES * RES;
    da_ctx ctx;
    da_ctx_init(&ctx);
    ctx.training = true;
    ctx.seed = seed;
    /* source features without the tape */
    da_set_grad(&ctx, false);
    da_tensor *tx0 = da_from_data(&ctx, 4, shape, x0);
    da_tensor *fs = da_clip_image_features(&ctx, clip, tx0);   /* (B,E) */
    int64_t E = fs->shape[1];
    da_set_grad(&ctx, true);
    da_tensor *xt = da_from_data(&ctx, 4, shape, x);
    float tf[8];
    for (int64_t b = 0; b < B; b++) tf[b] = (float)t;
    ctx.dropout_calls = 0;
    da_tensor *eps = da_unet_forward(&ctx, m, xt, tf);
    /* x0_t = (x - sqrt(1-at) eps) / sqrt(at); x_next = sqrt(an) x0_t + sqrt(1-an) eps */
    da_tensor *x0t = da_scale(&ctx, da_sub(&ctx, xt, da_scale(&ctx, eps, (float)sqrt(1 - at))), (float)(1 / sqrt(at)));
    for (int64_t i = 0; i < B * per; i++) {
        x0t_out[i] = x0t->data[i];
        x[i] = (float)(sqrt(an) * x0t->data[i] + sqrt(1 - an) * eps->data[i]);
    }
    /* L_dir = 1 - mean_b cos(norm(E(x0t)) - norm(E(x0)), dir); L_clip = -log((2 - L_dir)/2) */
    da_tensor *fg = da_clip_image_features(&ctx, clip, x0t);
    float ns[8];
    for (int64_t b = 0; b < B; b++) {
        double q = 0;
        for (int64_t j = 0; j < E; j++) q += (double)fs->data[b * E + j] * fs->data[b * E + j];
        ns[b] = (float)sqrt(q);
    }
    da_tensor *nsrc = da_new(&ctx, DA_SHAPE(B, E));
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < E; j++) nsrc->data[b * E + j] = fs->data[b * E + j] / ns[b];
    da_tensor *d = da_sub(&ctx, da_l2_normalize(&ctx, fg, 1e-12f), nsrc);
    da_tensor *cos = da_cosine_similarity(&ctx, d, da_from_data(&ctx, DA_SHAPE(1, E), dir), 1e-8f);
    da_tensor *ldir = da_add_scalar(&ctx, da_scale(&ctx, da_mean(&ctx, cos, 0, NULL, false), -1.0f), 1.0f);
    da_tensor *lclip = da_scale(&ctx, da_log(&ctx, da_scale(&ctx, da_add_scalar(&ctx, da_scale(&ctx, ldir, -1.0f), 2.0f), 0.5f)), -1.0f);
    da_tensor *l1 = da_mean(&ctx, da_sqrt(&ctx, da_pow_scalar(&ctx, da_sub(&ctx, x0t, tx0), 2.0f)), 0, NULL, false);
    da_tensor *loss = da_add(&ctx, da_scale(&ctx, lclip, 3.0f), l1);
    double lv = loss->data[0];
    da_backward(&ctx, loss);
    da_ctx_free(&ctx);
    return lv;
}

static void test_per_step(void) {
    da_unet a, ref;
    tiny_unet(&a, 31, 0.1f);
    tiny_unet(&ref, 31, 0.1f);
    da_clip clip;
    tiny_clip(&clip, 41);
    float dir[16];
    text_dir(&clip, dir);
    da_ft_config cfg;
    da_ft_config_default(&cfg);
    cfg.t0 = 400;
    cfg.train_steps = 3;
    cfg.inv_steps = 5;
    cfg.mode = DA_FT_PER_STEP;
    da_finetuner f;
    char err[512];
    int rc = da_ft_init(&f, &cfg, &a, &clip, dir, NULL, err, sizeof err);
    CHECK(rc == 0, "init: %s", err);
    if (rc) return;
    const double lr = 1e-3;
    da_adam_config ac = da_adam_defaults(DA_ADAM);
    ac.lr = lr;
    ac.eps = ADAM_EPS;
    da_adam opt;
    rc = da_adam_init(&opt, &ac, f.params, f.n_params, err, sizeof err);
    CHECK(rc == 0, "adam: %s", err);
    const int64_t B = 2, per = CH * RES * RES;
    float x0[2 * CH * RES * RES], lat[2 * CH * RES * RES];
    make_images(x0, (int)B, 8);
    da_rng r;
    da_rng_init(&r, 9);
    da_rng_normal(&r, lat, B * per, 0.0f, 1.0f);

    /* the library: one batch = 3 generation steps, 3 Adam steps */
    da_ctx ctx;
    da_ctx_init(&ctx);
    float xout[2 * CH * RES * RES];
    da_ft_terms t;
    rc = da_ft_train_batch(&f, &opt, &ctx, x0, lat, B, 1234, xout, &t, err, sizeof err);
    CHECK(rc == 0, "train_batch: %s", err);

    /* by hand: timesteps 400, 200, 0 -> 200, 0, -1; zero grads, step, Adam, detach */
    CHECK(f.ts[0] == 400 && f.ts[1] == 200 && f.ts[2] == 0 && f.ts_next[0] == 200 && f.ts_next[2] == -1,
          "generation pairs %d->%d, %d->%d, %d->%d", f.ts[0], f.ts_next[0], f.ts[1], f.ts_next[1], f.ts[2], f.ts_next[2]);
    int64_t np = ref.params.n;
    double **mm = calloc((size_t)np, sizeof(double *)), **vv = calloc((size_t)np, sizeof(double *));
    for (int64_t i = 0; i < np; i++) {
        mm[i] = calloc((size_t)ref.params.items[i].t->numel, sizeof(double));
        vv[i] = calloc((size_t)ref.params.items[i].t->numel, sizeof(double));
    }
    float x[2 * CH * RES * RES], x0t[2 * CH * RES * RES];
    memcpy(x, lat, sizeof x);
    const int ts[3] = {400, 200, 0}, tn[3] = {200, 0, -1};
    double lv = 0, first_loss = 0;
    for (int k = 0; k < 3; k++) {
        da_unet_zero_grad(&ref);
        lv = ref_step(&ref, &clip, dir, x0, x, B, ts[k], tn[k], da_rng_at(1234, (uint64_t)k), x0t);
        if (k == 0) {
            first_loss = lv;
            /* after one step: compare the first update alone on a third model */
            da_unet one;
            tiny_unet(&one, 31, 0.1f);
            da_finetuner f1;
            da_ft_init(&f1, &cfg, &one, &clip, dir, NULL, err, sizeof err);
            float src[2 * 16], xx[2 * CH * RES * RES], x0o[2 * CH * RES * RES];
            da_ft_source_features(&f1, x0, B, src, NULL);
            memcpy(xx, lat, sizeof xx);
            da_ft_terms t1;
            da_ft_per_step(&ctx, &f1, x0, src, NULL, xx, 0, B, 1234, x0o, &t1);
            CHECK(fabs(t1.loss - lv) <= 1e-5 * fabs(lv), "step 0 loss %.7g, by hand %.7g", t1.loss, lv);
            tu_close("step 0: x_next", xx, x, (long)(B * per), 1e-5, 1e-5);
            tu_close("step 0: x0_t", x0o, x0t, (long)(B * per), 1e-5, 1e-5);
            for (int64_t i = 0; i < np; i += 7) {
                char what[160];
                snprintf(what, sizeof what, "step 0 gradient of %s", ref.params.items[i].name);
                tu_close(what, one.params.items[i].t->grad, ref.params.items[i].t->grad,
                         (long)ref.params.items[i].t->numel, 1e-6, 1e-4);
            }
            da_ft_free(&f1);
            da_unet_free(&one);
        }
        for (int64_t i = 0; i < np; i++) ref_adam(ref.params.items[i].t, mm[i], vv[i], k + 1, lr);
    }
    CHECK(first_loss > 0 && isfinite(first_loss), "first loss %g", first_loss);
    CHECK(fabs(t.loss - lv) <= 1e-4 * fabs(lv), "last-step loss %.7g, by hand %.7g", t.loss, lv);
    tu_close("generated x0 after 3 steps", xout, x0t, (long)(B * per), 1e-4, 1e-4);
    int bad = 0;
    for (int64_t i = 0; i < np; i++) {
        char what[160];
        snprintf(what, sizeof what, "parameters after 3 per-step updates: %s", ref.params.items[i].name);
        int before = tu_failed;
        tu_close(what, a.params.items[i].t->data, ref.params.items[i].t->data, (long)ref.params.items[i].t->numel,
                 2e-6, 1e-4);
        bad += tu_failed > before;
    }
    CHECK(bad == 0, "%d parameters differ", bad);
    for (int64_t i = 0; i < np; i++) { free(mm[i]); free(vv[i]); }
    free(mm);
    free(vv);
    da_adam_free(&opt);
    da_ctx_free(&ctx);
    da_ft_free(&f);
    da_unet_free(&a);
    da_unet_free(&ref);
    da_clip_free(&clip);
}

/* ---- a short run lowers the directional loss and keeps L1 small ---------------------------- */

static void run_training(da_ft_mode mode, double lr, int epochs) {
    da_unet m;
    tiny_unet(&m, 51, 0.0f);
    /* A model that predicts eps = 0 reconstructs exactly (inversion scales x0 by sqrt(ā_t0),
     * generation undoes it): a "trained" starting point whose L1 is 0. */
    da_init_const(da_unet_param(&m, "conv_out.weight"), 0.0f);
    da_init_const(da_unet_param(&m, "conv_out.bias"), 0.0f);
    da_clip clip;
    tiny_clip(&clip, 61);
    float dir[16];
    text_dir(&clip, dir);
    da_ft_config cfg;
    da_ft_config_default(&cfg);
    cfg.t0 = 300;
    cfg.inv_steps = 6;
    cfg.train_steps = 3;
    cfg.mode = mode;
    da_finetuner f;
    char err[512];
    int rc = da_ft_init(&f, &cfg, &m, &clip, dir, NULL, err, sizeof err);
    CHECK(rc == 0, "init: %s", err);
    da_adam_config ac = da_adam_defaults(DA_ADAM);
    ac.lr = lr;
    da_adam opt;
    da_adam_init(&opt, &ac, f.params, f.n_params, err, sizeof err);
    enum { N = 4, B = 2, PER = CH * RES * RES };
    float x0[N * PER], lat[N * PER], src[N * 16], xo[N * PER];
    make_images(x0, N, 70);
    memcpy(lat, x0, sizeof lat);
    int64_t shape[4] = {N, CH, RES, RES};
    rc = da_ddim_invert(&f.sched, da_unet_eps, &m, lat, shape, cfg.inv_steps, cfg.t0, NULL, NULL, err, sizeof err);
    CHECK(rc == 0, "invert: %s", err);
    da_ft_source_features(&f, x0, N, src, NULL);
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_ft_terms t0;
    da_ft_chain(&ctx, &f, x0, src, NULL, lat, N, 0, false, xo, &t0);
    CHECK(t0.l1 < 1e-4, "the eps = 0 model should reconstruct: L1 %g", t0.l1);
    for (int e = 0; e < epochs; e++)
        for (int b = 0; b < N; b += B) {
            da_ft_terms t;
            rc = da_ft_train_batch(&f, &opt, &ctx, x0 + b * PER, lat + b * PER, B, (uint64_t)(e * 100 + b), NULL, &t,
                                   err, sizeof err);
            CHECK(rc == 0, "train: %s", err);
        }
    da_ft_terms t1;
    da_ft_chain(&ctx, &f, x0, src, NULL, lat, N, 0, false, xo, &t1);
    const char *name = mode == DA_FT_CHAIN ? "chain" : "per-step";
    fprintf(stderr, "  %s: L_dir %.4f -> %.4f, L1 %.4f -> %.4f\n", name, t0.dir, t1.dir, t0.l1, t1.l1);
    CHECK(t1.dir < t0.dir - 0.1, "%s: the directional loss did not fall enough: %g -> %g", name, t0.dir, t1.dir);
    CHECK(t1.l1 < 0.25, "%s: L1 grew to %g", name, t1.l1);
    /* generation from the latents agrees with the chain's output (no dropout here) */
    float xg[N * PER];
    memcpy(xg, lat, sizeof xg);
    da_ft_generate(&f, xg, N);
    tu_close("da_ft_generate vs the chain's output", xg, xo, N * PER, 1e-5, 1e-4);
    for (int i = 0; i < clip.params.n; i++)
        if (clip.params.items[i].t->grad) {
            CHECK(0, "CLIP weight %s has a gradient buffer", clip.params.items[i].name);
            break;
        }
    da_adam_free(&opt);
    da_ctx_free(&ctx);
    da_ft_free(&f);
    da_unet_free(&m);
    da_clip_free(&clip);
}

/* ---- a NaN stops with a message and leaves the model as it was ------------------------------ */

static void test_nan(void) {
    da_unet m;
    tiny_unet(&m, 81, 0.0f);
    da_clip clip;
    tiny_clip(&clip, 82);
    float dir[16];
    text_dir(&clip, dir);
    da_ft_config cfg;
    da_ft_config_default(&cfg);
    cfg.t0 = 200;
    cfg.inv_steps = 4;
    cfg.train_steps = 2;
    da_finetuner f;
    char err[512];
    da_ft_init(&f, &cfg, &m, &clip, dir, NULL, err, sizeof err);
    da_adam_config ac = da_adam_defaults(DA_ADAM);
    da_adam opt;
    da_adam_init(&opt, &ac, f.params, f.n_params, err, sizeof err);
    float x0[CH * RES * RES], lat[CH * RES * RES];
    make_images(x0, 1, 3);
    memcpy(lat, x0, sizeof lat);
    lat[5] = NAN;
    da_tensor *w = da_unet_param(&m, "conv_in.weight");
    float keep = w->data[0];
    da_ctx ctx;
    da_ctx_init(&ctx);
    for (int mode = 0; mode < 2; mode++) {
        f.cfg.mode = mode ? DA_FT_PER_STEP : DA_FT_CHAIN;
        err[0] = 0;
        int rc = da_ft_train_batch(&f, &opt, &ctx, x0, lat, 1, 0, NULL, NULL, err, sizeof err);
        CHECK(rc == -1 && strstr(err, "not finite"), "mode %d: a NaN latent must stop training: rc %d, '%s'", mode, rc, err);
        CHECK(w->data[0] == keep, "mode %d: the model changed despite the NaN", mode);
    }
    da_adam_free(&opt);
    da_ctx_free(&ctx);
    da_ft_free(&f);
    da_unet_free(&m);
    da_clip_free(&clip);
}


/* ---- the CLI: outputs, latent cache, resume equals an uninterrupted run ---------------------- */

static char OUT[1 << 17];

static int run(const char *cmd) { return cli_run(cmd, OUT, sizeof OUT); }

static bool exists(const char *dir, const char *name) {
    char p[4096];
    return access(td_path(p, sizeof p, dir, name), F_OK) == 0;
}

static void test_cli(void) {
    const char *bin = getenv("DA_BIN");
    if (!bin || access(bin, X_OK)) {
        printf("CLI part skipped: DA_BIN is not set to the diffadapt binary\n");
        return;
    }
    char dir[512], model[700], clipf[700], data[700], a[700], b[700], cmd[8192], err[512];
    td_make(dir, sizeof dir, "finetune");
    td_path(model, sizeof model, dir, "m.safetensors");
    td_path(clipf, sizeof clipf, dir, "clip.safetensors");
    td_path(data, sizeof data, dir, "data.safetensors");
    td_path(a, sizeof a, dir, "a.safetensors");
    td_path(b, sizeof b, dir, "b.safetensors");
    da_unet m;
    tiny_unet(&m, 91, 0.1f);
    CHECK(da_unet_save(&m, model, NULL, 0, err, sizeof err) == 0, "%s", err);
    da_clip clip;
    tiny_clip(&clip, 92);
    CHECK(da_clip_save(&clip, clipf, NULL, err, sizeof err) == 0, "%s", err);
    enum { NI = 6 };
    float x[NI * CH * RES * RES];
    make_images(x, NI, 93);
    int64_t shape[4] = {NI, CH, RES, RES};
    st_writer *w = st_writer_new();
    st_writer_add_f32(w, "images", 4, shape, x);
    CHECK(st_writer_save(w, data, err, sizeof err) == 0, "%s", err);
    st_writer_free(w);

    char common[4096];
    snprintf(common, sizeof common,
             "--model '%s' --clip '%s' --src-text photo --tgt-text sketch --data '%s' --t0 200 --inv-steps 5 "
             "--train-steps 2 --images 4 --grid-images 2 --batch 2 --lr 1e-3 --seed 3 --threads 1",
             model, clipf, data);
    /* two epochs in one go */
    snprintf(cmd, sizeof cmd, "'%s' finetune %s --epochs 2 --out '%s' 2>&1", bin, common, a);
    int rc = run(cmd);
    CHECK(rc == 0, "finetune: exit %d:\n%s", rc, OUT);
    CHECK(strstr(OUT, "latents: cached in") && strstr(OUT, "epoch 1/2  image 1-2/4  loss ") &&
              strstr(OUT, "epoch 2/2  image 3-4/4  loss ") && strstr(OUT, "clip ") && strstr(OUT, "(dir ") &&
              strstr(OUT, "l1 ") && strstr(OUT, "peak memory"),
          "progress lines:\n%s", OUT);
    CHECK(exists(dir, "a.safetensors") && exists(dir, "a.ckpt.safetensors") && exists(dir, "a.epoch1.png") &&
              exists(dir, "a.epoch2.png") && exists(dir, "a.log.csv"),
          "outputs missing:\n%s", OUT);
    size_t len;
    char *log = td_slurp(td_path(cmd, sizeof cmd, dir, "a.log.csv"), &len);
    int rows = 0;
    for (char *p = log; p && *p; p++) rows += *p == '\n';
    CHECK(rows == 5, "a.log.csv has %d lines, expected a header and 4 rows", rows);
    free(log);
    da_unet got;
    CHECK(da_unet_load(&got, a, NULL, err, sizeof err) == 0, "the fine-tuned model does not load: %s", err);
    da_unet_free(&got);

    /* views and an image-guided direction (the images of `data` turned negative as the "target") */
    {
        char tgt[700], c2[700];
        td_path(tgt, sizeof tgt, dir, "tgt.safetensors");
        td_path(c2, sizeof c2, dir, "c.safetensors");
        float neg[NI * CH * RES * RES];
        for (int i = 0; i < NI * CH * RES * RES; i++) neg[i] = -x[i];
        st_writer *tw = st_writer_new();
        st_writer_add_f32(tw, "images", 4, shape, neg);
        CHECK(st_writer_save(tw, tgt, err, sizeof err) == 0, "%s", err);
        st_writer_free(tw);
        snprintf(cmd, sizeof cmd, "'%s' finetune %s --epochs 1 --views 2 --tgt-images '%s' --tgt-weight 0.5 --out '%s' 2>&1",
                 bin, common, tgt, c2);
        rc = run(cmd);
        CHECK(rc == 0 && strstr(OUT, "image-guided direction from 6 target images, weight 0.5"),
              "finetune --views --tgt-images: exit %d:\n%s", rc, OUT);
        snprintf(cmd, sizeof cmd, "'%s' finetune %s --epochs 1 --tgt-images '%s' --tgt-weight 2 --out '%s' --force 2>&1",
                 bin, common, tgt, c2);
        rc = run(cmd);
        CHECK(rc == 2 && strstr(OUT, "--tgt-weight"), "--tgt-weight 2 accepted: exit %d:\n%s", rc, OUT);
    }

    /* one epoch, then a resumed second one: the same model, byte for byte; latents reused */
    snprintf(cmd, sizeof cmd, "'%s' finetune %s --epochs 1 --out '%s' 2>&1", bin, common, b);
    rc = run(cmd);
    CHECK(rc == 0 && strstr(OUT, "latents: reusing"), "first epoch: exit %d:\n%s", rc, OUT);
    snprintf(cmd, sizeof cmd, "'%s' finetune %s --epochs 2 --out '%s' 2>&1", bin, common, b);
    rc = run(cmd);
    CHECK(rc == 1 && strstr(OUT, "already exists"), "an existing --out must be refused: exit %d:\n%s", rc, OUT);
    snprintf(cmd, sizeof cmd, "'%s' finetune %s --epochs 2 --resume --out '%s' 2>&1", bin, common, b);
    rc = run(cmd);
    CHECK(rc == 0 && strstr(OUT, "1 of 2 epochs done") && !strstr(OUT, "epoch 1/2  image"), "resume: exit %d:\n%s", rc, OUT);
    size_t la, lb;
    char *ca = td_slurp(a, &la), *cb = td_slurp(b, &lb);
    CHECK(ca && cb && la == lb && !memcmp(ca, cb, la), "resumed model differs from the uninterrupted one");
    free(ca);
    free(cb);
    /* other settings cannot resume that checkpoint */
    snprintf(cmd, sizeof cmd, "'%s' finetune %s --epochs 3 --clip-weight 2 --resume --out '%s' 2>&1", bin, common, b);
    rc = run(cmd);
    CHECK(rc == 1 && strstr(OUT, "other settings"), "resume with other settings: exit %d:\n%s", rc, OUT);

    /* per-step mode, bad options */
    snprintf(cmd, sizeof cmd, "'%s' finetune %s --epochs 1 --mode per-step --force --out '%s' 2>&1", bin, common, b);
    rc = run(cmd);
    CHECK(rc == 0 && strstr(OUT, "mode per-step"), "per-step: exit %d:\n%s", rc, OUT);
    snprintf(cmd, sizeof cmd, "'%s' finetune %s --mode sideways --out '%s' 2>&1", bin, common, b);
    rc = run(cmd);
    CHECK(rc == 2 && strstr(OUT, "--mode is chain or per-step"), "bad mode: exit %d:\n%s", rc, OUT);
    snprintf(cmd, sizeof cmd, "'%s' finetune %s --images 9 --force --out '%s' 2>&1", bin, common, b);
    rc = run(cmd);
    CHECK(rc == 1 && strstr(OUT, "hold 6 images but --images is 9"), "too few images: exit %d:\n%s", rc, OUT);
    snprintf(cmd, sizeof cmd, "'%s' finetune %s --id-weight 1 --force --out '%s' 2>&1", bin, common, b);
    rc = run(cmd);
    CHECK(rc == 2 && strstr(OUT, "needs --id-model"), "id weight without a model: exit %d:\n%s", rc, OUT);
    /* with an identity model (the same CLIP file) */
    snprintf(cmd, sizeof cmd, "'%s' finetune %s --epochs 1 --id-model '%s' --id-weight 0.5 --force --out '%s' 2>&1", bin,
             common, clipf, b);
    rc = run(cmd);
    CHECK(rc == 0 && strstr(OUT, "id 0.") , "identity term: exit %d:\n%s", rc, OUT);

    da_unet_free(&m);
    da_clip_free(&clip);
    td_remove(dir);
}


/* ---- the directional loss over random views: its chain gradient against finite differences ---- */
static void test_views_gradient(int views, da_ft_identity identity) {
    da_unet m;
    tiny_unet(&m, 12, 0.0f);
    da_clip clip;
    tiny_clip(&clip, 23);
    float dir[16];
    text_dir(&clip, dir);
    da_ft_config cfg;
    da_ft_config_default(&cfg);
    cfg.t0 = 300;
    cfg.inv_steps = 5;
    cfg.train_steps = 2;
    cfg.views = views;
    cfg.identity = identity;
    cfg.view_min_scale = 0.5f;
    da_finetuner f;
    char err[512];
    int rc = da_ft_init(&f, &cfg, &m, &clip, dir, NULL, err, sizeof err);
    CHECK(rc == 0, "init: %s", err);
    if (rc) return;
    const int64_t B = 2, per = CH * RES * RES;
    float x0[2 * CH * RES * RES], lat[2 * CH * RES * RES], src[2 * 16];
    make_images(x0, (int)B, 15);
    da_rng r;
    da_rng_init(&r, 16);
    da_rng_normal(&r, lat, B * per, 0.0f, 1.0f);
    da_ft_source_features(&f, x0, B, src, NULL);
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_unet_zero_grad(&m);
    da_ft_terms t, t0v;
    da_ft_chain(&ctx, &f, x0, src, NULL, lat, B, 5, true, NULL, &t);
    /* the plain recipe: views change the CLIP term only, the edge identity the identity term only */
    f.cfg.views = 0;
    f.cfg.identity = DA_FT_ID_PIXELS;
    da_ft_chain(&ctx, &f, x0, src, NULL, lat, B, 5, false, NULL, &t0v);
    f.cfg.views = views;
    f.cfg.identity = identity;
    CHECK(isfinite(t.loss) && t.clip > 0 && (fabs(t.clip - t0v.clip) > 1e-6) == (views > 0) &&
              (fabs(t.l1 - t0v.l1) > 1e-6) == (identity != DA_FT_ID_PIXELS),
          "views %d, identity %d: clip %g vs %g, l1 %g vs %g", views, (int)identity, t.clip, t0v.clip, t.l1, t0v.l1);
    CHECK(fabs(t.loss - (3 * t.clip + t.l1)) < 1e-5 * fabs(t.loss), "loss %g is not the weighted sum", t.loss);
    const probe probes[] = {
        {"conv_out.bias", 0}, {"conv_out.weight", 11}, {"conv_in.weight", 4}, {"down.0.block.0.conv1.weight", 30},
        {"mid.attn_1.v.weight", 9}, {"up.1.block.0.conv2.weight", 120},
    };
    char what[128];
    snprintf(what, sizeof what, "chain-mode gradient (%d views, %s identity) vs finite differences", views,
             identity == DA_FT_ID_PIXELS ? "pixel" : identity == DA_FT_ID_EDGES ? "edge" : "coarse edge");
    if (!check_probes(what, &ctx, &f, &m, probes, (int)(sizeof probes / sizeof probes[0]), x0, src, NULL, lat, B, 5,
                      false))
        return;
    if (identity != DA_FT_ID_PIXELS) {
        /* the edge identities do not see the polarity, but see an added texture */
        float neg[2 * CH * RES * RES], tex[2 * CH * RES * RES];
        for (int i = 0; i < 2 * CH * RES * RES; i++) {
            neg[i] = -x0[i];
            tex[i] = x0[i] + ((i + i / RES) % 2 ? 0.2f : -0.2f);
        }
        da_ctx_reset(&ctx);
        da_tensor *tx0 = da_from_data(&ctx, DA_SHAPE(2, CH, RES, RES), x0);
        da_tensor *ts = da_from_data(&ctx, DA_SHAPE(2, 16), src);
        da_ft_terms tn, tt;
        da_ft_loss(&ctx, &f, tx0, ts, NULL, da_from_data(&ctx, DA_SHAPE(2, CH, RES, RES), neg), &tn);
        da_ft_loss(&ctx, &f, tx0, ts, NULL, da_from_data(&ctx, DA_SHAPE(2, CH, RES, RES), tex), &tt);
        CHECK(tn.l1 < 1e-6 && tt.l1 > 0.1, "edge identity %d: negative %g (want 0), textured %g (want > 0.1)",
              (int)identity, tn.l1, tt.l1);
        if (identity == DA_FT_ID_COARSE_EDGES) {
            /* a step edge turned into a thin line of the same height: cheaper for the coarse form */
            float step[2 * CH * RES * RES], line[2 * CH * RES * RES];
            for (int i = 0; i < 2 * CH * RES * RES; i++) {
                int xx = i % RES;
                step[i] = xx < 4 ? -1.0f : 1.0f;
                line[i] = xx == 3 ? -1.0f : 1.0f;
            }
            da_ft_terms ts, tl;
            da_ctx_reset(&ctx);
            da_tensor *sx0 = da_from_data(&ctx, DA_SHAPE(2, CH, RES, RES), step);
            da_ft_loss(&ctx, &f, sx0, da_from_data(&ctx, DA_SHAPE(2, 16), src), NULL,
                       da_from_data(&ctx, DA_SHAPE(2, CH, RES, RES), line), &tl);
            f.cfg.identity = DA_FT_ID_EDGES;
            da_ft_loss(&ctx, &f, sx0, da_from_data(&ctx, DA_SHAPE(2, 16), src), NULL,
                       da_from_data(&ctx, DA_SHAPE(2, CH, RES, RES), line), &ts);
            f.cfg.identity = identity;
            CHECK(tl.l1 < 0.5 * ts.l1, "step -> line: coarse %g, fine %g", tl.l1, ts.l1);
        }
    }
    /* views are part of the configuration's checks */
    da_ft_config bad = cfg;
    bad.views = 65;
    CHECK(da_ft_config_validate(&bad, &m, err, sizeof err) != 0 && strstr(err, "views"), "65 views accepted");
    bad.views = 2;
    bad.view_min_scale = 0.0f;
    CHECK(da_ft_config_validate(&bad, &m, err, sizeof err) != 0, "a view scale of 0 accepted");
    da_ctx_free(&ctx);
    da_ft_free(&f);
    da_unet_free(&m);
    da_clip_free(&clip);
}

/* ---- the image-guided direction and its mix with the text direction ---- */
static void test_image_direction(void) {
    da_clip clip;
    tiny_clip(&clip, 31);
    float a[5 * CH * RES * RES], b[3 * CH * RES * RES], dir[16], want[16], tdir[16], mix[16];
    make_images(a, 5, 41);
    make_images(b, 3, 42);
    for (int i = 0; i < 3 * CH * RES * RES; i++) b[i] = -b[i];   /* another "domain" */
    char err[512];
    int rc = da_clip_image_direction(&clip, a, 5, b, 3, CH, RES, RES, dir, err, sizeof err);
    CHECK(rc == 0, "image direction: %s", err);
    /* by hand: image by image, normalised, means, difference, normalised */
    double ma[16] = {0}, mb[16] = {0};
    da_ctx ctx;
    da_ctx_init(&ctx);
    da_set_grad(&ctx, false);
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < (s ? 3 : 5); i++) {
            da_ctx_reset(&ctx);
            da_tensor *x = da_from_data(&ctx, DA_SHAPE(1, CH, RES, RES), (s ? b : a) + i * CH * RES * RES);
            da_tensor *e = da_clip_image_features(&ctx, &clip, x);
            double n2 = 0;
            for (int k = 0; k < 16; k++) n2 += (double)e->data[k] * e->data[k];
            for (int k = 0; k < 16; k++) (s ? mb : ma)[k] += e->data[k] / sqrt(n2) / (s ? 3 : 5);
        }
    double n2 = 0;
    for (int k = 0; k < 16; k++) n2 += (mb[k] - ma[k]) * (mb[k] - ma[k]);
    for (int k = 0; k < 16; k++) want[k] = (float)((mb[k] - ma[k]) / sqrt(n2));
    tu_close("image direction vs by-hand means", dir, want, 16, 1e-5, 1e-4);
    text_dir(&clip, tdir);
    CHECK(da_clip_mix_directions(tdir, dir, 0.0f, 16, mix) == 0, "mix 0");
    tu_close("mix weight 0 is the text direction", mix, tdir, 16, 1e-6, 1e-6);
    CHECK(da_clip_mix_directions(tdir, dir, 1.0f, 16, mix) == 0, "mix 1");
    tu_close("mix weight 1 is the image direction", mix, dir, 16, 1e-6, 1e-6);
    CHECK(da_clip_mix_directions(tdir, dir, 0.5f, 16, mix) == 0, "mix 0.5");
    double cta = 0, cia = 0, nm = 0;
    for (int k = 0; k < 16; k++) cta += mix[k] * tdir[k], cia += mix[k] * dir[k], nm += mix[k] * mix[k];
    CHECK(fabs(nm - 1) < 1e-5 && fabs(cta - cia) < 1e-5, "an even mix is normalised and halfway (%g, %g, %g)", nm, cta, cia);
    float neg[16];
    for (int k = 0; k < 16; k++) neg[k] = -tdir[k];
    CHECK(da_clip_mix_directions(tdir, neg, 0.5f, 16, mix) != 0, "opposite directions mixed evenly must be refused");
    CHECK(da_clip_image_direction(&clip, a, 5, a, 5, CH, RES, RES, dir, err, sizeof err) != 0 && strstr(err, "same mean"),
          "identical sets give no direction");
    CHECK(da_clip_image_direction(&clip, a, 0, b, 3, CH, RES, RES, dir, err, sizeof err) != 0, "an empty set is refused");
    da_ctx_free(&ctx);
    da_clip_free(&clip);
}

int main(void) {
    da_set_threads(1);
    test_chain_gradient();
    test_views_gradient(3, DA_FT_ID_PIXELS);
    test_views_gradient(0, DA_FT_ID_EDGES);
    test_views_gradient(0, DA_FT_ID_COARSE_EDGES);
    test_image_direction();
    test_per_step();
    run_training(DA_FT_CHAIN, 1.5e-3, 3);
    run_training(DA_FT_PER_STEP, 1e-3, 3);
    test_nan();
    test_cli();
    return tu_finish("test_finetune");
}
