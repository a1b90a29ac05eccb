"""gen_ops_spatial.py — PyTorch references for the spatial ops: conv2d (strides, symmetric and
asymmetric padding, 1x1, rectangular kernels), max/avg pooling, nearest x2, bilinear and bicubic
resize (align_corners=False, no antialias), crop and pad; forward values and input/weight gradients.

Run: /usr/bin/python3 tests/golden/gen_ops_spatial.py  (writes tests/golden/ops_spatial.safetensors)

The upstream gradient of every output is not stored: both sides build it from its flat index i as
dy[i] = ((37*i) % 101 - 50) / 64, which is exact in float32 on both sides.
"""
import os

import torch
import torch.nn.functional as F

from goldenlib import save

torch.manual_seed(0)
T = {}


def upstream(shape):
    n = 1
    for s in shape:
        n *= s
    i = torch.arange(n, dtype=torch.int64)
    return (((37 * i) % 101 - 50).to(torch.float32) / 64.0).reshape(shape)


def grads(y, inputs):
    y.backward(upstream(y.shape))
    return [t.grad.clone() for t in inputs]


# ---- conv2d: x (N,C,H,W), w (O,C,kh,kw), stride, pads (top, bottom, left, right), bias ----
CONVS = [
    # N  C  H   W   O kh kw s  t  b  l  r  bias
    (2, 3, 7, 9, 4, 3, 3, 1, 1, 1, 1, 1, True),     # 3x3 same padding, batch 2, non-square
    (2, 4, 8, 10, 5, 3, 3, 2, 0, 1, 0, 1, True),    # DDPM Downsample: pad right+bottom 1, stride 2
    (2, 6, 5, 7, 3, 1, 1, 1, 0, 0, 0, 0, False),    # 1x1 direct path, no bias
    (1, 3, 9, 8, 2, 3, 3, 2, 1, 1, 1, 1, True),     # stride 2, symmetric pad
    (3, 2, 6, 5, 4, 2, 3, 1, 1, 0, 2, 1, False),    # rectangular kernel, asymmetric pads
    (1, 3, 8, 12, 6, 4, 4, 4, 0, 0, 0, 0, False),   # patch embedding (stride = kernel)
    (2, 5, 6, 6, 3, 1, 1, 2, 0, 0, 0, 0, True),     # 1x1 stride 2 (im2col path)
]
for k, (N, C, H, W, O, kh, kw, s, pt, pb, pl, pr, has_b) in enumerate(CONVS):
    x = torch.randn(N, C, H, W, requires_grad=True)
    w = (torch.randn(O, C, kh, kw) / (C * kh * kw) ** 0.5).requires_grad_()
    b = torch.randn(O, requires_grad=True) if has_b else None
    y = F.conv2d(F.pad(x, (pl, pr, pt, pb)), w, b, stride=s)
    ins = [x, w] + ([b] if has_b else [])
    g = grads(y, ins)
    p = f"conv{k}."
    T[p + "cfg"] = torch.tensor([s, pt, pb, pl, pr, int(has_b)], dtype=torch.int64)
    T[p + "x"], T[p + "w"], T[p + "y"] = x, w, y
    T[p + "dx"], T[p + "dw"] = g[0], g[1]
    if has_b:
        T[p + "b"], T[p + "db"] = b, g[2]

# ---- pooling ----
# The last max pool holds small integers, so windows have ties: the first maximum wins.
POOLS = [("max", 2, 3, 8, 6, 2, 2), ("max", 1, 2, 9, 7, 3, 2), ("max", 1, 2, 7, 7, 2, 1),
         ("avg", 2, 3, 8, 6, 2, 2), ("avg", 1, 2, 9, 7, 3, 1), ("max", 2, 2, 6, 8, 3, 2)]
for k, (kind, N, C, H, W, ker, s) in enumerate(POOLS):
    x = torch.randn(N, C, H, W) if k < 5 else torch.randint(0, 3, (N, C, H, W)).float()
    x.requires_grad_()
    y = (F.max_pool2d if kind == "max" else F.avg_pool2d)(x, ker, s)
    (dx,) = grads(y, [x])
    p = f"pool{k}."
    T[p + "cfg"] = torch.tensor([kind == "max", ker, s], dtype=torch.int64)
    T[p + "x"], T[p + "y"], T[p + "dx"] = x, y, dx

# ---- resizing: mode 0 nearest x2, 1 bilinear, 2 bicubic ----
RESIZES = [(0, 2, 3, 4, 5, 8, 10),
           (1, 1, 2, 5, 7, 9, 13), (1, 1, 2, 12, 10, 5, 7), (1, 1, 2, 6, 6, 6, 6),
           (2, 1, 3, 5, 6, 11, 9), (2, 1, 3, 32, 32, 24, 24), (2, 2, 1, 9, 13, 4, 17),
           (2, 1, 2, 40, 40, 224, 224)]
# For big outputs only these rows (full width) and columns (full height) are stored: every
# entry of both interpolation tables is still exercised.
BIG_IDX = [0, 1, 2, 3, 110, 111, 112, 113, 220, 221, 222, 223]
for k, (mode, N, C, H, W, OH, OW) in enumerate(RESIZES):
    x = torch.randn(N, C, H, W, requires_grad=True)
    if mode == 0:
        y = F.interpolate(x, scale_factor=2, mode="nearest")
    else:
        y = F.interpolate(x, size=(OH, OW), mode="bilinear" if mode == 1 else "bicubic",
                          align_corners=False, antialias=False)
    assert tuple(y.shape) == (N, C, OH, OW)
    (dx,) = grads(y, [x])
    p = f"resize{k}."
    T[p + "cfg"] = torch.tensor([mode, OH, OW], dtype=torch.int64)
    T[p + "x"], T[p + "dx"] = x, dx
    if OH * OW > 4096:
        idx = torch.tensor(BIG_IDX, dtype=torch.int64)
        T[p + "idx"] = idx
        T[p + "y_rows"] = y[:, :, idx, :]
        T[p + "y_cols"] = y[:, :, :, idx]
    else:
        T[p + "y"] = y

# ---- crop and pad ----
x = torch.randn(2, 3, 7, 8, requires_grad=True)
y = x[:, :, 2:2 + 4, 1:1 + 6]
(dx,) = grads(y, [x])
T["crop.cfg"] = torch.tensor([2, 1, 4, 6], dtype=torch.int64)
T["crop.x"], T["crop.y"], T["crop.dx"] = x, y, dx
x = torch.randn(2, 3, 5, 4, requires_grad=True)
y = F.pad(x, (2, 0, 1, 3), value=0.5)   # left 2, right 0, top 1, bottom 3
(dx,) = grads(y, [x])
T["pad.cfg"] = torch.tensor([1, 3, 2, 0], dtype=torch.int64)
T["pad.x"], T["pad.y"], T["pad.dx"] = x, y, dx

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ops_spatial.safetensors")
save(out, T, {"generator": "gen_ops_spatial.py", "torch": torch.__version__})
print(f"wrote {out} ({os.path.getsize(out)} bytes, {len(T)} tensors)")
