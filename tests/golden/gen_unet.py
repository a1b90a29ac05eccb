"""gen_unet.py — golden outputs and gradients of the DDPM UNet for tests/test_unet.c.

A plain-torch functional version of the architecture (design.md §2), run in float64 on tiny
configs whose weights come from a hash of (parameter index, element index) that the C test
reproduces exactly, so no weights need to be stored. Run: /usr/bin/python3 gen_unet.py
"""
import math

import torch
import torch.nn.functional as F

from goldenlib import save

CONFIGS = [
    # name, in, out, ch, ch_mult, nrb, attn_res, res, resamp_with_conv, timesteps
    dict(name="a", in_ch=1, out_ch=1, ch=32, mult=[1, 2], nrb=1, attn=[4], res=8, conv=True, t=[3, 517]),
    dict(name="b", in_ch=3, out_ch=3, ch=32, mult=[1, 2, 2], nrb=1, attn=[8], res=8, conv=False, t=[999, 0]),
    dict(name="c", in_ch=3, out_ch=6, ch=32, mult=[1, 1], nrb=2, attn=[], res=8, conv=True, t=[250, 40]),
]
GRADS = ["conv_in.weight", "temb.dense.0.weight", "mid.attn_1.q.weight", "mid.attn_1.norm.weight",
         "up.0.block.0.nin_shortcut.weight", "norm_out.bias", "conv_out.bias"]


def hash_u01(k, n):
    """u in [0,1) for element i of parameter k: a 32-bit integer mix the C test repeats."""
    i = torch.arange(n, dtype=torch.int64)
    h = ((i + 1) * 0x9E3779B1 + (k + 1) * 0x85EBCA77) & 0xFFFFFFFF
    h ^= h >> 15
    h = (h * 0x2C1B3C6D) & 0xFFFFFFFF
    h ^= h >> 12
    return h.to(torch.float64) / 4294967296.0


