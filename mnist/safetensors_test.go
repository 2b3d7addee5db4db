package mnist

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/internal/safetensors"
)

// randomWeights returns weights with reproducible random values.
func randomWeights(seed uint64) *Weights {
	r := rand.New(rand.NewPCG(seed, 1))
	w := NewZeroWeights()
	for _, s := range layout {
		for i := range w.Tensors[s.Name] {
			w.Tensors[s.Name][i] = float32(r.NormFloat64() * 0.1)
		}
	}
	return w
}

func TestWeightsRoundTrip(t *testing.T) {
	w := randomWeights(1)
	w.Metadata = map[string]string{"model_version": "r3", "format": "overridden"}
	var buf bytes.Buffer
	require.NoError(t, w.Encode(&buf))
	assert.Equal(t, 4*NumParams, buf.Len()-8-int(binary.LittleEndian.Uint64(buf.Bytes())), "data section holds exactly the parameters")

	got, err := DecodeWeights(buf.Bytes())
	require.NoError(t, err)
	assert.Equal(t, w.Tensors, got.Tensors)
	assert.Equal(t, "r3", got.Metadata["model_version"])
	assert.Equal(t, "pt", got.Metadata["format"], "standard keys keep their standard values")
	assert.Equal(t, "0.1307", got.Metadata["normalization_mean"])
	assert.Equal(t, "0.3081", got.Metadata["normalization_std"])
	assert.Contains(t, got.Metadata["input"], "bright ink on dark")

	// Tensors are written in Layout (state_dict) order.
	tensors, _, err := safetensors.Decode(buf.Bytes())
	require.NoError(t, err)
	for i, s := range layout {
		assert.Equal(t, s.Name, tensors[i].Name)
		assert.Equal(t, s.Shape, tensors[i].Shape)
	}

	path := filepath.Join(t.TempDir(), "w.safetensors")
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	fromFile, err := LoadWeightsFile(path)
	require.NoError(t, err)
	assert.Equal(t, w.Tensors, fromFile.Tensors)
}

func TestWeightsValidate(t *testing.T) {
	require.NoError(t, NewZeroWeights().Validate())
	tests := []struct {
		name   string
		mutate func(w *Weights)
		tensor string
		msg    string
	}{
		{"missing", func(w *Weights) { delete(w.Tensors, "fc1.bias") }, "fc1.bias", "missing"},
		{"extra", func(w *Weights) { w.Tensors["fc3.weight"] = []float32{1} }, "fc3.weight", "unexpected"},
		{"wrong length", func(w *Weights) { w.Tensors["conv2.bias"] = make([]float32, 21) }, "conv2.bias", "has 21 values, want 20"},
		{"NaN", func(w *Weights) { w.Tensors["fc2.weight"][7] = float32(math.NaN()) }, "fc2.weight", "value 7 is NaN"},
		{"Inf", func(w *Weights) { w.Tensors["conv1.weight"][0] = float32(math.Inf(-1)) }, "conv1.weight", "value 0 is -Inf"},
		{"nil tensors", func(w *Weights) { w.Tensors = nil }, "conv1.weight", "no tensors"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewZeroWeights()
			tt.mutate(w)
			err := w.Validate()
			require.ErrorIs(t, err, ErrInvalidWeights)
			var we *WeightsError
			require.ErrorAs(t, err, &we)
			assert.Equal(t, tt.tensor, we.Tensor)
			assert.Contains(t, err.Error(), tt.msg)
			var buf bytes.Buffer
			require.ErrorIs(t, w.Encode(&buf), ErrInvalidWeights)
			assert.Zero(t, buf.Len(), "invalid weights are never written")
		})
	}
}

