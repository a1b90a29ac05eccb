"""bench_unet.py — PyTorch side of the UNet benchmark: the same architecture (the functional
reference of tests/golden/gen_unet.py), shapes and thread count as bench_unet.c. Prints
`RESULT name img_per_s` lines. Run with /usr/bin/python3 (Debian's python3-torch)."""
import math
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "golden"))
from benchlib import openblas_line, set_threads  # noqa: E402
from gen_unet import build_names, forward  # noqa: E402

SMALL = dict(in_ch=1, out_ch=1, ch=64, mult=[1, 2, 2], nrb=2, attn=[16], res=32, conv=True)
CELEBA = dict(in_ch=3, out_ch=3, ch=128, mult=[1, 1, 2, 2, 4, 4], nrb=2, attn=[16], res=256, conv=True)


def make_params(c):
    P = {}
    for name, shape in build_names(c):
        if len(shape) == 1:
            t = torch.ones(shape) if "norm" in name and name.endswith("weight") else torch.zeros(shape)
        else:
            fan_in = math.prod(shape[1:])
            t = torch.empty(shape).uniform_(-1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        P[name] = t.requires_grad_(True)
    return P


def bench_train(iters, warmup, batch=32):
    c = SMALL
    P = make_params(c)
    opt = torch.optim.Adam(P.values(), lr=2e-4)
    for it in range(warmup + iters):
        if it == warmup:
            t0, c0 = time.perf_counter(), time.process_time()
        x = torch.rand(batch, 1, 32, 32) * 2 - 1
        noise = torch.randn(batch, 1, 32, 32)
        t = torch.randint(0, 1000, (batch,)).float()
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(forward(c, P, x, t, dropout=0.1), noise)
        loss.backward()
        opt.step()
    dt, dc = (time.perf_counter() - t0) / iters, (time.process_time() - c0) / iters
    print(f"  torch train step: {dt:.3f} s/step ({dc:.3f} CPU s)", file=sys.stderr)
    return batch / dt


def bench_forward(c, batch, iters, warmup):
    P = make_params(c)
    with torch.no_grad():
        for it in range(warmup + iters):
            if it == warmup:
                t0, c0 = time.perf_counter(), time.process_time()
            x = torch.randn(batch, c["in_ch"], c["res"], c["res"])
            t = torch.randint(0, 1000, (batch,)).float()
            forward(c, P, x, t)
    dt, dc = (time.perf_counter() - t0) / iters, (time.process_time() - c0) / iters
    print(f"  torch forward: {dt:.3f} s per batch of {batch} ({dc:.3f} CPU s)", file=sys.stderr)
    return batch / dt


def main():
    threads, iters, warmup, rows = 2, 5, 2, "train,forward,celeba"
    a = sys.argv[1:]
    for i in range(0, len(a) - 1, 2):
        if a[i] == "--threads":
            threads = int(a[i + 1])
        elif a[i] == "--iters":
            iters = int(a[i + 1])
        elif a[i] == "--warmup":
            warmup = int(a[i + 1])
        elif a[i] == "--rows":
            rows = a[i + 1]
    set_threads(threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}: {torch.get_num_threads()} threads; {openblas_line()}", file=sys.stderr)
    if "train" in rows:
        print(f"RESULT train_b32 {bench_train(iters, warmup):.3f}", flush=True)
    if "forward" in rows:
        print(f"RESULT forward_b32 {bench_forward(SMALL, 32, iters, warmup):.3f}", flush=True)
    if "celeba" in rows:
        print(f"RESULT celeba256_b1 {bench_forward(CELEBA, 1, min(iters, 2), 1):.5f}", flush=True)


if __name__ == "__main__":
    main()
