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
)

// craftSafetensors assembles a file from a raw header string and data bytes,
// so tests can produce every malformation.
func craftSafetensors(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func f32bytes(vals ...float32) []byte {
	var b []byte
	for _, v := range vals {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func TestSafetensorsRoundTrip(t *testing.T) {
	in := []Tensor{
		{Name: "b", Shape: []int{2, 3}, Data: []float32{1, -2, 3.5, float32(math.Inf(1)), 0, -0.25}},
		{Name: "a.scalar", Shape: []int{}, Data: []float32{42}},
		{Name: "empty", Shape: []int{0, 4}, Data: []float32{}},
		{Name: "nan", Shape: []int{1}, Data: []float32{float32(math.NaN())}},
	}
	md := map[string]string{"format": "pt", "note": `quotes " and <html> & ünïcode`}
	var buf bytes.Buffer
	require.NoError(t, EncodeSafetensors(&buf, in, md))
	b := buf.Bytes()

	hlen := binary.LittleEndian.Uint64(b)
	assert.Zero(t, hlen%8, "header padded to a multiple of 8")
	assert.Equal(t, byte('{'), b[8])
	assert.True(t, json.Valid(b[8:8+hlen]))

	out, gotMD, err := DecodeSafetensors(b)
	require.NoError(t, err)
	assert.Equal(t, md, gotMD)
	require.Len(t, out, len(in))
	for i := range in {
		assert.Equal(t, in[i].Name, out[i].Name)
		assert.Equal(t, in[i].Shape, out[i].Shape)
		require.Len(t, out[i].Data, len(in[i].Data))
		for j := range in[i].Data {
			assert.Equal(t, math.Float32bits(in[i].Data[j]), math.Float32bits(out[i].Data[j]), "%s[%d] bit-exact", in[i].Name, j)
		}
	}

	// No metadata: the key is omitted, and decoding gives nil metadata.
	buf.Reset()
	require.NoError(t, EncodeSafetensors(&buf, in[:1], nil))
	assert.NotContains(t, buf.String(), "__metadata__")
	_, gotMD, err = DecodeSafetensors(buf.Bytes())
	require.NoError(t, err)
	assert.Nil(t, gotMD)
}

func TestEncodeSafetensorsRejects(t *testing.T) {
	tests := []struct {
		name    string
		tensors []Tensor
		wantMsg string
	}{
		{"empty name", []Tensor{{Name: "", Shape: []int{1}, Data: []float32{1}}}, "empty name"},
		{"reserved name", []Tensor{{Name: "__metadata__", Shape: []int{1}, Data: []float32{1}}}, "reserved"},
		{"duplicate", []Tensor{{Name: "x", Shape: []int{1}, Data: []float32{1}}, {Name: "x", Shape: []int{1}, Data: []float32{1}}}, `"x" appears twice`},
		{"too few values", []Tensor{{Name: "x", Shape: []int{2, 2}, Data: []float32{1, 2, 3}}}, "has 3 values but shape [2 2] needs 4"},
		{"negative dim", []Tensor{{Name: "x", Shape: []int{-1}, Data: nil}}, "negative dimension"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := EncodeSafetensors(&buf, tt.tensors, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantMsg)
			assert.Zero(t, buf.Len(), "nothing written on error")
		})
	}
}

func TestDecodeSafetensorsMalformed(t *testing.T) {
	two := f32bytes(1, 2)
	tests := []struct {
		name    string
		file    []byte
		wantMsg string
		tensor  string
	}{
		{"empty", nil, "truncated file: 0 bytes", ""},
		{"short length", []byte{1, 2, 3}, "truncated file: 3 bytes", ""},
		{"header too large", binary.LittleEndian.AppendUint64(nil, 200<<20), "header too large: 209715200 bytes", ""},
		{"header length beyond file", append(binary.LittleEndian.AppendUint64(nil, 64), "{}"...), "header length 64 goes beyond the end of the 10-byte file", ""},
		{"not an object", craftSafetensors(`[1,2]   `, nil), "does not start with '{'", ""},
		{"malformed JSON", craftSafetensors(`{"a": {"dtype": "F32",`, nil), "not valid JSON", ""},
		{"trailing JSON", craftSafetensors(`{} {}`, nil), "unexpected content after", ""},
		{"duplicate key", craftSafetensors(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, two), `names "a" twice`, ""},
		{"metadata not strings", craftSafetensors(`{"__metadata__":{"n":1}}`, nil), "__metadata__ must map strings to strings", ""},
		{"unknown field", craftSafetensors(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}}`, two[:4]), "malformed entry", "a"},
		{"dtype F64", craftSafetensors(`{"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}`, two), `dtype "F64" is not supported`, "w"},
		{"no dtype", craftSafetensors(`{"w":{"shape":[1],"data_offsets":[0,4]}}`, two[:4]), "no dtype", "w"},
		{"no shape", craftSafetensors(`{"w":{"dtype":"F32","data_offsets":[0,4]}}`, two[:4]), "no shape", "w"},
		{"negative shape", craftSafetensors(`{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, two[:4]), "invalid dimension -1", "w"},
		{"huge shape", craftSafetensors(`{"w":{"dtype":"F32","shape":[100000,100000],"data_offsets":[0,4]}}`, two[:4]), "larger than the file's 4 data bytes", "w"},
		{"offsets not a pair", craftSafetensors(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}}`, two[:4]), "data_offsets must be [begin, end]", "w"},
		{"negative offset", craftSafetensors(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, two[:4]), "malformed entry", "w"},
		{"offsets reversed", craftSafetensors(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}`, two), "end before they begin", "w"},
		{"shape/offset mismatch", craftSafetensors(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, two[:4]), "shape [2] needs 8 bytes of F32 but data_offsets [0, 4] span 4", "w"},
		{"offsets outside data", craftSafetensors(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, two[:4]), "go beyond the 4 data bytes", "w"},
		{"gap at start", craftSafetensors(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, two), "gap: data begins at 4", "w"},
		{"gap between", craftSafetensors(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, f32bytes(1, 2, 3)), "gap: data begins at 8 but the previous tensor ends at 4", "b"},
		{"overlap", craftSafetensors(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, two), "overlap", "b"},
		{"trailing bytes", craftSafetensors(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, two), "4 unexpected bytes after the last tensor", ""},
		{"data but no tensors", craftSafetensors(`{}`, two), "8 unexpected bytes", ""},
		{"truncated data", craftSafetensors(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, two[:6]), "go beyond the 6 data bytes", "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tensors, md, err := DecodeSafetensors(tt.file)
			require.Error(t, err)
			assert.Nil(t, tensors)
			assert.Nil(t, md)
			assert.ErrorIs(t, err, ErrSafetensors)
			var se *SafetensorsError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tt.tensor, se.Tensor)
			assert.Contains(t, err.Error(), tt.wantMsg)
		})
	}
}

func TestDecodeSafetensorsTensorOrderFollowsData(t *testing.T) {
	file := craftSafetensors(`{"z":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}, "a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}      `, f32bytes(1, 2))
	tensors, _, err := DecodeSafetensors(file)
	require.NoError(t, err)
	require.Len(t, tensors, 2)
	assert.Equal(t, Tensor{Name: "z", Shape: []int{1}, Data: []float32{1}}, tensors[0])
	assert.Equal(t, Tensor{Name: "a", Shape: []int{1}, Data: []float32{2}}, tensors[1])
}

// randomWeights returns weights with reproducible random values.
func randomWeights(seed uint64) *Weights {
	r := rand.New(rand.NewPCG(seed, 1))
	w := NewZeroWeights()
	for _, s := range Layout {
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
	tensors, _, err := DecodeSafetensors(buf.Bytes())
	require.NoError(t, err)
	for i, s := range Layout {
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
	layoutTensors := func() []Tensor {
		w := randomWeights(2)
		ts := make([]Tensor, len(Layout))
		for i, s := range Layout {
			ts[i] = Tensor{Name: s.Name, Shape: s.Shape, Data: w.Tensors[s.Name]}
		}
		return ts
	}
	encode := func(t *testing.T, ts []Tensor, md map[string]string) []byte {
		var buf bytes.Buffer
		require.NoError(t, EncodeSafetensors(&buf, ts, md))
		return buf.Bytes()
	}
	tests := []struct {
		name   string
		edit   func([]Tensor) []Tensor
		md     map[string]string
		tensor string
		msg    string
	}{
		{"missing tensor", func(ts []Tensor) []Tensor { return ts[:7] }, nil, "fc2.bias", "missing"},
		{"extra tensor", func(ts []Tensor) []Tensor {
			return append(ts, Tensor{Name: "num_batches_tracked", Shape: []int{}, Data: []float32{0}})
		}, nil, "num_batches_tracked", "unexpected"},
		{"wrong shape", func(ts []Tensor) []Tensor { ts[4].Shape = []int{320, 50}; return ts }, nil, "fc1.weight", "shape [320 50], want [50 320]"},
		{"NaN", func(ts []Tensor) []Tensor { ts[1].Data[3] = float32(math.NaN()); return ts }, nil, "conv1.bias", "NaN"},
		{"other normalization", func(ts []Tensor) []Tensor { return ts }, map[string]string{"normalization_mean": "0.5"}, "__metadata__", `normalization_mean is "0.5"`},
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
	require.Len(t, g.Tensors, len(Layout))
	for _, s := range Layout {
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
