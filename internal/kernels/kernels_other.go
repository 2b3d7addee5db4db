//go:build !amd64 || purego

package kernels

// useAVX2 is false: this build has only the portable kernels.
const useAVX2 = false

// useAVX512 is false: this build has only the portable kernels.
const useAVX512 = false

func conv2x8(dst *[2 * BlockCols]float32, in []float32, side, plane, inChans int, w []float32, off int) {
	conv2x8Generic(dst, in, side, plane, inChans, w, off)
}

func dot(a, b []float32) float32 { return dotGeneric(a, b) }

func axpy(dst, src []float32, a float32) { axpyGeneric(dst, src, a) }

func convPool2x8(dst *[BlockCols / 2]float32, in []float32, side, plane, inChans int, w []float32, off int, bias float32) {
	convPool2x8Generic(dst, in, side, plane, inChans, w, off, bias)
}

func convPoolArg2x8(dst *[BlockCols / 2]float32, arg *[BlockCols / 2]int32, in []float32, side, plane, inChans int, w []float32, off int, bias float32, pos0, convSide int32) {
	convPoolArg2x8Generic(dst, arg, in, side, plane, inChans, w, off, bias, pos0, convSide)
}

func patchSum5x5(dst []float32, src []float32, side, plane, inChans int, offs []int32, gs []float32) {
	patchSum5x5Generic(dst, src, side, plane, inChans, offs, gs)
}

func addPatch5x5(dst []float32, side, plane, inChans int, patch []float32, off int) {
	addPatch5x5Generic(dst, side, plane, inChans, patch, off)
}

func convPoolLayerFast([]float32, []int32, []float32, int, int, []float32, []float32, int) bool {
	return false
}
