package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
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
	require.NoError(t, Encode(&buf, in, md))
	b := buf.Bytes()

	hlen := binary.LittleEndian.Uint64(b)
	assert.Zero(t, hlen%8, "header padded to a multiple of 8")
	assert.Equal(t, byte('{'), b[8])
	assert.True(t, json.Valid(b[8:8+hlen]))

	out, gotMD, err := Decode(b)
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
	require.NoError(t, Encode(&buf, in[:1], nil))
	assert.NotContains(t, buf.String(), "__metadata__")
	_, gotMD, err = Decode(buf.Bytes())
	require.NoError(t, err)
	assert.Nil(t, gotMD)
}

func TestEncodeRejects(t *testing.T) {
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
			err := Encode(&buf, tt.tensors, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantMsg)
			assert.Zero(t, buf.Len(), "nothing written on error")
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	two := f32bytes(1, 2)
	tests := []struct {
		name    string
		file    []byte
		wantMsg string
		tensor  string
	}{
		{"empty", nil, "truncated file: 0 bytes", ""},
		{"short length", []byte{1, 2, 3}, "truncated file: 3 bytes", ""},
		{"header length absurd", binary.LittleEndian.AppendUint64(nil, 200<<20), "not a safetensors file: its first 8 bytes give a header length of 209715200 bytes", ""},
		{"another kind of file", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), "not a safetensors file", ""},
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
			tensors, md, err := Decode(tt.file)
			require.Error(t, err)
			assert.Nil(t, tensors)
			assert.Nil(t, md)
			assert.ErrorIs(t, err, ErrMalformed)
			var se *Error
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tt.tensor, se.Tensor)
			assert.Contains(t, err.Error(), tt.wantMsg)
		})
	}
}

func TestDecodeTensorOrderFollowsData(t *testing.T) {
	file := craftSafetensors(`{"z":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}, "a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}      `, f32bytes(1, 2))
	tensors, _, err := Decode(file)
	require.NoError(t, err)
	require.Len(t, tensors, 2)
	assert.Equal(t, Tensor{Name: "z", Shape: []int{1}, Data: []float32{1}}, tensors[0])
	assert.Equal(t, Tensor{Name: "a", Shape: []int{1}, Data: []float32{2}}, tensors[1])
}
