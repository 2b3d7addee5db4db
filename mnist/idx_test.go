package mnist

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
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
	require.NoError(t, WriteIDXImages(&b, n, rows, cols, pix))
	return b.Bytes(), pix
}

func idxLabelsBytes(t *testing.T, labels []uint8) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, WriteIDXLabels(&b, labels))
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

func TestReadIDXImagesRoundTrip(t *testing.T) {
	raw, pix := idxImagesBytes(t, 3, 4, 5)
	for name, data := range map[string][]byte{"raw": raw, "gzip": gzipBytes(t, raw)} {
		t.Run(name, func(t *testing.T) {
			n, rows, cols, got, err := ReadIDXImages(bytes.NewReader(data))
			require.NoError(t, err)
			assert.Equal(t, []int{3, 4, 5}, []int{n, rows, cols})
			assert.Equal(t, pix, got)
		})
	}
}

func TestReadIDXLabelsRoundTrip(t *testing.T) {
	raw := idxLabelsBytes(t, []uint8{7, 2, 1, 0})
	for name, data := range map[string][]byte{"raw": raw, "gzip": gzipBytes(t, raw)} {
		t.Run(name, func(t *testing.T) {
			got, err := ReadIDXLabels(bytes.NewReader(data))
			require.NoError(t, err)
			assert.Equal(t, []uint8{7, 2, 1, 0}, got)
		})
	}
}

func TestReadIDXImagesMalformed(t *testing.T) {
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
			_, _, _, pix, err := ReadIDXImages(bytes.NewReader(tt.data))
			require.Error(t, err)
			assert.Nil(t, pix)
			assert.ErrorIs(t, err, ErrIDXFormat)
			var ie *IDXError
			require.ErrorAs(t, err, &ie)
			assert.Contains(t, err.Error(), tt.wantMsg)
			if tt.cause != nil {
				assert.ErrorIs(t, err, tt.cause)
			}
		})
	}
}

func TestReadIDXLabelsMalformed(t *testing.T) {
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
			labels, err := ReadIDXLabels(bytes.NewReader(tt.data))
			require.Error(t, err)
			assert.Nil(t, labels)
			assert.ErrorIs(t, err, ErrIDXFormat)
			assert.Contains(t, err.Error(), tt.wantMsg)
		})
	}
}

// A header claiming the maximum size over a tiny stream must fail fast
// without allocating the claimed size.
func TestReadIDXImagesLargeClaimSmallAllocation(t *testing.T) {
	data := header(idxImagesMagic, 100_000, 32, 32)
	allocs := testing.AllocsPerRun(1, func() {
		_, _, _, _, err := ReadIDXImages(bytes.NewReader(data))
		require.ErrorIs(t, err, ErrIDXFormat)
	})
	assert.Less(t, allocs, 100.0)
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestReadIDXIOErrorIsNotFormatError(t *testing.T) {
	boom := errors.New("disk on fire")
	_, err := ReadIDXLabels(failingReader{boom})
	require.ErrorIs(t, err, boom)
	assert.NotErrorIs(t, err, ErrIDXFormat)
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, data, 0o644))
	return p
}

func TestLoadIDX(t *testing.T) {
	dir := t.TempDir()
	imgs, pix := idxImagesBytes(t, 3, 2, 2)
	imgPath := writeFile(t, dir, "img", gzipBytes(t, imgs))
	okLabels := writeFile(t, dir, "ok", idxLabelsBytes(t, []uint8{0, 9, 5}))

	d, err := LoadIDX(imgPath, okLabels)
	require.NoError(t, err)
	assert.Equal(t, 3, d.Len())
	assert.Equal(t, 2, d.Rows)
	assert.Equal(t, 2, d.Cols)
	assert.Equal(t, pix, d.Images)
	assert.Equal(t, []uint8{0, 9, 5}, d.Labels)

	emptyImgs, _ := idxImagesBytes(t, 0, 2, 2)
	tests := []struct {
		name, images, labels, wantMsg string
		wantFormat                    bool
	}{
		{"count mismatch", imgPath, writeFile(t, dir, "short", idxLabelsBytes(t, []uint8{1, 2})), "2 labels for 3 images", true},
		{"label above 9", imgPath, writeFile(t, dir, "ten", idxLabelsBytes(t, []uint8{1, 10, 2})), "label 10 of image 1 is outside 0-9", true},
		{"no images", writeFile(t, dir, "empty", emptyImgs), writeFile(t, dir, "nolabels", idxLabelsBytes(t, nil)), "no images", true},
		{"bad images file names path", writeFile(t, dir, "garbage", []byte("hello world!")), okLabels, filepath.Join(dir, "garbage"), true},
		{"swapped files", okLabels, imgPath, "this is a labels file", true},
		{"missing file", filepath.Join(dir, "nope"), okLabels, "no such file", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := LoadIDX(tt.images, tt.labels)
			require.Error(t, err)
			assert.Nil(t, d)
			assert.Contains(t, err.Error(), tt.wantMsg)
			assert.Equal(t, tt.wantFormat, errors.Is(err, ErrIDXFormat), "errors.Is(ErrIDXFormat)")
		})
	}
}

func TestWriteIDXRejectsMismatch(t *testing.T) {
	assert.Error(t, WriteIDXImages(io.Discard, 2, 2, 2, make([]uint8, 7)))
	assert.Error(t, WriteIDXImages(io.Discard, 1, 0, 2, nil))
}
