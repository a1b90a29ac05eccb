/* test_optim.c — Adam/AdamW and clip_grad_norm_ against torch.optim goldens, bit-exact resume from
 * exported state, EMA, lr schedules, zeroing, and the errors for bad settings or state. */
#include "io/safetensors.h"
#include "tensor/optim.h"
#include "test_util.h"

#define NP 3   /* parameters in the golden file */
#define K 4    /* steps in the golden file */

static st_file gf;

/* A heap copy of golden tensor `name` as float32, or NULL with a failure. */
static float *gload(const char *name, int64_t *numel) {
    char err[256];
    const st_tensor_info *ti = st_find(&gf, name);
    if (!ti) {
        CHECK(ti != NULL, "golden tensor %s missing", name);
        return NULL;
    }
    float *d = malloc(sizeof(float) * (size_t)(ti->numel ? ti->numel : 1));
    if (st_read_f32(&gf, ti, d, err, sizeof err) != 0) {
        CHECK(0, "%s", err);
        free(d);
        return NULL;
    }
    if (numel) *numel = ti->numel;
    return d;
}

/* The three parameters at their golden initial values, each with a zeroed gradient. */
static void make_params(da_tensor **p) {
    for (int i = 0; i < NP; i++) {
        char name[32];
        snprintf(name, sizeof name, "init.p%d", i);
        const st_tensor_info *ti = st_find(&gf, name);
        da_check(ti != NULL, "test_optim", "golden file lacks %s", name);
        p[i] = da_persistent(ti->ndim, ti->shape, true);
        float *d = gload(name, NULL);
        memcpy(p[i]->data, d, sizeof(float) * (size_t)p[i]->numel);
        free(d);
    }
}

static void free_params(da_tensor **p) {
    for (int i = 0; i < NP; i++) da_tensor_free(p[i]);
}

/* Gradients of step k into p->grad. */
static void set_grads(da_tensor **p, int k) {
    for (int i = 0; i < NP; i++) {
        char name[32];
        snprintf(name, sizeof name, "grad.p%d", i);
        float *g = gload(name, NULL);
        memcpy(p[i]->grad, g + k * p[i]->numel, sizeof(float) * (size_t)p[i]->numel);
        free(g);
    }
}

typedef struct {
    const char *name;
    da_adam_kind kind;
    double beta1, beta2, eps, wd;
    double lr[K];
    float max_norm;   /* 0 = no clipping */
} golden_case;

static const golden_case CASES[] = {
    {"adam", DA_ADAM, 0.9, 0.999, 1e-8, 0.0, {1e-2, 1e-2, 1e-2, 1e-2}, 0},
    {"adam_wd", DA_ADAM, 0.8, 0.99, 1e-6, 0.1, {5e-3, 5e-3, 5e-3, 5e-3}, 0},
    {"adamw", DA_ADAMW, 0.9, 0.999, 1e-8, 0.05, {1e-2, 2e-2, 2e-2, 6e-3}, 0},
    {"adam_clip", DA_ADAM, 0.9, 0.999, 1e-8, 0.0, {1e-2, 1e-2, 1e-2, 1e-2}, 1.0f},
};

/* Runs steps [k0,k1) of a case on p with optimiser o (clipping first when the case clips). */
static void run_steps(const golden_case *c, da_adam *o, da_tensor **p, int k0, int k1, float *norms) {
    for (int k = k0; k < k1; k++) {
        set_grads(p, k);
        o->cfg.lr = c->lr[k];
        if (c->max_norm > 0) {
            float n = da_clip_grad_norm(p, NP, c->max_norm);
            if (norms) norms[k] = n;
        }
        da_adam_step(o);
    }
}

