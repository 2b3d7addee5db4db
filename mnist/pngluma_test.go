package mnist

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/mnist/internal/pngluma"
)

// pngSpec describes a PNG for the test encoder: 8-bit samples, colour type
// ct, and the filter of each row chosen by filterOf.
type pngSpec struct {
	w, h     int
	ct       byte
	plte     []byte
	trns     []byte
	filterOf func(y int) byte
}

func pngChunk(buf *bytes.Buffer, typ string, body []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(body)))
	buf.Write(n[:])
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(body)
	buf.WriteString(typ)
	buf.Write(body)
	binary.BigEndian.PutUint32(n[:], crc.Sum32())
	buf.Write(n[:])
}

// encodeFiltered writes raw (rows of w*bpp bytes) as a PNG with the given
// filters: unlike image/png's encoder it writes every colour type and every
// filter, so that the decoder's paths are all reached.
func encodeFiltered(t testing.TB, s pngSpec, raw []byte) []byte {
	bpp := map[byte]int{0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[s.ct]
	rl := s.w * bpp
	var filtered bytes.Buffer
	prev := make([]byte, rl)
	for y := range s.h {
		cur := raw[y*rl : (y+1)*rl]
		ft := s.filterOf(y)
		filtered.WriteByte(ft)
		for i := range cur {
			var a, b, c int
			if i >= bpp {
				a, c = int(cur[i-bpp]), int(prev[i-bpp])
			}
			b = int(prev[i])
			var pred int
			switch ft {
			case 1:
				pred = a
			case 2:
				pred = b
			case 3:
				pred = (a + b) / 2
			case 4:
				p := a + b - c
				pa, pb, pc := max(p-a, a-p), max(p-b, b-p), max(p-c, c-p)
				switch {
				case pa <= pb && pa <= pc:
					pred = a
				case pb <= pc:
					pred = b
				default:
					pred = c
				}
			}
			filtered.WriteByte(cur[i] - uint8(pred))
		}
		prev = cur
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	_, err := zw.Write(filtered.Bytes())
	require.NoError(t, err)
	require.NoError(t, zw.Close())

	var out bytes.Buffer
	out.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr, uint32(s.w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(s.h))
	ihdr[8], ihdr[9] = 8, s.ct
	pngChunk(&out, "IHDR", ihdr)
	if s.plte != nil {
		pngChunk(&out, "PLTE", s.plte)
	}
	if s.trns != nil {
		pngChunk(&out, "tRNS", s.trns)
	}
	// Two IDAT chunks, split unevenly, as encoders may.
	zb := z.Bytes()
	cut := len(zb) / 3
	pngChunk(&out, "IDAT", zb[:cut])
	pngChunk(&out, "IDAT", zb[cut:])
	pngChunk(&out, "IEND", nil)
	return out.Bytes()
}

// drawingLikeRows returns w x h pixels of bpp bytes: a background, runs of
// a few colours and rows that repeat the row above, as drawings have, plus
// noise, so that both the fast paths and the general ones are taken.
func drawingLikeRows(rng *rand.Rand, w, h, bpp int, palette int) []byte {
	raw := make([]byte, w*h*bpp)
	pixel := func() []byte {
		p := make([]byte, bpp)
		for i := range p {
			p[i] = uint8(rng.IntN(256))
		}
		if palette > 0 {
			p[0] = uint8(rng.IntN(palette + 2)) // some indices past the palette
		}
		if rng.IntN(3) == 0 && bpp >= 3 { // grey
			p[1], p[2] = p[0], p[0]
		}
		if bpp == 4 || bpp == 2 {
			switch rng.IntN(3) {
			case 0:
				p[bpp-1] = 0xff
			case 1:
				p[bpp-1] = 0
			}
		}
		return p
	}
	rl := w * bpp
	for y := range h {
		row := raw[y*rl : (y+1)*rl]
		if y > 0 && rng.IntN(3) == 0 {
			copy(row, raw[(y-1)*rl:])
			if rng.IntN(2) == 0 { // a small change in a repeated row
				x := rng.IntN(w)
				copy(row[x*bpp:], pixel())
			}
			continue
		}
		for x := 0; x < w; {
			p, run := pixel(), 1+rng.IntN(20)
			for ; run > 0 && x < w; run, x = run-1, x+1 {
				copy(row[x*bpp:], p)
			}
		}
	}
	return raw
}

// TestPNGLumaMatchesImagePNG checks that the fast decoder gives, byte for
// byte, what decoding with image/png and converting gives, for every colour
// type and filter it handles, on both backgrounds.
func TestPNGLumaMatchesImagePNG(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	filters := map[string]func(y int) byte{
		"none":    func(int) byte { return 0 },
		"sub":     func(int) byte { return 1 },
		"up":      func(int) byte { return 2 },
		"average": func(int) byte { return 3 },
		"paeth":   func(int) byte { return 4 },
		"mixed":   func(y int) byte { return byte(y * 7 % 5) },
	}
	plte := make([]byte, 3*40)
	for i := range plte {
		plte[i] = uint8(rng.IntN(256))
	}
	trns := make([]byte, 25)
	for i := range trns {
		trns[i] = uint8(rng.IntN(256))
	}
	types := []struct {
		name       string
		ct         byte
		bpp        int
		plte, trns []byte
	}{
		{"gray", 0, 1, nil, nil},
		{"rgb", 2, 3, nil, nil},
		{"palette", 3, 1, plte, nil},
		{"palette+trns", 3, 1, plte, trns},
		{"gray+alpha", 4, 2, nil, nil},
		{"rgba", 6, 4, nil, nil},
	}
	sizes := [][2]int{{1, 1}, {7, 3}, {8, 2}, {29, 17}, {84, 84}}
	for _, ty := range types {
		for fname, f := range filters {
			for _, sz := range sizes {
				t.Run(fmt.Sprintf("%s/%s/%dx%d", ty.name, fname, sz[0], sz[1]), func(t *testing.T) {
					palette := 0
					if ty.plte != nil {
						palette = len(ty.plte) / 3
					}
					raw := drawingLikeRows(rng, sz[0], sz[1], ty.bpp, palette)
					data := encodeFiltered(t, pngSpec{w: sz[0], h: sz[1], ct: ty.ct, plte: ty.plte, trns: ty.trns, filterOf: f}, raw)
					ref, err := png.Decode(bytes.NewReader(data))
					require.NoError(t, err)
					for _, bg := range []uint8{0xff, 0} {
						want, wantTranslucent := luminance(ref, bg)
						got, gotTranslucent, err := pngluma.Decode(data, bg, nil)
						require.NoError(t, err)
						require.Equal(t, want.Rect, got.Rect)
						require.Equal(t, want.Pix, got.Pix, "background %d", bg)
						assert.Equal(t, wantTranslucent, gotTranslucent)
					}
				})
			}
		}
	}
}

// TestPreprocessPNGFastPathMatchesImagePNG runs whole drawings through
// Preprocess (the fast path) and through image/png and PreprocessImage.
func TestPreprocessPNGFastPathMatchesImagePNG(t *testing.T) {
	digits, _ := testDigits(t)
	renderings := []rendering{
		{size: 60, canvasW: 84, canvasH: 84, at: image.Pt(12, 12), darkOnLight: true},
		{size: 200, canvasW: 280, canvasH: 280, at: image.Pt(30, 50), darkOnLight: true},
		{size: 150, canvasW: 400, canvasH: 300, at: image.Pt(200, 100), transparentBg: true},
		{size: 150, canvasW: 300, canvasH: 300, at: image.Pt(10, 100), lightOnAlpha: true},
		{size: 100, canvasW: 200, canvasH: 200, at: image.Pt(50, 50), bgLevel: 60},
	}
	for i, d := range digits[:10] {
		for _, r := range renderings {
			data := encodePNG(t, render(d, r))
			_, err := pngluma.Parse(data)
			require.NoError(t, err, "digit %d, %+v: the fast path must take image/png's output", i, r)
			got, err := Preprocess(data, nil)
			require.NoError(t, err)
			img, err := png.Decode(bytes.NewReader(data))
			require.NoError(t, err)
			want, err := PreprocessImage(img)
			require.NoError(t, err)
			require.Equal(t, want.Pix, got.Pix, "digit %d, %+v", i, r)
		}
	}
}

// FuzzPNGLuma checks, for any filtered pixel stream (filter types
// included) in any of the handled layouts, that the fast decoder and
// image/png agree: both refuse, or both decode to the same luminance and
// translucency. The fuzzer writes the rows; the chunks and CRCs are made
// here, so that the decoder's pixel paths are what gets explored.
func FuzzPNGLuma(f *testing.F) {
	f.Add(uint8(2), uint8(9), []byte{2, 255, 255, 255, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(uint8(4), uint8(3), []byte{4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(uint8(3), uint8(5), []byte{0, 0, 1, 2, 3, 9, 3, 1, 1, 1, 1, 1})
	f.Fuzz(func(t *testing.T, layout, width uint8, filtered []byte) {
		types := []struct {
			ct  byte
			bpp int
		}{{0, 1}, {2, 3}, {3, 1}, {4, 2}, {6, 4}}
		ty := types[int(layout)%len(types)]
		w := 1 + int(width)%40
		rowLen := 1 + w*ty.bpp
		h := len(filtered) / rowLen
		if h == 0 {
			return
		}
		var z bytes.Buffer
		zw := zlib.NewWriter(&z)
		_, _ = zw.Write(filtered[:h*rowLen])
		require.NoError(t, zw.Close())
		var data bytes.Buffer
		data.WriteString("\x89PNG\r\n\x1a\n")
		ihdr := make([]byte, 13)
		binary.BigEndian.PutUint32(ihdr, uint32(w))
		binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
		ihdr[8], ihdr[9] = 8, ty.ct
		pngChunk(&data, "IHDR", ihdr)
		if ty.ct == 3 {
			pngChunk(&data, "PLTE", []byte{1, 2, 3, 200, 100, 50, 7, 7, 7})
			pngChunk(&data, "tRNS", []byte{128})
		}
		pngChunk(&data, "IDAT", z.Bytes())
		pngChunk(&data, "IEND", nil)

		ref, refErr := png.Decode(bytes.NewReader(data.Bytes()))
		for _, bg := range []uint8{0xff, 0} {
			got, gotTranslucent, err := pngluma.Decode(data.Bytes(), bg, nil)
			if err != nil {
				require.ErrorIs(t, err, pngluma.ErrUnsupported)
				require.Error(t, refErr, "pngluma refused what image/png decodes: %v", err)
				continue
			}
			require.NoError(t, refErr, "pngluma decoded what image/png refuses")
			want, wantTranslucent := luminance(ref, bg)
			require.Equal(t, want.Pix, got.Pix)
			require.Equal(t, wantTranslucent, gotTranslucent)
		}
	})
}

// TestPNGLumaLargeImages covers the decoder's two-goroutine path (images
// that inflate to 4 MB or more), its block boundaries, and a stream cut
// short in the middle, with no goroutine left behind.
func TestPNGLumaLargeImages(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const w, h = 1200, 1300 // 1,300 rows of 3,601 bytes: 4.7 MB
	raw := drawingLikeRows(rng, w, h, 3, 0)
	data := encodeFiltered(t, pngSpec{w: w, h: h, ct: 2, filterOf: func(y int) byte { return byte(y / 3 % 5) }}, raw)
	ref, err := png.Decode(bytes.NewReader(data))
	require.NoError(t, err)
	want, _ := luminance(ref, 0xff)
	got, translucent, err := pngluma.Decode(data, 0xff, nil)
	require.NoError(t, err)
	assert.False(t, translucent)
	require.Equal(t, want.Pix, got.Pix)

	// The same pixels with the last 500 rows missing from the stream.
	short := encodeFiltered(t, pngSpec{w: w, h: h - 500, ct: 2, filterOf: func(y int) byte { return byte(y / 3 % 5) }}, raw[:(h-500)*w*3])
	// Claim the full height in the header.
	short = bytes.Replace(short, []byte{0, 0, byte((h - 500) >> 8), byte((h - 500) & 0xff), 8, 2}, []byte{0, 0, byte(h >> 8), byte(h & 0xff), 8, 2}, 1)
	fixIHDRCRC(short)
	_, _, err = pngluma.Decode(short, 0xff, nil)
	require.ErrorIs(t, err, pngluma.ErrUnsupported)
	require.ErrorContains(t, err, "pixel data")

	// A row with an undefined filter type late in the image stops the
	// unfiltering goroutine's partner too.
	bad := encodeFiltered(t, pngSpec{w: w, h: h, ct: 2, filterOf: func(y int) byte { return byte(min(y/1000*7, 7)) }}, raw)
	_, _, err = pngluma.Decode(bad, 0xff, nil)
	require.ErrorIs(t, err, pngluma.ErrUnsupported)
	require.ErrorContains(t, err, "filter type 7")
	_, err = png.Decode(bytes.NewReader(bad))
	require.Error(t, err, "image/png refuses it too")
}

// fixIHDRCRC recomputes the CRC of the IHDR chunk of a PNG file in place.
func fixIHDRCRC(data []byte) {
	const at = 8 // after the signature
	binary.BigEndian.PutUint32(data[at+8+13:], crc32.ChecksumIEEE(data[at+4:at+8+13]))
}

// TestPNGLumaChromiumCanvas decodes two snapshots that Chromium's
// canvas.toDataURL("image/png") wrote (8-bit RGBA, the image data in two
// IDAT chunks): the page's kind, a seven on a white-filled canvas, and a
// ring on a transparent one. The fast path takes both and agrees with
// image/png.
func TestPNGLumaChromiumCanvas(t *testing.T) {
	for _, name := range []string{"chromium-canvas-seven-84.png", "chromium-canvas-ring-transparent-84.png"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", name))
			require.NoError(t, err)
			ref, err := png.Decode(bytes.NewReader(data))
			require.NoError(t, err)
			for _, bg := range []uint8{0xff, 0} {
				want, wantTranslucent := luminance(ref, bg)
				got, gotTranslucent, err := pngluma.Decode(data, bg, nil)
				require.NoError(t, err, "the fast path must take the browser's snapshot")
				require.Equal(t, want.Pix, got.Pix)
				require.Equal(t, wantTranslucent, gotTranslucent)
			}
			out, err := Preprocess(data, nil)
			require.NoError(t, err)
			assert.Equal(t, image.Rect(0, 0, Side, Side), out.Rect)
		})
	}
}
