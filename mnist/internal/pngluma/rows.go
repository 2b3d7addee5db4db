package pngluma

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

const (
	lowBits  = 0x7f7f7f7f7f7f7f7f
	highBits = 0x8080808080808080
	ones     = 0x0101010101010101
)

// addBytes adds a and b byte by byte, modulo 256, in one 64-bit word.
func addBytes(a, b uint64) uint64 {
	return ((a & lowBits) + (b & lowBits)) ^ ((a ^ b) & highBits)
}

// PNG filter types (PNG specification, section 9.2).
const (
	filterNone = iota
	filterSub
	filterUp
	filterAverage
	filterPaeth
)

// upRow undoes the Up filter of the row cur (cur[i] += prev[i]) and writes
// the row's luminance into out, eight pixels at a time: where the eight
// pixels' filtered bytes are all zero, they repeat the row above, so their
// luminance is copied from above (prevOut) rather than converted again. It
// reports whether any converted pixel is not fully opaque (copied ones were
// reported with the row above).
func (h *header) upRow(out, prevOut, cur, prev []byte, bg uint8) bool {
	bpp, n := h.bpp, len(out)
	translucent := false
	x := 0
	for ; x+8 <= n; x += 8 {
		c := cur[x*bpp : (x+8)*bpp]
		p := prev[x*bpp : (x+8)*bpp]
		var nonZero uint64
		for i := 0; i < len(c); i += 8 {
			nonZero |= binary.LittleEndian.Uint64(c[i:])
		}
		if nonZero == 0 {
			copy(c, p)
			binary.LittleEndian.PutUint64(out[x:], binary.LittleEndian.Uint64(prevOut[x:]))
			continue
		}
		for i := 0; i < len(c); i += 8 {
			binary.LittleEndian.PutUint64(c[i:], addBytes(binary.LittleEndian.Uint64(c[i:]), binary.LittleEndian.Uint64(p[i:])))
		}
		if h.toLuma(out[x:x+8], c, bg) {
			translucent = true
		}
	}
	if x < n {
		c, p := cur[x*bpp:], prev[x*bpp:]
		for i := range c {
			c[i] += p[i]
		}
		if h.toLuma(out[x:], c, bg) {
			translucent = true
		}
	}
	return translucent
}

