"""bench_translate_torch.py — PyTorch side of the translation benchmark (bench/run_translate_bench.sh):
random-weight models and images in diffadapt's file formats, and the same translation loop (DDIM
inversion with one model, generation with another, eta 0) timed in PyTorch on the same files.

  /usr/bin/python3 bench_translate_torch.py make DIR --config default|celebahq256 --images N
  /usr/bin/python3 bench_translate_torch.py run DIR --threads T --batch B [--t0 500 --inv-steps 40
                                            --gen-steps 6] [--compare OUTDIR]

`run` prints `RESULT torch wall_s_per_img=... cpu_s_per_img=...`; with --compare it also prints how
far diffadapt's PNGs in OUTDIR are from PyTorch's images (in 8-bit levels).
"""
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "golden"))
from gen_unet import build_names, forward  # noqa: E402
from goldenlib import save  # noqa: E402

CONFIGS = {
    # design.md §3 default model and the CelebA-HQ 256 configuration of §2
    "default": dict(in_ch=1, out_ch=1, ch=64, mult=[1, 2, 2], nrb=2, attn=[16], res=32, conv=True),
    "celebahq256": dict(in_ch=3, out_ch=3, ch=128, mult=[1, 1, 2, 2, 4, 4], nrb=2, attn=[16], res=256, conv=True),
}


def config_json(c):
    return json.dumps({"model": {"type": "simple", "in_channels": c["in_ch"], "out_ch": c["out_ch"], "ch": c["ch"],
                                 "ch_mult": c["mult"], "num_res_blocks": c["nrb"], "attn_resolutions": c["attn"],
                                 "dropout": 0.0, "resamp_with_conv": c["conv"]},
                       "data": {"image_size": c["res"], "channels": c["in_ch"]}})


def random_params(c, seed):
    """Weights as PyTorch's default init (U(-1/sqrt(fan_in), +)), biases U(-0.02, 0.02), norms 1 and 0."""
    g = torch.Generator().manual_seed(seed)
    P = {}
    for name, shape in build_names(c):
        if len(shape) == 1:
            P[name] = torch.ones(shape) if "norm" in name and name.endswith("weight") else torch.zeros(shape)
            if name.endswith("bias") and "norm" not in name:
                P[name] = (torch.rand(shape, generator=g) * 2 - 1) * 0.02
        else:
            b = 1 / math.sqrt(math.prod(shape[1:]))
            P[name] = (torch.rand(shape, generator=g) * 2 - 1) * b
    return P


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for k, v in header.items():
        a, b = v["data_offsets"]
        dt = {"F32": np.float32, "I64": np.int64}[v["dtype"]]
        out[k] = torch.from_numpy(np.frombuffer(data[a:b], dtype=dt).copy().reshape(v["shape"]))
    return out, meta


def cmd_make(d, cfg, n):
    c = CONFIGS[cfg]
    os.makedirs(d, exist_ok=True)
    meta = {"format": "diffadapt-unet", "config": config_json(c)}
    save(os.path.join(d, "m.safetensors"), random_params(c, 1), meta)
    save(os.path.join(d, "m_ft.safetensors"), random_params(c, 2), meta)
    g = torch.Generator().manual_seed(3)
    # smooth images in [-1,1]: low-resolution noise, upsampled
    low = torch.rand(n, c["in_ch"], 8, 8, generator=g) * 2 - 1
    imgs = torch.nn.functional.interpolate(low, size=(c["res"], c["res"]), mode="bilinear", align_corners=False)
    save(os.path.join(d, "data.safetensors"), {"images": imgs.contiguous(), "labels": torch.arange(n) % 2})
    with open(os.path.join(d, "config.txt"), "w") as f:
        f.write(cfg + "\n")
    print(f"wrote {cfg} models and {n} images to {d}", file=sys.stderr)


def ddim_seq(n, t0):
    return [int(s) for s in list(np.linspace(0, 1, n) * t0)]


def cmd_run(d, threads, batch, t0, inv_steps, gen_steps, compare):
    torch.set_num_threads(threads)
    cfg = open(os.path.join(d, "config.txt")).read().strip()
    c = CONFIGS[cfg]
    Pm, _ = load_safetensors(os.path.join(d, "m.safetensors"))
    Pf, _ = load_safetensors(os.path.join(d, "m_ft.safetensors"))
    data, _ = load_safetensors(os.path.join(d, "data.safetensors"))
    images = data["images"]
    n = images.shape[0]
    abar = np.cumprod(1.0 - np.linspace(0.0001, 0.02, 1000, dtype=np.float64))
    seq = ddim_seq(inv_steps, t0)
    gseq = ddim_seq(gen_steps, t0)
    gnext = [-1] + gseq[:-1]

    def step(P, x, t, tn):
        eps = forward(c, P, x, torch.full((x.shape[0],), float(t)))
        at, an = abar[t], (1.0 if tn < 0 else abar[tn])
        x0 = (x - eps * math.sqrt(1 - at)) / math.sqrt(at)
        return x0 * math.sqrt(an) + eps * math.sqrt(1 - an)

    outs = []
    w0, c0 = time.perf_counter(), time.process_time()
    with torch.no_grad():
        for b in range(0, n, batch):
            x = images[b:b + batch].clone()
            for t, tn in zip(seq[:-1], seq[1:]):
                x = step(Pm, x, t, tn)
            for t, tn in zip(reversed(gseq), reversed(gnext)):
                x = step(Pf, x, t, tn)
            outs.append(x)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads: {n} images in {wall:.2f} s wall, "
          f"{cpu:.2f} s CPU", file=sys.stderr)
    print(f"RESULT torch config={cfg} wall_s_per_img={wall / n:.4f} cpu_s_per_img={cpu / n:.4f}", flush=True)
    if compare:
        from PIL import Image
        y = torch.cat(outs)
        # diffadapt's 8-bit encoding: round((clamp(x,-1,1)+1)*127.5)
        mine = torch.round((y.clamp(-1, 1) + 1) * 127.5).to(torch.int32)
        worst, total, cnt = 0, 0.0, 0
        for i in range(n):
            a = np.asarray(Image.open(os.path.join(compare, f"{i:06d}.png")), dtype=np.int32)
            a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
            diff = np.abs(a - mine[i].numpy())
            worst = max(worst, int(diff.max()))
            total += float(diff.sum())
            cnt += diff.size
        print(f"RESULT compare config={cfg} max_abs_levels={worst} mean_abs_levels={total / cnt:.4f}", flush=True)


def main():
    a = sys.argv[1:]
    if len(a) < 2 or a[0] not in ("make", "run"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    opts = dict(zip(a[2::2], a[3::2]))
    if a[0] == "make":
        cmd_make(a[1], opts.get("--config", "default"), int(opts.get("--images", "16")))
    else:
        cmd_run(a[1], int(opts.get("--threads", "2")), int(opts.get("--batch", "16")), int(opts.get("--t0", "500")),
                int(opts.get("--inv-steps", "40")), int(opts.get("--gen-steps", "6")), opts.get("--compare"))


if __name__ == "__main__":
    main()
