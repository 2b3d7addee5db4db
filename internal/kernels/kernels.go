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
// "avx512" (AVX-512F and VL, with AVX2 and FMA), "avx2+fma" (also on an
// AVX-512 CPU in a build with the noavx512 tag) or "go" (the portable
// kernels: other CPUs and architectures, and builds with the purego tag).
func Features() string {
	switch {
	case useAVX512:
		return "avx512"
	case useAVX2:
		return "avx2+fma"
	}
	return "go"
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

// ConvPool2x8 writes into dst relu(max-pool 2x2(the Conv2x8 block) + bias):
// dst[i] = max(0, max(block[2i], block[2i+1], block[8+2i], block[8+2i+1]) +
// bias), the four pooled outputs of the block. Bounds and panics are those
// of Conv2x8.
func ConvPool2x8(dst *[BlockCols / 2]float32, in []float32, side, plane, inChans int, w []float32, off int, bias float32) {
	if inChans <= 0 {
		*dst = [BlockCols / 2]float32{max(0, bias), max(0, bias), max(0, bias), max(0, bias)}
		return
	}
	_ = in[off]
	_ = in[(inChans-1)*plane+off+Kernel*side+blockIn-1]
	_ = w[inChans*KernelArea-1]
	convPool2x8(dst, in, side, plane, inChans, w, off, bias)
}

func convPool2x8Generic(dst *[BlockCols / 2]float32, in []float32, side, plane, inChans int, w []float32, off int, bias float32) {
	var blk [2 * BlockCols]float32
	conv2x8Generic(&blk, in, side, plane, inChans, w, off)
	for i := range dst {
		dst[i] = max(0, max(blk[2*i], blk[2*i+1], blk[BlockCols+2*i], blk[BlockCols+2*i+1])+bias)
	}
}

// conv2x8Generic is the portable Conv2x8: one output row at a time.
func conv2x8Generic(dst *[2 * BlockCols]float32, in []float32, side, plane, inChans int, w []float32, off int) {
	*(*[BlockCols]float32)(dst[:BlockCols]) = convRow8(in, side, plane, inChans, w, off)
	*(*[BlockCols]float32)(dst[BlockCols:]) = convRow8(in, side, plane, inChans, w, off+side)
}

// convRow8 returns eight adjacent outputs of the valid 5x5 convolution, the
// first at offset off of a plane, without bias.
//
// Each input value is loaded once and added, weighted, to every output it
// reaches; the eight sums stay in registers, and the fixed-size array views
// let the compiler drop the bounds checks from the inner statements.
func convRow8(in []float32, side, plane, inChans int, w []float32, off int) [BlockCols]float32 {
	var a0, a1, a2, a3, a4, a5, a6, a7 float32
	for c := 0; c < inChans; c++ {
		for ky := 0; ky < Kernel; ky++ {
			o := off + c*plane + ky*side
			r := (*[blockIn]float32)(in[o : o+blockIn])
			k := (*[Kernel]float32)(w[(c*Kernel+ky)*Kernel:])
			// Each input value is loaded once and added, weighted, to every
			// output it reaches. The eight sums stay in registers; the
			// weights are read from L1 as needed (hoisting them into locals
			// too measured slower: the register allocator spills).
			v := r[0]
			a0 += k[0] * v
			v = r[1]
			a0 += k[1] * v
			a1 += k[0] * v
			v = r[2]
			a0 += k[2] * v
			a1 += k[1] * v
			a2 += k[0] * v
			v = r[3]
			a0 += k[3] * v
			a1 += k[2] * v
			a2 += k[1] * v
			a3 += k[0] * v
			v = r[4]
			a0 += k[4] * v
			a1 += k[3] * v
			a2 += k[2] * v
			a3 += k[1] * v
			a4 += k[0] * v
			v = r[5]
			a1 += k[4] * v
			a2 += k[3] * v
			a3 += k[2] * v
			a4 += k[1] * v
			a5 += k[0] * v
			v = r[6]
			a2 += k[4] * v
			a3 += k[3] * v
			a4 += k[2] * v
			a5 += k[1] * v
			a6 += k[0] * v
			v = r[7]
			a3 += k[4] * v
			a4 += k[3] * v
			a5 += k[2] * v
			a6 += k[1] * v
			a7 += k[0] * v
			v = r[8]
			a4 += k[4] * v
			a5 += k[3] * v
			a6 += k[2] * v
			a7 += k[1] * v
			v = r[9]
			a5 += k[4] * v
			a6 += k[3] * v
			a7 += k[2] * v
			v = r[10]
			a6 += k[4] * v
			a7 += k[3] * v
			v = r[11]
			a7 += k[4] * v
		}
	}
	return [BlockCols]float32{a0, a1, a2, a3, a4, a5, a6, a7}
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

// ConvPoolArg2x8 is ConvPool2x8 that also records, for each of the four
// pooled outputs, where its maximum came from, as training's backward pass
// needs: arg[i] = pos0 + 2i + at, where at is 0, 1, convSide or convSide+1
// for the top-left, top-right, bottom-left or bottom-right value of the 2x2
// window (ties go to the first of these, as in PyTorch), or -1 when the
// ReLU clipped the output to zero. pos0 is the convolution-plane position
// of the block's top-left output and convSide the side of that plane.
// dst[i] is max(window)+bias when that is > 0, else 0. Bounds and panics
// are those of Conv2x8.
func ConvPoolArg2x8(dst *[BlockCols / 2]float32, arg *[BlockCols / 2]int32, in []float32, side, plane, inChans int, w []float32, off int, bias float32, pos0, convSide int32) {
	if inChans <= 0 {
		var blk [2 * BlockCols]float32
		poolArg(dst, arg, &blk, bias, pos0, convSide)
		return
	}
	_ = in[off]
	_ = in[(inChans-1)*plane+off+Kernel*side+blockIn-1]
	_ = w[inChans*KernelArea-1]
	convPoolArg2x8(dst, arg, in, side, plane, inChans, w, off, bias, pos0, convSide)
}

func convPoolArg2x8Generic(dst *[BlockCols / 2]float32, arg *[BlockCols / 2]int32, in []float32, side, plane, inChans int, w []float32, off int, bias float32, pos0, convSide int32) {
	var blk [2 * BlockCols]float32
	conv2x8Generic(&blk, in, side, plane, inChans, w, off)
	poolArg(dst, arg, &blk, bias, pos0, convSide)
}

// poolArg is the pooling, bias, ReLU and argmax of ConvPoolArg2x8 on a
// computed block.
func poolArg(dst *[BlockCols / 2]float32, arg *[BlockCols / 2]int32, blk *[2 * BlockCols]float32, bias float32, pos0, convSide int32) {
	for i := range dst {
		m, at := blk[2*i], int32(0)
		if v := blk[2*i+1]; v > m {
			m, at = v, 1
		}
		if v := blk[BlockCols+2*i]; v > m {
			m, at = v, convSide
		}
		if v := blk[BlockCols+2*i+1]; v > m {
			m, at = v, convSide+1
		}
		if v := m + bias; v > 0 {
			dst[i], arg[i] = v, pos0+int32(2*i)+at
		} else {
			dst[i], arg[i] = 0, -1
		}
	}
}

// PatchSum5x5 adds to dst, inChans 5x5 kernels ([inChans, 5, 5],
// row-major), the sums over j of gs[j] times the 5x5 windows of src whose
// top-left values are src[offs[j] + c*plane], rows side values apart: the
// weight gradient of a 5x5 convolution over inChans input planes at the
// given output positions. It panics if a window is not inside src, if dst
// is shorter than inChans*25 or if gs is shorter than offs.
func PatchSum5x5(dst []float32, src []float32, side, plane, inChans int, offs []int32, gs []float32) {
	gs = gs[:len(offs)]
	if len(offs) == 0 || inChans <= 0 {
		return
	}
	_ = dst[inChans*KernelArea-1]
	lo, hi := offs[0], offs[0]
	for _, o := range offs {
		lo, hi = min(lo, o), max(hi, o)
	}
	if lo < 0 {
		panic("kernels: PatchSum5x5 offset is negative")
	}
	_ = src[int(hi)+(inChans-1)*plane+(Kernel-1)*side+Kernel-1]
	patchSum5x5(dst, src, side, plane, inChans, offs, gs)
}

func patchSum5x5Generic(dst []float32, src []float32, side, plane, inChans int, offs []int32, gs []float32) {
	for c := range inChans {
		var acc [KernelArea]float32
		for j, o := range offs {
			g := gs[j]
			for ky := range Kernel {
				r := (*[Kernel]float32)(src[int(o)+c*plane+ky*side:])
				a := (*[Kernel]float32)(acc[ky*Kernel:])
				a[0] += g * r[0]
				a[1] += g * r[1]
				a[2] += g * r[2]
				a[3] += g * r[3]
				a[4] += g * r[4]
			}
		}
		d := (*[KernelArea]float32)(dst[c*KernelArea:])
		for i, v := range acc {
			d[i] += v
		}
	}
}

// AddPatch5x5 adds the inChans 5x5 kernels of patch ([inChans, 5, 5],
// row-major) into dst at the windows whose top-left values are dst[off +
// c*plane], rows side values apart: the input gradient of a 5x5 convolution
// at one output position. It panics if a window is not inside dst or patch
// is shorter than inChans*25.
func AddPatch5x5(dst []float32, side, plane, inChans int, patch []float32, off int) {
	if inChans <= 0 {
		return
	}
	_ = patch[inChans*KernelArea-1]
	_ = dst[off]
	_ = dst[off+(inChans-1)*plane+(Kernel-1)*side+Kernel-1]
	addPatch5x5(dst, side, plane, inChans, patch, off)
}

func addPatch5x5Generic(dst []float32, side, plane, inChans int, patch []float32, off int) {
	for c := range inChans {
		for ky := range Kernel {
			d := (*[Kernel]float32)(dst[off+c*plane+ky*side:])
			s := (*[Kernel]float32)(patch[c*KernelArea+ky*Kernel:])
			d[0] += s[0]
			d[1] += s[1]
			d[2] += s[2]
			d[3] += s[3]
			d[4] += s[4]
		}
	}
}

// ConvPoolArgPlane runs ConvPoolArg2x8 over a whole output plane: dst and
// arg ([poolSide, poolSide], row-major) receive the pooled outputs and the
// positions of their maxima in the convolution plane of side 2*poolSide,
// which must be a multiple of BlockCols and fit in the input (2*poolSide+4
// <= side). It panics if it does not, or if a slice is too short.
func ConvPoolArgPlane(dst []float32, arg []int32, in []float32, side, plane, inChans int, w []float32, bias float32, poolSide int) {
	convSide := 2 * poolSide
	if convSide%BlockCols != 0 || convSide+Kernel-1 > side || poolSide <= 0 {
		panic("kernels: ConvPoolArgPlane needs 2*poolSide a multiple of 8 and at most side-4")
	}
	_ = dst[poolSide*poolSide-1]
	_ = arg[poolSide*poolSide-1]
	if inChans <= 0 {
		for i := range poolSide * poolSide {
			dst[i], arg[i] = max(0, bias), -1
			if bias > 0 {
				arg[i] = int32(i/poolSide*2*convSide + i%poolSide*2)
			}
		}
		return
	}
	_ = in[(inChans-1)*plane+(convSide-2)*side+Kernel*side+convSide-BlockCols+blockIn-1]
	_ = w[inChans*KernelArea-1]
	for py := range poolSide {
		for x0 := 0; x0 < convSide; x0 += BlockCols {
			base := py*poolSide + x0/2
			convPoolArg2x8(
				(*[BlockCols / 2]float32)(dst[base:]), (*[BlockCols / 2]int32)(arg[base:]),
				in, side, plane, inChans, w, 2*py*side+x0, bias, int32(2*py*convSide+x0), int32(convSide))
		}
	}
}

// ConvPoolLayer computes relu(max-pool 2x2(conv 5x5(in, w)) + b) for every
// output channel of a convolution layer: in holds inChans planes of side x
// side values; w is [outChans, inChans, 5, 5] and b is [outChans], row-major;
// dst receives outChans planes of poolSide x poolSide values. The valid
// convolution's plane has side 2*poolSide, which must be a multiple of
// BlockCols and at most side-4.
//
// When arg is nil, every pooled row block is what ConvPool2x8 computes;
// otherwise (arg as long as dst) it is what ConvPoolArgPlane computes, with
// arg receiving the positions of the maxima. Both are bit for bit the same
// with the AVX-512 and the AVX2+FMA kernels; the portable kernels differ
// from them only in rounding. It panics if a slice is too short or the
// geometry does not fit.
//
// With the AVX-512 kernels a call takes about 37 KB of goroutine stack (a
// rearranged copy of the input) for the MNIST network's layers.
func ConvPoolLayer(dst []float32, arg []int32, in []float32, side, inChans int, w, b []float32, poolSide int) {
	convSide := 2 * poolSide
	if convSide%BlockCols != 0 || convSide+Kernel-1 > side || poolSide <= 0 {
		panic("kernels: ConvPoolLayer needs 2*poolSide a multiple of 8 and at most side-4")
	}
	if len(b) == 0 {
		return
	}
	pp := poolSide * poolSide
	_ = dst[len(b)*pp-1]
	if arg != nil {
		_ = arg[len(b)*pp-1]
	}
	if inChans > 0 {
		_ = in[inChans*side*side-1]
		_ = w[len(b)*inChans*KernelArea-1]
	}
	if inChans > 0 && convPoolLayerFast(dst, arg, in, side, inChans, w, b, poolSide) {
		return
	}
	convPoolLayerBlocks(dst, arg, in, side, inChans, w, b, poolSide)
}

// convPoolLayerBlocks is ConvPoolLayer one 2x8 block (ConvPool2x8) or one
// plane (ConvPoolArgPlane) at a time.
func convPoolLayerBlocks(dst []float32, arg []int32, in []float32, side, inChans int, w, b []float32, poolSide int) {
	plane, convSide := side*side, 2*poolSide
	wSize, pp := inChans*KernelArea, poolSide*poolSide
	for o, bias := range b {
		wo := w[o*wSize : (o+1)*wSize]
		po := dst[o*pp : (o+1)*pp]
		if arg != nil {
			ConvPoolArgPlane(po, arg[o*pp:(o+1)*pp], in, side, plane, inChans, wo, bias, poolSide)
			continue
		}
		for py := range poolSide {
			for x0 := 0; x0 < convSide; x0 += BlockCols {
				base := py*poolSide + x0/2
				ConvPool2x8((*[BlockCols / 2]float32)(po[base:]), in, side, plane, inChans, wo, 2*py*side+x0, bias)
			}
		}
	}
}
