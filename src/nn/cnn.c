/* cnn.c — the reference classifier CNN (see cnn.h): parameters, PyTorch-style initialisation,
 * forward on the op library (autograd through the tape), loss, prediction, save and load. */
#include "nn/cnn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "nn/params.h"
#include "tensor/fused_ops.h"
#include "tensor/ops.h"
#include "tensor/rng.h"

const char *const DA_CNN_PARAM_NAMES[DA_CNN_N_PARAMS] = {
    "conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "conv3.weight",
    "conv3.bias",   "fc1.weight", "fc1.bias",     "fc2.weight", "fc2.bias",
};

int da_cnn_n_out(const da_cnn_config *cfg) { return cfg->n_classes == 2 ? 1 : cfg->n_classes; }

static void param_shapes(const da_cnn_config *c, int ndim[DA_CNN_N_PARAMS], int64_t shape[DA_CNN_N_PARAMS][4]);

int da_cnn_config_check(da_cnn_config *cfg, char *err, size_t errlen) {
    if (cfg->c1 == 0) cfg->c1 = DA_CNN_C1;
    if (cfg->c2 == 0) cfg->c2 = DA_CNN_C2;
    if (cfg->c3 == 0) cfg->c3 = DA_CNN_C3;
    if (cfg->hidden == 0) cfg->hidden = DA_CNN_HIDDEN;
    if (cfg->in_c < 1 || cfg->in_c > 64) {
        snprintf(err, errlen, "the CNN takes 1 to 64 input channels, the data has %d", cfg->in_c);
        return -1;
    }
    if (cfg->in_h < DA_CNN_MIN_SIZE || cfg->in_w < DA_CNN_MIN_SIZE || cfg->in_h > 4096 || cfg->in_w > 4096) {
        snprintf(err, errlen, "the CNN needs images of %d to 4096 pixels per side, the data is %dx%d "
                 "(use --size or --pad to change it)", DA_CNN_MIN_SIZE, cfg->in_h, cfg->in_w);
        return -1;
    }
    if (cfg->n_classes < 2 || cfg->n_classes > 100000) {
        snprintf(err, errlen, "the CNN needs at least 2 classes, got %d", cfg->n_classes);
        return -1;
    }
    if (cfg->c1 < 1 || cfg->c2 < 1 || cfg->c3 < 1 || cfg->hidden < 1 || cfg->c1 > 4096 || cfg->c2 > 4096 ||
        cfg->c3 > 4096 || cfg->hidden > 65536) {
        snprintf(err, errlen, "CNN widths %d/%d/%d/%d out of range", cfg->c1, cfg->c2, cfg->c3, cfg->hidden);
        return -1;
    }
    /* the weights, before they are allocated (a file's metadata may claim any sizes; the bounds
     * above keep every product within int64) */
    int ndim[DA_CNN_N_PARAMS];
    int64_t shape[DA_CNN_N_PARAMS][4];
    param_shapes(cfg, ndim, shape);
    double bytes = 0;
    for (int i = 0; i < DA_CNN_N_PARAMS; i++) {
        double n = sizeof(float);
        for (int d = 0; d < ndim[i]; d++) n *= (double)shape[i][d];
        bytes += n;
    }
    if (bytes > da_memory_limit_bytes()) {
        snprintf(err, errlen, "the CNN (%dx%dx%d input, widths %d/%d/%d/%d) would need %.1f GiB of weights, more than the "
                 "limit of %.1f GiB; use smaller images (--size), or raise the limit with DIFFADAPT_MAX_GIB", cfg->in_c,
                 cfg->in_h, cfg->in_w, cfg->c1, cfg->c2, cfg->c3, cfg->hidden, bytes / 1073741824.0,
                 da_memory_limit_bytes() / 1073741824.0);
        return -1;
    }
    return 0;
}

