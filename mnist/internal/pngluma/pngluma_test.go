package pngluma

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ring returns a PNG of a dark ring on a white square of the given side,
// opaque (image/png writes it as 8-bit RGB) or with a translucent pixel
// (RGBA), as a canvas snapshot looks.
func ring(t testing.TB, side int, translucent bool) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, side, side))
	c, r0, r1 := float64(side)/2, float64(side)*0.25, float64(side)*0.35
	for y := range side {
		for x := range side {
			dx, dy := float64(x)-c, float64(y)-c
			v := uint8(255)
			if d := dx*dx + dy*dy; d >= r0*r0 && d <= r1*r1 {
				v = 0
			}
			img.SetNRGBA(x, y, color.NRGBA{v, v, v, 255})
		}
	}
	if translucent {
		img.SetNRGBA(0, 0, color.NRGBA{255, 255, 255, 254})
	}
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	return buf.Bytes()
}

func TestDecodeRing(t *testing.T) {
	for _, translucent := range []bool{false, true} {
		data := ring(t, 50, translucent)
		g, tr, err := Decode(data, 0xff, nil)
		require.NoError(t, err)
		assert.Equal(t, translucent, tr)
		assert.Equal(t, image.Rect(0, 0, 50, 50), g.Rect)
		assert.Equal(t, 50, g.Stride)
		assert.Equal(t, uint8(255), g.GrayAt(1, 1).Y)
		assert.Equal(t, uint8(0), g.GrayAt(25, 10).Y) // on the ring: 15 px above the centre
	}
}

// rechunk rebuilds a PNG file from chunks, recomputing CRCs unless bad.
func rechunk(chunks [][2][]byte, badCRC string) []byte {
	var out bytes.Buffer
	out.Write(signature)
	for _, c := range chunks {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(c[1])))
		out.Write(n[:])
		out.Write(c[0])
		out.Write(c[1])
		crc := crc32.ChecksumIEEE(append(append([]byte{}, c[0]...), c[1]...))
		if string(c[0]) == badCRC {
			crc++
		}
		binary.BigEndian.PutUint32(n[:], crc)
		out.Write(n[:])
	}
	return out.Bytes()
}

func chunksOf(data []byte) [][2][]byte {
	var out [][2][]byte
	rest := data[len(signature):]
	for len(rest) >= 12 {
		n := binary.BigEndian.Uint32(rest)
		out = append(out, [2][]byte{rest[4:8], rest[8 : 8+n]})
		rest = rest[12+n:]
	}
	return out
}

// TestDecodeUnsupported checks that every layout the package leaves to
// image/png, and every kind of damage, gives ErrUnsupported.
func TestDecodeUnsupported(t *testing.T) {
	good := ring(t, 20, false)
	chunks := chunksOf(good)
	ihdr := func(mutate func(b []byte)) []byte {
		cs := make([][2][]byte, len(chunks))
		copy(cs, chunks)
		b := append([]byte{}, cs[0][1]...)
		mutate(b)
		cs[0][1] = b
		return rechunk(cs, "")
	}
	with := func(at int, typ string, body []byte) []byte {
		cs := append(append(append([][2][]byte{}, chunks[:at]...), [2][]byte{[]byte(typ), body}), chunks[at:]...)
		return rechunk(cs, "")
	}
	var gray16 bytes.Buffer
	require.NoError(t, png.Encode(&gray16, image.NewGray16(image.Rect(0, 0, 4, 4))))
	var truncatedIDAT [][2][]byte
	for _, c := range chunks {
		if string(c[0]) == "IDAT" {
			c[1] = c[1][:len(c[1])/2]
		}
		truncatedIDAT = append(truncatedIDAT, c)
	}
	cases := map[string][]byte{
		"not a PNG":            []byte("GIF89a..."),
		"empty":                nil,
		"truncated":            good[:len(good)-5],
		"bad CRC":              rechunk(chunks, "IDAT"),
		"16-bit":               gray16.Bytes(),
		"interlaced":           ihdr(func(b []byte) { b[12] = 1 }),
		"bit depth 4":          ihdr(func(b []byte) { b[8] = 4 }),
		"colour type 5":        ihdr(func(b []byte) { b[9] = 5 }),
		"zero width":           ihdr(func(b []byte) { binary.BigEndian.PutUint32(b, 0) }),
		"tRNS on RGB":          with(1, "tRNS", []byte{0, 1, 0, 2, 0, 3}),
		"unknown critical":     with(1, "ABCD", []byte{1}),
		"no IEND":              good[:len(good)-12],
		"truncated pixels":     rechunk(truncatedIDAT, ""),
		"palette without PLTE": ihdr(func(b []byte) { b[9] = 3 }),
		"PLTE in grey": func() []byte {
			cs := append([][2][]byte{}, chunks...)
			b := append([]byte{}, cs[0][1]...)
			b[9] = 0 // grey: the ring's RGB rows are then the wrong length too, but PLTE is refused first
			cs[0][1] = b
			cs = append(cs[:1], append([][2][]byte{{[]byte("PLTE"), []byte{1, 2, 3}}}, cs[1:]...)...)
			return rechunk(cs, "")
		}(),
		"IDAT, tEXt, IDAT": func() []byte {
			var cs [][2][]byte
			for _, c := range chunks {
				if string(c[0]) == "IDAT" && len(c[1]) > 4 {
					cs = append(cs, [2][]byte{c[0], c[1][:4]}, [2][]byte{[]byte("tEXt"), []byte("a\x00b")}, [2][]byte{c[0], c[1][4:]})
					continue
				}
				cs = append(cs, c)
			}
			return rechunk(cs, "")
		}(),
		"second IHDR": with(1, "IHDR", chunks[0][1]),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := Decode(data, 0xff, nil)
			require.ErrorIs(t, err, ErrUnsupported)
		})
	}
	// A palette image whose tRNS comes before its PLTE.
	colours := color.Palette{color.NRGBA{0, 0, 0, 128}}
	for i := range 16 { // 17 colours: an 8-bit palette
		colours = append(colours, color.Gray{uint8(i * 16)})
	}
	pal := image.NewPaletted(image.Rect(0, 0, 4, 4), colours)
	var palPNG bytes.Buffer
	require.NoError(t, png.Encode(&palPNG, pal))
	pcs := chunksOf(palPNG.Bytes())
	require.Equal(t, "PLTE", string(pcs[1][0]))
	require.Equal(t, "tRNS", string(pcs[2][0]))
	_, _, err := Decode(palPNG.Bytes(), 0xff, nil)
	require.NoError(t, err, "in order, it decodes")
	pcs[1], pcs[2] = pcs[2], pcs[1]
	_, _, err = Decode(rechunk(pcs, ""), 0xff, nil)
	require.ErrorIs(t, err, ErrUnsupported)

	// Ancillary chunks of any name are skipped.
	_, _, err = Decode(with(1, "abCd", []byte{1, 2}), 0xff, nil)
	require.NoError(t, err)
}

func TestDecodeReusesBuffer(t *testing.T) {
	buf := make([]byte, 100*100)
	g, _, err := Decode(ring(t, 84, false), 0xff, buf)
	require.NoError(t, err)
	assert.Same(t, &buf[0], &g.Pix[0])
	g, _, err = Decode(ring(t, 120, false), 0xff, buf)
	require.NoError(t, err)
	assert.Len(t, g.Pix, 120*120)
}
