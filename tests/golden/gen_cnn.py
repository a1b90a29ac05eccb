"""gen_cnn.py — golden values for the reference CNN (src/nn/cnn.c): forward logits, loss and
every gradient (parameters and input) from PyTorch, for small widths so the file stays small.

Run: /usr/bin/python3 tests/golden/gen_cnn.py   (writes tests/golden/cnn.safetensors)
Cases (prefix.): bin = 2 images 1x16x16, one logit, BCE with logits;
                 mc  = 2 images 3x12x12, 3 classes, cross-entropy;
                 odd = 3 images 1x11x9 (pooling floors odd sizes), one logit, BCE.
Widths: conv 4/8/16, hidden 32 (the C model takes widths as parameters; defaults 32/64/128/512).
Also stores the parameter shapes of the default-width model for a 1x32x32 binary input.
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import goldenlib  # noqa: E402


class CNN(nn.Module):
    """The reference experiment's CNN with configurable widths."""

    def __init__(self, in_c, h, w, n_out, c1=32, c2=64, c3=128, hidden=512):
        super().__init__()
        self.conv1 = nn.Conv2d(in_c, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.conv3 = nn.Conv2d(c2, c3, 3, padding=1)
        fh, fw = h // 2 // 2 // 2, w // 2 // 2 // 2
        self.fc1 = nn.Linear(c3 * fh * fw, hidden)
        self.fc2 = nn.Linear(hidden, n_out)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.max_pool2d(F.relu(self.conv3(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


def case(prefix, n, c, h, w, n_out, out):
    model = CNN(c, h, w, n_out, 4, 8, 16, 32)
    # Larger than default init so that the ReLUs and max-pools see varied values.
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2.0)
    x = (torch.rand(n, c, h, w) * 2 - 1).requires_grad_(True)
    if n_out == 1:
        labels = torch.tensor([i % 2 for i in range(n)], dtype=torch.int64)
        logits = model(x)
        loss = F.binary_cross_entropy_with_logits(logits.squeeze(1), labels.float())
    else:
        labels = torch.tensor([i % n_out for i in range(n)], dtype=torch.int64)
        logits = model(x)
        loss = F.cross_entropy(logits, labels)
    loss.backward()
    out[prefix + "x"] = x.detach()
    out[prefix + "labels"] = labels
    out[prefix + "logits"] = logits.detach()
    out[prefix + "loss"] = loss.detach().reshape(1)
    out[prefix + "grad.x"] = x.grad
    for name, p in model.named_parameters():
        out[prefix + name] = p.detach()
        out[prefix + "grad." + name] = p.grad


def main():
    torch.manual_seed(0)
    out = {}
    case("bin.", 2, 1, 16, 16, 1, out)
    case("mc.", 2, 3, 12, 12, 3, out)
    case("odd.", 3, 1, 11, 9, 1, out)
    ref = CNN(1, 32, 32, 1)
    for name, p in ref.named_parameters():
        out["default_shape." + name] = torch.tensor(list(p.shape), dtype=torch.int64)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cnn.safetensors")
    goldenlib.save(path, out, {"generator": "gen_cnn.py", "torch": torch.__version__})
    print("wrote", path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
