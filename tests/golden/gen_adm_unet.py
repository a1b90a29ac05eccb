"""gen_adm_unet.py — golden outputs and gradients of the improved-DDPM / ADM UNet for
tests/test_adm_unet.c.

A plain-torch functional version of the architecture (src/nn/adm_unet.h describes it), run in
float64 on tiny configs whose weights come from the same hash of (parameter index, element index)
as gen_unet.py, in the C code's registration order, so no weights need to be stored. The configs
cover scale-shift norm on and off, resblock_updown, conv and plain resampling, both head orders,
num_heads / num_head_channels / num_heads_upsample and learn_sigma.
Run: /usr/bin/python3 gen_adm_unet.py
"""
import math

import torch
import torch.nn.functional as F

from gen_unet import param_value
from goldenlib import save

CONFIGS = [
    dict(name="a", in_ch=3, mc=32, mult=[1, 2], nrb=1, attn_ds=[2], res=8, heads=4, head_ch=16, heads_up=-1,
         ss=True, updown=True, sigma=True, conv=True, new_order=False, t=[3, 601]),
    dict(name="b", in_ch=1, mc=32, mult=[1, 1, 2], nrb=1, attn_ds=[1, 4], res=8, heads=2, head_ch=-1, heads_up=4,
         ss=False, updown=False, sigma=False, conv=False, new_order=True, t=[999, 0]),
    dict(name="c", in_ch=3, mc=32, mult=[1, 2], nrb=2, attn_ds=[2], res=8, heads=4, head_ch=32, heads_up=-1,
         ss=True, updown=False, sigma=True, conv=True, new_order=False, t=[250, 40]),
]
GRADS = ["time_embed.0.weight", "input_blocks.0.0.weight", "input_blocks.1.0.emb_layers.1.weight",
         "middle_block.1.qkv.weight", "middle_block.1.proj_out.bias", "output_blocks.0.0.skip_connection.weight",
         "out.0.weight", "out.2.bias"]


def heads_for(c, ch, up):
    if c["head_ch"] > 0:
        return ch // c["head_ch"]
    return c["heads_up"] if up and c["heads_up"] > 0 else c["heads"]


def build(c):
    """(name, shape) in registration order, and the module program: a list per block sequence of
    ("res", prefix, cin, cout, up, down) / ("attn", prefix, ch, heads) / ("down"|"up", prefix)."""
    mc, temb, L, nrb = c["mc"], 4 * c["mc"], len(c["mult"]), c["nrb"]
    names = []

    def layer(p, wshape, n):
        names.extend([(p + ".weight", tuple(wshape)), (p + ".bias", (n,))])

    def res(p, cin, cout, up=False, down=False):
        layer(p + "in_layers.0", [cin], cin)
        layer(p + "in_layers.2", [cout, cin, 3, 3], cout)
        eo = 2 * cout if c["ss"] else cout
        layer(p + "emb_layers.1", [eo, temb], eo)
        layer(p + "out_layers.0", [cout], cout)
        layer(p + "out_layers.3", [cout, cout, 3, 3], cout)
        if cin != cout:
            layer(p + "skip_connection", [cout, cin, 1, 1], cout)
        return ("res", p, cin, cout, up, down)

    def attn(p, ch, heads):
        layer(p + "norm", [ch], ch)
        layer(p + "qkv", [3 * ch, ch, 1], 3 * ch)
        layer(p + "proj_out", [ch, ch, 1], ch)
        return ("attn", p, ch, heads)

    def resample(p, ch, up):
        if c["conv"]:
            layer(p + ("conv" if up else "op"), [ch, ch, 3, 3], ch)
        return ("up" if up else "down", p)

    layer("time_embed.0", [temb, mc], temb)
    layer("time_embed.2", [temb, temb], temb)
    ch = c["mult"][0] * mc
    layer("input_blocks.0.0", [ch, c["in_ch"], 3, 3], ch)
    inputs, chans, ds = [], [ch], 1
    for level in range(L):
        for _ in range(nrb):
            k = len(inputs) + 1
            seq = [res(f"input_blocks.{k}.0.", ch, c["mult"][level] * mc)]
            ch = c["mult"][level] * mc
            if ds in c["attn_ds"]:
                seq.append(attn(f"input_blocks.{k}.1.", ch, heads_for(c, ch, False)))
            inputs.append(seq)
            chans.append(ch)
        if level != L - 1:
            k = len(inputs) + 1
            inputs.append([res(f"input_blocks.{k}.0.", ch, ch, down=True) if c["updown"]
                           else resample(f"input_blocks.{k}.0.", ch, False)])
            chans.append(ch)
            ds *= 2
    middle = [res("middle_block.0.", ch, ch), attn("middle_block.1.", ch, heads_for(c, ch, False)),
              res("middle_block.2.", ch, ch)]
    outputs = []
    for level in reversed(range(L)):
        for j in range(nrb + 1):
            k = len(outputs)
            ich = chans.pop()
            seq = [res(f"output_blocks.{k}.0.", ch + ich, c["mult"][level] * mc)]
            ch = c["mult"][level] * mc
            if ds in c["attn_ds"]:
                seq.append(attn(f"output_blocks.{k}.{len(seq)}.", ch, heads_for(c, ch, True)))
            if level and j == nrb:
                p = f"output_blocks.{k}.{len(seq)}."
                seq.append(res(p, ch, ch, up=True) if c["updown"] else resample(p, ch, True))
                ds //= 2
            outputs.append(seq)
    out_ch = 2 * c["in_ch"] if c["sigma"] else c["in_ch"]
    layer("out.0", [ch], ch)
    layer("out.2", [out_ch, ch, 3, 3], out_ch)
    return names, inputs, middle, outputs


