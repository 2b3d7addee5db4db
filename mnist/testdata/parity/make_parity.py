#!/usr/bin/env python3
"""Makes the PyTorch parity fixture for the Go MNIST network.

Usage (from this folder, with Debian's python3-torch and python3-numpy):

    /usr/bin/python3 make_parity.py WEIGHTS.safetensors OUT.json

It parses the safetensors file with numpy (no safetensors package needed:
8-byte little-endian header length, JSON header, raw little-endian data),
loads it into the seed's MNIST_Model with load_state_dict(strict=True), and
runs the model in eval mode on 8 inputs: the first 4 images of the MNIST
test subset (../../../testdata/mnist/t10k-images-idx3-ubyte.gz) and 4
random images from numpy's generator seeded with 1234. It writes the inputs
(784 bytes each, MNIST format: ink bright on dark) and PyTorch's
log-probabilities to OUT.json. The weights files here are written by the Go
code, so a successful load also checks the Go -> PyTorch direction.
"""
import gzip
import json
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class MNIST_Model(nn.Module):
    """The seed's model, verbatim."""

    def __init__(self):
        super(MNIST_Model, self).__init__()
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
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", (name, info["dtype"])
        begin, end = info["data_offsets"]
        arr = np.frombuffer(data[begin:end], dtype="<f4").reshape(info["shape"])
        tensors[name] = torch.from_numpy(arr.copy())
    return tensors, meta


def test_images(n):
    with gzip.open("../../../testdata/mnist/t10k-images-idx3-ubyte.gz", "rb") as f:
        raw = f.read()
    magic, count, rows, cols = struct.unpack(">IIII", raw[:16])
    assert magic == 0x803 and rows == 28 and cols == 28
    return np.frombuffer(raw[16 : 16 + n * 784], dtype=np.uint8).reshape(n, 784)


def main():
    weights, out = sys.argv[1], sys.argv[2]
    tensors, meta = load_safetensors(weights)
    torch.set_num_threads(1)
    model = MNIST_Model()
    model.load_state_dict(tensors, strict=True)
    model.eval()
    rng = np.random.default_rng(1234)
    rand = (rng.random((4, 784)) < 0.25) * rng.integers(0, 256, (4, 784))
    inputs = np.concatenate([test_images(4), rand.astype(np.uint8)])
    x = torch.from_numpy(inputs.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    x = (x - 0.1307) / 0.3081
    with torch.no_grad():
        logp = model(x).numpy().astype(np.float64)
    json.dump(
        {
            "weights": weights,
            "torch_version": torch.__version__,
            "inputs": inputs.astype(int).tolist(),
            "log_probs": logp.tolist(),
        },
        open(out, "w"),
    )
    print(f"{out}: {len(inputs)} inputs, labels {logp.argmax(1).tolist()}")


if __name__ == "__main__":
    main()
