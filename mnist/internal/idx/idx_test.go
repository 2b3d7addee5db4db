package idx

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func idxImagesBytes(t *testing.T, n, rows, cols int) ([]byte, []uint8) {
	t.Helper()
	pix := make([]uint8, n*rows*cols)
	for i := range pix {
		pix[i] = uint8(i * 7)
	}
	var b bytes.Buffer
	require.NoError(t, WriteImages(&b, n, rows, cols, pix))
	return b.Bytes(), pix
}

func idxLabelsBytes(t *testing.T, labels []uint8) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, WriteLabels(&b, labels))
	return b.Bytes()
}

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	z := gzip.NewWriter(&out)
	_, err := z.Write(b)
	require.NoError(t, err)
	require.NoError(t, z.Close())
	return out.Bytes()
}

func header(words ...uint32) []byte {
	var b []byte
	for _, w := range words {
		b = binary.BigEndian.AppendUint32(b, w)
	}
	return b
}

func TestReadImagesRoundTrip(t *testing.T) {
	raw, pix := idxImagesBytes(t, 3, 4, 5)
	for name, data := range map[string][]byte{"raw": raw, "gzip": gzipBytes(t, raw)} {
		t.Run(name, func(t *testing.T) {
			n, rows, cols, got, err := ReadImages(bytes.NewReader(data))
			require.NoError(t, err)
			assert.Equal(t, []int{3, 4, 5}, []int{n, rows, cols})
			assert.Equal(t, pix, got)
		})
	}
}

func TestReadLabelsRoundTrip(t *testing.T) {
	raw := idxLabelsBytes(t, []uint8{7, 2, 1, 0})
	for name, data := range map[string][]byte{"raw": raw, "gzip": gzipBytes(t, raw)} {
		t.Run(name, func(t *testing.T) {
			got, err := ReadLabels(bytes.NewReader(data))
			require.NoError(t, err)
			assert.Equal(t, []uint8{7, 2, 1, 0}, got)
		})
	}
}

func TestReadImagesMalformed(t *testing.T) {
	good, _ := idxImagesBytes(t, 2, 3, 3)
	corruptGzip := gzipBytes(t, good)
	corruptGzip[len(corruptGzip)-6] ^= 0xff // flip a CRC byte
	tests := []struct {
		name    string
		data    []byte
		wantMsg string
		cause   error
	}{
		{"empty", nil, "empty or truncated header", io.ErrUnexpectedEOF},
		{"one byte", []byte{0}, "empty or truncated header", io.ErrUnexpectedEOF},
		{"truncated magic", []byte{0, 0, 8}, "truncated header (magic number)", io.ErrUnexpectedEOF},
		{"bad magic", header(0x12345678, 1, 1, 1, 0), "magic number 0x12345678, want 0x00000803", nil},
		{"labels file given", idxLabelsBytes(t, []uint8{1}), "this is a labels file", nil},
		{"truncated dims", header(idxImagesMagic, 2, 3), "truncated header (dimension 3 of 3)", io.ErrUnexpectedEOF},
		{"truncated data", good[:len(good)-1], "truncated data: got 17 of 18 bytes", io.ErrUnexpectedEOF},
		{"trailing data", append(bytes.Clone(good), 0), "unexpected bytes after the 18 data bytes", nil},
		{"absurd count", header(idxImagesMagic, 60_000_000, 28, 28), "exceed the 104857600-byte limit", nil},
		{"absurd dimension", header(idxImagesMagic, 1, 0xffffffff, 1), "larger than the 104857600-byte limit", nil},
		{"zero rows", header(idxImagesMagic, 1, 0, 28), "has a zero dimension", nil},
		{"garbage gzip", []byte{0x1f, 0x8b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, "corrupt gzip stream", nil},
		{"gzip truncated", gzipBytes(t, good)[:30], "truncated", io.ErrUnexpectedEOF},
		{"gzip bad checksum", corruptGzip, "reading the end of the stream", gzip.ErrChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, pix, err := ReadImages(bytes.NewReader(tt.data))
			require.Error(t, err)
			assert.Nil(t, pix)
			assert.ErrorIs(t, err, ErrFormat)
			var ie *Error
			require.ErrorAs(t, err, &ie)
			assert.Contains(t, err.Error(), tt.wantMsg)
			if tt.cause != nil {
				assert.ErrorIs(t, err, tt.cause)
			}
		})
	}
}

func TestReadLabelsMalformed(t *testing.T) {
	good := idxLabelsBytes(t, []uint8{1, 2, 3})
	tests := []struct {
		name    string
		data    []byte
		wantMsg string
	}{
		{"images file given", func() []byte { b, _ := idxImagesBytes(t, 1, 2, 2); return b }(), "this is an images file"},
		{"truncated count", header(idxLabelsMagic)[:4], "truncated header (dimension 1 of 1)"},
		{"truncated data", good[:len(good)-1], "truncated data: got 2 of 3 bytes"},
		{"absurd count", header(idxLabelsMagic, 0xf0000000), "larger than the 104857600-byte limit"},
		{"garbage gzip", []byte{0x1f, 0x8b, 0xff}, "corrupt gzip stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			labels, err := ReadLabels(bytes.NewReader(tt.data))
			require.Error(t, err)
			assert.Nil(t, labels)
			assert.ErrorIs(t, err, ErrFormat)
			assert.Contains(t, err.Error(), tt.wantMsg)
		})
	}
}

// A header claiming the maximum size over a tiny stream must fail fast
// without allocating the claimed size.
func TestReadImagesLargeClaimSmallAllocation(t *testing.T) {
	data := header(idxImagesMagic, 100_000, 32, 32)
	allocs := testing.AllocsPerRun(1, func() {
		_, _, _, _, err := ReadImages(bytes.NewReader(data))
		require.ErrorIs(t, err, ErrFormat)
	})
	assert.Less(t, allocs, 100.0)
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestReadIOErrorIsNotFormatError(t *testing.T) {
	boom := errors.New("disk on fire")
	_, err := ReadLabels(failingReader{boom})
	require.ErrorIs(t, err, boom)
	assert.NotErrorIs(t, err, ErrFormat)
}

func TestWriteRejectsMismatch(t *testing.T) {
	assert.Error(t, WriteImages(io.Discard, 2, 2, 2, make([]uint8, 7)))
	assert.Error(t, WriteImages(io.Discard, 1, 0, 2, nil))
}
