/* torch_ckpt.h — PyTorch checkpoints written by torch.save (zip archives: .pth, .pt, .ckpt, .bin,
 * Hugging Face pytorch_model.bin) read without Python and presented as an st_file, so every
 * model loader takes them like safetensors. The state dict is the top-level dict, or the one
 * nested under state_dict / model_state_dict / model / ema / module / net, or the first dict of
 * a top-level list; a DataParallel "module." prefix on every name is dropped. A TorchScript
 * archive (torch.jit.save) gives its module's parameters and buffers under their state_dict
 * names ("visual.conv1.weight"); its code is never read. Tensors keep
 * their dtype (F32/F16/BF16/F64 and integers) and point into the archive; strided views are
 * gathered into a buffer the st_file owns. */
#ifndef DA_TORCH_CKPT_H
#define DA_TORCH_CKPT_H

#include <stdbool.h>
#include <stddef.h>

#include "io/safetensors.h"

enum {
    DA_TORCH_NO_CRC = 1,          /* skip the CRC-32 checks (the fuzzer, which cannot forge them) */
};

/* The first bytes are a zip local header or end record (torch.save since PyTorch 1.6). */
bool da_torch_is_zip(const unsigned char *buf, size_t size);
/* The first bytes are the legacy (PyTorch < 1.6) torch.save format, which is refused. */
bool da_torch_is_legacy(const unsigned char *buf, size_t size);

/* Parses the archive in buf into f's tensors, metadata and data (which points into buf, or into
 * f->owned); f->map and f->mapped are left to the caller. f must hold no tensors, metadata or
 * owned buffer yet. buf must stay valid while f is used. On failure returns -1 with a message
 * naming label, and those fields are left empty. */
int da_torch_parse(const unsigned char *buf, size_t size, int flags, st_file *f, const char *label,
                   char *err, size_t errlen);
/* The same, starting from the object at `select` (NULL or "" = the top): keys of dicts or indices
 * of lists separated by '/', e.g. "ema" or "4" (the DDIM code's EMA weights) or "model/ema";
 * from there the state dict is found as above. */
int da_torch_parse_select(const unsigned char *buf, size_t size, int flags, const char *select, st_file *f,
                          const char *label, char *err, size_t errlen);

#endif
