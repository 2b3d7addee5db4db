package kernels

// Kernel geometry: valid 5x5 convolutions computed in blocks of two output
// rows by eight output columns.
const (
	// Kernel is the side of the convolution kernel.
	Kernel = 5
	// KernelArea is the number of taps per input channel.
	KernelArea = Kernel * Kernel
	// BlockCols is the number of adjacent output columns of a block.
	BlockCols = 8
	// blockIn is the number of input values one block row reads per kernel row.
	blockIn = BlockCols + Kernel - 1
)

// Features names the instruction set the kernels use on this CPU and build:
// "avx2+fma" or "generic".
func Features() string {
	if useAVX2 {
		return "avx2+fma"
	}
	return "generic"
}

// Conv2x8 writes into dst the sums of the valid 5x5 convolution (no bias)
// of the input planes with the kernels w at a block of two output rows by
// eight output columns: dst[r*8+i] is the output at row y+r, column x0+i,
// where off = y*side + x0 is the offset of the block's top-left output in a
// plane.
//
// in holds inChans planes of side values per row, plane values apart; w is
// [inChans, 5, 5], row-major. The block reads input rows y to y+5 and
// columns x0 to x0+11 of every plane; Conv2x8 panics (index out of range)
// if they are not all inside in, and if w is shorter than inChans*25.
func Conv2x8(dst *[2 * BlockCols]float32, in []float32, side, plane, inChans int, w []float32, off int) {
	if inChans <= 0 {
		*dst = [2 * BlockCols]float32{}
		return
	}
	// Bounds of the last value read and of the kernels, checked once here so
	// that the inner loops (and the assembly) need not.
	_ = in[off]
	_ = in[(inChans-1)*plane+off+Kernel*side+blockIn-1]
	_ = w[inChans*KernelArea-1]
	conv2x8(dst, in, side, plane, inChans, w, off)
}

// conv2x8Generic is the portable Conv2x8.
func conv2x8Generic(dst *[2 * BlockCols]float32, in []float32, side, plane, inChans int, w []float32, off int) {
	var top, bot [BlockCols]float32
	for c := 0; c < inChans; c++ {
		wc := w[c*KernelArea : (c+1)*KernelArea]
		for ky := 0; ky < Kernel; ky++ {
			k := (*[Kernel]float32)(wc[ky*Kernel:])
			o := off + c*plane + ky*side
			rowAcc(&top, (*[blockIn]float32)(in[o:o+blockIn]), k)
			rowAcc(&bot, (*[blockIn]float32)(in[o+side:o+side+blockIn]), k)
		}
	}
	copy(dst[:BlockCols], top[:])
	copy(dst[BlockCols:], bot[:])
}

// rowAcc adds to a the eight outputs of one kernel row k over the input row
// segment r.
func rowAcc(a *[BlockCols]float32, r *[blockIn]float32, k *[Kernel]float32) {
	a0, a1, a2, a3, a4, a5, a6, a7 := a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]
	for kx, wv := range k {
		a0 += wv * r[kx]
		a1 += wv * r[kx+1]
		a2 += wv * r[kx+2]
		a3 += wv * r[kx+3]
		a4 += wv * r[kx+4]
		a5 += wv * r[kx+5]
		a6 += wv * r[kx+6]
		a7 += wv * r[kx+7]
	}
	*a = [BlockCols]float32{a0, a1, a2, a3, a4, a5, a6, a7}
}

// Dot returns the dot product of a and b[:len(a)]; it panics if b is
// shorter than a.
func Dot(a, b []float32) float32 {
	return dot(a, b[:len(a)])
}

func dotGeneric(a, b []float32) float32 {
	var s0, s1, s2, s3 float32
	for len(a) >= 4 {
		x, y := (*[4]float32)(a), (*[4]float32)(b)
		s0 += x[0] * y[0]
		s1 += x[1] * y[1]
		s2 += x[2] * y[2]
		s3 += x[3] * y[3]
		a, b = a[4:], b[4:]
	}
	for i, v := range a {
		s0 += v * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// Axpy adds a*src[i] to dst[i] for every i < len(dst); it panics if src is
// shorter than dst.
func Axpy(dst, src []float32, a float32) {
	axpy(dst, src[:len(dst)], a)
}

func axpyGeneric(dst, src []float32, a float32) {
	src = src[:len(dst)]
	for i, v := range src {
		dst[i] += a * v
	}
}