def param_value(k, name, shape):
    n = math.prod(shape)
    u = hash_u01(k, n) * 2 - 1
    if len(shape) == 1:
        v = 1 + 0.1 * u if ".norm" in "." + name and name.endswith("weight") else 0.1 * u
    else:
        v = u / math.sqrt(n // shape[0])
    return v.to(torch.float32).reshape(shape)


def build_names(c):
    """(name, shape) in state_dict order, with the channel bookkeeping of the reference."""
    ch, L, nrb, temb = c["ch"], len(c["mult"]), c["nrb"], 4 * c["ch"]
    out = []

    def conv(p, ci, co, k):
        out.extend([(p + ".weight", (co, ci, k, k)), (p + ".bias", (co,))])

    def lin(p, ci, co):
        out.extend([(p + ".weight", (co, ci)), (p + ".bias", (co,))])

    def norm(p, c_):
        out.extend([(p + ".weight", (c_,)), (p + ".bias", (c_,))])

    def res(p, ci, co):
        norm(p + ".norm1", ci); conv(p + ".conv1", ci, co, 3); lin(p + ".temb_proj", temb, co)
        norm(p + ".norm2", co); conv(p + ".conv2", co, co, 3)
        if ci != co:
            conv(p + ".nin_shortcut", ci, co, 1)

    def attn(p, c_):
        norm(p + ".norm", c_)
        for s in ["q", "k", "v", "proj_out"]:
            conv(p + "." + s, c_, c_, 1)

    lin("temb.dense.0", ch, temb); lin("temb.dense.1", temb, temb)
    conv("conv_in", c["in_ch"], ch, 3)
    in_mult = [1] + c["mult"]
    r = c["res"]
    bi = ch
    for i in range(L):
        bi = ch * in_mult[i]
        bo = ch * c["mult"][i]
        for j in range(nrb):
            res(f"down.{i}.block.{j}", bi, bo); bi = bo
        if r in c["attn"]:
            for j in range(nrb):
                attn(f"down.{i}.attn.{j}", bi)
        if i != L - 1:
            if c["conv"]:
                conv(f"down.{i}.downsample.conv", bi, bi, 3)
            r //= 2
    res("mid.block_1", bi, bi); attn("mid.attn_1", bi); res("mid.block_2", bi, bi)
    ups = {}
    for i in reversed(range(L)):
        items = []
        bo = ch * c["mult"][i]
        skip = ch * c["mult"][i]
        for j in range(nrb + 1):
            if j == nrb:
                skip = ch * in_mult[i]
            items.append((bi + skip, bo)); bi = bo
        ups[i] = (items, r)
        if i != 0:
            r *= 2
    for i in range(L):
        items, rr = ups[i]
        for j, (ci, co) in enumerate(items):
            res(f"up.{i}.block.{j}", ci, co)
        if rr in c["attn"]:
            for j in range(nrb + 1):
                attn(f"up.{i}.attn.{j}", items[0][1])
        if i != 0 and c["conv"]:
            conv(f"up.{i}.upsample.conv", items[0][1], items[0][1], 3)
    norm("norm_out", ch * c["mult"][0]); conv("conv_out", ch * c["mult"][0], c["out_ch"], 3)
    return out


def forward(c, P, x, t, dropout=0.0):
    """dropout > 0 applies training-mode dropout in the res blocks (used by bench/bench_unet.py)."""
    ch, L, nrb = c["ch"], len(c["mult"]), c["nrb"]

    def gn(p, h):
        return F.group_norm(h, 32, P[p + ".weight"], P[p + ".bias"], eps=1e-6)

    def sw(h):
        return h * torch.sigmoid(h)

    def cv(p, h, pad=1, stride=1):
        return F.conv2d(h, P[p + ".weight"], P[p + ".bias"], stride=stride, padding=pad)

    def resb(p, h, temb):
        y = cv(p + ".conv1", sw(gn(p + ".norm1", h)))
        y = y + F.linear(sw(temb), P[p + ".temb_proj.weight"], P[p + ".temb_proj.bias"])[:, :, None, None]
        y = cv(p + ".conv2", F.dropout(sw(gn(p + ".norm2", y)), dropout, training=dropout > 0))
        if p + ".nin_shortcut.weight" in P:
            h = cv(p + ".nin_shortcut", h, pad=0)
        return h + y

    def att(p, h):
        b, c_, hh, ww = h.shape
        n = gn(p + ".norm", h)
        q = cv(p + ".q", n, pad=0).reshape(b, c_, hh * ww).permute(0, 2, 1)
        k = cv(p + ".k", n, pad=0).reshape(b, c_, hh * ww)
        v = cv(p + ".v", n, pad=0).reshape(b, c_, hh * ww)
        w = torch.softmax(torch.bmm(q, k) * c_ ** -0.5, dim=2)
        o = torch.bmm(v, w.permute(0, 2, 1)).reshape(b, c_, hh, ww)
        return h + cv(p + ".proj_out", o, pad=0)

    # the embedding exactly as the reference computes it, in float32
    half = ch // 2
    f = torch.exp(torch.arange(half, dtype=torch.float32) * -(math.log(10000) / (half - 1)))
    e = t.float()[:, None] * f[None, :]
    temb = torch.cat([torch.sin(e), torch.cos(e)], dim=1).to(x.dtype)
    temb = F.linear(temb, P["temb.dense.0.weight"], P["temb.dense.0.bias"])
    temb = F.linear(sw(temb), P["temb.dense.1.weight"], P["temb.dense.1.bias"])
    hs = [cv("conv_in", x)]
    for i in range(L):
        for j in range(nrb):
            h = resb(f"down.{i}.block.{j}", hs[-1], temb)
            if f"down.{i}.attn.{j}.q.weight" in P:
                h = att(f"down.{i}.attn.{j}", h)
            hs.append(h)
        if i != L - 1:
            if c["conv"]:
                hs.append(cv(f"down.{i}.downsample.conv", F.pad(hs[-1], (0, 1, 0, 1)), pad=0, stride=2))
            else:
                hs.append(F.avg_pool2d(hs[-1], 2, 2))
    h = resb("mid.block_1", hs[-1], temb)
    h = att("mid.attn_1", h)
    h = resb("mid.block_2", h, temb)
    for i in reversed(range(L)):
        for j in range(nrb + 1):
            h = resb(f"up.{i}.block.{j}", torch.cat([h, hs.pop()], dim=1), temb)
            if f"up.{i}.attn.{j}.q.weight" in P:
                h = att(f"up.{i}.attn.{j}", h)
        if i != 0:
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            if c["conv"]:
                h = cv(f"up.{i}.upsample.conv", h)
    return cv("conv_out", sw(gn("norm_out", h)))


def main():
    torch.manual_seed(0)
    out = {}
    for c in CONFIGS:
        names = build_names(c)
        P = {}
        for k, (n, s) in enumerate(names):
            P[n] = param_value(k, n, s).to(torch.float64).requires_grad_(True)
        g = torch.Generator().manual_seed(len(out) + 1)
        x = torch.randn(2, c["in_ch"], c["res"], c["res"], generator=g).to(torch.float32)
        t = torch.tensor(c["t"], dtype=torch.float32)
        xd = x.to(torch.float64).requires_grad_(True)
        y = forward(c, P, xd, t)
        R = torch.randn(y.shape, generator=g).to(torch.float32)
        (y * R.to(torch.float64)).sum().backward()
        p = c["name"] + "."
        out[p + "x"] = x
        out[p + "t"] = t
        out[p + "y"] = y.detach().to(torch.float32)
        out[p + "R"] = R
        out[p + "dx"] = xd.grad.to(torch.float32)
        out[p + "n_params"] = torch.tensor([len(names), sum(math.prod(s) for _, s in names)], dtype=torch.int64)
        for n in GRADS:
            if n in P:
                out[p + "grad." + n] = P[n].grad.to(torch.float32)
    save("unet.safetensors", out)


if __name__ == "__main__":
    main()
