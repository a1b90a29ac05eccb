"""gen_vlb.py — golden values of improved-DDPM's hybrid loss for tests/test_vlb.c.

A float64 torch computation, written from the formulas of the improved-DDPM paper and its
reference code (gaussian_diffusion.py: q_posterior_mean_variance, p_mean_variance with
LEARNED_RANGE, _vb_terms_bpd, training_losses with RESCALED_MSE; losses.py: normal_kl,
discretized_gaussian_log_likelihood), on fixed inputs: the data x0 (values on the 8-bit grid,
with -1 and 1 present so that the decoder's open-ended bins are hit), the noise, per-sample
timesteps (t = 0 included) and a fixed model output (N,2C,H,W) standing in for the network.
Stored per case: the inputs, L_t per sample (bits/dim), the loss, and d loss / d output.
Run: /usr/bin/python3 gen_vlb.py
"""
import math

import numpy as np
import torch

from goldenlib import save

CASES = [
    # name, T, beta_start, beta_end, timesteps, p2 gamma, p2 k
    dict(name="t1000", T=1000, b0=1e-4, b1=0.02, t=[0, 0, 1, 300, 601, 999], gamma=0.0, k=1.0),
    dict(name="p2", T=1000, b0=1e-4, b1=0.02, t=[0, 5, 250, 750], gamma=1.0, k=1.0),
    # the improved-DDPM linear schedule for 50 steps (betas scaled by 1000/T): the T/1000 factor
    dict(name="t50", T=50, b0=2e-3, b1=0.4, t=[0, 1, 25, 49], gamma=0.0, k=1.0),
]
C, H, W = 3, 4, 4


def approx_cdf(x):
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def decoder_log_prob(x, mean, log_scale):
    """log P(x) of a Gaussian discretised to the 8-bit bins of [-1, 1] (outer bins open-ended)."""
    inv = torch.exp(-log_scale)
    up = approx_cdf(inv * (x - mean + 1.0 / 255.0))
    lo = approx_cdf(inv * (x - mean - 1.0 / 255.0))
    return torch.where(x < -0.999, torch.log(up.clamp(min=1e-12)),
                       torch.where(x > 0.999, torch.log((1.0 - lo).clamp(min=1e-12)),
                                   torch.log((up - lo).clamp(min=1e-12))))


def gauss_kl(m1, lv1, m2, lv2):
    return 0.5 * (-1.0 + lv2 - lv1 + torch.exp(lv1 - lv2) + (m1 - m2) ** 2 * torch.exp(-lv2))


def case(c, gen):
    T = c["T"]
    betas = np.linspace(c["b0"], c["b1"], T, dtype=np.float64)
    abar = np.cumprod(1.0 - betas)
    abar_prev = np.append(1.0, abar[:-1])
    post_var = betas * (1.0 - abar_prev) / (1.0 - abar)
    post_logvar = np.log(np.append(post_var[1], post_var[1:]))
    c1 = betas * np.sqrt(abar_prev) / (1.0 - abar)
    c2 = (1.0 - abar_prev) * np.sqrt(1.0 - betas) / (1.0 - abar)

    t = torch.tensor(c["t"], dtype=torch.int64)
    N = len(c["t"])

    def at(arr):
        return torch.from_numpy(arr)[t].view(N, 1, 1, 1)

    # data on the 8-bit grid, a few pixels at the ends
    x0 = (torch.randint(0, 256, (N, C, H, W), generator=gen).double() / 127.5 - 1.0).float()
    x0[:, 0, 0, 0] = -1.0
    x0[:, 1, 0, 1] = 1.0
    noise = torch.randn(N, C, H, W, generator=gen, dtype=torch.float64).float()
    eps = noise.double() + 0.3 * torch.randn(N, C, H, W, generator=gen, dtype=torch.float64)
    v = torch.rand(N, C, H, W, generator=gen, dtype=torch.float64) * 3.0 - 1.5
    out = torch.cat([eps, v], dim=1).float()

    # x_t in float32 with float32 coefficients, as the C code builds it
    ca = torch.tensor([float(np.float32(math.sqrt(abar[i]))) for i in c["t"]], dtype=torch.float32).view(N, 1, 1, 1)
    cn = torch.tensor([float(np.float32(math.sqrt(1.0 - abar[i]))) for i in c["t"]], dtype=torch.float32).view(N, 1, 1, 1)
    xt = (ca * x0 + cn * noise).double()

    o = out.double().requires_grad_(True)
    e, vv = o[:, :C], o[:, C:]
    # ε-MSE, P2-weighted per sample
    w = 1.0 / (c["k"] + at(abar / (1.0 - abar)).view(N)) ** c["gamma"]
    mse = ((e - noise.double()) ** 2).mean(dim=(1, 2, 3)) * w
    # the bound term with ε detached
    e_sg = e.detach()
    x0_hat = at(np.sqrt(1.0 / abar)) * xt - at(np.sqrt(1.0 / abar - 1.0)) * e_sg
    mean_p = at(c1) * x0_hat + at(c2) * xt
    mean_q = at(c1) * x0.double() + at(c2) * xt
    min_log, max_log = at(post_logvar), at(np.log(betas))
    frac = (vv + 1.0) / 2.0
    logvar_p = frac * max_log + (1.0 - frac) * min_log
    kl = gauss_kl(mean_q, min_log, mean_p, logvar_p).mean(dim=(1, 2, 3)) / math.log(2.0)
    nll = -decoder_log_prob(x0.double(), mean_p, 0.5 * logvar_p).mean(dim=(1, 2, 3)) / math.log(2.0)
    vb = torch.where(t == 0, nll, kl)
    loss = (mse + vb * (T / 1000.0)).mean()
    loss.backward()

    n = c["name"]
    return {
        n + ".x0": x0, n + ".noise": noise, n + ".t": t, n + ".out": out,
        n + ".vb": vb.detach().float(), n + ".loss": loss.detach().float().reshape(1),
        n + ".grad": o.grad.float(),
    }


def main():
    gen = torch.Generator().manual_seed(13)
    tensors = {}
    for c in CASES:
        tensors.update(case(c, gen))
    save("vlb.safetensors", tensors, {"cases": ",".join(c["name"] for c in CASES)})


if __name__ == "__main__":
    main()