/* Shapes of the parameters in registration order. */
static void param_shapes(const da_cnn_config *c, int ndim[DA_CNN_N_PARAMS], int64_t shape[DA_CNN_N_PARAMS][4]) {
    int64_t flat = (int64_t)c->c3 * (c->in_h / 8) * (c->in_w / 8);
    const int64_t conv[3][2] = {{c->c1, c->in_c}, {c->c2, c->c1}, {c->c3, c->c2}};
    for (int l = 0; l < 3; l++) {
        ndim[2 * l] = 4;
        shape[2 * l][0] = conv[l][0];
        shape[2 * l][1] = conv[l][1];
        shape[2 * l][2] = shape[2 * l][3] = 3;
        ndim[2 * l + 1] = 1;
        shape[2 * l + 1][0] = conv[l][0];
    }
    ndim[6] = 2; shape[6][0] = c->hidden; shape[6][1] = flat;
    ndim[7] = 1; shape[7][0] = c->hidden;
    ndim[8] = 2; shape[8][0] = da_cnn_n_out(c); shape[8][1] = c->hidden;
    ndim[9] = 1; shape[9][0] = da_cnn_n_out(c);
}

static int alloc_params(da_cnn *m, const da_cnn_config *cfg, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    if (da_cnn_config_check(&m->cfg, err, errlen) != 0) return -1;
    int ndim[DA_CNN_N_PARAMS];
    int64_t shape[DA_CNN_N_PARAMS][4];
    param_shapes(&m->cfg, ndim, shape);
    da_params_init(&m->reg);
    for (int i = 0; i < DA_CNN_N_PARAMS; i++) m->params[i] = da_params_add(&m->reg, DA_CNN_PARAM_NAMES[i], ndim[i], shape[i]);
    return 0;
}

int da_cnn_init(da_cnn *m, const da_cnn_config *cfg, uint64_t seed, char *err, size_t errlen) {
    if (alloc_params(m, cfg, err, errlen) != 0) return -1;
    da_rng rng;
    da_rng_init(&rng, seed);
    /* Layer by layer, weight then bias, as nn.Module construction does. */
    for (int l = 0; l < 5; l++) da_init_torch_default(m->params[2 * l], m->params[2 * l + 1], 0, &rng);
    return 0;
}

void da_cnn_free(da_cnn *m) {
    if (m->params[0]) da_params_free(&m->reg);
    memset(m, 0, sizeof *m);
}

int64_t da_cnn_num_params(const da_cnn *m) { return da_params_count(&m->reg); }

da_tensor *da_cnn_param(const da_cnn *m, const char *name) { return da_params_find(&m->reg, name); }

void da_cnn_zero_grad(da_cnn *m) { da_params_zero_grad(&m->reg); }

/* ---- forward, loss, prediction ---------------------------------------------------------- */

da_tensor *da_cnn_forward(da_ctx *ctx, const da_cnn *m, da_tensor *x) {
    const da_cnn_config *c = &m->cfg;
    char xs[64];
    da_check(x->ndim == 4 && x->shape[1] == c->in_c && x->shape[2] == c->in_h && x->shape[3] == c->in_w,
             "cnn_forward", "input %s does not match the model's (N,%d,%d,%d)", da_shape_str(x, xs, sizeof xs),
             c->in_c, c->in_h, c->in_w);
    da_tensor *const *p = m->params;
    da_tensor *h = x;   /* (N,C,H,W) */
    for (int l = 0; l < 3; l++)
        h = da_conv3x3_relu_pool(ctx, h, p[2 * l], p[2 * l + 1]);   /* (N,c_l,H_l/2,W_l/2) */
    h = da_reshape(ctx, h, DA_SHAPE(x->shape[0], -1));          /* (N, c3*(H/8)*(W/8)) */
    h = da_relu(ctx, da_linear(ctx, h, p[6], p[7]));           /* (N, hidden) */
    return da_linear(ctx, h, p[8], p[9]);                       /* (N, n_out) */
}

da_tensor *da_cnn_forward_reference(da_ctx *ctx, const da_cnn *m, da_tensor *x) {
    da_tensor *const *p = m->params;
    da_tensor *h = x;   /* (N,C,H,W) */
    for (int l = 0; l < 3; l++) {
        h = da_conv2d(ctx, h, p[2 * l], p[2 * l + 1], 1, 1);   /* (N,c_l,H_l,W_l) */
        h = da_relu(ctx, h);
        h = da_max_pool2d(ctx, h, 2, 2);                        /* (N,c_l,H_l/2,W_l/2) */
    }
    h = da_reshape(ctx, h, DA_SHAPE(x->shape[0], -1));
    h = da_relu(ctx, da_linear(ctx, h, p[6], p[7]));
    return da_linear(ctx, h, p[8], p[9]);
}

