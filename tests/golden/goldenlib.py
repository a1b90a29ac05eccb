"""goldenlib.py — helpers for the scripts that write the golden files the C tests compare with.

Run the generator scripts with Debian's interpreter (/usr/bin/python3, which has python3-torch).
Files are written in the safetensors layout by hand (8-byte header length, JSON header, raw
little-endian data), so no extra Python package is needed.
"""
import json
import struct

import torch

DTYPES = {torch.float32: "F32", torch.int64: "I64", torch.int32: "I32", torch.float16: "F16",
          torch.bfloat16: "BF16", torch.float64: "F64"}


def save(path, tensors, metadata=None):
    """tensors: dict name -> torch.Tensor (contiguous copies are taken); metadata: dict str -> str."""
    header = {}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        if t.dtype == torch.bfloat16:
            raw = t.view(torch.int16).numpy().tobytes()
        else:
            raw = t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hjson = json.dumps(header, separators=(",", ":")).encode()
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)