// unfilter undoes the PNG filter ft (PNG specification, section 9) of the
// row cur in place, given the previous unfiltered row prev (zero before the
// first row) and bpp bytes per pixel. Runs of zero filtered bytes, which
// a drawing's background makes, are handled eight at a time.
func unfilter(ft byte, cur, prev []byte, bpp int) error {
	n := len(cur)
	switch ft {
	case filterNone:
	case filterSub: // cur[i] += cur[i-bpp]
		i := subSIMD(cur, bpp, n, bpp)
		for i < n {
			if i+8 <= n && binary.LittleEndian.Uint64(cur[i:]) == 0 {
				// Zero differences repeat the last pixel: eight bytes of
				// its pattern at once.
				binary.LittleEndian.PutUint64(cur[i:], repeatPixel(cur[i-bpp:i]))
				i += 8
				continue
			}
			// Eight bytes one at a time before the next look for a run.
			for end := min(i+8, n); i < end; i++ {
				cur[i] += cur[i-bpp]
			}
		}
	case filterUp: // cur[i] += prev[i]
		i := 0
		for ; i+8 <= n; i += 8 {
			c := binary.LittleEndian.Uint64(cur[i:])
			binary.LittleEndian.PutUint64(cur[i:], addBytes(c, binary.LittleEndian.Uint64(prev[i:])))
		}
		for ; i < n; i++ {
			cur[i] += prev[i]
		}
	case filterAverage: // cur[i] += (cur[i-bpp] + prev[i]) / 2
		for i := range min(bpp, n) {
			cur[i] += prev[i] / 2
		}
		for i := avgSIMD(cur, prev, bpp, n, bpp); i < n; i++ {
			cur[i] += uint8((int(cur[i-bpp]) + int(prev[i])) / 2)
		}
	case filterPaeth:
		for i := range min(bpp, n) {
			cur[i] += prev[i] // the predictor of the first pixel is b
		}
		i := bpp
		for i < n {
			if i+8 <= n && binary.LittleEndian.Uint64(cur[i:]) == 0 {
				// Zero differences where left, above and upper left are all
				// one value v predict v: eight bytes of background at once.
				v := cur[i-1]
				if w := binary.LittleEndian.Uint64(prev[i:]); w == uint64(v)*ones && sameBytes(cur[i-bpp:i], v) && sameBytes(prev[i-bpp:i], v) {
					// The run goes on while the differences stay zero and
					// the row above stays v: the bytes just written and
					// those above them are the next left and upper left
					// neighbours.
					i = paethRun(cur, prev, i, w)
					continue
				}
			}
			// The bytes up to where such a run may start again (zero
			// differences under a flat stretch of the row above), at
			// least eight: with the kernels where there are some, then
			// one at a time.
			j := i + 8
			for ; j+8 <= n; j += 8 {
				w := binary.LittleEndian.Uint64(prev[j:])
				if binary.LittleEndian.Uint64(cur[j:]) == 0 && w == uint64(uint8(w))*ones && binary.LittleEndian.Uint64(prev[j-8:]) == w {
					break
				}
			}
			if j+8 > n {
				j = n
			}
			for i = paethSIMD(cur, prev, i, j, bpp); i < j; i++ {
				// b == c predicts a, a == c predicts b (then pa = pc >
				// pb = 0, or all three are equal): the cases of a
				// drawing's flat areas, without the full predictor.
				a, b, c := cur[i-bpp], prev[i], prev[i-bpp]
				switch {
				case b == c:
					cur[i] += a
				case a == c:
					cur[i] += b
				default:
					cur[i] += paeth(a, b, c)
				}
			}
		}
	default:
		return unsupported("filter type %d", ft)
	}
	return nil
}

// zeros is compared against; it is never written.
var zeros [4096]byte

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	for len(b) > len(zeros) {
		if !bytes.Equal(b[:len(zeros)], zeros[:]) {
			return false
		}
		b = b[len(zeros):]
	}
	return bytes.Equal(b, zeros[:len(b)])
}

// repeatPixel returns eight bytes that repeat the pixel p (1 to 4 bytes)
// from its first byte: what follows p in a Sub-filtered row whose
// differences are zero.
func repeatPixel(p []byte) uint64 {
	switch len(p) {
	case 1:
		return uint64(p[0]) * ones
	case 2:
		return uint64(p[0])*0x0001000100010001 + uint64(p[1])*0x0100010001000100
	case 3:
		v := uint64(p[0]) | uint64(p[1])<<8 | uint64(p[2])<<16
		return v | v<<24 | v<<48
	default:
		v := uint64(binary.LittleEndian.Uint32(p))
		return v | v<<32
	}
}

func sameBytes(b []byte, v byte) bool {
	for _, c := range b {
		if c != v {
			return false
		}
	}
	return true
}

// paeth is the Paeth predictor of left a, above b and upper-left c, with
// the specification's tie-breaking (a, then b, then c), written so that the
// compiler can use conditional moves rather than branches.
func paeth(a, b, c uint8) uint8 {
	pa := int(b) - int(c) // p - a, where p = a + b - c
	pb := int(a) - int(c) // p - b
	pc := pa + pb         // p - c
	pa, pb, pc = abs(pa), abs(pb), abs(pc)
	r := c
	if pb <= pc {
		r = b
	}
	if pa <= pb && pa <= pc {
		r = a
	}
	return r
}

func abs(x int) int {
	m := x >> (bits.UintSize - 1)
	return (x ^ m) - m
}

// gray8 is color.GrayModel on 8-bit channels, exactly: GrayModel works on
// 16-bit ones (v*257) and shifts by 24 (the weights sum to 65536; the sum
// fits in 32 bits). gray8(v, v, v) == v.
func gray8(r, g, b uint32) uint8 { return uint8((257*(19595*r+38470*g+7471*b) + 1<<15) >> 24) }

