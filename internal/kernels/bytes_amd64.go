//go:build amd64 && !purego

package kernels

func lessMask(mask []uint64, src []byte, flip, limit byte) {
	if !useAVX2 || len(src) < 32 {
		clear(mask)
		lessMaskGeneric(mask, src, 0, flip, limit)
		return
	}
	lessMaskAVX2(&mask[0], &src[0], len(src), flip, limit-1)
}

// lessMaskAVX2 writes the mask of the n >= 32 bytes at src for limit
// atMost+1 as (n+63)/64 words at mask.
//
//go:noescape
func lessMaskAVX2(mask *uint64, src *byte, n int, flip, atMost byte)

func scaleRowBytes(out, w []float32, src []byte, table *[256]uint16) {
	if !useAVX2 {
		scaleRowBytesGeneric(out, w, src, table)
		return
	}
	scaleRowBytesAVX2(&out[0], &w[0], len(out), &src[0], len(src), table)
}

// scaleRowBytesAVX2 is ScaleRowBytes for stride = len(out) (8, 16, 24 or
// 32) and n = len(src) > 0.
//
//go:noescape
func scaleRowBytesAVX2(out, w *float32, stride int, src *byte, n int, table *[256]uint16)

func scaleRowBytes2(out0, out1, w []float32, src0, src1 []byte, table *[256]uint16) {
	if !useAVX2 {
		scaleRowBytesGeneric(out0, w, src0, table)
		scaleRowBytesGeneric(out1, w, src1, table)
		return
	}
	scaleRowBytes2AVX2(&out0[0], &out1[0], &w[0], len(out0), &src0[0], &src1[0], len(src0), table)
}

// scaleRowBytes2AVX2 is ScaleRowBytes2 for stride = len(out0) (8, 16, 24
// or 32) and n = len(src0) > 0.
//
//go:noescape
func scaleRowBytes2AVX2(out0, out1, w *float32, stride int, src0, src1 *byte, n int, table *[256]uint16)

func axpyRows(dst, src []float32, offs []int32, ws []float32) {
	if !useAVX2 || len(dst)%8 != 0 || len(dst) > 32 {
		axpyRowsGeneric(dst, src, offs, ws)
		return
	}
	axpyRowsAVX2(&dst[0], len(dst), &src[0], &offs[0], &ws[0], len(offs))
}

// axpyRowsAVX2 is AxpyRows for n = len(dst) (8, 16, 24 or 32) and
// taps = len(offs) > 0.
//
//go:noescape
func axpyRowsAVX2(dst *float32, n int, src *float32, offs *int32, ws *float32, taps int)

func rowMins(dst, src []byte, w int, flip byte) {
	if !useAVX2 || w < 32 {
		rowMinsGeneric(dst, src, w, flip)
		return
	}
	rowMinsAVX2(&dst[0], len(dst), &src[0], w, flip)
}

// rowMinsAVX2 is RowMins for rows of w >= 32 bytes, rows > 0 of them.
//
//go:noescape
func rowMinsAVX2(dst *byte, rows int, src *byte, w int, flip byte)
