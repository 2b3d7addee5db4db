package mnist

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/mnist/internal/idx"
)

func idxImagesBytes(t *testing.T, n, rows, cols int) ([]byte, []uint8) {
	t.Helper()
	pix := make([]uint8, n*rows*cols)
	for i := range pix {
		pix[i] = uint8(i * 7)
	}
	var b bytes.Buffer
	require.NoError(t, idx.WriteImages(&b, n, rows, cols, pix))
	return b.Bytes(), pix
}

func idxLabelsBytes(t *testing.T, labels []uint8) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, idx.WriteLabels(&b, labels))
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
