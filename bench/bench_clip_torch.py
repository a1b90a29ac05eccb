"""bench_clip_torch.py — PyTorch side of the CLIP image-tower benchmark: the Hugging Face CLIP
vision tower (pre-LN ViT, QuickGELU, class token, post-LN, projection) written in plain torch,
timed on the configs, batches and thread count of bench_clip.c: forward under no_grad, and forward
+ gradient with respect to the input pixels with frozen weights. Prints `RESULT name img_per_s
gflop_per_img` lines. Run with /usr/bin/python3 (Debian's python3-torch).
Usage: bench_clip_torch.py [--threads N] [--iters N] [--warmup N] [--vitb32 0|1] [--mini 0|1]
                           [--batch_vit N] [--batch_mini N]
       bench_clip_torch.py --check PATH   compares with what `bench_clip --dump PATH` computed."""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

# the vision side of da_clip_config_default (ViT-B/32) and of the mini-CLIP (miniclip_train.h)
VITB32 = dict(image_size=224, patch_size=32, channels=3, width=768, layers=12, heads=12, mlp=3072, embed=512,
              eps=1e-5)
MINI = dict(image_size=32, patch_size=4, channels=1, width=128, layers=4, heads=4, mlp=512, embed=128, eps=1e-5)


def make_params(c, gen):
    """Random weights of the HF key names and shapes, scaled as CLIP initialises them."""
    W, P, C = c["width"], c["patch_size"], c["channels"]
    T = (c["image_size"] // P) ** 2 + 1
    std = W ** -0.5

    def n(*shape, s):
        return torch.randn(*shape, generator=gen) * s

    p = {"vision_model.embeddings.class_embedding": n(W, s=std),
         "vision_model.embeddings.patch_embedding.weight": n(W, C, P, P, s=0.02),
         "vision_model.embeddings.position_embedding.weight": n(T, W, s=0.02),
         "vision_model.pre_layrnorm.weight": torch.ones(W), "vision_model.pre_layrnorm.bias": torch.zeros(W),
         "vision_model.post_layernorm.weight": torch.ones(W), "vision_model.post_layernorm.bias": torch.zeros(W),
         "visual_projection.weight": n(c["embed"], W, s=std)}
    for i in range(c["layers"]):
        pre = f"vision_model.encoder.layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            p[pre + f"self_attn.{proj}.weight"] = n(W, W, s=std)
            p[pre + f"self_attn.{proj}.bias"] = torch.zeros(W)
        p[pre + "mlp.fc1.weight"] = n(c["mlp"], W, s=(2 * W) ** -0.5)
        p[pre + "mlp.fc1.bias"] = torch.zeros(c["mlp"])
        p[pre + "mlp.fc2.weight"] = n(W, c["mlp"], s=std)
        p[pre + "mlp.fc2.bias"] = torch.zeros(W)
        for ln in ("layer_norm1", "layer_norm2"):
            p[pre + ln + ".weight"] = torch.ones(W)
            p[pre + ln + ".bias"] = torch.zeros(W)
    return p


def encode_image(c, p, pixels):
    """pixels (B,C,S,S) -> image embeddings (B,E), as HF CLIPVisionModel + visual_projection."""
    W, H, eps = c["width"], c["heads"], c["eps"]
    D = W // H
    B = pixels.shape[0]
    v = "vision_model."
    x = F.conv2d(pixels, p[v + "embeddings.patch_embedding.weight"], stride=c["patch_size"])  # (B,W,g,g)
    x = x.flatten(2).transpose(1, 2)                                                           # (B,N,W)
    cls = p[v + "embeddings.class_embedding"].expand(B, 1, W)
    x = torch.cat([cls, x], dim=1) + p[v + "embeddings.position_embedding.weight"]
    x = F.layer_norm(x, (W,), p[v + "pre_layrnorm.weight"], p[v + "pre_layrnorm.bias"], eps)
    T = x.shape[1]
    for i in range(c["layers"]):
        pre = f"{v}encoder.layers.{i}."

        def lin(name, t):
            return F.linear(t, p[pre + name + ".weight"], p[pre + name + ".bias"])

        h = F.layer_norm(x, (W,), p[pre + "layer_norm1.weight"], p[pre + "layer_norm1.bias"], eps)
        q = (lin("self_attn.q_proj", h) * D ** -0.5).view(B, T, H, D).transpose(1, 2)   # (B,H,T,D)
        k = lin("self_attn.k_proj", h).view(B, T, H, D).transpose(1, 2)
        vv = lin("self_attn.v_proj", h).view(B, T, H, D).transpose(1, 2)
        a = torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ vv
        x = x + lin("self_attn.out_proj", a.transpose(1, 2).reshape(B, T, W))
        h = F.layer_norm(x, (W,), p[pre + "layer_norm2.weight"], p[pre + "layer_norm2.bias"], eps)
        h = lin("mlp.fc1", h)
        h = h * torch.sigmoid(1.702 * h)                                                   # QuickGELU
        x = x + lin("mlp.fc2", h)
    pooled = F.layer_norm(x[:, 0], (W,), p[v + "post_layernorm.weight"], p[v + "post_layernorm.bias"], eps)
    return F.linear(pooled, p["visual_projection.weight"])


def flops(c):
    """Matmul flops per image: forward, and forward + input gradient (as bench_clip.c)."""
    g = c["image_size"] // c["patch_size"]
    N, W = g * g, c["width"]
    T = N + 1
    lin = 2 * N * W * c["channels"] * c["patch_size"] ** 2 + 2 * W * c["embed"]
    lin += c["layers"] * (2 * T * W * 4 * W + 2 * T * W * c["mlp"] * 2)
    att = c["layers"] * (2 * T * T * W * 2)
    return lin + att, 2 * lin + 3 * att


def bench(name, c, B, iters, warmup):
    gen = torch.Generator().manual_seed(1)
    p = make_params(c, gen)
    S = c["image_size"]
    px = torch.randn(B, c["channels"], S, S, generator=gen)
    up = torch.randn(B, c["embed"], generator=gen)
    f, g = flops(c)
    print(f"{name}: ViT {S}/{c['patch_size']} width {c['width']} x{c['layers']} ({c['heads']} heads), "
          f"batch {B}, {f * 1e-9:.3f} GFLOP/img forward")

    def forward():
        with torch.no_grad():
            encode_image(c, p, px)

    def grad():
        x = px.clone().requires_grad_(True)
        encode_image(c, p, x).backward(up)
        return x.grad

    for mode, fn, fl in (("fwd", forward, f), ("grad", grad, g)):
        t = benchlib.median_time(fn, iters, warmup)
        print(f"  {'fwd+input grad' if mode == 'grad' else 'forward':13s} {1e3 * t:9.2f} ms/batch "
              f"{B / t:8.2f} img/s {fl * B * 1e-9 / t:7.1f} GFLOP/s")
        print(f"RESULT {name}_{mode}_b{B} {B / t:.4f} {fl * 1e-9:.6f}", flush=True)


def check(path):
    """Recomputes what bench_clip --dump wrote and compares (float32 both sides)."""
    t, meta = benchlib.load_safetensors(path)
    j = json.loads(meta["clip_config"])
    v = j["vision_config"]
    c = dict(image_size=v["image_size"], patch_size=v["patch_size"], channels=v["num_channels"],
             width=v["hidden_size"], layers=v["num_hidden_layers"], heads=v["num_attention_heads"],
             mlp=v["intermediate_size"], embed=j["projection_dim"], eps=v["layer_norm_eps"])
    x = t["check.x"].clone().requires_grad_(True)
    e = encode_image(c, t, x)
    e.backward(t["check.g"])
    worst = 0.0
    for what, ours, ref in (("embeddings", t["check.embeds"], e.detach()), ("input gradient", t["check.x_grad"], x.grad)):
        err = (ours - ref).abs().max().item()
        rel = err / ref.abs().max().item()
        worst = max(worst, rel)
        print(f"check {what}: max |diffadapt - torch| = {err:.3g} ({rel:.3g} of max |torch|)")
    if not worst < 1e-4:
        print("check FAILED: diffadapt and the PyTorch reference disagree", file=sys.stderr)
        return 1
    print("check passed: the PyTorch reference computes what diffadapt computes")
    return 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        sys.exit(check(sys.argv[2]))
    a = benchlib.parse_args(sys.argv[1:], {"threads": 2, "iters": 10, "warmup": 2, "vitb32": 1, "mini": 1,
                                           "batch_vit": 8, "batch_mini": 32})
    benchlib.set_threads(a["threads"])
    print(f"torch {torch.__version__} CLIP image-tower benchmark: {torch.get_num_threads()} threads")
    print(benchlib.openblas_line())
    if a["vitb32"]:
        bench("vitb32", VITB32, a["batch_vit"], a["iters"], a["warmup"])
    if a["mini"]:
        bench("mini", MINI, a["batch_mini"], a["iters"], a["warmup"])


if __name__ == "__main__":
    main()
