"""gen_ddim.py — hand-computed DDIM values for tests/test_ddim.c, in float64 with numpy/torch:
the linear schedule's ā, timestep sequences (numpy linspace + int()), single DDIM steps
(η = 0 and η > 0, including t_next = -1) and P2 weights. Run: /usr/bin/python3 gen_ddim.py
"""
import numpy as np
import torch

from goldenlib import save


def main():
    betas = np.linspace(0.0001, 0.02, 1000, dtype=np.float64)
    abar = np.cumprod(1.0 - betas)
    out = {"abar": torch.from_numpy(abar)}

    # timestep sequences for many (n, t0), concatenated; cases holds (n, t0) pairs
    cases, seqs = [], []
    for t0 in [1, 2, 99, 300, 301, 400, 401, 500, 601, 999]:
        for n in range(2, 61):
            if n > t0 + 1:
                continue
            seq = [int(s) for s in list(np.linspace(0, 1, n) * t0)]
            cases.append([n, t0])
            seqs.extend(seq)
    out["seq_cases"] = torch.tensor(cases, dtype=torch.int64)
    out["seqs"] = torch.tensor(seqs, dtype=torch.int64)

    # single steps: x, eps, z (2,3,4,4); rows of (t, t_next, eta)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64).float()
    eps = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64).float()
    z = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64).float()
    steps = [(500, 400, 0.0), (0, 12, 0.0), (487, 500, 0.0), (100, 0, 0.0), (0, -1, 0.0), (999, 974, 0.0),
             (500, 400, 1.0), (300, 200, 0.5), (0, -1, 0.7)]
    xs, x0s = [], []
    for t, tn, eta in steps:
        at = abar[t]
        an = 1.0 if tn == -1 else abar[tn]
        xd, ed, zd = x.double(), eps.double(), z.double()
        x0 = (xd - ed * np.sqrt(1 - at)) / np.sqrt(at)
        if eta == 0:
            xn = np.sqrt(an) * x0 + np.sqrt(1 - an) * ed
        else:
            c1 = eta * np.sqrt((1 - at / an) * (1 - an) / (1 - at))
            c2 = np.sqrt(1 - an - c1 ** 2)
            xn = np.sqrt(an) * x0 + c2 * ed + c1 * zd
        xs.append(xn.float())
        x0s.append(x0.float())
    out["step_x"] = x
    out["step_eps"] = eps
    out["step_z"] = z
    out["step_args"] = torch.tensor(steps, dtype=torch.float64)
    out["step_out"] = torch.stack(xs)
    out["step_x0"] = torch.stack(x0s)

    # P2 weights 1/(k + snr)^gamma
    ts = [0, 1, 10, 100, 500, 999]
    rows = []
    for gamma in [0.0, 0.5, 1.0]:
        for k in [1.0, 0.5]:
            for t in ts:
                snr = abar[t] / (1 - abar[t])
                rows.append([gamma, k, t, 1.0 / (k + snr) ** gamma])
    out["p2"] = torch.tensor(rows, dtype=torch.float64)
    save("ddim.safetensors", out)


if __name__ == "__main__":
    main()
