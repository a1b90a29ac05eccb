/* params.h — the named-parameter registry of a model: persistent tensors under their PyTorch
 * state_dict names, in registration order; strict loading from / saving to safetensors, grads,
 * PyTorch-like initialisation and a content hash for manifests and caches. */
#ifndef DA_PARAMS_H
#define DA_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/safetensors.h"
#include "tensor/rng.h"
#include "tensor/tensor.h"

typedef struct {
    char *name;                   /* state_dict key, e.g. "down.0.block.1.conv1.weight" */
    da_tensor *t;                 /* persistent, requires_grad, t->name == name */
} da_param;

typedef struct {
    da_param *items;              /* registration order */
    int n, cap;
} da_params;

void da_params_init(da_params *p);
/* Frees every registered tensor and name. */
void da_params_free(da_params *p);
/* Registers a zero-filled parameter (with a zeroed gradient buffer) and returns it. A duplicate
 * name is a programming error (da_check). */
da_tensor *da_params_add(da_params *p, const char *name, int ndim, const int64_t *shape);
/* NULL when absent. */
da_tensor *da_params_find(const da_params *p, const char *name);
/* Total number of scalars over all parameters. */
int64_t da_params_count(const da_params *p);
/* Sets every gradient buffer to zero. */
void da_params_zero_grad(da_params *p);

/* ---- loading and saving ----------------------------------------------------------------- */
enum {
    DA_LOAD_ALLOW_EXTRA = 1,      /* unexpected float tensors in the file are a warning, not an error */
    DA_LOAD_QUIET = 2,            /* with ALLOW_EXTRA: do not print the warning to stderr */
};
/* Copies every registered parameter from f (any float dtype, converted to float32). Strict:
 * every registered name must be present ("module." prefixes in the file are ignored) with the
 * same shape; integer buffers (position_ids, ...) in the file are ignored. `prefix` (or NULL)
 * is put in front of every registered name when looking it up, and only file keys starting
 * with it count as unexpected (to load one sub-model out of a bigger file). Nothing is changed
 * unless every check passes. Returns 0, -2 with err set when a value in the file is NaN or
 * infinite, or -1 with err set on any other problem; *n_extra (may be NULL) receives the
 * number of unexpected keys. */
int da_params_load(da_params *p, const st_file *f, const char *prefix, int flags, int *n_extra,
                   char *err, size_t errlen);
/* st_open + da_params_load + st_close; error messages name the file. */
int da_params_load_file(da_params *p, const char *path, const char *prefix, int flags,
                        char *err, size_t errlen);
/* Writes every parameter as F32 in registration order (atomically, see st_writer_save).
 * meta is NULL or a NULL-terminated list of alternating keys and values:
 * (const char *[]){"step", "100", "arch", "unet", NULL}. */
int da_params_save(const da_params *p, const char *path, const char *const *meta, char *err, size_t errlen);

/* ---- initialisation ---------------------------------------------------------------------- */
void da_init_uniform(da_tensor *t, da_rng *r, float lo, float hi);
void da_init_normal(da_tensor *t, da_rng *r, float mean, float std);
void da_init_const(da_tensor *t, float value);
/* fan_in of a Linear (out,in) or Conv (out,in,kh,kw) weight: in * kh * kw. */
int64_t da_fan_in(const da_tensor *weight);
/* PyTorch's default for nn.Linear / nn.Conv2d: kaiming_uniform_(a=sqrt(5)) on the weight and
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)) on the bias, which both reduce to that same bound.
 * bias may be NULL; fan_in <= 0 means da_fan_in(weight). */
void da_init_torch_default(da_tensor *weight, da_tensor *bias, int64_t fan_in, da_rng *r);

/* ---- hashing ----------------------------------------------------------------------------- */
#define DA_FNV1A64_INIT 0xcbf29ce484222325ULL
/* FNV-1a 64 of n bytes, continuing from h (start with DA_FNV1A64_INIT). */
uint64_t da_fnv1a64(uint64_t h, const void *data, size_t n);
/* FNV-1a 64 over every parameter in order (name, shape and float32 bytes) as 16 lowercase hex
 * digits into out (at least 17 bytes). Returns out. */
char *da_params_hash(const da_params *p, char *out);

#endif