// mix composites a non-premultiplied channel c with alpha a onto bg.
func mix(c, a, bg uint32) uint32 { return (c*a + bg*(0xff-a) + 0x7f) / 0xff }

// greyPixels reports whether the eight RGB pixels in the 24 bytes w0, w1,
// w2 (little-endian) are all grey, each with equal red, green and blue:
// each byte is compared with the next (the words shifted by a byte), where
// both are in one pixel.
func greyPixels(w0, w1, w2 uint64) bool {
	d0 := (w0 ^ (w0>>8 | w1<<56)) & 0xffff00ffff00ffff // bytes 0-1, 1-2, 3-4, 4-5, 6-7, 7-8
	d1 := (w1 ^ (w1>>8 | w2<<56)) & 0xff00ffff00ffff00 // 9-10, 10-11, 12-13, 13-14, 15-16
	d2 := (w2 ^ w2>>8) & 0x00ffff00ffff00ff            // 16-17, 18-19, 19-20, 21-22, 22-23
	return d0|d1|d2 == 0
}

// toLuma writes the luminance of the unfiltered row src into out and
// reports whether any of its pixels is not fully opaque.
func (h *header) toLuma(out, src []byte, bg uint8) bool {
	bgc := uint32(bg)
	translucent := false
	switch h.colorType {
	case colorGray:
		copy(out, src)
	case colorPalette:
		for x, i := range src {
			out[x] = h.palette.level[i]
			if h.palette.translucent[i] {
				translucent = true
			}
		}
	case colorGrayAlpha:
		for x := range out {
			v, a := uint32(src[2*x]), uint32(src[2*x+1])
			if a != 0xff {
				translucent = true
				v = mix(v, a, bgc)
			}
			out[x] = uint8(v)
		}
	case colorRGB:
		x := 0
		for ; x+8 <= len(out); x += 8 {
			// Eight pixels of one grey (a drawing's background) are that grey.
			p := src[3*x : 3*x+24 : 3*x+24]
			w0, w1, w2 := binary.LittleEndian.Uint64(p), binary.LittleEndian.Uint64(p[8:]), binary.LittleEndian.Uint64(p[16:])
			if w0 == uint64(p[0])*ones && w0 == w1 && w0 == w2 {
				binary.LittleEndian.PutUint64(out[x:], w0)
				continue
			}
			if greyPixels(w0, w1, w2) {
				// Eight grey pixels (an antialiased stroke on a grey
				// drawing): their red levels, bytes 0, 3, 6, ... 21.
				binary.LittleEndian.PutUint64(out[x:], w0&0xff|w0>>24&0xff<<8|w0>>48&0xff<<16|w1>>8&0xff<<24|
					w1>>32&0xff<<32|w1>>56<<40|w2>>16&0xff<<48|w2>>40&0xff<<56)
				continue
			}
			for k := range 8 {
				q := p[3*k : 3*k+3 : 3*k+3]
				out[x+k] = gray8(uint32(q[0]), uint32(q[1]), uint32(q[2]))
			}
		}
		for ; x < len(out); x++ {
			q := src[3*x : 3*x+3 : 3*x+3]
			out[x] = gray8(uint32(q[0]), uint32(q[1]), uint32(q[2]))
		}
	case colorRGBA:
		for x := range out {
			q := src[4*x : 4*x+4 : 4*x+4]
			a := uint32(q[3])
			if a == 0xff {
				if q[0] == q[1] && q[1] == q[2] {
					out[x] = q[0]
					continue
				}
				out[x] = gray8(uint32(q[0]), uint32(q[1]), uint32(q[2]))
				continue
			}
			translucent = true
			out[x] = gray8(mix(uint32(q[0]), a, bgc), mix(uint32(q[1]), a, bgc), mix(uint32(q[2]), a, bgc))
		}
	}
	return translucent
}
