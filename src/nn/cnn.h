/* cnn.h — the classifier CNN of the reference experiment as a function over named parameters:
 * 3 × (conv 3×3 pad 1 → ReLU → max-pool 2) → flatten → FC → ReLU → FC, PyTorch key names. */
#ifndef DA_CNN_H
#define DA_CNN_H

#include <stddef.h>
#include <stdint.h>

#include "nn/params.h"
#include "tensor/tensor.h"

/* Widths default to the reference (32, 64, 128 channels, 512 hidden units). */
#define DA_CNN_C1 32
#define DA_CNN_C2 64
#define DA_CNN_C3 128
#define DA_CNN_HIDDEN 512
#define DA_CNN_MIN_SIZE 8     /* three 2×2 pools need at least 8 pixels per side */
#define DA_CNN_N_PARAMS 10

typedef struct {
    int in_c, in_h, in_w;     /* input (C,H,W); H, W >= 8 */
    int n_classes;            /* >= 2; 2 = binary: one logit (sigmoid/BCE), more: K logits (softmax/CE) */
    int c1, c2, c3, hidden;   /* 0 = the reference width */
} da_cnn_config;

typedef struct {
    da_cnn_config cfg;        /* widths filled in (no zeros) */
    /* Parameters in PyTorch's registration order; names[i] is the state_dict key of params[i]:
     * conv1.weight (c1,C,3,3), conv1.bias, conv2.weight (c2,c1,3,3), conv2.bias,
     * conv3.weight (c3,c2,3,3), conv3.bias, fc1.weight (hidden, c3*(H/8)*(W/8)), fc1.bias,
     * fc2.weight (n_out, hidden), fc2.bias. */
    da_tensor *params[DA_CNN_N_PARAMS];
    da_params reg;            /* the registry that owns them (save, load, hash) */
} da_cnn;

extern const char *const DA_CNN_PARAM_NAMES[DA_CNN_N_PARAMS];

/* Number of logits: 1 for two classes, else n_classes. */
int da_cnn_n_out(const da_cnn_config *cfg);
/* Fills zero widths with the reference ones and checks the config; -1 with a message on error. */
int da_cnn_config_check(da_cnn_config *cfg, char *err, size_t errlen);
/* Allocates the parameters (with gradients) and draws PyTorch's default initialisation from
 * the seeded stream: weights U(±1/sqrt(fan_in)) (kaiming_uniform, a = sqrt(5)) and biases
 * U(±1/sqrt(fan_in)). Returns 0, or -1 with a message when the config is invalid. */
int da_cnn_init(da_cnn *m, const da_cnn_config *cfg, uint64_t seed, char *err, size_t errlen);
void da_cnn_free(da_cnn *m);
int64_t da_cnn_num_params(const da_cnn *m);
/* The parameter with this key, or NULL. */
da_tensor *da_cnn_param(const da_cnn *m, const char *name);
void da_cnn_zero_grad(da_cnn *m);

/* x (N,C,H,W) in [-1,1] -> logits (N,n_out). Records on the tape when grad is enabled. The
 * conv blocks run fused with Winograd (tensor/fused_ops.h). */
da_tensor *da_cnn_forward(da_ctx *ctx, const da_cnn *m, da_tensor *x);
/* The same network built from the generic ops (conv2d, relu, max_pool2d): the reference the
 * fused path is tested against. */
da_tensor *da_cnn_forward_reference(da_ctx *ctx, const da_cnn *m, da_tensor *x);
/* Mean loss over the batch: BCE with logits for one logit (labels 0/1), cross-entropy for
 * K logits (labels in [0,K)). Returns a 0-d tensor. */
da_tensor *da_cnn_loss(da_ctx *ctx, const da_cnn *m, da_tensor *logits, const int64_t *labels);
/* Class index of every row of logits (N,n_out) into pred (N). */
void da_cnn_predict(const da_cnn *m, const da_tensor *logits, int64_t *pred);

/* Saves the parameters under their keys with metadata "format" = "diffadapt-cnn", the
 * config ("in_c", "in_h", "in_w", "n_classes", "c1", "c2", "c3", "hidden") and, when not
 * NULL, "classes" (e.g. "5,7": the source labels behind 0..K-1). Atomic. */
int da_cnn_save(const da_cnn *m, const char *path, const char *classes, char *err, size_t errlen);
/* Loads a file written by da_cnn_save (or a PyTorch state_dict of the same model with the
 * same metadata keys). Returns 0, or -1 with a message naming the file and what is wrong. */
int da_cnn_load(da_cnn *m, const char *path, char *err, size_t errlen);

#endif
