package mnist

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
)

// MaxSafetensorsHeader caps the JSON header of a safetensors file (100 MB, the
// limit of the reference implementation). A larger claim is refused before
// anything is allocated.
const MaxSafetensorsHeader = 100 << 20

// safetensorsMetadataKey is the reserved header key for the string metadata.
const safetensorsMetadataKey = "__metadata__"

// Normalization constants of the model input, x = (p/255 - NormMean) / NormStd,
// the MNIST mean and standard deviation used by the seed.
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

// ErrSafetensors is wrapped by every error about malformed safetensors data.
// *SafetensorsError carries the details.
var ErrSafetensors = errors.New("mnist: malformed safetensors data")

// ErrInvalidWeights is wrapped when weights (in memory, or in a well-formed
// safetensors file) do not fit the network: a missing, extra or misshapen
// tensor, or a value that is NaN or infinite. *WeightsError carries details.
var ErrInvalidWeights = errors.New("mnist: invalid weights")

// SafetensorsError describes malformed safetensors data; it wraps
// ErrSafetensors.
type SafetensorsError struct {
	// Tensor names the tensor concerned, or is empty.
	Tensor string
	// Msg says what is wrong.
	Msg string
}

func (e *SafetensorsError) Error() string {
	if e.Tensor != "" {
		return fmt.Sprintf("mnist: safetensors: tensor %q: %s", e.Tensor, e.Msg)
	}
	return "mnist: safetensors: " + e.Msg
}

// Unwrap returns ErrSafetensors.
func (e *SafetensorsError) Unwrap() error { return ErrSafetensors }

func stErr(tensor, format string, args ...any) error {
	return &SafetensorsError{Tensor: tensor, Msg: fmt.Sprintf(format, args...)}
}

// WeightsError says which tensor of a Weights value does not fit the network;
// it wraps ErrInvalidWeights.
type WeightsError struct {
	// Tensor names the tensor concerned.
	Tensor string
	// Msg says what is wrong.
	Msg string
}

func (e *WeightsError) Error() string {
	return fmt.Sprintf("mnist: invalid weights: tensor %q: %s", e.Tensor, e.Msg)
}

// Unwrap returns ErrInvalidWeights.
func (e *WeightsError) Unwrap() error { return ErrInvalidWeights }

// Tensor is one named float32 tensor, row-major (only F32 is supported, the
// only dtype this model uses).
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// numElements returns the product of shape, or an error for a negative
// dimension or a product beyond limit.
func numElements(shape []int, limit int) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension %d in shape %v", d, shape)
		}
		if d != 0 && n > limit/d {
			return 0, fmt.Errorf("shape %v has more than %d elements", shape, limit)
		}
		n *= d
	}
	return n, nil
}

// EncodeSafetensors writes tensors, in the given order, and metadata (may be
// nil) as a safetensors file that PyTorch's safetensors.torch.load_file reads.
// The header is padded with spaces to a multiple of 8 bytes, as the reference
// writer does. Names must be non-empty, unique and not "__metadata__"; each
// tensor's Data must hold exactly the product of its Shape.
func EncodeSafetensors(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	var hdr bytes.Buffer
	hdr.WriteByte('{')
	first := true
	writeKey := func(k string) {
		if !first {
			hdr.WriteByte(',')
		}
		first = false
		kb, _ := json.Marshal(k) // strings always marshal
		hdr.Write(kb)
		hdr.WriteByte(':')
	}
	if len(metadata) > 0 {
		writeKey(safetensorsMetadataKey)
		mb, err := json.Marshal(metadata) // map keys come out sorted
		if err != nil {
			return fmt.Errorf("mnist: encode safetensors metadata: %w", err)
		}
		hdr.Write(mb)
	}
	seen := make(map[string]bool, len(tensors))
	offset := 0
	for _, t := range tensors {
		switch {
		case t.Name == "":
			return errors.New("mnist: encode safetensors: a tensor has an empty name")
		case t.Name == safetensorsMetadataKey:
			return fmt.Errorf("mnist: encode safetensors: %q is reserved and cannot name a tensor", t.Name)
		case seen[t.Name]:
			return fmt.Errorf("mnist: encode safetensors: tensor %q appears twice", t.Name)
		}
		seen[t.Name] = true
		n, err := numElements(t.Shape, math.MaxInt32)
		if err != nil {
			return fmt.Errorf("mnist: encode safetensors: tensor %q: %w", t.Name, err)
		}
		if n != len(t.Data) {
			return fmt.Errorf("mnist: encode safetensors: tensor %q has %d values but shape %v needs %d", t.Name, len(t.Data), t.Shape, n)
		}
		writeKey(t.Name)
		shape := t.Shape
		if shape == nil {
			shape = []int{} // a scalar: "shape": [] rather than null
		}
		vb, err := json.Marshal(struct {
			Dtype       string `json:"dtype"`
			Shape       []int  `json:"shape"`
			DataOffsets [2]int `json:"data_offsets"`
		}{"F32", shape, [2]int{offset, offset + 4*n}})
		if err != nil {
			return fmt.Errorf("mnist: encode safetensors: tensor %q: %w", t.Name, err)
		}
		hdr.Write(vb)
		offset += 4 * n
	}
	hdr.WriteByte('}')
	for hdr.Len()%8 != 0 {
		hdr.WriteByte(' ')
	}
	out := make([]byte, 0, 8+hdr.Len()+offset)
	out = binary.LittleEndian.AppendUint64(out, uint64(hdr.Len()))
	out = append(out, hdr.Bytes()...)
	for _, t := range tensors {
		for _, v := range t.Data {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
		}
	}
	if _, err := w.Write(out); err != nil {
		return fmt.Errorf("mnist: write safetensors: %w", err)
	}
	return nil
}