func TestDecodeWeightsRejects(t *testing.T) {
	layoutTensors := func() []safetensors.Tensor {
		w := randomWeights(2)
		ts := make([]safetensors.Tensor, len(layout))
		for i, s := range layout {
			ts[i] = safetensors.Tensor{Name: s.Name, Shape: s.Shape, Data: w.Tensors[s.Name]}
		}
		return ts
	}
	encode := func(t *testing.T, ts []safetensors.Tensor, md map[string]string) []byte {
		var buf bytes.Buffer
		require.NoError(t, safetensors.Encode(&buf, ts, md))
		return buf.Bytes()
	}
	tests := []struct {
		name   string
		edit   func([]safetensors.Tensor) []safetensors.Tensor
		md     map[string]string
		tensor string
		msg    string
	}{
		{"missing tensor", func(ts []safetensors.Tensor) []safetensors.Tensor { return ts[:7] }, nil, "fc2.bias", "missing"},
		{"extra tensor", func(ts []safetensors.Tensor) []safetensors.Tensor {
			return append(ts, safetensors.Tensor{Name: "num_batches_tracked", Shape: []int{}, Data: []float32{0}})
		}, nil, "num_batches_tracked", "unexpected"},
		{"wrong shape", func(ts []safetensors.Tensor) []safetensors.Tensor { ts[4].Shape = []int{320, 50}; return ts }, nil, "fc1.weight", "shape [320 50], want [50 320]"},
		{"NaN", func(ts []safetensors.Tensor) []safetensors.Tensor { ts[1].Data[3] = float32(math.NaN()); return ts }, nil, "conv1.bias", "NaN"},
		{"other normalization", func(ts []safetensors.Tensor) []safetensors.Tensor { return ts }, map[string]string{"normalization_mean": "0.5"}, "__metadata__", `normalization_mean is "0.5"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := DecodeWeights(encode(t, tt.edit(layoutTensors()), tt.md))
			require.ErrorIs(t, err, ErrInvalidWeights)
			assert.Nil(t, w)
			var we *WeightsError
			require.ErrorAs(t, err, &we)
			assert.Equal(t, tt.tensor, we.Tensor)
			assert.Contains(t, err.Error(), tt.msg)
		})
	}
	// Format errors keep their own sentinel.
	_, err := DecodeWeights([]byte("not a weights file"))
	require.ErrorIs(t, err, ErrSafetensors)
	assert.NotErrorIs(t, err, ErrInvalidWeights)
	// Metadata without normalization keys (plain PyTorch files) is fine.
	_, err = DecodeWeights(encode(t, layoutTensors(), map[string]string{"format": "pt"}))
	require.NoError(t, err)
}

func TestLoadWeightsFileErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := LoadWeightsFile(filepath.Join(dir, "missing.safetensors"))
	require.ErrorIs(t, err, os.ErrNotExist)

	big := filepath.Join(dir, "big.safetensors")
	require.NoError(t, os.WriteFile(big, make([]byte, 4*NumParams+1<<20+1), 0o644))
	_, err = LoadWeightsFile(big)
	require.ErrorIs(t, err, ErrSafetensors)
	assert.Contains(t, err.Error(), "too large")

	bad := filepath.Join(dir, "bad.safetensors")
	require.NoError(t, os.WriteFile(bad, []byte{1, 0, 0, 0, 0, 0, 0, 0, '{'}, 0o644))
	_, err = LoadWeightsFile(bad)
	require.ErrorIs(t, err, ErrSafetensors)
	assert.Contains(t, err.Error(), bad)
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWeightsEncodeWriterError(t *testing.T) {
	err := NewZeroWeights().Encode(failWriter{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "disk full")
}

// torchGolden is testdata/safetensors/torch_seed0.json, written by
// make_golden.py with PyTorch 1.13 next to torch_seed0.safetensors.
type torchGolden struct {
	Tensors map[string]struct {
		Shape []int     `json:"shape"`
		Sum   float64   `json:"sum"`
		First []float32 `json:"first"`
	} `json:"tensors"`
	LogProbabilities [][]float64 `json:"log_probabilities"`
}

// TestDecodeWeightsFromPyTorch reads the state_dict of the seed's model as
// serialized on the PyTorch side (alphabetical tensor order, JSON with
// spaces) and checks every tensor against PyTorch's own sums and values.
func TestDecodeWeightsFromPyTorch(t *testing.T) {
	w, err := LoadWeightsFile(filepath.Join("..", "testdata", "safetensors", "torch_seed0.safetensors"))
	require.NoError(t, err)
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "safetensors", "torch_seed0.json"))
	require.NoError(t, err)
	var g torchGolden
	require.NoError(t, json.Unmarshal(raw, &g))
	require.Len(t, g.Tensors, len(layout))
	for _, s := range layout {
		want, ok := g.Tensors[s.Name]
		require.True(t, ok, s.Name)
		assert.Equal(t, s.Shape, want.Shape, s.Name)
		data := w.Tensors[s.Name]
		assert.Equal(t, want.First, data[:3], s.Name)
		var sum float64
		for _, v := range data {
			sum += float64(v)
		}
		assert.InDelta(t, want.Sum, sum, 1e-9, s.Name)
	}
	assert.Equal(t, "pt", w.Metadata["format"])
}

// TestSafetensorsReadableByPython is how the Go writer was checked against
// the format's other implementations: a file written by Weights.Encode is read
// with numpy alone (header length, JSON header, np.frombuffer of each
// [begin, end) slice as '<f4', reshaped), compared value for value with what
// Go wrote, and loaded with torch via model.load_state_dict(strict=True) into
// the seed's MNIST_Model. It needs Debian's /usr/bin/python3 with
// python3-numpy (and python3-torch for the torch half); where they are
// missing it skips, and the golden-file test above still covers PyTorch
// compatibility in the other direction.
func TestSafetensorsReadableByPython(t *testing.T) {
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import numpy").Run(); err != nil {
		t.Skipf("%s with numpy is not available: %v", python, err)
	}
	w := randomWeights(3)
	dir := t.TempDir()
	stPath := filepath.Join(dir, "go.safetensors")
	var buf bytes.Buffer
	require.NoError(t, w.Encode(&buf))
	require.NoError(t, os.WriteFile(stPath, buf.Bytes(), 0o644))
	want := map[string][]float32{}
	for k, v := range w.Tensors {
		want[k] = v
	}
	wantJSON, err := json.Marshal(want)
	require.NoError(t, err)
	wantPath := filepath.Join(dir, "want.json")
	require.NoError(t, os.WriteFile(wantPath, wantJSON, 0o644))

	script := `
import json, struct, sys
import numpy as np
path, want_path = sys.argv[1], sys.argv[2]
b = open(path, "rb").read()
(n,) = struct.unpack("<Q", b[:8])
assert n % 8 == 0, "header not padded to 8"
header = json.loads(b[8:8+n].decode("utf-8"))
data = b[8+n:]
meta = header.pop("__metadata__")
assert meta["format"] == "pt", meta
want = json.load(open(want_path))
assert set(header) == set(want), (sorted(header), sorted(want))
end = 0
for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
    s, e = info["data_offsets"]
    assert info["dtype"] == "F32" and s == end, (name, info)
    end = e
    arr = np.frombuffer(data[s:e], dtype="<f4").reshape(info["shape"])
    exp = np.array(want[name], dtype=np.float32).reshape(info["shape"])
    assert np.array_equal(arr, exp), name
assert end == len(data), "trailing bytes"
try:
    import torch, torch.nn as nn
except ImportError:
    print("numpy-ok torch-missing"); sys.exit(0)
class MNIST_Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)
sd = {}
for name, info in header.items():
    s, e = info["data_offsets"]
    sd[name] = torch.from_numpy(np.frombuffer(data[s:e], dtype="<f4").reshape(info["shape"]).copy())
MNIST_Model().load_state_dict(sd, strict=True)
print("numpy-ok torch-ok")
`
	out, err := exec.Command(python, "-c", script, stPath, wantPath).CombinedOutput()
	require.NoError(t, err, "python said:\n%s", out)
	assert.True(t, strings.HasPrefix(string(out), "numpy-ok"), string(out))
	t.Logf("python: %s", strings.TrimSpace(string(out)))
}
