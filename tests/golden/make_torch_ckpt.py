"""make_torch_ckpt.py — tiny PyTorch checkpoints for tests/test_torch_ckpt.c, written by torch.save
itself (zip archives), plus hand-made hostile ones in the same container.

Every value is a small formula the C test repeats (arange-based), so the test needs no Python.
Run: /usr/bin/python3 make_torch_ckpt.py   (Debian's python3-torch; writes torch/*.pt* here)
"""
import collections
import io
import json
import os
import struct
import pickle
import zipfile

import torch

from gen_unet import build_names, param_value

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch")

# the tiny UNet of the UNet test (one level, attention only in the middle): torch_unet.yml
UNET = dict(in_ch=1, out_ch=1, ch=32, mult=[1], nrb=1, attn=[], res=8, conv=True)


def small_state_dict():
    """conv.weight (2,1,2,2) = arange/10, conv.bias (2) = [-1, 1], fc.weight (3,2) = arange - 2,
    steps (int64 buffer) = 7."""
    sd = collections.OrderedDict()
    sd["conv.weight"] = torch.arange(8, dtype=torch.float32).reshape(2, 1, 2, 2) / 10
    sd["conv.bias"] = torch.tensor([-1.0, 1.0])
    sd["fc.weight"] = torch.arange(6, dtype=torch.float32).reshape(3, 2) - 2
    sd["steps"] = torch.tensor(7, dtype=torch.int64)
    return sd


def save(obj, name):
    torch.save(obj, os.path.join(OUT, name))


def main():
    os.makedirs(OUT, exist_ok=True)
    sd = small_state_dict()
    save(sd, "plain.pt")
    save({"state_dict": sd, "epoch": 3, "lr": 0.5, "name": "run"}, "nested_state_dict.ckpt")
    # both model and ema: the reader takes "model", the first of its nesting keys
    ema = collections.OrderedDict((k, v + 100 if v.is_floating_point() else v) for k, v in sd.items())
    save({"model": sd, "ema": ema, "step": 12}, "nested_model.pth")
    save({"ema": ema, "optimizer": {"param_groups": [{"lr": 0.1}]}}, "nested_ema.bin")
    # the DDIM code's checkpoint layout: [model, optimizer, epoch, step]
    save([collections.OrderedDict(("module." + k, v) for k, v in sd.items()), {"state": {}}, 5, 100], "list_module.pth")

    # half precision: h = arange(6)/4 - 1 as F16, b = arange(6)/8 + 0.5 as BF16 (exact in both)
    save({"h": torch.arange(6, dtype=torch.float32).reshape(2, 3).div(4).sub(1).half(),
          "b": (torch.arange(6, dtype=torch.float32) / 8 + 0.5).bfloat16()}, "half.pt")

    # views of one storage: base = arange(12); a = base[2:6], m = base[4:12] as (2,4),
    # t = base[0:6] as (2,3) transposed (3,2) — a strided view — and an F16 view at offset 3
    base = torch.arange(12, dtype=torch.float32)
    hb = torch.arange(10, dtype=torch.float16)
    save(collections.OrderedDict([("a", base[2:6]), ("m", base[4:12].view(2, 4)), ("t", base[0:6].view(2, 3).t()),
                                  ("h", hb[3:7])]), "views.pt")

    # the tiny UNet, as a DataParallel state dict (what DiffusionCLIP releases)
    names = build_names(UNET)
    unet = collections.OrderedDict(("module." + n, param_value(k, n, s)) for k, (n, s) in enumerate(names))
    save(unet, "unet.pth")

    # TorchScript (torch.jit.save): a module of modules; weight = arange(6)/10 as (3,2), bias = [1,2,3]
    lin = torch.nn.Sequential(collections.OrderedDict([("fc", torch.nn.Linear(2, 3))]))
    with torch.no_grad():
        lin.fc.weight.copy_(torch.arange(6, dtype=torch.float32).reshape(3, 2) / 10)
        lin.fc.bias.copy_(torch.tensor([1.0, 2.0, 3.0]))
    torch.jit.save(torch.jit.trace(lin, torch.zeros(1, 2)), os.path.join(OUT, "torchscript.pt"))
    # the pre-1.6 (non-zip) torch.save format: refused with a message
    torch.save(sd, os.path.join(OUT, "legacy.pt"), _use_new_zipfile_serialization=False)

    write_clip_folder()
    write_openai_clip()
    write_hostile()


def read_safetensors(path):
    """name -> tensor (dtype kept) for the tensors of a safetensors file."""
    dtypes = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64}
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = collections.OrderedDict()
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        out[name] = torch.frombuffer(bytearray(raw[8 + n + a:8 + n + b]), dtype=dtypes[e["dtype"]]).reshape(e["shape"])
    return out