// tensorHeader is one tensor's entry in the JSON header.
type tensorHeader struct {
	Dtype       *string  `json:"dtype"`
	Shape       []int64  `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

// DecodeSafetensors parses a whole safetensors file. Tensors are returned in
// the order of their data in the file. Every value is kept as stored,
// including NaN and infinities (the format allows them; Weights.Validate
// refuses them). Errors wrap ErrSafetensors and say what is wrong: truncated
// file, header length beyond the file or above MaxSafetensorsHeader,
// malformed or duplicated JSON keys, a dtype other than F32 (named), a shape
// that does not match its offsets, offsets outside the data, gaps or
// overlaps between tensors, or bytes after the last tensor.
func DecodeSafetensors(b []byte) (tensors []Tensor, metadata map[string]string, err error) {
	if len(b) < 8 {
		return nil, nil, stErr("", "truncated file: %d bytes, need at least 8 for the header length", len(b))
	}
	hlen := binary.LittleEndian.Uint64(b)
	if hlen > MaxSafetensorsHeader {
		return nil, nil, stErr("", "header too large: %d bytes, the limit is %d", hlen, MaxSafetensorsHeader)
	}
	if hlen > uint64(len(b)-8) {
		return nil, nil, stErr("", "header length %d goes beyond the end of the %d-byte file (truncated file?)", hlen, len(b))
	}
	header, data := b[8:8+hlen], b[8+hlen:]
	if len(header) == 0 || header[0] != '{' {
		return nil, nil, stErr("", "header does not start with '{'")
	}
	entries, metadata, err := parseSafetensorsHeader(header)
	if err != nil {
		return nil, nil, err
	}

	type placed struct {
		name       string
		shape      []int
		begin, end uint64
	}
	list := make([]placed, 0, len(entries))
	for _, e := range entries {
		name, h := e.name, e.h
		if h.Dtype == nil {
			return nil, nil, stErr(name, "no dtype")
		}
		if *h.Dtype != "F32" {
			return nil, nil, stErr(name, "dtype %q is not supported: only F32 (float32) tensors can be read", *h.Dtype)
		}
		if h.Shape == nil {
			return nil, nil, stErr(name, "no shape")
		}
		if len(h.DataOffsets) != 2 {
			return nil, nil, stErr(name, "data_offsets must be [begin, end], got %d numbers", len(h.DataOffsets))
		}
		shape := make([]int, len(h.Shape))
		for i, d := range h.Shape {
			if d < 0 || d > math.MaxInt32 {
				return nil, nil, stErr(name, "shape %v has an invalid dimension %d", h.Shape, d)
			}
			shape[i] = int(d)
		}
		n, err := numElements(shape, len(data)/4+1)
		if err != nil {
			return nil, nil, stErr(name, "%v: larger than the file's %d data bytes", err, len(data))
		}
		begin, end := h.DataOffsets[0], h.DataOffsets[1]
		if begin > end {
			return nil, nil, stErr(name, "data_offsets [%d, %d] end before they begin", begin, end)
		}
		if end > uint64(len(data)) {
			return nil, nil, stErr(name, "data_offsets [%d, %d] go beyond the %d data bytes (truncated file?)", begin, end, len(data))
		}
		if end-begin != uint64(4*n) {
			return nil, nil, stErr(name, "shape %v needs %d bytes of F32 but data_offsets [%d, %d] span %d", shape, 4*n, begin, end, end-begin)
		}
		list = append(list, placed{name, shape, begin, end})
	}
	slices.SortStableFunc(list, func(a, b placed) int {
		if a.begin != b.begin {
			return compareUint(a.begin, b.begin)
		}
		return compareUint(a.end, b.end)
	})
	var pos uint64
	for _, p := range list {
		switch {
		case p.begin > pos:
			return nil, nil, stErr(p.name, "gap: data begins at %d but the previous tensor ends at %d", p.begin, pos)
		case p.begin < pos:
			return nil, nil, stErr(p.name, "overlap: data begins at %d but the previous tensor ends at %d", p.begin, pos)
		}
		pos = p.end
	}
	if pos != uint64(len(data)) {
		return nil, nil, stErr("", "%d unexpected bytes after the last tensor's data", uint64(len(data))-pos)
	}
	tensors = make([]Tensor, len(list))
	for i, p := range list {
		raw := data[p.begin:p.end]
		vals := make([]float32, len(raw)/4)
		for j := range vals {
			vals[j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:]))
		}
		tensors[i] = Tensor{Name: p.name, Shape: p.shape, Data: vals}
	}
	return tensors, metadata, nil
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

type headerEntry struct {
	name string
	h    tensorHeader
}

// parseSafetensorsHeader walks the top-level JSON object key by key, so that
// duplicated keys (which encoding/json would silently merge) are refused.
func parseSafetensorsHeader(header []byte) ([]headerEntry, map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(header))
	if _, err := dec.Token(); err != nil { // '{', checked by the caller
		return nil, nil, stErr("", "header is not valid JSON: %v", err)
	}
	var (
		entries  []headerEntry
		metadata map[string]string
		seen     = map[string]bool{}
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, stErr("", "header is not valid JSON: %v", err)
		}
		key, _ := tok.(string) // object keys are always strings
		if seen[key] {
			return nil, nil, stErr("", "header names %q twice", key)
		}
		seen[key] = true
		if key == safetensorsMetadataKey {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, nil, stErr("", "header is not valid JSON: %v", err)
			}
			if err := json.Unmarshal(raw, &metadata); err != nil {
				return nil, nil, stErr("", "__metadata__ must map strings to strings: %v", err)
			}
			continue
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, stErr("", "header is not valid JSON: %v", err)
		}
		var h tensorHeader
		td := json.NewDecoder(bytes.NewReader(raw))
		td.DisallowUnknownFields()
		if err := td.Decode(&h); err != nil {
			return nil, nil, stErr(key, "malformed entry (want {\"dtype\", \"shape\", \"data_offsets\"}): %v", err)
		}
		entries = append(entries, headerEntry{key, h})
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, nil, stErr("", "header is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, stErr("", "unexpected content after the header's JSON object")
	}
	return entries, metadata, nil
}

// NewZeroWeights returns weights holding every tensor of Layout, all zero,
// with no metadata. Useful as a starting point and in tests.
func NewZeroWeights() *Weights {
	w := &Weights{Tensors: make(map[string][]float32, len(Layout))}
	for _, s := range Layout {
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
		return &WeightsError{Tensor: Layout[0].Name, Msg: "missing (no tensors at all)"}
	}
	for _, s := range Layout {
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
	if len(w.Tensors) != len(Layout) {
		for _, name := range slices.Sorted(maps.Keys(w.Tensors)) {
			if !slices.ContainsFunc(Layout, func(s TensorSpec) bool { return s.Name == name }) {
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
	tensors := make([]Tensor, len(Layout))
	for i, s := range Layout {
		tensors[i] = Tensor{Name: s.Name, Shape: s.Shape, Data: w.Tensors[s.Name]}
	}
	return EncodeSafetensors(out, tensors, md)
}

// DecodeWeights parses a safetensors file holding the network's weights:
// exactly the tensors of Layout, F32, with those shapes, all finite. Errors
// wrap ErrSafetensors for a malformed file and ErrInvalidWeights for a
// well-formed file that does not hold this network (naming the tensor). A
// file whose metadata states a different input normalization is refused too,
// because the model would see wrongly scaled inputs.
func DecodeWeights(b []byte) (*Weights, error) {
	tensors, metadata, err := DecodeSafetensors(b)
	if err != nil {
		return nil, err
	}
	for key, want := range map[string]float64{"normalization_mean": NormMean, "normalization_std": NormStd} {
		if v, ok := metadata[key]; ok {
			if f, err := strconv.ParseFloat(v, 64); err != nil || math.Abs(f-want) > 1e-6 {
				return nil, &WeightsError{Tensor: safetensorsMetadataKey, Msg: fmt.Sprintf("%s is %q, but this network expects %v", key, v, want)}
			}
		}
	}
	w := &Weights{Tensors: make(map[string][]float32, len(tensors)), Metadata: metadata}
	for _, t := range tensors {
		i := slices.IndexFunc(Layout, func(s TensorSpec) bool { return s.Name == t.Name })
		if i < 0 {
			return nil, &WeightsError{Tensor: t.Name, Msg: "unexpected: not a tensor of this network"}
		}
		if !slices.Equal(t.Shape, Layout[i].Shape) {
			return nil, &WeightsError{Tensor: t.Name, Msg: fmt.Sprintf("shape %v, want %v", t.Shape, Layout[i].Shape)}
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
		return nil, fmt.Errorf("mnist: load weights %s: %w", path, stErr("", "file is larger than %d bytes, too large for this network's weights", limit))
	}
	w, err := DecodeWeights(b)
	if err != nil {
		return nil, fmt.Errorf("mnist: load weights %s: %w", path, err)
	}
	return w, nil
}
