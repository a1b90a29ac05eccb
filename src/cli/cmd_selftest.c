/* cmd_selftest.c — `diffadapt selftest`: a quick end-to-end check of the engine: a tiny 2-layer
 * MLP's forward against a direct loop, its gradients against finite differences, and a
 * safetensors save / load round trip of its parameters. Prints PASS/FAIL lines. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "io/safetensors.h"
#include "nn/params.h"
#include "tensor/ops.h"

enum { B = 4, IN = 3, HID = 5, OUT = 2 };

typedef struct {
    da_params p;
    da_tensor *w1, *b1, *w2, *b2;   /* (HID,IN) (HID) (OUT,HID) (OUT) */
} mlp;

static void mlp_init(mlp *m, da_rng *r) {
    da_params_init(&m->p);
    m->w1 = da_params_add(&m->p, "fc1.weight", 2, (const int64_t[]){HID, IN});
    m->b1 = da_params_add(&m->p, "fc1.bias", 1, (const int64_t[]){HID});
    m->w2 = da_params_add(&m->p, "fc2.weight", 2, (const int64_t[]){OUT, HID});
    m->b2 = da_params_add(&m->p, "fc2.bias", 1, (const int64_t[]){OUT});
    if (r) {
        da_init_torch_default(m->w1, m->b1, 0, r);
        da_init_torch_default(m->w2, m->b2, 0, r);
    }
}

/* loss = sum(y^2) with y = fc2(fc1(x)) flattened to (1, B*OUT): a matmul of y with itself,
 * so the same tensor reaches the tape twice and its gradient must accumulate. */
static da_tensor *mlp_loss(da_ctx *ctx, mlp *m, da_tensor *x, da_tensor **y_out) {
    da_tensor *h = da_linear(ctx, x, m->w1, m->b1);                 /* (B,HID) */
    da_tensor *y = da_linear(ctx, h, m->w2, m->b2);                 /* (B,OUT) */
    da_tensor *flat = da_reshape(ctx, y, 2, (const int64_t[]){1, B * OUT});  /* (1,B*OUT) */
    if (y_out) *y_out = y;
    return da_matmul(ctx, flat, flat, false, true);                 /* (1,1) */
}

static int report(const char *what, int ok, const char *detail) {
    printf("%s  %s%s%s\n", ok ? "PASS" : "FAIL", what, detail && detail[0] ? ": " : "", detail ? detail : "");
    return ok;
}