static void check_case(const golden_case *c) {
    char name[64], err[256];
    /* the constants here must be the ones the generator used */
    snprintf(name, sizeof name, "%s.hyper", c->name);
    float *hy = gload(name, NULL), *lr = NULL;
    snprintf(name, sizeof name, "%s.lr", c->name);
    lr = gload(name, NULL);
    if (!hy || !lr) { free(hy); free(lr); return; }
    float want_hy[4] = {(float)c->beta1, (float)c->beta2, (float)c->eps, (float)c->wd}, want_lr[K];
    for (int k = 0; k < K; k++) want_lr[k] = (float)c->lr[k];
    tu_close("hyper-parameters match the generator", hy, want_hy, 4, 0, 0);
    tu_close("lr sequence matches the generator", lr, want_lr, K, 0, 0);
    free(hy);
    free(lr);

    da_tensor *p[NP];
    make_params(p);
    da_adam o;
    da_adam_config cfg = {c->kind, c->lr[0], c->beta1, c->beta2, c->eps, c->wd};
    CHECK(da_adam_init(&o, &cfg, p, NP, err, sizeof err) == 0, "%s", err);
    float norms[K];
    run_steps(c, &o, p, 0, K, norms);
    if (c->max_norm > 0) {
        snprintf(name, sizeof name, "%s.norms", c->name);
        float *ref = gload(name, NULL);
        snprintf(name, sizeof name, "%s: clip_grad_norm_ result", c->name);
        if (ref) tu_close(name, norms, ref, K, 0, 1e-6);
        free(ref);
    }
    for (int i = 0; i < NP; i++) {
        const char *what[3] = {"", "m.", "v."};
        const float *got[3] = {p[i]->data, o.m[i], o.v[i]};
        for (int w = 0; w < 3; w++) {
            snprintf(name, sizeof name, "%s.%sp%d", c->name, what[w], i);
            int64_t n = 0;
            float *ref = gload(name, &n);
            if (!ref) continue;
            CHECK(n == p[i]->numel, "%s size", name);
            /* float32 against float32: a few ulp apart from the order of roundings */
            if (n == p[i]->numel) tu_close(name, got[w], ref, (long)n, 1e-7, 2e-6);
            free(ref);
        }
        CHECK(o.steps[i] == K, "%s: step count %lld", c->name, (long long)o.steps[i]);
    }
    da_adam_free(&o);
    free_params(p);
}

/* K steps in one go and K/2 + export/import + K/2 must agree to the bit. */
static void check_resume(const golden_case *c) {
    char err[256];
    da_adam_config cfg = {c->kind, c->lr[0], c->beta1, c->beta2, c->eps, c->wd};
    da_tensor *a[NP], *b[NP], *b2[NP];
    make_params(a);
    make_params(b);
    make_params(b2);
    da_adam oa, ob, ob2;
    da_adam_init(&oa, &cfg, a, NP, err, sizeof err);
    run_steps(c, &oa, a, 0, K, NULL);

    da_adam_init(&ob, &cfg, b, NP, err, sizeof err);
    run_steps(c, &ob, b, 0, K / 2, NULL);
    int64_t size = da_adam_state_size(&ob);
    CHECK(size == NP + 2 * (12 + 5 + 6), "state size %lld", (long long)size);
    float *state = malloc(sizeof(float) * (size_t)size);
    da_adam_export(&ob, state);
    /* a fresh optimiser and fresh parameters holding the saved values, as after a restart */
    for (int i = 0; i < NP; i++) memcpy(b2[i]->data, b[i]->data, sizeof(float) * (size_t)b[i]->numel);
    da_adam_free(&ob);
    da_adam_init(&ob2, &cfg, b2, NP, err, sizeof err);
    CHECK(da_adam_import(&ob2, state, size, err, sizeof err) == 0, "import: %s", err);
    run_steps(c, &ob2, b2, K / 2, K, NULL);
    for (int i = 0; i < NP; i++) {
        size_t bytes = sizeof(float) * (size_t)a[i]->numel;
        CHECK(memcmp(a[i]->data, b2[i]->data, bytes) == 0, "%s: resumed parameter %d differs", c->name, i);
        CHECK(memcmp(oa.m[i], ob2.m[i], bytes) == 0 && memcmp(oa.v[i], ob2.v[i], bytes) == 0,
              "%s: resumed moments of parameter %d differ", c->name, i);
        CHECK(oa.steps[i] == ob2.steps[i], "%s: step counts differ", c->name);
    }

    /* damaged or mismatched state is refused and leaves the optimiser as it was */
    err[0] = 0;
    CHECK(da_adam_import(&ob2, state, size - 1, err, sizeof err) == -1 && strstr(err, "need"),
          "short state accepted (%s)", err);
    state[1] = 2.5f;
    CHECK(da_adam_import(&ob2, state, size, err, sizeof err) == -1 && strstr(err, "step count"),
          "fractional step count accepted (%s)", err);
    CHECK(ob2.steps[1] == K, "a refused import changed the optimiser");
    free(state);
    da_adam_free(&oa);
    da_adam_free(&ob2);
    free_params(a);
    free_params(b);
    free_params(b2);
}

