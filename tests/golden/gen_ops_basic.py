"""gen_ops_basic.py — golden values for the elementwise, reduction, shape and loss ops: float32
inputs, outputs and input gradients for a fixed upstream gradient (gy; 1 for scalar losses).

References are computed in float64 from the float32 inputs, so they are the exact answers the
C float32 code should approach. Run: /usr/bin/python3 gen_ops_basic.py (from tests/golden).
"""
import torch
import torch.nn.functional as F

from goldenlib import save

torch.manual_seed(20240611)
out = {}


def rnd(*shape, scale=1.0, shift=0.0):
    return (torch.randn(*shape) * scale + shift).float()


def away_from_zero(x, gap=0.1):
    """Moves values within gap of 0 outwards, for ops with a kink at 0 (relu, l1)."""
    return torch.where(x.abs() < gap, torch.sign(x + 1e-9) * gap + x, x).float()


def record(name, fn, inputs):
    """inputs: dict key -> float32 tensor. Stores inputs, y, gy and d<key> for each input."""
    xs = {k: v.double().requires_grad_(True) for k, v in inputs.items()}
    y = fn(**xs)
    gy = torch.randn(y.shape).float() if y.dim() > 0 else torch.ones(()).float()
    grads = torch.autograd.grad(y, list(xs.values()), gy.double())
    for k, v in inputs.items():
        out[f"{name}.{k}"] = v
    out[f"{name}.y"] = y.detach().float()
    out[f"{name}.gy"] = gy
    for k, g in zip(xs.keys(), grads):
        out[f"{name}.d{k}"] = g.float()


# ---- binary ops with broadcasting: (2,3,4) with (3,1); (2,3,4,5) with (1,3,1,1); (2,3,4) with (4)
pos = lambda *s: (torch.rand(*s) + 0.5).float()
for op, fn in [("add", torch.add), ("sub", torch.sub), ("mul", torch.mul), ("div", torch.div)]:
    record(f"{op}_b31", lambda a, b, fn=fn: fn(a, b), {"a": rnd(2, 3, 4), "b": pos(3, 1)})
    record(f"{op}_chan", lambda a, b, fn=fn: fn(a, b), {"a": rnd(2, 3, 4, 5), "b": pos(1, 3, 1, 1)})
    record(f"{op}_vec", lambda a, b, fn=fn: fn(a, b), {"a": rnd(2, 3, 4), "b": pos(4)})
    # broadcast on both sides: (2,1,4) with (3,1)
    record(f"{op}_both", lambda a, b, fn=fn: fn(a, b), {"a": rnd(2, 1, 4), "b": pos(3, 1)})

# ---- unary ops on 40 values
x = rnd(40, scale=2.0)
xp = (torch.rand(40) * 3 + 0.2).float()
record("scale", lambda x: x * -1.5, {"x": x})
record("add_scalar", lambda x: x + 0.75, {"x": x})
record("pow2", lambda x: x ** 2.0, {"x": x})
record("pow1_7", lambda x: x ** 1.7, {"x": xp})
record("pow_m0_5", lambda x: x ** -0.5, {"x": xp})
record("relu", lambda x: F.relu(x), {"x": away_from_zero(x)})
record("silu", lambda x: F.silu(x), {"x": x})
record("gelu", lambda x: F.gelu(x), {"x": x})
record("quick_gelu", lambda x: x * torch.sigmoid(1.702 * x), {"x": x})
record("sigmoid", lambda x: torch.sigmoid(x), {"x": x})
record("tanh", lambda x: torch.tanh(x), {"x": x})
record("exp", lambda x: torch.exp(x), {"x": x})
record("log", lambda x: torch.log(x), {"x": xp})
record("sqrt", lambda x: torch.sqrt(x), {"x": xp})

# ---- reductions
xr = rnd(2, 3, 4, 5)
record("sum13k", lambda x: x.sum(dim=(1, 3), keepdim=True), {"x": xr})
record("sum0", lambda x: x.sum(dim=0), {"x": xr})
record("mean_last", lambda x: x.mean(dim=-1), {"x": xr})
record("mean02", lambda x: x.mean(dim=(0, 2)), {"x": xr})
record("sum_all", lambda x: x.sum(), {"x": xr})
record("mean_all_k", lambda x: x.mean(dim=(0, 1, 2, 3), keepdim=True), {"x": xr})

# ---- shape ops
record("permute", lambda x: x.permute(0, 2, 3, 1), {"x": xr})
record("permute_t", lambda x: x.permute(1, 0), {"x": rnd(5, 7)})
record("concat1", lambda a, b, c: torch.cat([a, b, c], dim=1),
       {"a": rnd(2, 1, 3), "b": rnd(2, 4, 3), "c": rnd(2, 2, 3)})
record("slice", lambda x: x[:, 1:3], {"x": rnd(2, 4, 3)})
sel = torch.tensor([2, 0, 2, 3], dtype=torch.int64)
out["index_select.idx"] = sel
record("index_select", lambda x: torch.index_select(x, 1, sel), {"x": rnd(2, 4, 3)})
ids = torch.tensor([[1, 4, 1], [0, 2, 4]], dtype=torch.int64)
out["embedding.ids"] = ids
record("embedding", lambda w: F.embedding(ids, w), {"w": rnd(5, 6)})

# ---- losses
record("mse", lambda a, b: F.mse_loss(a, b), {"a": rnd(3, 5), "b": rnd(3, 5)})
la = rnd(3, 5)
lb = (la + away_from_zero(rnd(3, 5), 0.05)).float()   # a - b away from the kink at 0
record("l1", lambda a, b: F.l1_loss(a, b), {"a": la, "b": lb})
tgt = torch.rand(4, 6).float()
out["bce.t"] = tgt
record("bce", lambda x: F.binary_cross_entropy_with_logits(x, tgt.double()), {"x": rnd(4, 6, scale=4.0)})
labels = torch.tensor([2, 0, 4, 4, 1], dtype=torch.int64)
out["ce.labels"] = labels
record("ce", lambda x: F.cross_entropy(x, labels), {"x": rnd(5, 6, scale=3.0)})
# cosine: plain rows, a shared row, and rows whose norms are clamped by eps (torch 1.13 quirk)
record("cos", lambda a, b: F.cosine_similarity(a, b, dim=-1, eps=1e-8), {"a": rnd(2, 3, 8), "b": rnd(2, 3, 8)})
record("cos_shared", lambda a, b: F.cosine_similarity(a, b, dim=-1, eps=1e-8), {"a": rnd(4, 8), "b": rnd(1, 8)})
record("cos_clamped", lambda a, b: F.cosine_similarity(a, b, dim=-1, eps=0.5),
       {"a": rnd(3, 4, scale=0.05), "b": rnd(3, 4)})

save("ops_basic.safetensors", out, {"generator": "gen_ops_basic.py", "torch": torch.__version__})
