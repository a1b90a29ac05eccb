"""gen_optim.py — golden values for Adam/AdamW: a few steps of torch.optim over three small
parameters with fixed gradients (plain, L2 weight decay, decoupled weight decay with a changing lr,
and clip_grad_norm_ before each step). Stores the initial values, the gradients of every step,
the lr of every step, and the final parameters and moments.

Run: /usr/bin/python3 gen_optim.py (from tests/golden).
"""
import torch

from goldenlib import save

torch.manual_seed(424242)
K = 4  # steps
shapes = [(3, 4), (5,), (2, 1, 3)]
init = [torch.randn(s) for s in shapes]
# gradients of varied size so that clipping is active in some steps and not in others
gscale = [0.3, 2.0, 0.05, 1.0]
grads = [torch.stack([torch.randn(s) * gscale[k] for k in range(K)]) for s in shapes]

out = {}
for i, t in enumerate(init):
    out[f"init.p{i}"] = t
    out[f"grad.p{i}"] = grads[i]

cases = {
    "adam": (torch.optim.Adam, dict(betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0), [1e-2] * K, None),
    "adam_wd": (torch.optim.Adam, dict(betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1), [5e-3] * K, None),
    "adamw": (torch.optim.AdamW, dict(betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05),
              [1e-2, 2e-2, 2e-2, 6e-3], None),
    "adam_clip": (torch.optim.Adam, dict(betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0), [1e-2] * K, 1.0),
}
for name, (cls, kw, lrs, max_norm) in cases.items():
    params = [torch.nn.Parameter(t.clone()) for t in init]
    opt = cls(params, lr=lrs[0], **kw)
    norms = []
    for k in range(K):
        for g in opt.param_groups:
            g["lr"] = lrs[k]
        for i, p in enumerate(params):
            p.grad = grads[i][k].clone()
        if max_norm is not None:
            norms.append(float(torch.nn.utils.clip_grad_norm_(params, max_norm)))
        opt.step()
    out[f"{name}.lr"] = torch.tensor(lrs, dtype=torch.float64)
    out[f"{name}.hyper"] = torch.tensor([kw["betas"][0], kw["betas"][1], kw["eps"], kw["weight_decay"]],
                                        dtype=torch.float64)
    if max_norm is not None:
        out[f"{name}.norms"] = torch.tensor(norms)
    for i, p in enumerate(params):
        out[f"{name}.p{i}"] = p.detach()
        st = opt.state[p]
        out[f"{name}.m.p{i}"] = st["exp_avg"]
        out[f"{name}.v.p{i}"] = st["exp_avg_sq"]

save("optim.safetensors", out, {"generator": "gen_optim.py", "torch": torch.__version__, "steps": str(K)})
print({k: [round(x, 4) for x in v.tolist()] for k, v in out.items() if k.endswith("norms")})
