#!/usr/bin/python3
"""gen_clip.py — golden file for tests/test_clip.c: a tiny CLIP with the Hugging Face key names,
small random weights, inputs, and what a plain-PyTorch (float64) reference of the Hugging Face
CLIP architecture computes from them.

Tiny config: vision 16x16x3, patch 4 (17 tokens), width 32, 2 layers, 2 heads, MLP 64; text
byte-level vocabulary (514 tokens: 256 bytes, the same with </w>, start 512, end 513), context
12, width 32, 2 layers, 4 heads (not width/64: the config travels as metadata), MLP 64;
projection 24. A few weights are stored as F16 / BF16 to exercise the conversions; the
reference uses the rounded values.

Run from the repository root:  /usr/bin/python3 tests/golden/gen_clip.py   (needs python3-regex)
"""
import json
import math
import os
import sys

import regex
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import goldenlib  # noqa: E402

torch.manual_seed(20240611)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "clip_tiny.safetensors")

S, P, C, WV, LV, HV, MV = 16, 4, 3, 32, 2, 2, 64
V, CTX, WT, LT, HT, MT = 514, 12, 32, 2, 4, 64
E = 24
EPS = 1e-5
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]
HALF = {"text_model.embeddings.token_embedding.weight": torch.float16,
        "visual_projection.weight": torch.bfloat16,
        "vision_model.encoder.layers.1.mlp.fc1.weight": torch.float16}