def write_clip_folder():
    """An older Hugging Face CLIP folder: pytorch_model.bin + config.json, with the weights of
    golden/clip_tiny.safetensors in their dtypes (F32, F16, BF16, I64), without the in.* / out.* /
    grad.* tensors that file holds for the CLIP test."""
    d = os.path.join(OUT, "clip_hf")
    os.makedirs(d, exist_ok=True)
    src = read_safetensors(os.path.join(os.path.dirname(OUT), "clip_tiny.safetensors"))
    sd = collections.OrderedDict((k, v) for k, v in src.items() if not k.startswith(("in.", "out.", "grad.")))
    torch.save(sd, os.path.join(d, "pytorch_model.bin"))
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({"architectures": ["CLIPModel"], "projection_dim": 24, "text_config": {"num_attention_heads": 4},
                   "vision_config": {"num_attention_heads": 2, "patch_size": 4}}, f)


# ---- an OpenAI CLIP TorchScript archive (the layout of ViT-B-32.pt), tiny ------------------------

class OpenAIBlock(torch.nn.Module):
    """The attribute names of OpenAI's ResidualAttentionBlock."""

    def __init__(self, w, mlp, heads):
        super().__init__()
        self.attn = torch.nn.MultiheadAttention(w, heads)
        self.ln_1 = torch.nn.LayerNorm(w)
        self.mlp = torch.nn.Sequential(collections.OrderedDict([("c_fc", torch.nn.Linear(w, mlp)),
                                                                ("c_proj", torch.nn.Linear(mlp, w))]))
        self.ln_2 = torch.nn.LayerNorm(w)


class OpenAITransformer(torch.nn.Module):
    def __init__(self, w, mlp, heads, layers):
        super().__init__()
        self.resblocks = torch.nn.Sequential(*[OpenAIBlock(w, mlp, heads) for _ in range(layers)])


class OpenAIVision(torch.nn.Module):
    def __init__(self, w, mlp, heads, layers, patch, tokens, embed):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, w, patch, patch, bias=False)
        self.class_embedding = torch.nn.Parameter(torch.zeros(w))
        self.positional_embedding = torch.nn.Parameter(torch.zeros(tokens, w))
        self.ln_pre = torch.nn.LayerNorm(w)
        self.transformer = OpenAITransformer(w, mlp, heads, layers)
        self.ln_post = torch.nn.LayerNorm(w)
        self.proj = torch.nn.Parameter(torch.zeros(w, embed))


class OpenAICLIP(torch.nn.Module):
    """Only the parameters and their names; the forward exists for tracing."""

    def __init__(self, hf):
        super().__init__()
        vw = hf["vision_model.embeddings.class_embedding"].shape[0]
        tw = hf["text_model.final_layer_norm.weight"].shape[0]
        vm = hf["vision_model.encoder.layers.0.mlp.fc1.weight"].shape[0]
        tm = hf["text_model.encoder.layers.0.mlp.fc1.weight"].shape[0]
        self.vl = sum(1 for k in hf if k.startswith("vision_model.encoder.layers.") and k.endswith(".layer_norm1.weight"))
        self.tl = sum(1 for k in hf if k.startswith("text_model.encoder.layers.") and k.endswith(".layer_norm1.weight"))
        patch = hf["vision_model.embeddings.patch_embedding.weight"].shape[2]
        tokens = hf["vision_model.embeddings.position_embedding.weight"].shape[0]
        embed = hf["visual_projection.weight"].shape[0]
        self.visual = OpenAIVision(vw, vm, 1, self.vl, patch, tokens, embed)
        self.transformer = OpenAITransformer(tw, tm, 1, self.tl)
        self.token_embedding = torch.nn.Embedding(*hf["text_model.embeddings.token_embedding.weight"].shape)
        self.positional_embedding = torch.nn.Parameter(torch.zeros(hf["text_model.embeddings.position_embedding.weight"].shape))
        self.ln_final = torch.nn.LayerNorm(tw)
        self.text_projection = torch.nn.Parameter(torch.zeros(tw, embed))
        self.logit_scale = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return x * self.logit_scale


