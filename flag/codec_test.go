package flag

import (
	"bytes"
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