def make_weights():
    w = {}

    def n(*shape, std=0.2):
        return torch.randn(*shape) * std

    def block(prefix, width, mlp):
        for name in ("k_proj", "v_proj", "q_proj", "out_proj"):
            w[f"{prefix}.self_attn.{name}.weight"] = n(width, width, std=width ** -0.5)
            w[f"{prefix}.self_attn.{name}.bias"] = n(width, std=0.1)
        w[f"{prefix}.layer_norm1.weight"] = 1 + n(width, std=0.1)
        w[f"{prefix}.layer_norm1.bias"] = n(width, std=0.1)
        w[f"{prefix}.mlp.fc1.weight"] = n(mlp, width, std=width ** -0.5)
        w[f"{prefix}.mlp.fc1.bias"] = n(mlp, std=0.1)
        w[f"{prefix}.mlp.fc2.weight"] = n(width, mlp, std=mlp ** -0.5)
        w[f"{prefix}.mlp.fc2.bias"] = n(width, std=0.1)
        w[f"{prefix}.layer_norm2.weight"] = 1 + n(width, std=0.1)
        w[f"{prefix}.layer_norm2.bias"] = n(width, std=0.1)

    w["text_model.embeddings.token_embedding.weight"] = n(V, WT, std=0.5)
    w["text_model.embeddings.position_embedding.weight"] = n(CTX, WT, std=0.3)
    for i in range(LT):
        block(f"text_model.encoder.layers.{i}", WT, MT)
    w["text_model.final_layer_norm.weight"] = 1 + n(WT, std=0.1)
    w["text_model.final_layer_norm.bias"] = n(WT, std=0.1)
    w["vision_model.embeddings.class_embedding"] = n(WV, std=0.5)
    w["vision_model.embeddings.patch_embedding.weight"] = n(WV, C, P, P, std=(C * P * P) ** -0.5)
    w["vision_model.embeddings.position_embedding.weight"] = n((S // P) ** 2 + 1, WV, std=0.3)
    w["vision_model.pre_layrnorm.weight"] = 1 + n(WV, std=0.1)
    w["vision_model.pre_layrnorm.bias"] = n(WV, std=0.1)
    for i in range(LV):
        block(f"vision_model.encoder.layers.{i}", WV, MV)
    w["vision_model.post_layernorm.weight"] = 1 + n(WV, std=0.1)
    w["vision_model.post_layernorm.bias"] = n(WV, std=0.1)
    w["visual_projection.weight"] = n(E, WV, std=WV ** -0.5)
    w["text_projection.weight"] = n(E, WT, std=WT ** -0.5)
    w["logit_scale"] = torch.tensor(math.log(1 / 0.07))
    for k, dt in HALF.items():
        w[k] = w[k].to(dt)
    return w


# ---- the reference model (Hugging Face CLIP architecture, written out in torch) ------------

def layer(x, p, prefix, heads, causal):
    B, T, W = x.shape
    D = W // heads
    h = F.layer_norm(x, (W,), p[f"{prefix}.layer_norm1.weight"], p[f"{prefix}.layer_norm1.bias"], EPS)

    def proj(name, t):
        return F.linear(t, p[f"{prefix}.self_attn.{name}.weight"], p[f"{prefix}.self_attn.{name}.bias"])

    q = (proj("q_proj", h) * D ** -0.5).view(B, T, heads, D).transpose(1, 2)
    k = proj("k_proj", h).view(B, T, heads, D).transpose(1, 2)
    v = proj("v_proj", h).view(B, T, heads, D).transpose(1, 2)
    s = q @ k.transpose(-1, -2)
    if causal:
        mask = torch.full((T, T), float("-inf"), dtype=s.dtype).triu(1)
        s = s + mask
    a = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, W)
    x = x + proj("out_proj", a)
    h = F.layer_norm(x, (W,), p[f"{prefix}.layer_norm2.weight"], p[f"{prefix}.layer_norm2.bias"], EPS)
    h = F.linear(h, p[f"{prefix}.mlp.fc1.weight"], p[f"{prefix}.mlp.fc1.bias"])
    h = h * torch.sigmoid(1.702 * h)
    return x + F.linear(h, p[f"{prefix}.mlp.fc2.weight"], p[f"{prefix}.mlp.fc2.bias"])


def preprocess(x):
    """[-1,1] images (B,1|3,H,W) -> model input, like DiffusionCLIP's CLIPLoss.preprocess."""
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    x = (x + 1) / 2
    H, W = x.shape[2:]
    nh, nw = (S, int(S * W / H)) if H <= W else (int(S * H / W), S)
    x = F.interpolate(x, size=(nh, nw), mode="bicubic", align_corners=False)
    top, left = int(round((nh - S) / 2.0)), int(round((nw - S) / 2.0))
    x = x[:, :, top:top + S, left:left + S]
    mean = torch.tensor(MEAN, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


def encode_image(pixels, p):
    B = pixels.shape[0]
    x = F.conv2d(pixels, p["vision_model.embeddings.patch_embedding.weight"], stride=P)
    x = x.flatten(2).transpose(1, 2)
    cls = p["vision_model.embeddings.class_embedding"].expand(B, 1, -1)
    x = torch.cat([cls, x], dim=1) + p["vision_model.embeddings.position_embedding.weight"]
    x = F.layer_norm(x, (WV,), p["vision_model.pre_layrnorm.weight"], p["vision_model.pre_layrnorm.bias"], EPS)
    for i in range(LV):
        x = layer(x, p, f"vision_model.encoder.layers.{i}", HV, False)
    x = F.layer_norm(x[:, 0], (WV,), p["vision_model.post_layernorm.weight"], p["vision_model.post_layernorm.bias"], EPS)
    return F.linear(x, p["visual_projection.weight"])


def encode_text(ids, p):
    B, L = ids.shape
    x = p["text_model.embeddings.token_embedding.weight"][ids] + p["text_model.embeddings.position_embedding.weight"][:L]
    for i in range(LT):
        x = layer(x, p, f"text_model.encoder.layers.{i}", HT, True)
    x = F.layer_norm(x, (WT,), p["text_model.final_layer_norm.weight"], p["text_model.final_layer_norm.bias"], EPS)
    x = x[torch.arange(B), ids.argmax(dim=-1)]
    return F.linear(x, p["text_projection.weight"])


# ---- a byte-level tokenizer (no merges): what da_bpe gives for a merges file without merges --

PATTERN = regex.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|"
                        r"[^\s\p{L}\p{N}]+", regex.IGNORECASE)


def byte_ids(text):
    keep = [b for b in range(256) if 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255]
    order = keep + [b for b in range(256) if b not in keep]
    pos = {b: i for i, b in enumerate(order)}
    ids = [512]
    for piece in PATTERN.findall(" ".join(text.split()).lower()):
        bs = piece.encode()
        ids += [pos[b] for b in bs[:-1]] + [256 + pos[bs[-1]]]
    return ids + [513]


def f32(t):
    """float32-representable values in float64, so the C test reads exactly these inputs."""
    return t.float().double()


def pad(rows):
    L = max(len(r) for r in rows)
    return torch.tensor([r + [0] * (L - len(r)) for r in rows], dtype=torch.int64)


def main():
    stored = make_weights()
    p = {k: v.double().requires_grad_(True) for k, v in stored.items()}
    cfg = {"projection_dim": E,
           "vision_config": {"hidden_size": WV, "num_hidden_layers": LV, "num_attention_heads": HV,
                             "intermediate_size": MV, "patch_size": P, "image_size": S, "num_channels": C},
           "text_config": {"hidden_size": WT, "num_hidden_layers": LT, "num_attention_heads": HT,
                           "intermediate_size": MT, "vocab_size": V, "max_position_embeddings": CTX}}

    out = dict(stored)
    out["text_model.embeddings.position_ids"] = torch.arange(CTX).view(1, CTX)   # an int buffer to ignore

    # images: a non-square batch (short side resized to 16, long side cropped) and a grey one
    x_rgb = f32(torch.rand(2, 3, 20, 26) * 2 - 1)
    x_grey = f32(torch.rand(1, 1, 16, 16) * 2 - 1)
    pix = preprocess(x_rgb)
    img = encode_image(pix, p)
    img_grey = encode_image(preprocess(x_grey), p)

    texts = ["a cat", "Sketch!", ""]
    rows = [byte_ids(t) for t in texts]
    ids = pad(rows)
    txt = encode_text(ids, p)

    # weight gradients of sum(img * R1) + sum(txt * R2)
    r1, r2 = f32(torch.randn(img.shape)), f32(torch.randn(txt.shape))
    ((img * r1).sum() + (txt * r2).sum()).backward()
    grad_keys = ["vision_model.embeddings.patch_embedding.weight", "vision_model.embeddings.class_embedding",
                 "vision_model.embeddings.position_embedding.weight", "vision_model.pre_layrnorm.weight",
                 "vision_model.encoder.layers.0.self_attn.q_proj.weight", "vision_model.encoder.layers.1.mlp.fc1.weight",
                 "visual_projection.weight",
                 "text_model.embeddings.position_embedding.weight", "text_model.encoder.layers.1.mlp.fc2.weight",
                 "text_model.encoder.layers.0.self_attn.k_proj.bias", "text_model.final_layer_norm.bias",
                 "text_projection.weight"]
    for k in grad_keys:
        out["grad." + k] = p[k].grad.float()

    # directional loss and its gradient w.r.t. the generated images (weights frozen)
    for v in p.values():
        v.requires_grad_(False)
    x0 = f32(torch.rand(2, 3, 20, 26) * 2 - 1)
    x = f32((x0 + 0.3 * torch.randn(x0.shape)).clamp(-1, 1)).requires_grad_(True)
    tdir = torch.randn(E)
    tdir = f32(tdir / tdir.norm())
    src = encode_image(preprocess(x0), p)
    src = src / src.norm(dim=-1, keepdim=True)
    gen = encode_image(preprocess(x), p)
    gen = gen / gen.norm(dim=-1, keepdim=True)
    l_dir = (1 - F.cosine_similarity(gen - src, tdir.view(1, E), dim=-1)).mean()
    loss = -torch.log((2 - l_dir) / 2)
    loss.backward()

    # the text direction through templates with the byte-level vocabulary
    templates = ["a {}.", "my {}", "{}!"]

    def unit_text(t):
        e = encode_text(pad([byte_ids(t)]), p)[0]
        return e / e.norm()

    d = sum(unit_text(t.format("sketch")) - unit_text(t.format("photo")) for t in templates) / len(templates)
    d = d / d.norm()

    out.update({
        "in.x_rgb": x_rgb.float(), "in.x_grey": x_grey.float(), "in.ids": ids,
        "in.x0": x0.float(), "in.x": x.detach().float(), "in.text_dir": tdir.float(),
        "in.r1": r1.float(), "in.r2": r2.float(),
        "out.pixels": pix.float(), "out.image": img.detach().float(), "out.image_grey": img_grey.detach().float(),
        "out.text": txt.detach().float(), "out.loss": loss.detach().float().view(1),
        "out.l_dir": l_dir.detach().float().view(1), "out.grad_x": x.grad.float(),
        "out.template_dir": d.detach().float(),
    })
    meta = {"clip_config": json.dumps(cfg), "texts": json.dumps(texts), "templates": json.dumps(templates)}
    goldenlib.save(OUT, out, meta)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes); loss {loss.item():.6f}, l_dir {l_dir.item():.6f}")


if __name__ == "__main__":
    main()
