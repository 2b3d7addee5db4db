package mnist

import (
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"

	"github.com/advspace/advspace/internal/safetensors"
)

// Normalization constants of the model input, x = (p/255 - NormMean) / NormStd,
// the mean and standard deviation of the MNIST training pixels (scaled to
// 0-1), as PyTorch's MNIST example normalizes them.
const (
	NormMean = 0.1307
	NormStd  = 0.3081
)

// Standard metadata that Weights.Encode writes into every weights file.
var standardWeightsMetadata = map[string]string{
	"format":             "pt",
	"normalization_mean": "0.1307",
	"normalization_std":  "0.3081",
	"input":              "1x28x28 grayscale, bright ink on dark, x = (pixel/255 - 0.1307) / 0.3081",
}

// NewZeroWeights returns weights holding every tensor of Layout, all zero,
// with no metadata. Useful as a starting point and in tests.
func NewZeroWeights() *Weights {
	w := &Weights{Tensors: make(map[string][]float32, len(layout))}
	for _, s := range layout {
		n := shapeSize(s.Shape)
		w.Tensors[s.Name] = make([]float32, n)
	}
	return w
}

// Validate checks that w holds exactly the tensors of Layout with the right
// number of values, all finite (a NaN or an infinity means a diverged
// training; such a model must not be served or saved). Errors wrap
// ErrInvalidWeights and name the tensor.
func (w *Weights) Validate() error {
	if w == nil || w.Tensors == nil {
		return &WeightsError{Tensor: layout[0].Name, Msg: "missing (no tensors at all)"}
	}
	for _, s := range layout {
		data, ok := w.Tensors[s.Name]
		if !ok {
			return &WeightsError{Tensor: s.Name, Msg: "missing"}
		}
		n := shapeSize(s.Shape)
		if len(data) != n {
			return &WeightsError{Tensor: s.Name, Msg: fmt.Sprintf("has %d values, want %d for shape %v", len(data), n, s.Shape)}
		}
		for i, v := range data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return &WeightsError{Tensor: s.Name, Msg: fmt.Sprintf("value %d is %v; weights must be finite", i, v)}
			}
		}
	}
	if len(w.Tensors) != len(layout) {
		for _, name := range slices.Sorted(maps.Keys(w.Tensors)) {
			if !slices.ContainsFunc(layout, func(s TensorSpec) bool { return s.Name == name }) {
				return &WeightsError{Tensor: name, Msg: "unexpected: not a tensor of this network"}
			}
		}
	}
	return nil
}

// Encode validates w and writes it as a safetensors file, tensors in Layout
// order with PyTorch's state_dict names and shapes, so that
// model.load_state_dict(safetensors.torch.load_file(path)) works. The
// metadata is w.Metadata plus the standard keys ("format": "pt", the input
// normalization and the input format), which always take their standard
// values because they describe what the network expects.
func (w *Weights) Encode(out io.Writer) error {
	if err := w.Validate(); err != nil {
		return err
	}
	md := make(map[string]string, len(w.Metadata)+len(standardWeightsMetadata))
	maps.Copy(md, w.Metadata)
	maps.Copy(md, standardWeightsMetadata)
	tensors := make([]safetensors.Tensor, len(layout))
	for i, s := range layout {
		tensors[i] = safetensors.Tensor{Name: s.Name, Shape: s.Shape, Data: w.Tensors[s.Name]}
	}
	if err := safetensors.Encode(out, tensors, md); err != nil {
		return fmt.Errorf("mnist: encode weights: %w", err)
	}
	return nil
}

// DecodeWeights parses a safetensors file holding the network's weights:
// exactly the tensors of Layout, F32, with those shapes, all finite. Errors
// wrap ErrSafetensors for a malformed file and ErrInvalidWeights for a
// well-formed file that does not hold this network (naming the tensor). A
// file whose metadata states a different input normalization is refused too,
// because the model would see wrongly scaled inputs.
func DecodeWeights(b []byte) (*Weights, error) {
	tensors, metadata, err := safetensors.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("mnist: decode weights: %w", err)
	}
	for key, want := range map[string]float64{"normalization_mean": NormMean, "normalization_std": NormStd} {
		if v, ok := metadata[key]; ok {
			if f, err := strconv.ParseFloat(v, 64); err != nil || math.Abs(f-want) > 1e-6 {
				return nil, &WeightsError{Tensor: safetensors.MetadataKey, Msg: fmt.Sprintf("%s is %q, but this network expects %v", key, v, want)}
			}
		}
	}
	w := &Weights{Tensors: make(map[string][]float32, len(tensors)), Metadata: metadata}
	for _, t := range tensors {
		i := slices.IndexFunc(layout, func(s TensorSpec) bool { return s.Name == t.Name })
		if i < 0 {
			return nil, &WeightsError{Tensor: t.Name, Msg: "unexpected: not a tensor of this network"}
		}
		if !slices.Equal(t.Shape, layout[i].Shape) {
			return nil, &WeightsError{Tensor: t.Name, Msg: fmt.Sprintf("shape %v, want %v", t.Shape, layout[i].Shape)}
		}
		w.Tensors[t.Name] = t.Data
	}
	if err := w.Validate(); err != nil {
		return nil, err
	}
	return w, nil
}

// LoadWeightsFile reads and decodes a safetensors weights file (see
// DecodeWeights). The file is refused before reading when it is larger than
// any valid weights file could be.
func LoadWeightsFile(path string) (*Weights, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("mnist: load weights: %w", err)
	}
	defer f.Close()
	// A valid file is the 4*NumParams data bytes plus a header of a few KB;
	// allow generous metadata but do not read an arbitrarily large file.
	const limit = 4*NumParams + 1<<20
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("mnist: load weights %s: %w", path, err)
	}
	if len(b) > limit {
		return nil, fmt.Errorf("mnist: load weights %s: %w: file is larger than %d bytes, too large for this network's weights", path, ErrSafetensors, limit)
	}
	w, err := DecodeWeights(b)
	if err != nil {
		return nil, fmt.Errorf("mnist: load weights %s: %w", path, err)
	}
	return w, nil
}
