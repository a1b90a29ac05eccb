"""gen_safetensors.py — golden files for tests/test_safetensors.c: every float dtype the reader
converts (F16, BF16, F64) and integer dtypes (I32, I64), each stored next to its exact float32 /
int64 value, plus a DataParallel-style file whose names all start with "module.".

Run with /usr/bin/python3 (needs torch) from tests/golden/.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import goldenlib  # noqa: E402

torch.manual_seed(0)
here = os.path.dirname(os.path.abspath(__file__))

x = torch.randn(3, 5) * 4
tensors = {}
for name, dt in (("f16", torch.float16), ("bf16", torch.bfloat16), ("f64", torch.float64)):
    t = x.to(dt)
    tensors[name] = t
    tensors[name + "_as_f32"] = t.to(torch.float32)   # the value the reader must produce
# half-precision corner cases: subnormals, the largest finite, signed zero
special = torch.tensor([5.96e-8, -5.96e-8, 3.0e-5, 6.1e-5, 65504.0, -0.0, 1.0, -2.5], dtype=torch.float16)
tensors["f16_special"] = special
tensors["f16_special_as_f32"] = special.to(torch.float32)
tensors["f16_inf_nan"] = torch.tensor([float("inf"), float("-inf"), float("nan")], dtype=torch.float16)
tensors["bf16_inf_nan"] = torch.tensor([float("inf"), float("-inf"), float("nan")], dtype=torch.bfloat16)
i32 = torch.tensor([[-2147483648, -1, 0], [1, 7, 2147483647]], dtype=torch.int32)
tensors["i32"] = i32
tensors["i32_as_i64"] = i32.to(torch.int64)
tensors["i64"] = torch.tensor([-(2 ** 62), -3, 0, 5, 2 ** 40], dtype=torch.int64)
tensors["scalar"] = torch.tensor(3.25, dtype=torch.float32)       # 0-d
tensors["empty"] = torch.zeros(2, 0, 3, dtype=torch.float32)      # zero elements
lin = torch.nn.Linear(4, 3)
tensors["module_weight_ref"] = lin.weight.detach().clone()       # values of the file below
tensors["module_bias_ref"] = lin.bias.detach().clone()
goldenlib.save(os.path.join(here, "safetensors_dtypes.safetensors"), tensors,
               {"format": "pt", "note": "dtype conversions"})

# a DataParallel checkpoint: every key carries a "module." prefix
sd = {"module." + k: v for k, v in lin.state_dict().items()}
sd["module.position_ids"] = torch.arange(6, dtype=torch.int64).unsqueeze(0)
goldenlib.save(os.path.join(here, "safetensors_module.safetensors"), sd, {"format": "pt"})
