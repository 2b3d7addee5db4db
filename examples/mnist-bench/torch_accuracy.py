#!/usr/bin/env python3
"""Test accuracy of a Go-written MNIST weights file, measured in PyTorch.

Usage: torch_accuracy.py WEIGHTS.safetensors MNIST_DATA_DIR

Loads the safetensors file (parsed with numpy: 8-byte little-endian header
length, JSON header, raw little-endian float32 data) into the seed's
MNIST_Model with load_state_dict(strict=True) and prints one JSON object
with the accuracy on the 10,000 MNIST test images (eval mode, inputs
normalised with mean 0.1307 and std 0.3081).
"""
import json
import struct
import sys

import numpy as np
import torch

# The anchor next to this file: the seed's MNIST_Model and its IDX reader.
from torch_baseline import MNIST_Model, idx


def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", (name, info["dtype"])
        begin, end = info["data_offsets"]
        arr = np.frombuffer(data[begin:end], dtype="<f4").reshape(info["shape"])
        out[name] = torch.tensor(arr.copy())
    return out


def main():
    weights, data = sys.argv[1], sys.argv[2]
    m = MNIST_Model()
    m.load_state_dict(load_safetensors(weights), strict=True)
    m.eval()
    x = torch.tensor(idx(f"{data}/t10k-images-idx3-ubyte.gz"), dtype=torch.float32) / 255
    y = torch.tensor(idx(f"{data}/t10k-labels-idx1-ubyte.gz").astype(np.int64))
    with torch.no_grad():
        pred = m((x - 0.1307) / 0.3081).argmax(1)
    correct = int((pred == y).sum())
    print(json.dumps({"weights": weights, "framework": f"torch {torch.__version__}",
                      "correct": correct, "total": len(y), "test_acc": correct / len(y)}))


if __name__ == "__main__":
    main()
