"""Writes the PyTorch-side golden files for package mnist's safetensors tests.

Run once from the repository root with Debian's python3-torch and python3-numpy
(the `safetensors` pip package is not needed, and was not available):

    /usr/bin/python3 testdata/safetensors/make_golden.py

It builds the seed's MNIST_Model with torch.manual_seed(0) and writes
  torch_seed0.safetensors  its state_dict, serialized by hand exactly as the
                           safetensors format specifies (u64 LE header length,
                           JSON header padded with spaces to 8 bytes, F32 LE
                           data) -- tensors in alphabetical order and JSON with
                           spaces, unlike the Go writer, so the Go reader is
                           exercised on a layout it did not produce itself;
  torch_seed0.json         per-tensor sums and first values, and the model's
                           eval-mode log-probabilities for the first 10 images
                           of testdata/mnist/t10k-images-idx3-ubyte.gz,
                           normalized with (p/255 - 0.1307) / 0.3081.
"""
import gzip
import json
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


class MNIST_Model(nn.Module):
    """The seed's network (the Hugging Face mnist-adversarial Space)."""

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
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name].detach().numpy().astype("<f4"))
        blob = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    hb = json.dumps(header).encode("utf-8")
    hb += b" " * (-len(hb) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)


def main():
    torch.manual_seed(0)
    model = MNIST_Model().eval()
    sd = model.state_dict()
    write_safetensors(os.path.join(HERE, "torch_seed0.safetensors"), sd, {"format": "pt"})

    with gzip.open(os.path.join(ROOT, "testdata", "mnist", "t10k-images-idx3-ubyte.gz")) as f:
        raw = f.read()
    magic, n, rows, cols = struct.unpack(">IIII", raw[:16])
    assert magic == 0x803 and rows == 28 and cols == 28
    pix = np.frombuffer(raw, dtype=np.uint8, offset=16, count=10 * 784).reshape(10, 1, 28, 28)
    x = (torch.from_numpy(pix.astype(np.float32)) / 255.0 - 0.1307) / 0.3081
    with torch.no_grad():
        logp = model(x)

    golden = {
        "torch_version": torch.__version__,
        "seed": 0,
        "tensors": {k: {"shape": list(v.shape), "sum": float(v.double().sum()),
                        "first": [float(t) for t in v.flatten()[:3]]} for k, v in sd.items()},
        "inputs": "first 10 images of testdata/mnist/t10k-images-idx3-ubyte.gz",
        "log_probabilities": [[float(t) for t in row] for row in logp],
    }
    with open(os.path.join(HERE, "torch_seed0.json"), "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
