package mnistweb_test

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/adler32"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// greyStoredPNG encodes g the way the page's greypng.js does (8-bit
// greyscale, not interlaced, filter None on every row, a zlib stream of
// stored deflate blocks of at most 65,535 bytes, header 78 01): a
// reference for the page's encoder, and request bodies like the page's for
// tests that do not run a browser.
func greyStoredPNG(g *image.Gray) []byte {
	w, h := g.Bounds().Dx(), g.Bounds().Dy()
	raw := make([]byte, 0, h*(w+1))
	for y := range h {
		raw = append(raw, 0) // filter type None
		raw = append(raw, g.Pix[y*g.Stride:y*g.Stride+w]...)
	}
	z := []byte{0x78, 0x01}
	for start := 0; ; start += 65535 {
		n := min(65535, len(raw)-start)
		final := byte(0)
		if start+n == len(raw) {
			final = 1
		}
		z = append(z, final)
		z = binary.LittleEndian.AppendUint16(z, uint16(n))
		z = binary.LittleEndian.AppendUint16(z, ^uint16(n))
		z = append(z, raw[start:start+n]...)
		if final == 1 {
			break
		}
	}
	z = binary.BigEndian.AppendUint32(z, adler32.Checksum(raw))

	out := []byte("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		out = binary.BigEndian.AppendUint32(out, uint32(len(data)))
		start := len(out)
		out = append(out, typ...)
		out = append(out, data...)
		out = binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(out[start:]))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	ihdr = append(ihdr, 8, 0, 0, 0, 0) // depth 8, greyscale, deflate, filter method 0, no interlace
	chunk("IHDR", ihdr)
	chunk("IDAT", z)
	chunk("IEND", nil)
	return out
}

// TestGreyStoredPNG checks the reference encoder itself: the layout, and
// image/png gives back the pixels, for one block, exactly one full block,
// and two.
func TestGreyStoredPNG(t *testing.T) {
	for _, size := range [][2]int{{1, 1}, {84, 84}, {256, 255}, {255, 256}, {300, 300}} {
		w, h := size[0], size[1]
		g := image.NewGray(image.Rect(0, 0, w, h))
		for i := range g.Pix {
			g.Pix[i] = uint8(i*7 + i/w)
		}
		b := greyStoredPNG(g)
		checkGreyStoredPNG(t, b, w, h)
		img, err := png.Decode(bytes.NewReader(b))
		require.NoError(t, err)
		require.IsType(t, &image.Gray{}, img)
		assert.Equal(t, g.Pix, img.(*image.Gray).Pix, "%dx%d", w, h)
	}
}

// checkGreyStoredPNG checks that data is the PNG the page's encoder writes
// for a w x h image (signature; IHDR with 8-bit greyscale, no interlace;
// one IDAT; IEND; every CRC-32; a zlib stream of stored deflate blocks of
// at most 65,535 bytes, the last one final, and the right Adler-32; filter
// type 0 on every row) and returns the rows as stored (filter byte and
// grey levels).
func checkGreyStoredPNG(t *testing.T, data []byte, w, h int) []byte {
	t.Helper()
	require.True(t, bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")), "PNG signature")
	rest := data[8:]
	var types []string
	var ihdr, idat []byte
	for len(rest) > 0 {
		require.GreaterOrEqual(t, len(rest), 12, "a whole chunk")
		n := int(binary.BigEndian.Uint32(rest))
		require.LessOrEqual(t, n, len(rest)-12, "a whole chunk")
		typ, body := string(rest[4:8]), rest[8:8+n]
		assert.Equal(t, crc32.ChecksumIEEE(rest[4:8+n]), binary.BigEndian.Uint32(rest[8+n:]), "%s CRC-32", typ)
		types = append(types, typ)
		switch typ {
		case "IHDR":
			ihdr = body
		case "IDAT":
			idat = body
		}
		rest = rest[12+n:]
	}
	require.Equal(t, []string{"IHDR", "IDAT", "IEND"}, types, "the chunks")
	want := make([]byte, 13)
	binary.BigEndian.PutUint32(want, uint32(w))
	binary.BigEndian.PutUint32(want[4:], uint32(h))
	want[8] = 8 // bit depth; colour type, compression, filter, interlace: 0
	require.Equal(t, want, ihdr, "IHDR: %dx%d, 8-bit greyscale, not interlaced", w, h)

	// The zlib stream, block by block.
	require.GreaterOrEqual(t, len(idat), 2+5+4)
	assert.Equal(t, []byte{0x78, 0x01}, idat[:2], "zlib header")
	stream := idat[2 : len(idat)-4]
	var rows []byte
	blocks := 0
	for {
		require.GreaterOrEqual(t, len(stream), 5, "a stored block header")
		hdr := stream[0]
		require.Equal(t, byte(0), hdr&^1, "block %d is stored (BTYPE 00)", blocks)
		n := int(binary.LittleEndian.Uint16(stream[1:]))
		require.Equal(t, ^uint16(n), binary.LittleEndian.Uint16(stream[3:]), "block %d NLEN", blocks)
		require.LessOrEqual(t, 5+n, len(stream))
		rows = append(rows, stream[5:5+n]...)
		stream = stream[5+n:]
		blocks++
		if hdr&1 == 1 {
			break
		}
		assert.Equal(t, 65535, n, "every block but the last is full")
	}
	assert.Empty(t, stream, "nothing after the final block")
	require.Len(t, rows, h*(w+1))
	assert.Equal(t, max(1, (h*(w+1)+65534)/65535), blocks, "stored blocks")
	for y := range h {
		require.Equal(t, byte(0), rows[y*(w+1)], "row %d filter type", y)
	}
	// zlib checks the Adler-32 when it reaches the end.
	zr, err := zlib.NewReader(bytes.NewReader(idat))
	require.NoError(t, err)
	inflated, err := io.ReadAll(zr)
	require.NoError(t, err, "zlib stream (Adler-32)")
	require.Equal(t, rows, inflated)
	return rows
}

// lumaOf is the image's luminance plane by color.GrayModel.
func lumaOf(img image.Image) *image.Gray {
	b := img.Bounds()
	g := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := range b.Dy() {
		for x := range b.Dx() {
			g.SetGray(x, y, color.GrayModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.Gray))
		}
	}
	return g
}
