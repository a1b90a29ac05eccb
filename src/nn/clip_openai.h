/* clip_openai.h — OpenAI's own CLIP layout (the TorchScript archives ViT-B-32.pt, ViT-B-16.pt, ...
 * read by io/torch_ckpt) presented under the Hugging Face key names the CLIP model uses:
 * attention in_proj split into q/k/v, the two projections transposed, every other tensor renamed. */
#ifndef DA_CLIP_OPENAI_H
#define DA_CLIP_OPENAI_H

#include <stdbool.h>
#include <stddef.h>

#include "io/safetensors.h"

/* The file holds OpenAI's names (visual.conv1.weight, token_embedding.weight, ...). */
bool da_clip_is_openai(const st_file *f);

/* Builds dst: the tensors of src under Hugging Face names, copied into a buffer dst owns (dtypes
 * kept), plus src's metadata. Returns -1 with err set when a tensor is missing or misshapen
 * (e.g. the ResNet CLIP models, which are not supported). dst is closed with st_close. */
int da_clip_openai_to_hf(const st_file *src, st_file *dst, char *err, size_t errlen);

#endif
