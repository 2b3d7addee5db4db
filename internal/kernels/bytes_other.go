//go:build !amd64 || purego

package kernels

func lessMask(mask []uint64, src []byte, flip, limit byte) {
	clear(mask)
	lessMaskGeneric(mask, src, 0, flip, limit)
}

func scaleRowBytes(out, w []float32, src []byte, table *[256]uint16) {
	scaleRowBytesGeneric(out, w, src, table)
}

func scaleRowBytes2(out0, out1, w []float32, src0, src1 []byte, table *[256]uint16) {
	scaleRowBytesGeneric(out0, w, src0, table)
	scaleRowBytesGeneric(out1, w, src1, table)
}

func axpyRows(dst, src []float32, offs []int32, ws []float32) { axpyRowsGeneric(dst, src, offs, ws) }

func rowMins(dst, src []byte, w int, flip byte) { rowMinsGeneric(dst, src, w, flip) }