static void check_settings_and_grads(void) {
    char err[256];
    da_tensor *p[NP];
    make_params(p);
    da_adam o;
    da_adam_config cfg = da_adam_defaults(DA_ADAMW);
    CHECK(cfg.lr == 1e-3 && cfg.beta1 == 0.9 && cfg.beta2 == 0.999 && cfg.eps == 1e-8 && cfg.weight_decay == 1e-2,
          "AdamW defaults differ from torch");
    CHECK(da_adam_defaults(DA_ADAM).weight_decay == 0.0, "Adam default weight decay is not 0");
    cfg.lr = -1;
    CHECK(da_adam_init(&o, &cfg, p, NP, err, sizeof err) == -1 && strstr(err, "learning rate"), "negative lr: %s", err);
    cfg = da_adam_defaults(DA_ADAM);
    cfg.beta2 = 1.0;
    CHECK(da_adam_init(&o, &cfg, p, NP, err, sizeof err) == -1 && strstr(err, "betas"), "beta2 = 1: %s", err);
    cfg = da_adam_defaults(DA_ADAM);
    cfg.weight_decay = 0.5;

    /* Adam's L2 term does not change the stored gradient; a parameter without grad is skipped */
    CHECK(da_adam_init(&o, &cfg, p, NP, err, sizeof err) == 0, "%s", err);
    set_grads(p, 0);
    float g0 = p[0]->grad[3], frozen = p[2]->data[1];
    p[2]->requires_grad = false;
    da_adam_step(&o);
    CHECK(p[0]->grad[3] == g0, "Adam weight decay modified the gradient");
    CHECK(p[2]->data[1] == frozen && o.steps[2] == 0, "a parameter without grad was updated");
    CHECK(o.steps[0] == 1, "step count %lld", (long long)o.steps[0]);
    /* first Adam step: m/(sqrt(v)+eps) = sign(g) up to eps, so |dp| = lr */
    da_adam_free(&o);
    p[2]->requires_grad = true;

    /* clipping below the threshold changes nothing; the norm is the global L2 norm */
    set_grads(p, 2);
    double ss = 0;
    for (int i = 0; i < NP; i++)
        for (int64_t j = 0; j < p[i]->numel; j++) ss += (double)p[i]->grad[j] * p[i]->grad[j];
    float before = p[1]->grad[2];
    float n = da_clip_grad_norm(p, NP, 100.0f);
    CHECK(fabs(n - sqrt(ss)) <= 1e-6 * sqrt(ss), "norm %g vs %g", (double)n, sqrt(ss));
    CHECK(p[1]->grad[2] == before, "clipping above the norm changed a gradient");
    n = da_clip_grad_norm(p, NP, 0.5f * (float)sqrt(ss));
    float after = da_clip_grad_norm(p, NP, 1e9f);
    CHECK(fabs(after - 0.5 * sqrt(ss)) <= 1e-5 * sqrt(ss), "clipped norm %g, want %g", (double)after, 0.5 * sqrt(ss));
    p[0]->grad[0] = INFINITY;
    before = p[1]->grad[2];
    CHECK(!isfinite(da_clip_grad_norm(p, NP, 1.0f)) && p[1]->grad[2] == before,
          "a non-finite norm must be returned and leave the gradients alone");

    da_zero_grads(p, NP);
    int nonzero = 0;
    for (int i = 0; i < NP; i++)
        for (int64_t j = 0; j < p[i]->numel; j++) nonzero += p[i]->grad[j] != 0.0f;
    CHECK(nonzero == 0, "%d gradients left after zeroing", nonzero);
    free_params(p);
}

