#!/usr/bin/env python3
"""Test accuracy of a Go-written MNIST weights file, measured in PyTorch.

Usage: torch_accuracy.py WEIGHTS.safetensors MNIST_DATA_DIR

Loads the safetensors file (parsed with numpy: 8-byte little-endian header
length, JSON header, raw little-endian float32 data) into the seed's
MNIST_Model with load_state_dict(strict=True) and prints one JSON object
with the accuracy on the 10,000 MNIST test images (eval mode, inputs
normalised with mean 0.1307 and std 0.3081).
"""
import gzip
import json
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class MNIST_Model(nn.Module):  # the seed's architecture
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = x.view(-1, 320)
        x = F.relu(self.fc1(x))
        x = F.dropout(x, training=self.training)
        return F.log_softmax(self.fc2(x), dim=1)


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


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic == 2051:
        r, c = struct.unpack(">II", data[8:16])
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, 1, r, c)
    return np.frombuffer(data, np.uint8, offset=8)


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
