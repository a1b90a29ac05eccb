"""bench_conv_torch.py — PyTorch side of the convolution benchmark: the shapes of bench_conv.c,
conv2d forward and backward (dX, dW, db) at the same thread count. Prints
`RESULT name fwd_ms bwd_ms gflop` lines. Run with /usr/bin/python3 (Debian's python3-torch).
Usage: bench_conv_torch.py [threads] [min_seconds_per_shape] [shape name]"""
import sys
import time

import torch
import torch.nn.functional as F

# name, N, C, H, W, O, k, stride, pads (top, bottom, left, right) — as in bench_conv.c
SHAPES = [
    ("b32_64ch_32x32_3x3", 32, 64, 32, 32, 64, 3, 1, (1, 1, 1, 1)),
    ("b32_128ch_16x16_3x3", 32, 128, 16, 16, 128, 3, 1, (1, 1, 1, 1)),
    ("b32_128ch_8x8_3x3", 32, 128, 8, 8, 128, 3, 1, (1, 1, 1, 1)),
    ("b32_1x1_128to64_32x32", 32, 128, 32, 32, 64, 1, 1, (0, 0, 0, 0)),
    ("b32_64ch_32x32_down_s2", 32, 64, 32, 32, 64, 3, 2, (0, 1, 0, 1)),
    ("b1_128ch_256x256_3x3", 1, 128, 256, 256, 128, 3, 1, (1, 1, 1, 1)),
]


def conv(x, w, b, stride, pads):
    t, bo, l, r = pads
    if t == bo and l == r and t == l:
        return F.conv2d(x, w, b, stride=stride, padding=t)
    # the DDPM Downsample: explicit asymmetric zero pad, then an unpadded conv
    return F.conv2d(F.pad(x, (l, r, t, bo)), w, b, stride=stride)


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else torch.get_num_threads()
    min_s = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
    only = sys.argv[3] if len(sys.argv) > 3 else None
    torch.set_num_threads(threads)
    print(f"torch {torch.__version__} conv2d benchmark: {torch.get_num_threads()} threads, "
          f"mkldnn {torch.backends.mkldnn.is_available()}")
    torch.manual_seed(3)
    for name, N, C, H, W, O, k, stride, pads in SHAPES:
        if only is not None and name != only:
            continue
        x = torch.randn(N, C, H, W, requires_grad=True)
        w = (0.05 * torch.randn(O, C, k, k)).requires_grad_()
        b = (0.1 * torch.randn(O)).requires_grad_()
        fwd, bwd = [], []
        start = time.perf_counter()
        it = -1
        while True:
            x.grad = None
            t0 = time.perf_counter()
            y = conv(x, w, b, stride, pads)
            t1 = time.perf_counter()
            g = torch.full_like(y, 1e-3)
            t2 = time.perf_counter()
            y.backward(g)
            t3 = time.perf_counter()
            if it >= 0:
                fwd.append(t1 - t0)
                bwd.append(t3 - t2)
            it += 1
            if len(fwd) >= 3 and time.perf_counter() - start > min_s or len(fwd) >= 200:
                break
        fwd.sort()
        bwd.sort()
        f, bw = fwd[len(fwd) // 2], bwd[len(bwd) // 2]
        OH, OW = y.shape[2], y.shape[3]
        gflop = 2.0 * N * O * C * k * k * OH * OW * 1e-9
        print(f"{name:24s} fwd {1e3 * f:8.2f} ms {gflop / f:6.1f} GFLOP/s | "
              f"bwd {1e3 * bw:8.2f} ms {2 * gflop / bw:6.1f} GFLOP/s | {len(fwd)} iters (median)")
        print(f"RESULT {name} {1e3 * f:.4f} {1e3 * bw:.4f} {gflop:.4f}", flush=True)


if __name__ == "__main__":
    main()