da_tensor *da_cnn_loss(da_ctx *ctx, const da_cnn *m, da_tensor *logits, const int64_t *labels) {
    int64_t n = logits->shape[0];
    if (da_cnn_n_out(&m->cfg) == 1) {
        da_tensor *t = da_new(ctx, DA_SHAPE(n, 1));   /* (N,1) targets 0/1 */
        for (int64_t i = 0; i < n; i++) {
            da_check(labels[i] == 0 || labels[i] == 1, "cnn_loss", "binary label %lld of row %lld is not 0 or 1",
                     (long long)labels[i], (long long)i);
            t->data[i] = (float)labels[i];
        }
        return da_bce_with_logits(ctx, logits, t);
    }
    return da_cross_entropy(ctx, logits, labels);
}

void da_cnn_predict(const da_cnn *m, const da_tensor *logits, int64_t *pred) {
    int64_t n = logits->shape[0], k = logits->shape[1];
    for (int64_t i = 0; i < n; i++) {
        const float *row = logits->data + i * k;
        if (k == 1) {
            pred[i] = row[0] > 0.0f ? 1 : 0;   /* sigmoid(z) > 0.5 */
            continue;
        }
        int64_t best = 0;
        for (int64_t j = 1; j < k; j++)
            if (row[j] > row[best]) best = j;
        pred[i] = best;
    }
}

/* ---- save and load ---------------------------------------------------------------------- */

static const char *const CFG_KEYS[8] = {"in_c", "in_h", "in_w", "n_classes", "c1", "c2", "c3", "hidden"};

static int *cfg_field(da_cnn_config *c, int i) {
    int *f[8] = {&c->in_c, &c->in_h, &c->in_w, &c->n_classes, &c->c1, &c->c2, &c->c3, &c->hidden};
    return f[i];
}

int da_cnn_save(const da_cnn *m, const char *path, const char *classes, char *err, size_t errlen) {
    da_cnn_config c = m->cfg;
    char vals[8][32], shape[96];
    const char *meta[2 * 11 + 1];
    int k = 0;
    meta[k++] = "format";
    meta[k++] = "diffadapt-cnn";
    for (int i = 0; i < 8; i++) {
        snprintf(vals[i], sizeof vals[i], "%d", *cfg_field(&c, i));
        meta[k++] = CFG_KEYS[i];
        meta[k++] = vals[i];
    }
    snprintf(shape, sizeof shape, "%d,%d,%d", c.in_c, c.in_h, c.in_w);
    meta[k++] = "input_shape";
    meta[k++] = shape;
    if (classes) {
        meta[k++] = "classes";
        meta[k++] = classes;
    }
    meta[k] = NULL;
    return da_params_save(&m->reg, path, meta, err, errlen);
}

int da_cnn_load(da_cnn *m, const char *path, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    st_file f;
    if (st_open(path, &f, err, errlen) != 0) return -1;
    da_cnn_config c;
    memset(&c, 0, sizeof c);
    for (int i = 0; i < 8; i++) {
        const char *v = st_meta_get(&f, CFG_KEYS[i]);
        char *end = NULL;
        long x = v ? strtol(v, &end, 10) : 0;
        if (!v || end == v || *end || x < 0 || x > 1000000) {
            snprintf(err, errlen, "%s: metadata \"%s\" is %s; is this a classifier written by "
                     "diffadapt train-classifier?", path, CFG_KEYS[i], v ? "not a number" : "missing");
            st_close(&f);
            return -1;
        }
        *cfg_field(&c, i) = (int)x;
    }
    char e2[256];
    if (alloc_params(m, &c, e2, sizeof e2) != 0) {
        snprintf(err, errlen, "%s: %s", path, e2);
        st_close(&f);
        return -1;
    }
    char e3[DA_ERR_LEN];
    if (da_params_load(&m->reg, &f, NULL, 0, NULL, e3, sizeof e3) != 0) {
        snprintf(err, errlen, "%s: %s", path, e3);
        st_close(&f);
        da_cnn_free(m);
        return -1;
    }
    st_close(&f);
    return 0;
}
