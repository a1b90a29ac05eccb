"""gen_ops_norm_attention.py — golden values for group/layer norm, L2 normalisation, softmax and
fused attention: float32 inputs, outputs and input gradients for a fixed upstream gradient.

References are computed in float64 from the float32 inputs, so they are the exact answers the
C float32 code should approach. Run: /usr/bin/python3 gen_ops_norm_attention.py (from tests/golden).
"""
import torch
import torch.nn.functional as F

from goldenlib import save

torch.manual_seed(20240607)
out = {}


def rnd(*shape, scale=1.0, shift=0.0):
    return (torch.randn(*shape) * scale + shift).float()


def record(name, fn, inputs, extra_keys=()):
    """inputs: dict key -> float32 tensor. Stores inputs, y, gy and d<key> for each input."""
    xs = {k: v.double().requires_grad_(True) for k, v in inputs.items()}
    y = fn(**xs)
    gy = torch.randn(y.shape).float()
    grads = torch.autograd.grad(y, list(xs.values()), gy.double())
    for k, v in inputs.items():
        out[f"{name}.{k}"] = v
    out[f"{name}.y"] = y.detach().float()
    out[f"{name}.gy"] = gy
    for k, g in zip(xs.keys(), grads):
        out[f"{name}.d{k}"] = g.float()


# group norm: the UNet's 32 groups / eps 1e-6, a small case, and 3 spatial dims without affine
record("gn32", lambda x, w, b: F.group_norm(x, 32, w, b, 1e-6),
       {"x": rnd(2, 64, 4, 4), "w": rnd(64, scale=0.5, shift=1.0), "b": rnd(64, scale=0.5)})
record("gn4", lambda x, w, b: F.group_norm(x, 4, w, b, 1e-5),
       {"x": rnd(2, 8, 3, 5, scale=2.0, shift=0.5), "w": rnd(8, scale=0.5, shift=1.0), "b": rnd(8)})
record("gn3d", lambda x: F.group_norm(x, 2, None, None, 1e-6),
       {"x": rnd(2, 4, 2, 3, 2, scale=0.3, shift=3.0)})

# layer norm over the last dim (CLIP: eps 1e-5)
record("ln", lambda x, w, b: F.layer_norm(x, (32,), w, b, 1e-5),
       {"x": rnd(2, 3, 32, scale=2.0, shift=1.0), "w": rnd(32, scale=0.5, shift=1.0), "b": rnd(32)})
record("ln_plain", lambda x: F.layer_norm(x, (16,), None, None, 1e-5), {"x": rnd(5, 16)})

# L2 normalisation (F.normalize default eps)
record("l2n", lambda x: F.normalize(x, p=2.0, dim=-1, eps=1e-12), {"x": rnd(3, 8)})

# softmax over the last dim, plain and causal
record("sm", lambda x: torch.softmax(x, -1), {"x": rnd(2, 3, 7, scale=3.0)})


def causal_softmax(x):
    t = x.shape[-1]
    mask = torch.ones(t, t, dtype=torch.bool).tril()
    return torch.softmax(x.masked_fill(~mask, float("-inf")), -1)


record("sm_causal", causal_softmax, {"x": rnd(2, 5, 5, scale=2.0)})


def attention(q, k, v, causal=False, scale=None):
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    s = (q @ k.transpose(-1, -2)) * scale
    if causal:
        # mask entries j > i (top-left aligned, as torch's is_causal)
        mask = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
        s = s.masked_fill(~mask, float("-inf"))
    return torch.softmax(s, -1) @ v


# several heads, Tq != Tk, Dv != D, default scale
record("att", lambda q, k, v: attention(q, k, v),
       {"q": rnd(2, 3, 5, 8), "k": rnd(2, 3, 7, 8), "v": rnd(2, 3, 7, 6)})
# causal with a custom scale
record("att_causal", lambda q, k, v: attention(q, k, v, True, 0.3),
       {"q": rnd(1, 2, 6, 4), "k": rnd(1, 2, 6, 4), "v": rnd(1, 2, 6, 4)})
# causal with Tq < Tk, a single head
record("att_causal_rect", lambda q, k, v: attention(q, k, v, True),
       {"q": rnd(1, 1, 4, 8), "k": rnd(1, 1, 6, 8), "v": rnd(1, 1, 6, 8)})
# a single larger head (the UNet AttnBlock shape, scaled down)
record("att_big", lambda q, k, v: attention(q, k, v),
       {"q": rnd(1, 1, 64, 32), "k": rnd(1, 1, 64, 32), "v": rnd(1, 1, 64, 32)})
# CLIP text-like: causal, several heads
record("att_heads", lambda q, k, v: attention(q, k, v, True),
       {"q": rnd(1, 4, 17, 16), "k": rnd(1, 4, 17, 16), "v": rnd(1, 4, 17, 16)})

save("ops_norm_attention.safetensors", out, {"generator": "gen_ops_norm_attention.py",
                                              "torch": torch.__version__})