def openai_names(vl, tl):
    """OpenAI name -> (Hugging Face name, how): how is None (as is), "T" (transposed) or "qkv"
    (the three HF q/k/v tensors stacked along dim 0)."""
    m = {"visual.class_embedding": ("vision_model.embeddings.class_embedding", None),
         "visual.conv1.weight": ("vision_model.embeddings.patch_embedding.weight", None),
         "visual.positional_embedding": ("vision_model.embeddings.position_embedding.weight", None),
         "visual.proj": ("visual_projection.weight", "T"),
         "token_embedding.weight": ("text_model.embeddings.token_embedding.weight", None),
         "positional_embedding": ("text_model.embeddings.position_embedding.weight", None),
         "text_projection": ("text_projection.weight", "T"),
         "logit_scale": ("logit_scale", None)}
    for p in ["weight", "bias"]:
        m["visual.ln_pre." + p] = ("vision_model.pre_layrnorm." + p, None)
        m["visual.ln_post." + p] = ("vision_model.post_layernorm." + p, None)
        m["ln_final." + p] = ("text_model.final_layer_norm." + p, None)
    for src, dst, n in [("visual.transformer", "vision_model.encoder", vl), ("transformer", "text_model.encoder", tl)]:
        for i in range(n):
            a, b = f"{src}.resblocks.{i}.", f"{dst}.layers.{i}."
            for p in ["weight", "bias"]:
                m[a + "ln_1." + p] = (b + "layer_norm1." + p, None)
                m[a + "ln_2." + p] = (b + "layer_norm2." + p, None)
                m[a + "attn.out_proj." + p] = (b + "self_attn.out_proj." + p, None)
                m[a + "mlp.c_fc." + p] = (b + "mlp.fc1." + p, None)
                m[a + "mlp.c_proj." + p] = (b + "mlp.fc2." + p, None)
                m[a + "attn.in_proj_" + p] = (b + "self_attn.{}_proj." + p, "qkv")
    return m


def write_openai_clip():
    """torch/openai_clip.pt: the weights of clip_hf/pytorch_model.bin in OpenAI's names and
    layout (q/k/v stacked, projections transposed), dtypes kept, saved with torch.jit.save."""
    hf = read_safetensors(os.path.join(os.path.dirname(OUT), "clip_tiny.safetensors"))
    model = OpenAICLIP(hf)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, (dst, how) in openai_names(model.vl, model.tl).items():
            if how == "qkv":
                v = torch.cat([hf[dst.format(x)] for x in "qkv"], dim=0)
            else:
                v = hf[dst].t() if how == "T" else hf[dst]
            params[name].data = v.clone()
    assert all(p.dtype != torch.float32 or p.abs().sum() > 0 for p in params.values())
    torch.jit.save(torch.jit.trace(model, torch.zeros(1)), os.path.join(OUT, "openai_clip.pt"))


# ---- hostile archives: the torch.save container with a pickle that asks for more -------------------

class Storage:
    """Pickled as torch.save's persistent id for a storage held in data/<key>."""

    def __init__(self, key, cls, numel):
        self.key, self.cls, self.numel = key, cls, numel


class View:
    """Pickled as torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())."""

    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


class System:
    def __reduce__(self):
        return (os.system, ("echo this-must-never-run",))


class Eval:
    def __reduce__(self):
        import builtins
        return (builtins.eval, ("1+1",))


class TorchLikePickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", obj.cls, obj.key, "cpu", obj.numel)
        return None


def write_archive(name, obj, storages):
    """A zip laid out as torch.save lays it out (stored entries under archive/)."""
    buf = io.BytesIO()
    TorchLikePickler(buf, protocol=2).dump(obj)
    with zipfile.ZipFile(os.path.join(OUT, name), "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        for key, data in storages.items():
            z.writestr("archive/data/" + key, data)
        z.writestr("archive/version", "3\n")


def write_hostile():
    four = torch.arange(4, dtype=torch.float32).numpy().tobytes()
    s = Storage("0", torch.FloatStorage, 4)
    write_archive("hostile_system.pt", {"w": System()}, {})
    write_archive("hostile_eval.pt", collections.OrderedDict([("w", View(s, 0, [4], [1])), ("x", Eval())]), {"0": four})
    # a storage that claims 2^40 elements but holds 16 bytes
    write_archive("hostile_numel.pt", {"w": View(Storage("0", torch.FloatStorage, 2 ** 40), 0, [4], [1])}, {"0": four})
    # a view reaching past the end of its storage
    write_archive("hostile_view.pt", {"w": View(s, 2, [2, 2], [2, 1])}, {"0": four})
    # a storage that is not in the archive
    write_archive("hostile_missing.pt", {"w": View(Storage("9", torch.FloatStorage, 4), 0, [4], [1])}, {"0": four})
    # a broadcast (stride 0) view of 2^30 elements over a 4-element storage
    write_archive("hostile_expand.pt", {"w": View(s, 0, [2 ** 30], [0])}, {"0": four})
    # the same container with a well-formed tensor: the control for the cases above
    write_archive("handmade_ok.pt", {"w": View(s, 1, [3], [1])}, {"0": four})


if __name__ == "__main__":
    main()
