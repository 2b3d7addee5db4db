package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
)

// MaxHeader caps the JSON header of a safetensors file (100 MB, the limit of
// the format's reference implementation). A larger claim is refused before
// anything is allocated.
const MaxHeader = 100 << 20

// MetadataKey is the reserved header key of the string-to-string metadata;
// no tensor may have this name.
const MetadataKey = "__metadata__"

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

// Encode writes tensors, in the given order, and metadata (may be
// nil) as a safetensors file that PyTorch's safetensors.torch.load_file reads.
// The header is padded with spaces to a multiple of 8 bytes, as the reference
// writer does. Names must be non-empty, unique and not "__metadata__"; each
// tensor's Data must hold exactly the product of its Shape.
func Encode(w io.Writer, tensors []Tensor, metadata map[string]string) error {
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
		writeKey(MetadataKey)
		mb, err := json.Marshal(metadata) // map keys come out sorted
		if err != nil {
			return fmt.Errorf("safetensors: encode metadata: %w", err)
		}
		hdr.Write(mb)
	}
	seen := make(map[string]bool, len(tensors))
	offset := 0
	for _, t := range tensors {
		switch {
		case t.Name == "":
			return errors.New("safetensors: encode: a tensor has an empty name")
		case t.Name == MetadataKey:
			return fmt.Errorf("safetensors: encode: %q is reserved and cannot name a tensor", t.Name)
		case seen[t.Name]:
			return fmt.Errorf("safetensors: encode: tensor %q appears twice", t.Name)
		}
		seen[t.Name] = true
		n, err := numElements(t.Shape, math.MaxInt32)
		if err != nil {
			return fmt.Errorf("safetensors: encode: tensor %q: %w", t.Name, err)
		}
		if n != len(t.Data) {
			return fmt.Errorf("safetensors: encode: tensor %q has %d values but shape %v needs %d", t.Name, len(t.Data), t.Shape, n)
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
			return fmt.Errorf("safetensors: encode: tensor %q: %w", t.Name, err)
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
		return fmt.Errorf("safetensors: write: %w", err)
	}
	return nil
}

// tensorHeader is one tensor's entry in the JSON header.
type tensorHeader struct {
	Dtype       *string  `json:"dtype"`
	Shape       []int64  `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

// Decode parses a whole safetensors file. Tensors are returned in
// the order of their data in the file. Every value is kept as stored,
// including NaN and infinities (the format allows them; callers that need
// finite values check them). Errors are *Error values wrapping ErrMalformed
// and say what is wrong: truncated
// file, header length beyond the file or above MaxHeader,
// malformed or duplicated JSON keys, a dtype other than F32 (named), a shape
// that does not match its offsets, offsets outside the data, gaps or
// overlaps between tensors, or bytes after the last tensor.
func Decode(b []byte) (tensors []Tensor, metadata map[string]string, err error) {
	if len(b) < 8 {
		return nil, nil, stErr("", "truncated file: %d bytes, need at least 8 for the header length", len(b))
	}
	hlen := binary.LittleEndian.Uint64(b)
	if hlen > MaxHeader && hlen > uint64(len(b)-8) {
		// An absurd length, beyond the file: most likely another kind of
		// file altogether (a PNG starts with bytes that read as ~7e17).
		return nil, nil, stErr("", "not a safetensors file: its first 8 bytes give a header length of %d bytes, and the file has %d; give a .safetensors weights file", hlen, len(b))
	}
	if hlen > MaxHeader {
		return nil, nil, stErr("", "header too large: %d bytes, the limit is %d", hlen, MaxHeader)
	}
	if hlen > uint64(len(b)-8) {
		return nil, nil, stErr("", "header length %d goes beyond the end of the %d-byte file (truncated file?)", hlen, len(b))
	}
	header, data := b[8:8+hlen], b[8+hlen:]
	if len(header) == 0 || header[0] != '{' {
		return nil, nil, stErr("", "header does not start with '{'")
	}
	entries, metadata, err := parseHeader(header)
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

// parseHeader walks the top-level JSON object key by key, so that
// duplicated keys (which encoding/json would silently merge) are refused.
func parseHeader(header []byte) ([]headerEntry, map[string]string, error) {
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
		if key == MetadataKey {
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
