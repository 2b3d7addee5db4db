package kernels

// LessMask sets bit i of mask (bit i%64 of mask[i/64]) when src[i]^flip <
// limit, for every byte of src, and clears the other bits of the
// (len(src)+63)/64 words it writes; it panics (index out of range) if mask
// is shorter. Image preprocessing finds its ink with it a row at a time:
// flipped so that ink is a small byte, the pixels dark enough to be ink.
func LessMask(mask []uint64, src []byte, flip, limit byte) {
	mask = mask[:(len(src)+63)/64]
	if limit == 0 || len(src) == 0 {
		clear(mask)
		return
	}
	lessMask(mask, src, flip, limit)
}

// lessMaskGeneric is LessMask from byte from on (mask cleared there), eight
// bytes at a time as the lanes of a word.
func lessMaskGeneric(mask []uint64, src []byte, from int, flip, limit byte) {
	flips, limits := uint64(flip)*lanesOf1, uint64(limit)*lanesOf1
	i := from
	for ; i+8 <= len(src); i += 8 {
		s := src[i : i+8 : i+8]
		word := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
		mask[i/64] |= uint64(laneBits(lessBytes(word^flips, limits))) << (i % 64)
	}
	for ; i < len(src); i++ {
		if src[i]^flip < limit {
			mask[i/64] |= 1 << (i % 64)
		}
	}
}

// Byte lanes: eight unsigned bytes in a word, little-endian, handled
// together without a branch (SWAR).
const (
	lanesOf1  = 0x0101010101010101 // times a byte: that byte in every lane
	laneHighs = 0x8080808080808080 // the high bit of every lane
)

// lessBytes returns the high bit of each lane where a's byte is below b's.
// Whether a < b is decided by the high bits, and where those are equal by
// the low seven bits, compared by a subtraction that cannot borrow from the
// next lane.
func lessBytes(a, b uint64) uint64 {
	geLow := (a | laneHighs) - (b &^ laneHighs) // high bit: a's low 7 bits >= b's
	return ((^a & b) | (^(a ^ b) &^ geLow)) & laneHighs
}

// laneBits packs the high bits of m's lanes (m has no other bits set) into
// a byte, lane k's in bit k: each lands on its own bit of the product's top
// byte, and no two partial products share a bit, so nothing carries.
func laneBits(m uint64) uint8 { return uint8((m * 0x02040810204081) >> 56) }

// MinByte returns the smallest src[i]^flip; src must not be empty (it
// panics otherwise).
func MinByte(src []byte, flip byte) byte {
	var m [1]byte
	RowMins(m[:], src[:len(src):len(src)], len(src), flip)
	return m[0]
}

// minByteGeneric is MinByte, eight bytes at a time as the lanes of a word.
func minByteGeneric(src []byte, flip byte) byte {
	flips := uint64(flip) * lanesOf1
	lanes := ^uint64(0)
	i := 0
	for ; i+8 <= len(src); i += 8 {
		s := src[i : i+8 : i+8]
		word := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
		word ^= flips
		lanes ^= (lanes ^ word) & ((lessBytes(word, lanes) >> 7) * 0xff) // the smaller of each lane
	}
	m := byte(0xff)
	for k := range 8 {
		m = min(m, byte(lanes>>(8*k)))
	}
	for ; i < len(src); i++ {
		m = min(m, src[i]^flip)
	}
	return m
}

// ScaleRowBytes adds to out (8, 16, 24 or 32 outputs) the products a*w[i]
// of each pixel's level a = table[src[i]] with its weights
// w[i] = w[i*len(out):(i+1)*len(out)], in order of i, every product
// rounded to float32 before it is added (no fused multiply-add): the
// horizontal pass of a separable image scaling, by source pixel, for a row
// of bytes read through a table of 16-bit levels. Each out[j] gets the same
// terms in the same order as a sum over the source pixels gathered for
// output j would (the zero products add nothing), so the same value. It
// panics if len(out) is not one of those or w holds fewer than
// len(src)*len(out) weights.
func ScaleRowBytes(out, w []float32, src []byte, table *[256]uint16) {
	if len(out)%8 != 0 || len(out) > 32 {
		panic("kernels: ScaleRowBytes: len(out) is not 8, 16, 24 or 32")
	}
	if len(src) == 0 || len(out) == 0 {
		return
	}
	w = w[:len(src)*len(out)]
	scaleRowBytes(out, w, src, table)
}

func scaleRowBytesGeneric(out, w []float32, src []byte, table *[256]uint16) {
	for i, v := range src {
		l := table[v]
		if l == 0 {
			continue
		}
		a := float32(l)
		ws := w[i*len(out) : (i+1)*len(out)]
		ws = ws[:len(out)]
		for j, wt := range ws {
			out[j] += float32(a * wt) // the conversion rules out a fused multiply-add
		}
	}
}

// ScaleRowBytes2 is ScaleRowBytes on two rows at once: out0 gets src0's
// pixels and out1 src1's (as long as src0), with the same weights. The two
// rows' sums are independent chains of additions, which the CPU overlaps.
func ScaleRowBytes2(out0, out1, w []float32, src0, src1 []byte, table *[256]uint16) {
	if len(out0)%8 != 0 || len(out0) > 32 || len(out1) != len(out0) {
		panic("kernels: ScaleRowBytes2: len(out0) is not 8, 16, 24 or 32, or len(out1) differs")
	}
	if len(src0) == 0 || len(out0) == 0 {
		return
	}
	src1 = src1[:len(src0)]
	w = w[:len(src0)*len(out0)]
	scaleRowBytes2(out0, out1, w, src0, src1, table)
}

// AxpyRows adds ws[k]*src[offs[k]+i] to dst[i] for every i < len(dst) and
// every k, in order of k: the vertical pass of a separable image scaling,
// the rows of one output's taps. Unlike Axpy, every product is rounded to
// float32 before it is added (no fused multiply-add), so that every build
// gives the same bits; with SIMD, dst stays in registers when its length is
// 8, 16, 24 or 32. It panics if ws is shorter than offs or a row is out of
// src.
func AxpyRows(dst, src []float32, offs []int32, ws []float32) {
	ws = ws[:len(offs)]
	for _, off := range offs {
		_ = src[int(off) : int(off)+len(dst)]
	}
	if len(offs) == 0 || len(dst) == 0 {
		return
	}
	axpyRows(dst, src, offs, ws)
}

func axpyRowsGeneric(dst, src []float32, offs []int32, ws []float32) {
	for k, off := range offs {
		row, a := src[off:int(off)+len(dst)], ws[k]
		for i, v := range row {
			dst[i] += float32(a * v) // the conversion rules out a fused multiply-add
		}
	}
}

// RowMins writes into dst[y] the smallest src[i]^flip of row y, for the
// len(dst) rows of w bytes (w > 0) that src holds, one after the other; it
// panics if src is shorter than len(dst)*w.
func RowMins(dst, src []byte, w int, flip byte) {
	if w <= 0 {
		panic("kernels: RowMins: rows of no bytes")
	}
	src = src[:len(dst)*w]
	if len(dst) == 0 {
		return
	}
	rowMins(dst, src, w, flip)
}

func rowMinsGeneric(dst, src []byte, w int, flip byte) {
	for y := range dst {
		dst[y] = minByteGeneric(src[y*w:(y+1)*w], flip)
	}
}