static void check_ema(void) {
    char err[256];
    da_tensor *p[NP];
    make_params(p);
    da_ema e;
    CHECK(da_ema_init(&e, p, NP, 1.5f, err, sizeof err) == -1 && strstr(err, "decay"), "decay 1.5: %s", err);
    CHECK(da_ema_init(&e, p, NP, 0.9f, err, sizeof err) == 0, "%s", err);
    double ref[5];
    for (int j = 0; j < 5; j++) ref[j] = p[1]->data[j];
    /* the parameters move; the average follows with weight 0.1 per update */
    for (int t = 0; t < 3; t++) {
        for (int i = 0; i < NP; i++)
            for (int64_t j = 0; j < p[i]->numel; j++) p[i]->data[j] += 1.0f + (float)t;
        da_ema_update(&e);
        for (int j = 0; j < 5; j++) ref[j] = 0.1 * p[1]->data[j] + 0.9 * ref[j];
    }
    float reff[5];
    for (int j = 0; j < 5; j++) reff[j] = (float)ref[j];
    tu_close("EMA after 3 updates", e.shadow[1]->data, reff, 5, 1e-6, 1e-6);
    CHECK(da_same_shape(e.shadow[2], p[2]) && !e.shadow[2]->requires_grad, "shadow shape or grad flag");
    CHECK(e.shadow[0]->data[0] != p[0]->data[0], "EMA equals the parameters");
    da_ema_copy_to_params(&e);
    CHECK(memcmp(e.shadow[0]->data, p[0]->data, sizeof(float) * 12) == 0, "copy_to_params did not copy");
    da_ema_free(&e);
    free_params(p);
}

static void check_schedule(void) {
    da_lr_schedule s = {1e-3, 4, 10, 0.5};
    double want[][2] = {{0, 2.5e-4}, {1, 5e-4}, {3, 1e-3}, {9, 1e-3}, {10, 5e-4}, {19, 5e-4}, {25, 2.5e-4}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        double got = da_lr_at(&s, (int64_t)want[i][0]);
        CHECK(fabs(got - want[i][1]) <= 1e-15, "lr_at(%g) = %g, want %g", want[i][0], got, want[i][1]);
    }
    /* DiffusionCLIP: x1.3 per epoch of 50 steps, no warm-up */
    da_lr_schedule d = {8e-6, 0, 50, 1.3};
    CHECK(da_lr_at(&d, 0) == 8e-6 && da_lr_at(&d, 49) == 8e-6, "no change within the first epoch");
    CHECK(fabs(da_lr_at(&d, 50) - 8e-6 * 1.3) < 1e-18 && fabs(da_lr_at(&d, 149) - 8e-6 * 1.69) < 1e-18,
          "epoch multipliers: %g %g", da_lr_at(&d, 50), da_lr_at(&d, 149));
    da_lr_schedule c = {2e-4, 0, 0, 0.1};
    CHECK(da_lr_at(&c, 0) == 2e-4 && da_lr_at(&c, 1000000) == 2e-4, "constant schedule changed");
}

int main(void) {
    char err[256];
    if (st_open("golden/optim.safetensors", &gf, err, sizeof err) != 0) {
        CHECK(0, "cannot open the golden file: %s (run from tests/)", err);
        return tu_finish("test_optim");
    }
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) check_case(&CASES[i]);
    check_resume(&CASES[2]);
    check_resume(&CASES[3]);
    check_settings_and_grads();
    check_ema();
    check_schedule();
    st_close(&gf);
    return tu_finish("test_optim");
}
