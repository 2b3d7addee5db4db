package pngluma

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/adler32"
	"image"
	"image/png"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// storedSpec describes a greyscale PNG whose zlib stream is stored
// (uncompressed) deflate blocks, as the web page writes its snapshot.
type storedSpec struct {
	w, h     int
	block    int            // bytes per stored block (at most 65,535)
	chunk    int            // bytes of zlib stream per IDAT chunk (0: one chunk)
	filterOf func(int) byte // each row's filter type; nil: None
	// damage changes the zlib stream (the header, blocks, trailer) before
	// it is cut into chunks.
	damage func(z []byte) []byte
}

// storedGrey encodes pix (w*h grey levels) as spec says, the rows filtered
// with encodeRow.
func storedGrey(s storedSpec, pix []byte) []byte {
	var raw []byte
	prev := make([]byte, s.w)
	for y := range s.h {
		ft := byte(filterNone)
		if s.filterOf != nil {
			ft = s.filterOf(y)
		}
		row := pix[y*s.w : (y+1)*s.w]
		raw = append(raw, ft)
		raw = append(raw, filterRow(ft, row, prev, 1)...)
		prev = row
	}
	z := []byte{0x78, 0x01} // deflate, 32 KiB window, no dictionary, level 0
	for rest := raw; ; {
		n := min(len(rest), s.block)
		final := byte(0)
		if n == len(rest) {
			final = 1
		}
		z = append(z, final)
		z = binary.LittleEndian.AppendUint16(z, uint16(n))
		z = binary.LittleEndian.AppendUint16(z, ^uint16(n))
		z = append(z, rest[:n]...)
		rest = rest[n:]
		if final == 1 {
			break
		}
	}
	z = binary.BigEndian.AppendUint32(z, adler32.Checksum(raw))
	if s.damage != nil {
		z = s.damage(z)
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr, uint32(s.w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(s.h))
	ihdr[8], ihdr[9] = 8, colorGray
	chunks := [][2][]byte{{[]byte("IHDR"), ihdr}}
	for rest := z; len(rest) > 0; {
		n := len(rest)
		if s.chunk > 0 {
			n = min(n, s.chunk)
		}
		chunks = append(chunks, [2][]byte{[]byte("IDAT"), rest[:n]})
		rest = rest[n:]
	}
	chunks = append(chunks, [2][]byte{[]byte("IEND"), nil})
	return rechunk(chunks, "")
}

// filterRow returns row filtered with ft, given the row above, bpp bytes
// per pixel.
func filterRow(ft byte, row, prev []byte, bpp int) []byte {
	out := make([]byte, len(row))
	for i := range row {
		var a, c int
		if i >= bpp {
			a, c = int(row[i-bpp]), int(prev[i-bpp])
		}
		b := int(prev[i])
		var pred int
		switch ft {
		case filterSub:
			pred = a
		case filterUp:
			pred = b
		case filterAverage:
			pred = (a + b) / 2
		case filterPaeth:
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
		out[i] = row[i] - uint8(pred)
	}
	return out
}

// snapshot returns w*h grey levels of a dark stroke on white, with noise.
func snapshot(rng *rand.Rand, w, h int) []byte {
	pix := make([]byte, w*h)
	for y := range h {
		for x := range w {
			v := uint8(255)
			if d := x - y; d > -w/10 && d < w/10 {
				v = uint8(rng.IntN(60))
			}
			pix[y*w+x] = v
		}
	}
	return pix
}

// TestStoredGreyMatchesImagePNG decodes greyscale PNGs of stored blocks,
// with blocks and IDAT chunks that end anywhere in a row, and compares
// them with image/png byte for byte.
func TestStoredGreyMatchesImagePNG(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, s := range []storedSpec{
		{w: 84, h: 84, block: 65535},
		{w: 84, h: 84, block: 65535, chunk: 8192},
		{w: 84, h: 84, block: 100, chunk: 7},
		{w: 84, h: 84, block: 1, chunk: 1000},
		{w: 1, h: 1, block: 65535},
		{w: 300, h: 250, block: 65535, chunk: 32768}, // 75,250 bytes: two blocks
		{w: 84, h: 84, block: 500, filterOf: func(y int) byte { return byte(y % 5) }},
		// 4.4 MB: inflated on one goroutine while unfiltered on another.
		{w: 2100, h: 2100, block: 65535, chunk: 1 << 20, filterOf: func(y int) byte { return byte(y / 7 % 5) }},
	} {
		name := fmt.Sprintf("%dx%d, blocks of %d, chunks of %d, filtered %t", s.w, s.h, s.block, s.chunk, s.filterOf != nil)
		t.Run(name, func(t *testing.T) {
			pix := snapshot(rng, s.w, s.h)
			data := storedGrey(s, pix)
			ref, err := png.Decode(bytes.NewReader(data))
			require.NoError(t, err)
			require.Equal(t, pix, ref.(*image.Gray).Pix)
			f, err := Parse(data)
			require.NoError(t, err)
			require.True(t, storedOnly(chunkCursor{chunks: f.h.idat, off: 2}), "the stored path is taken")
			g, translucent, err := f.Luminance(0xff, nil)
			require.NoError(t, err)
			assert.False(t, translucent)
			assert.Equal(t, pix, g.Pix)
		})
	}
}

// TestStoredDamaged damages the stored blocks of a greyscale PNG: the
// package refuses every such file with ErrUnsupported, and image/png
// refuses it too.
func TestStoredDamaged(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	pix := snapshot(rng, 84, 84)
	const hdr = 2 // the zlib header; then the first block's 5-byte header
	for name, s := range map[string]storedSpec{
		"NLEN not LEN's complement": {damage: func(z []byte) []byte { z[hdr+3]++; return z }},
		"a block type of 11":        {damage: func(z []byte) []byte { z[hdr] |= 6; return z }},
		"the last block not marked": {damage: func(z []byte) []byte { z[hdr] &^= 1; return z }},
		"cut short in a block":      {damage: func(z []byte) []byte { return z[:hdr+5+3000] }},
		"cut short in a header":     {damage: func(z []byte) []byte { return z[:hdr+3] }},
		"LEN longer than the data": {damage: func(z []byte) []byte {
			binary.LittleEndian.PutUint16(z[hdr+1:], 7141)
			binary.LittleEndian.PutUint16(z[hdr+3:], ^uint16(7141))
			return z
		}},
		"a row short": {damage: func(z []byte) []byte {
			binary.LittleEndian.PutUint16(z[hdr+1:], 7140-85)
			binary.LittleEndian.PutUint16(z[hdr+3:], ^uint16(7140-85))
			return append(z[:hdr+5+7140-85], z[len(z)-4:]...)
		}},
		"data after the last row": {damage: func(z []byte) []byte {
			binary.LittleEndian.PutUint16(z[hdr+1:], 7140+85)
			binary.LittleEndian.PutUint16(z[hdr+3:], ^uint16(7140+85))
			return append(append(z[:len(z)-4], make([]byte, 85)...), z[len(z)-4:]...)
		}},
		"an undefined filter type": {filterOf: func(y int) byte { return byte(min(y, 5)) }},
	} {
		t.Run(name, func(t *testing.T) {
			s.w, s.h, s.block = 84, 84, 65535
			data := storedGrey(s, pix)
			_, err := png.Decode(bytes.NewReader(data))
			require.Error(t, err, "image/png refuses it")
			_, _, err = Decode(data, 0xff, nil)
			require.ErrorIs(t, err, ErrUnsupported)
		})
	}
}

// TestStoredAdlerNotChecked: what follows the last block, where the
// Adler-32 belongs, is not read (as for compressed streams; see the
// package documentation), so a wrong checksum, or another block in its
// place, decodes here while image/png refuses it.
func TestStoredAdlerNotChecked(t *testing.T) {
	pix := snapshot(rand.New(rand.NewPCG(13, 14)), 84, 84)
	for name, damage := range map[string]func(z []byte) []byte{
		"a wrong Adler-32": func(z []byte) []byte { z[len(z)-1]++; return z },
		"a block instead":  func(z []byte) []byte { return append(z[:len(z)-4], 1, 1, 0, 0xfe, 0xff, 0) },
	} {
		t.Run(name, func(t *testing.T) {
			data := storedGrey(storedSpec{w: 84, h: 84, block: 65535, damage: damage}, pix)
			_, err := png.Decode(bytes.NewReader(data))
			require.ErrorContains(t, err, "checksum")
			g, _, err := Decode(data, 0xff, nil)
			require.NoError(t, err)
			require.Equal(t, pix, g.Pix)
		})
	}
}

// FuzzStoredGrey decodes greyscale PNGs of stored blocks with any bytes
// in place of their zlib stream, cut into IDAT chunks anywhere: the
// package never panics, and whatever it decodes, image/png decodes the
// same, after the Adler-32 is set right where the package took the path
// for stored blocks (image/png checks it, the package does not).
func FuzzStoredGrey(f *testing.F) {
	rng := rand.New(rand.NewPCG(11, 12))
	pix := snapshot(rng, 12, 10)
	for _, block := range []int{65535, 13, 1} {
		data := storedGrey(storedSpec{w: 12, h: 10, block: block}, pix)
		file, err := Parse(data)
		require.NoError(f, err)
		f.Add(bytes.Join(file.h.idat, nil), uint16(0))
	}
	f.Fuzz(func(t *testing.T, z []byte, cut uint16) {
		if len(z) == 0 {
			return
		}
		s := storedSpec{w: 12, h: 10, block: 65535, chunk: int(cut % 64), damage: func([]byte) []byte { return z }}
		data := storedGrey(s, pix)
		got, _, err := Decode(data, 0xff, nil)
		if err != nil {
			require.ErrorIs(t, err, ErrUnsupported)
			return
		}
		if c := (chunkCursor{chunks: [][]byte{z}, off: 2}); storedOnly(c) {
			raw, err := io.ReadAll(&storedReader{c: c})
			require.NoError(t, err)
			end := len(z)
			for c.i == 0 { // to the end of the last block
				n, final, _ := c.storedHeader()
				c.skip(n)
				if final {
					break
				}
			}
			if c.i == 0 {
				end = c.off
			}
			fixed := binary.BigEndian.AppendUint32(bytes.Clone(z[:end]), adler32.Checksum(raw))
			s.damage = func([]byte) []byte { return fixed }
			data = storedGrey(s, pix)
		}
		ref, err := png.Decode(bytes.NewReader(data))
		if err != nil && strings.Contains(err.Error(), "checksum") {
			return // a compressed stream's wrong Adler-32
		}
		require.NoError(t, err)
		require.Equal(t, ref.(*image.Gray).Pix, got.Pix)
	})
}

// BenchmarkStoredGrey decodes the web page's kind of snapshot: 84x84
// greyscale, every row filtered None, the zlib stream stored blocks.
func BenchmarkStoredGrey(b *testing.B) {
	pix := snapshot(rand.New(rand.NewPCG(1, 1)), 84, 84)
	data := storedGrey(storedSpec{w: 84, h: 84, block: 65535}, pix)
	buf := make([]byte, 84*84)
	b.Run("Parse+Luminance", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f, err := Parse(data)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := f.Luminance(0xff, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Parse(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	f, err := Parse(data)
	require.NoError(b, err)
	b.Run("Luminance", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := f.Luminance(0xff, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}
