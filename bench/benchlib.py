"""benchlib.py — helpers shared by the PyTorch sides of the benchmarks (bench_mlp_torch.py,
bench_clip_torch.py): the same thread count for torch and the OpenBLAS it calls, and the kernel line."""
import ctypes
import time

import torch


def _openblas():
    """The OpenBLAS library torch has loaded (Debian's torch calls it for sgemm), or None."""
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if "libopenblas" in path and ".so" in path:
                return ctypes.CDLL(path)
    return None


def set_threads(n):
    """torch's intra-op threads and the OpenBLAS pool (torch.set_num_threads leaves the latter
    alone, and OpenBLAS's pthread build would otherwise use every core)."""
    torch.set_num_threads(n)
    torch.zeros(2, 2) @ torch.zeros(2, 2)   # makes sure the BLAS library is loaded
    lib = _openblas()
    if lib is not None:
        lib.openblas_set_num_threads(ctypes.c_int(n))


def openblas_line():
    lib = _openblas()
    if lib is None:
        return "OpenBLAS: not loaded by torch"
    lib.openblas_get_config.restype = ctypes.c_char_p
    lib.openblas_get_corename.restype = ctypes.c_char_p
    lib.openblas_get_num_threads.restype = ctypes.c_int
    return (f"OpenBLAS: {lib.openblas_get_config().decode()} (core {lib.openblas_get_corename().decode()}, "
            f"{lib.openblas_get_num_threads()} threads)")


def median_time(fn, iters, warmup):
    """Median wall seconds of fn() over iters calls after warmup untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def parse_args(argv, defaults):
    """--name value pairs over a dict of int defaults; anything else is a usage error."""
    out = dict(defaults)
    if len(argv) % 2:
        raise SystemExit(f"usage: {' '.join('--' + k + ' N' for k in defaults)}")
    for i in range(0, len(argv), 2):
        key = argv[i][2:]
        if not argv[i].startswith("--") or key not in out:
            raise SystemExit(f"unknown option {argv[i]}; usage: {' '.join('--' + k + ' N' for k in defaults)}")
        out[key] = type(defaults[key])(argv[i + 1])
    return out


def load_safetensors(path):
    """(tensors, metadata) of an F32 safetensors file (what the C benchmarks dump)."""
    import json
    import struct
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = blob[8 + n:]
    out = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            raise SystemExit(f"{path}: {name} is {info['dtype']}, only F32 is read here")
        b, e = info["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[b:e]), dtype=torch.float32).reshape(info["shape"])
    return out, meta