def forward(c, P, prog, x, t):
    inputs, middle, outputs = prog
    mc = c["mc"]

    def gn(p, h):
        return F.group_norm(h, 32, P[p + ".weight"], P[p + ".bias"], eps=1e-5)

    def cv(p, h, stride=1, pad=1):
        return F.conv2d(h, P[p + ".weight"], P[p + ".bias"], stride=stride, padding=pad)

    def updown(h, up):
        return F.interpolate(h, scale_factor=2.0, mode="nearest") if up else F.avg_pool2d(h, 2)

    def resb(m, h, emb):
        _, p, cin, cout, up, down = m
        y = F.silu(gn(p + "in_layers.0", h))
        if up or down:
            y, h = updown(y, up), updown(h, up)
        y = cv(p + "in_layers.2", y)
        eo = F.linear(F.silu(emb), P[p + "emb_layers.1.weight"], P[p + "emb_layers.1.bias"])[:, :, None, None]
        if c["ss"]:
            scale, shift = eo.chunk(2, dim=1)
            y = gn(p + "out_layers.0", y) * (1 + scale) + shift
        else:
            y = gn(p + "out_layers.0", y + eo)
        y = cv(p + "out_layers.3", F.silu(y))
        if p + "skip_connection.weight" in P:
            h = cv(p + "skip_connection", h, pad=0)
        return h + y

    def att(m, h):
        _, p, ch, heads = m
        b, _, hh, ww = h.shape
        T, d = hh * ww, ch // heads
        qkv = F.conv1d(gn(p + "norm", h).reshape(b, ch, T), P[p + "qkv.weight"], P[p + "qkv.bias"])
        if c["new_order"]:
            q, k, v = [z.reshape(b * heads, d, T) for z in qkv.chunk(3, dim=1)]
        else:
            q, k, v = qkv.reshape(b * heads, 3 * d, T).split(d, dim=1)
        s = 1 / math.sqrt(math.sqrt(d))
        w = torch.softmax(torch.einsum("bct,bcs->bts", q * s, k * s), dim=-1)
        a = torch.einsum("bts,bcs->bct", w, v).reshape(b, ch, T)
        o = F.conv1d(a, P[p + "proj_out.weight"], P[p + "proj_out.bias"])
        return h + o.reshape(b, ch, hh, ww)

    def seq(ms, h, emb):
        for m in ms:
            if m[0] == "res":
                h = resb(m, h, emb)
            elif m[0] == "attn":
                h = att(m, h)
            elif m[0] == "down":
                h = cv(m[1] + "op", h, stride=2) if c["conv"] else F.avg_pool2d(h, 2)
            else:
                h = F.interpolate(h, scale_factor=2.0, mode="nearest")
                if c["conv"]:
                    h = cv(m[1] + "conv", h)
        return h

    # the embedding as the reference computes it, in float32: [cos, sin], f_i = exp(-ln(1e4) i / half)
    half = mc // 2
    f = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    e = t.float()[:, None] * f[None]
    emb = torch.cat([torch.cos(e), torch.sin(e)], dim=1).to(x.dtype)
    emb = F.linear(emb, P["time_embed.0.weight"], P["time_embed.0.bias"])
    emb = F.linear(F.silu(emb), P["time_embed.2.weight"], P["time_embed.2.bias"])
    hs = [cv("input_blocks.0.0", x)]
    for ms in inputs:
        hs.append(seq(ms, hs[-1], emb))
    h = seq(middle, hs[-1], emb)
    for ms in outputs:
        h = seq(ms, torch.cat([h, hs.pop()], dim=1), emb)
    return cv("out.2", F.silu(gn("out.0", h)))


def main():
    out = {}
    for n, c in enumerate(CONFIGS):
        names, *prog = build(c)
        P = {}
        for k, (name, shape) in enumerate(names):
            P[name] = param_value(k, name, shape).to(torch.float64).requires_grad_(True)
        g = torch.Generator().manual_seed(100 + n)
        x = torch.randn(2, c["in_ch"], c["res"], c["res"], generator=g).to(torch.float32)
        t = torch.tensor(c["t"], dtype=torch.float32)
        xd = x.to(torch.float64).requires_grad_(True)
        y = forward(c, P, prog, xd, t)
        R = torch.randn(y.shape, generator=g).to(torch.float32)
        (y * R.to(torch.float64)).sum().backward()
        p = c["name"] + "."
        out[p + "x"] = x
        out[p + "t"] = t
        out[p + "y"] = y.detach().to(torch.float32)
        out[p + "R"] = R
        out[p + "dx"] = xd.grad.to(torch.float32)
        out[p + "n_params"] = torch.tensor([len(names), sum(math.prod(s) for _, s in names)], dtype=torch.int64)
        for name in GRADS:
            if name in P:
                out[p + "grad." + name] = P[name].grad.to(torch.float32)
    # the parameter names in registration order, to compare key by key
    meta = {c["name"] + ".names": ",".join(name for name, _ in build(c)[0]) for c in CONFIGS}
    save("adm_unet.safetensors", out, meta)


if __name__ == "__main__":
    main()
