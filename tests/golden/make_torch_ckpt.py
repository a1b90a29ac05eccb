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

    # formats that are refused with a message: TorchScript and the pre-1.6 (non-zip) torch.save
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), os.path.join(OUT, "torchscript.pt"))
    torch.save(sd, os.path.join(OUT, "legacy.pt"), _use_new_zipfile_serialization=False)

    write_clip_folder()
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
