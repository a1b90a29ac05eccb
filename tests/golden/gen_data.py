"""gen_data.py — golden values for the data transforms: bilinear resize as PyTorch computes it
(torch.nn.functional.interpolate, mode="bilinear", align_corners=False, no antialias), and a
centre crop (offsets floor((h - side) / 2)) followed by that resize.

Run: /usr/bin/python3 tests/golden/gen_data.py   (writes tests/golden/data.safetensors)
"""
import os

import torch
import torch.nn.functional as F

import goldenlib

torch.manual_seed(1234)
tensors = {}

# (name, input shape (C,H,W), output (H,W))
resize_cases = [
    ("down", (3, 10, 10), (7, 7)),
    ("up", (1, 28, 28), (64, 64)),
    ("mixed", (3, 13, 9), (5, 17)),
    ("big_up", (1, 6, 6), (32, 32)),
    ("odd_down", (2, 31, 23), (8, 11)),
]
for name, (c, h, w), (oh, ow) in resize_cases:
    x = torch.rand(c, h, w) * 2 - 1
    y = F.interpolate(x[None], size=(oh, ow), mode="bilinear", align_corners=False, antialias=False)[0]
    tensors[f"resize_{name}.in"] = x
    tensors[f"resize_{name}.out"] = y

# centre crop to a square, then resize to size×size (what --size does)
crop_cases = [("tall", (3, 12, 9), 6), ("wide", (1, 40, 50), 16), ("celeba_like", (3, 27, 22), 32)]
for name, (c, h, w), size in crop_cases:
    x = torch.rand(c, h, w) * 2 - 1
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    sq = x[:, top:top + side, left:left + side]
    y = F.interpolate(sq[None], size=(size, size), mode="bilinear", align_corners=False, antialias=False)[0]
    tensors[f"crop_{name}.in"] = x
    tensors[f"crop_{name}.out"] = y

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data.safetensors")
goldenlib.save(out, tensors, {"generator": "gen_data.py", "torch": torch.__version__})
print("wrote", out, sum(t.numel() for t in tensors.values()), "values")