int cmd_selftest(int argc, char **argv) {
    int seed = 1;
    const da_option opts[] = {
        {"--seed", DA_OPT_INT, &seed, "N", "seed of the random parameters and inputs", false},
        {0},
    };
    static const da_cmd_info info = {
        "selftest", "[--seed N]",
        "A quick self-check: a 2-layer MLP's forward pass against a direct computation, its\n"
        "parameter gradients against central finite differences, and a safetensors save/load\n"
        "round trip. Exits 1 when any check fails.",
        NULL};
    int rc = da_parse_args(&info, opts, argc, argv, NULL, NULL);
    if (rc) return da_args_exit(rc);

    int all = 1;
    char detail[1200];
    da_rng r;
    da_rng_init(&r, (uint64_t)seed);
    mlp m;
    mlp_init(&m, &r);
    float xv[B * IN];                                              /* (B,IN) */
    da_rng_normal(&r, xv, B * IN, 0.0f, 1.0f);

    da_ctx ctx;
    da_ctx_init(&ctx);
    /* 1. forward against a direct double-precision loop */
    da_tensor *x = da_from_data(&ctx, 2, (const int64_t[]){B, IN}, xv);
    da_tensor *y = NULL;
    da_tensor *loss = mlp_loss(&ctx, &m, x, &y);
    double ref_loss = 0, worst = 0;
    for (int b = 0; b < B; b++) {
        double h[HID];
        for (int j = 0; j < HID; j++) {
            h[j] = m.b1->data[j];
            for (int k = 0; k < IN; k++) h[j] += (double)m.w1->data[j * IN + k] * xv[b * IN + k];
        }
        for (int o = 0; o < OUT; o++) {
            double v = m.b2->data[o];
            for (int j = 0; j < HID; j++) v += (double)m.w2->data[o * HID + j] * h[j];
            worst = fmax(worst, fabs(v - y->data[b * OUT + o]));
            ref_loss += v * v;
        }
    }
    double lerr = fabs(ref_loss - loss->data[0]);
    snprintf(detail, sizeof detail, "max |y - ref| %.2g, |loss - ref| %.2g (loss %.6g)", worst, lerr, ref_loss);
    all &= report("forward of the MLP matches a direct computation", worst < 1e-5 && lerr < 1e-5 * (1 + ref_loss), detail);

    /* 2. gradients of the loss w.r.t. every parameter element against central differences */
    da_params_zero_grad(&m.p);
    da_backward(&ctx, loss);
    const float eps = 1e-2f;
    const double atol = 2e-3, rtol = 2e-3;
    int n_checked = 0, n_bad = 0;
    double worst_excess = 0;
    const char *worst_name = "";
    for (int i = 0; i < m.p.n; i++) {
        da_tensor *t = m.p.items[i].t;
        for (int64_t j = 0; j < t->numel; j++) {
            float keep = t->data[j];
            double l[2];
            for (int s = 0; s < 2; s++) {
                t->data[j] = keep + (s ? -eps : eps);
                da_ctx_reset(&ctx);
                bool old = da_set_grad(&ctx, false);
                da_tensor *xx = da_from_data(&ctx, 2, (const int64_t[]){B, IN}, xv);
                l[s] = mlp_loss(&ctx, &m, xx, NULL)->data[0];
                da_set_grad(&ctx, old);
            }
            t->data[j] = keep;
            double numeric = (l[0] - l[1]) / (2.0 * eps), analytic = t->grad[j];
            double excess = fabs(numeric - analytic) - (atol + rtol * fabs(numeric));
            n_checked++;
            if (!(excess <= 0)) {
                n_bad++;
                if (!(excess <= worst_excess)) { worst_excess = excess; worst_name = m.p.items[i].name; }
            }
        }
    }
    snprintf(detail, sizeof detail, "%d of %d parameter elements disagree%s%s", n_bad, n_checked,
             n_bad ? ", worst in " : "", worst_name);
    all &= report("gradients match finite differences", n_bad == 0 && n_checked == (int)da_params_count(&m.p), detail);
    da_ctx_free(&ctx);

    /* 3. safetensors: save with metadata, read back through a second registry and the reader */
    const char *tmpdir = getenv("TMPDIR");
    char dir[512], path[600], err[1024];
    snprintf(dir, sizeof dir, "%s/diffadapt_selftest_XXXXXX", tmpdir && tmpdir[0] ? tmpdir : "/tmp");
    if (!mkdtemp(dir)) {
        snprintf(detail, sizeof detail, "cannot create a temporary directory under %s (set TMPDIR)",
                 tmpdir && tmpdir[0] ? tmpdir : "/tmp");
        all &= report("safetensors round trip", 0, detail);
    } else {
        snprintf(path, sizeof path, "%s/mlp.safetensors", dir);
        char h1[17], h2[17];
        da_params_hash(&m.p, h1);
        int ok = da_params_save(&m.p, path, (const char *[]){"arch", "selftest-mlp", "hash", h1, NULL}, err, sizeof err) == 0;
        if (!ok) snprintf(detail, sizeof detail, "save failed: %s", err);
        mlp back;
        mlp_init(&back, NULL);
        if (ok && da_params_load_file(&back.p, path, NULL, 0, err, sizeof err)) {
            ok = 0;
            snprintf(detail, sizeof detail, "load failed: %s", err);
        }
        if (ok) {
            da_params_hash(&back.p, h2);
            for (int i = 0; i < m.p.n && ok; i++)
                ok = !memcmp(m.p.items[i].t->data, back.p.items[i].t->data, sizeof(float) * (size_t)m.p.items[i].t->numel);
            if (!ok) snprintf(detail, sizeof detail, "values differ after the round trip");
            else if (strcmp(h1, h2)) { ok = 0; snprintf(detail, sizeof detail, "hash %s != %s", h1, h2); }
        }
        if (ok) {
            st_file f;
            if (st_open(path, &f, err, sizeof err)) {
                ok = 0;
                snprintf(detail, sizeof detail, "reopen failed: %s", err);
            } else {
                const char *mh = st_meta_get(&f, "hash");
                const st_tensor_info *t = st_find(&f, "fc2.weight");
                ok = f.n_tensors == 4 && mh && !strcmp(mh, h1) && t && t->dtype == ST_F32 && t->ndim == 2 &&
                     t->shape[0] == OUT && t->shape[1] == HID;
                if (!ok) snprintf(detail, sizeof detail, "tensor list or metadata wrong in the file");
                st_close(&f);
            }
        }
        if (ok) snprintf(detail, sizeof detail, "%lld parameters, hash %s", (long long)da_params_count(&m.p), h1);
        all &= report("safetensors round trip of the parameters", ok, detail);
        da_params_free(&back.p);
        unlink(path);
        rmdir(dir);
    }
    da_params_free(&m.p);
    printf("%s\n", all ? "selftest: all checks passed" : "selftest: FAILED");
    return all ? 0 : 1;
}
