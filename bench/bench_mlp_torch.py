"""bench_mlp_torch.py — PyTorch side of the MLP benchmark: the model, batch, data, optimiser and
timed region of bench_mlp.c (784-512-512-10 ReLU MLP, cross-entropy, Adam lr 1e-3, batch 256) at
the same thread count. Prints `RESULT name ms_per_step gflop_per_step` lines.
Run with /usr/bin/python3 (Debian's python3-torch). Usage: bench_mlp_torch.py [--threads N]
[--iters N] [--warmup N] [--batch N]"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

WIDTHS = [784, 512, 512, 10]
N_BATCHES = 4   # a few fixed batches, cycled, as bench_mlp.c


def main():
    a = benchlib.parse_args(sys.argv[1:], {"threads": 2, "iters": 100, "warmup": 10, "batch": 256})
    B = a["batch"]
    benchlib.set_threads(a["threads"])
    print(f"torch {torch.__version__} MLP benchmark: {torch.get_num_threads()} threads, batch {B}, "
          f"{'-'.join(map(str, WIDTHS))}")
    print(benchlib.openblas_line())
    torch.manual_seed(7)
    layers = []
    for i in range(len(WIDTHS) - 1):
        layers.append(torch.nn.Linear(WIDTHS[i], WIDTHS[i + 1]))   # U(-1/sqrt(in), 1/sqrt(in))
        if i + 2 < len(WIDTHS):
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    images = torch.rand(N_BATCHES, B, WIDTHS[0])
    labels = torch.randint(0, WIDTHS[-1], (N_BATCHES, B))

    fwd = sum(2.0 * B * WIDTHS[i] * WIDTHS[i + 1] for i in range(len(WIDTHS) - 1))
    dx = sum(2.0 * B * WIDTHS[i] * WIDTHS[i + 1] for i in range(1, len(WIDTHS) - 1))
    gf_fwd, gf_train = fwd * 1e-9, (2 * fwd + dx) * 1e-9

    state = {"k": 0, "losses": []}

    def forward():
        with torch.no_grad():
            model(images[state["k"] % N_BATCHES])
        state["k"] += 1

    def train():
        k = state["k"] % N_BATCHES
        opt.zero_grad()
        loss = F.cross_entropy(model(images[k]), labels[k])
        loss.backward()
        opt.step()
        state["losses"].append(loss.item())
        state["k"] += 1

    t_fwd = benchlib.median_time(forward, a["iters"], a["warmup"])
    state["k"] = 0
    t_train = benchlib.median_time(train, a["iters"], a["warmup"])
    l0, l1 = state["losses"][0], state["losses"][-1]
    print(f"forward    {1e3 * t_fwd:8.3f} ms {gf_fwd / t_fwd:7.1f} GFLOP/s")
    print(f"train step {1e3 * t_train:8.3f} ms {gf_train / t_train:7.1f} GFLOP/s "
          f"(loss {l0:.4f} -> {l1:.4f} over {len(state['losses'])} steps)")
    print(f"RESULT mlp_forward_b{B} {1e3 * t_fwd:.4f} {gf_fwd:.6f}")
    print(f"RESULT mlp_train_b{B} {1e3 * t_train:.4f} {gf_train:.6f}")
    print(f"LOSS {l0:.6f} {l1:.6f}", flush=True)


if __name__ == "__main__":
    main()
