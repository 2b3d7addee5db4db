//go:build amd64 && !purego

package kernels

import "golang.org/x/sys/cpu"

// useAVX2 selects the assembly kernels: AVX2 for the vectors, FMA for the
// fused multiply-adds (every AVX-512 CPU has both). It is set once, before
// main, from the CPU's feature bits, and never changes.
var useAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// hasAVX512 reports whether the CPU can run the AVX-512 kernels (AVX-512F
// for the 16-lane registers and masks, VL for the EVEX-encoded 8-lane
// forms), whatever the build tags; useAVX512 (set by the noavx512 tag's
// files) says whether they are used.
var hasAVX512 = useAVX2 && cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL

func conv2x8(dst *[2 * BlockCols]float32, in []float32, side, plane, inChans int, w []float32, off int) {
	if useAVX2 {
		conv2x8AVX2(dst, &in[off], side, plane, inChans, &w[0])
		return
	}
	conv2x8Generic(dst, in, side, plane, inChans, w, off)
}

func dot(a, b []float32) float32 {
	if useAVX512 && len(a) >= 16 {
		return dotAVX512(&a[0], &b[0], len(a))
	}
	if useAVX2 && len(a) >= 16 {
		return dotAVX2(&a[0], &b[0], len(a))
	}
	return dotGeneric(a, b)
}

func axpy(dst, src []float32, a float32) {
	// Below 64 values the AVX-512 kernel measured no faster than the AVX2
	// one (their results are the same either way).
	if useAVX512 && len(dst) >= 64 {
		axpyAVX512(&dst[0], &src[0], len(dst), a)
		return
	}
	if useAVX2 && len(dst) >= 8 {
		axpyAVX2(&dst[0], &src[0], len(dst), a)
		return
	}
	axpyGeneric(dst, src, a)
}

// axpyAVX2 is Axpy for n >= 8 in AVX2+FMA assembly.
//
//go:noescape
func axpyAVX2(dst, src *float32, n int, a float32)

func convPool2x8(dst *[BlockCols / 2]float32, in []float32, side, plane, inChans int, w []float32, off int, bias float32) {
	if useAVX2 {
		convPool2x8AVX2(dst, &in[off], side, plane, inChans, &w[0], bias)
		return
	}
	convPool2x8Generic(dst, in, side, plane, inChans, w, off, bias)
}

// convPool2x8AVX2 is ConvPool2x8 in AVX2+FMA assembly.
//
//go:noescape
func convPool2x8AVX2(dst *[BlockCols / 2]float32, in *float32, side, plane, inChans int, w *float32, bias float32)

// conv2x8AVX2 is Conv2x8 in AVX2+FMA assembly; in points at the block's
// top-left input value. Bounds are checked by the caller.
//
//go:noescape
func conv2x8AVX2(dst *[2 * BlockCols]float32, in *float32, side, plane, inChans int, w *float32)

// dotAVX2 is Dot for n >= 16 in AVX2+FMA assembly.
//
//go:noescape
func dotAVX2(a, b *float32, n int) float32

func convPoolArg2x8(dst *[BlockCols / 2]float32, arg *[BlockCols / 2]int32, in []float32, side, plane, inChans int, w []float32, off int, bias float32, pos0, convSide int32) {
	if useAVX2 {
		convPoolArg2x8AVX2(dst, arg, &in[off], side, plane, inChans, &w[0], bias, pos0, convSide)
		return
	}
	convPoolArg2x8Generic(dst, arg, in, side, plane, inChans, w, off, bias, pos0, convSide)
}

// convPoolArg2x8AVX2 is ConvPoolArg2x8 in AVX2+FMA assembly.
//
//go:noescape
func convPoolArg2x8AVX2(dst *[BlockCols / 2]float32, arg *[BlockCols / 2]int32, in *float32, side, plane, inChans int, w *float32, bias float32, pos0, convSide int32)

func patchSum5x5(dst []float32, src []float32, side, plane, inChans int, offs []int32, gs []float32) {
	if useAVX512 {
		patchSum5x5AVX512(&dst[0], &src[0], side, plane, inChans, &offs[0], &gs[0], len(offs))
		return
	}
	if useAVX2 {
		patchSum5x5AVX2(&dst[0], &src[0], side, plane, inChans, &offs[0], &gs[0], len(offs))
		return
	}
	patchSum5x5Generic(dst, src, side, plane, inChans, offs, gs)
}

// patchSum5x5AVX2 is PatchSum5x5 for n >= 1 and inChans >= 1, with masked
// loads and stores of the five values of each row.
//
//go:noescape
func patchSum5x5AVX2(dst *float32, src *float32, side, plane, inChans int, offs *int32, gs *float32, n int)

func addPatch5x5(dst []float32, side, plane, inChans int, patch []float32, off int) {
	if useAVX2 {
		addPatch5x5AVX2(&dst[off], side, plane, inChans, &patch[0])
		return
	}
	addPatch5x5Generic(dst, side, plane, inChans, patch, off)
}

// addPatch5x5AVX2 is AddPatch5x5 (inChans >= 1) with masked loads and
// stores of the five values of each row.
//
//go:noescape
func addPatch5x5AVX2(dst *float32, side, plane, inChans int, patch *float32)

// dotAVX512 is dotAVX2 with 16-lane registers: the same result, bit for bit.
//
//go:noescape
func dotAVX512(a, b *float32, n int) float32

// axpyAVX512 is axpyAVX2 with 16-lane registers: the same result, bit for
// bit.
//
//go:noescape
func axpyAVX512(dst, src *float32, n int, a float32)

// patchSum5x5AVX512 is patchSum5x5AVX2 with AVX-512VL masked loads and
// stores: the same result, bit for bit.
//
//go:noescape
func patchSum5x5AVX512(dst *float32, src *float32, side, plane, inChans int, offs *int32, gs *float32, n int)
