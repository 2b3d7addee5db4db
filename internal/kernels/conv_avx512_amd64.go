//go:build amd64 && !purego

package kernels

// qCap is the largest input copy (in float32 values) that the AVX-512
// convolution keeps on the stack: 5 kernel columns x (convSide/8) column
// blocks x inChans x (convSide+3) pairs of rows x 16 values; the MNIST
// network needs 6,480 (conv1) and 8,800 (conv2). Larger layers take the
// AVX2 path. The assembly reserves qCap*4 bytes of its frame for the copy:
// change both together.
const qCap = 9216

func convPoolLayerFast(dst []float32, arg []int32, in []float32, side, inChans int, w, b []float32, poolSide int) bool {
	if !useAVX512 {
		return false
	}
	return convPoolLayerAVX512(dst, arg, in, side, inChans, w, b, poolSide)
}

// convPoolLayerAVX512 is ConvPoolLayer for inChans >= 1 with the AVX-512
// kernels; it returns false, having done nothing, for shapes they do not
// take (poolSide not a multiple of 4, an input copy larger than qCap).
// Bounds are checked by the caller.
func convPoolLayerAVX512(dst []float32, arg []int32, in []float32, side, inChans int, w, b []float32, poolSide int) bool {
	convSide := 2 * poolSide
	nb, rows := convSide/BlockCols, convSide+Kernel-1
	if poolSide%4 != 0 || Kernel*nb*inChans*(rows-1)*2*BlockCols > qCap || len(b) == 0 {
		return false
	}
	if arg == nil {
		convPoolLayerQAVX512(&dst[0], nil, &in[0], side, side*side, inChans, nb, rows, &w[0], &b[0], len(b), poolSide)
	} else {
		convPoolArgLayerQAVX512(&dst[0], &arg[0], &in[0], side, side*side, inChans, nb, rows, &w[0], &b[0], len(b), poolSide)
	}
	return true
}

// convPoolLayerQAVX512 is ConvPoolLayer without positions (arg is unused)
// for inChans >= 1, len(b) >= 1, poolSide a multiple of 4, nb = convSide/8
// column blocks and rows = convSide+4 input rows whose copy (rows-1 pairs of
// rows) fits in qCap. Each pooled output equals convPool2x8AVX2's bit for
// bit.
//
//go:noescape
func convPoolLayerQAVX512(dst *float32, arg *int32, in *float32, side, plane, inChans, nb, rows int, w, b *float32, outChans, poolSide int)

// convPoolArgLayerQAVX512 is convPoolLayerQAVX512 with the maxima's
// positions; each output and position equals convPoolArg2x8AVX2's bit for
// bit.
//
//go:noescape
func convPoolArgLayerQAVX512(dst *float32, arg *int32, in *float32, side, plane, inChans, nb, rows int, w, b *float32, outChans, poolSide int)
