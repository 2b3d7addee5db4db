package flag

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGrayPNG(t *testing.T) {
	in := testImage(3)
	b, err := GrayPNG().Encode(in)
	require.NoError(t, err)
	assert.Equal(t, ".png", GrayPNG().Ext())
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	require.NoError(t, err)
	assert.Equal(t, color.GrayModel, cfg.ColorModel, "stored as an 8-bit grayscale PNG")
	out, err := GrayPNG().Decode(b)
	require.NoError(t, err)
	assert.Equal(t, in.Pix, out.Pix)
	assert.Equal(t, in.Rect, out.Rect)

	// A colour PNG from another tool is converted to gray.
	rgba := image.NewRGBA(image.Rect(0, 0, 2, 1))
	rgba.Set(0, 0, color.White)
	rgba.Set(1, 0, color.Black)
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, rgba))
	g, err := GrayPNG().Decode(buf.Bytes())
	require.NoError(t, err)
	assert.Equal(t, []uint8{255, 0}, g.Pix)

	_, err = GrayPNG().Decode([]byte("not a png"))
	assert.ErrorContains(t, err, "decoding PNG")
	_, err = GrayPNG().Encode(nil)
	assert.ErrorContains(t, err, "nil image")
}

func TestJSONCodec(t *testing.T) {
	c := JSONCodec[map[string]int]()
	assert.Equal(t, ".json", c.Ext())
	b, err := c.Encode(map[string]int{"a": 1})
	require.NoError(t, err)
	assert.JSONEq(t, `{"a":1}`, string(b))
	m, err := c.Decode(b)
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"a": 1}, m)
	_, err = c.Decode([]byte("{"))
	assert.ErrorContains(t, err, "decoding JSON")
	_, err = JSONCodec[func()]().Encode(func() {})
	assert.ErrorContains(t, err, "encoding JSON")
}

// pngWithOrientation encodes img as a PNG with an eXIf chunk (a big-endian
// TIFF block with one Orientation entry) right after IHDR, as phones and
// editors write it.
func pngWithOrientation(t *testing.T, img image.Image, o uint16) []byte {
	t.Helper()
	var enc bytes.Buffer
	require.NoError(t, png.Encode(&enc, img))
	tiff := []byte("MM\x00*")
	tiff = binary.BigEndian.AppendUint32(tiff, 8)
	tiff = binary.BigEndian.AppendUint16(tiff, 1)      // one IFD entry
	tiff = binary.BigEndian.AppendUint16(tiff, 0x0112) // Orientation
	tiff = binary.BigEndian.AppendUint16(tiff, 3)      // SHORT
	tiff = binary.BigEndian.AppendUint32(tiff, 1)
	tiff = binary.BigEndian.AppendUint16(tiff, o)
	tiff = append(tiff, 0, 0)
	tiff = binary.BigEndian.AppendUint32(tiff, 0) // no next IFD
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(tiff)))
	chunk = append(append(chunk, "eXIf"...), tiff...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	p := enc.Bytes()
	at := 8 + 25 // PNG signature + IHDR chunk
	return append(append(append([]byte{}, p[:at]...), chunk...), p[at:]...)
}

// TestImagesThatSayHowToDisplayThem: a PNG that says how to display it
// (EXIF Orientation, all eight values) is decoded as a browser shows it, so
// that a sample read back from a dataset folder, trained on or shown, is the
// picture the person saw. The wanted grids are the EXIF specification's
// table (tag 0x0112) applied by hand to the stored 3x2 picture.
func TestImagesThatSayHowToDisplayThem(t *testing.T) {
	stored := image.NewGray(image.Rect(0, 0, 3, 2))
	copy(stored.Pix, []uint8{10, 20, 30, 40, 50, 60})
	tests := []struct {
		o    uint16
		w, h int
		want []uint8 // display rows, top to bottom
	}{
		{1, 3, 2, []uint8{10, 20, 30, 40, 50, 60}},
		{2, 3, 2, []uint8{30, 20, 10, 60, 50, 40}},
		{3, 3, 2, []uint8{60, 50, 40, 30, 20, 10}},
		{4, 3, 2, []uint8{40, 50, 60, 10, 20, 30}},
		{5, 2, 3, []uint8{10, 40, 20, 50, 30, 60}},
		{6, 2, 3, []uint8{40, 10, 50, 20, 60, 30}},
		{7, 2, 3, []uint8{60, 30, 50, 20, 40, 10}},
		{8, 2, 3, []uint8{30, 60, 20, 50, 10, 40}},
		{0, 3, 2, []uint8{10, 20, 30, 40, 50, 60}}, // reserved: as stored, like browsers
		{9, 3, 2, []uint8{10, 20, 30, 40, 50, 60}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("orientation %d", tt.o), func(t *testing.T) {
			got, err := GrayPNG().Decode(pngWithOrientation(t, stored, tt.o))
			require.NoError(t, err)
			assert.Equal(t, image.Rect(0, 0, tt.w, tt.h), got.Rect)
			assert.Equal(t, tt.want, got.Pix[:len(tt.want)])
			assert.Equal(t, tt.w, got.Stride)
		})
	}
	// The same holds for a colour PNG, which is turned and then made gray.
	rgba := image.NewRGBA(image.Rect(0, 0, 2, 1))
	rgba.Set(0, 0, color.White)
	rgba.Set(1, 0, color.Black)
	got, err := GrayPNG().Decode(pngWithOrientation(t, rgba, 6))
	require.NoError(t, err)
	assert.Equal(t, image.Rect(0, 0, 1, 2), got.Rect)
	assert.Equal(t, []uint8{255, 0}, got.Pix)
}
