//go:build amd64 && !purego

package pngluma

import "golang.org/x/sys/cpu"

// This build unfilters rows of 3 and 4 bytes per pixel with the SIMD
// kernels: SSE2, which every amd64 CPU has, and for Paeth AVX where the CPU
// has it; the purego build tag forces the portable code.

// useAVX selects the AVX Paeth kernels (VEX three-operand forms, PABSW,
// PBLENDVB). It is set once, before main, from the CPU's feature bits, and
// never changes.
var useAVX = cpu.X86.HasAVX

// The SSE2 kernels. cur and prev point at the first pixel to unfilter
// (cur-bpp and prev-bpp are read too); n >= 1 pixels. The 3-byte kernels
// read one byte past the last pixel (never written). Bounds are checked by
// the callers.

//go:noescape
func paeth3SSE2(cur, prev *byte, n int)

//go:noescape
func paeth4SSE2(cur, prev *byte, n int)

//go:noescape
func paeth3AVX(cur, prev *byte, n int)

//go:noescape
func paeth4AVX(cur, prev *byte, n int)

//go:noescape
func avg3SSE2(cur, prev *byte, n int)

//go:noescape
func avg4SSE2(cur, prev *byte, n int)

//go:noescape
func paethRunSSE2(cur, prev *byte, n int, w uint64) int

//go:noescape
func sub3SSE2(cur *byte, n int)

//go:noescape
func sub4SSE2(cur *byte, n int)

// simdPixels returns how many whole pixels of bpp bytes, from byte i of a
// row of n bytes up to byte j, a kernel may unfilter: none for other pixel
// sizes or before the second pixel, and for 3 bytes one fewer when the
// last would end at the row's end (the kernel reads one byte more).
func simdPixels(i, j, n, bpp int) int {
	if (bpp != 3 && bpp != 4) || i < bpp || j > n {
		return 0
	}
	p := (j - i) / bpp
	if bpp == 3 && p > 0 && i+3*p >= n {
		p--
	}
	return max(p, 0)
}

// paethSIMD undoes the Paeth filter of cur[i:j] with the kernels and
// returns where it stopped: the rest, up to j, is left to the caller.
func paethSIMD(cur, prev []byte, i, j, bpp int) int {
	p := simdPixels(i, j, len(cur), bpp)
	if p == 0 || len(prev) < len(cur) {
		return i
	}
	switch {
	case bpp == 3 && useAVX:
		paeth3AVX(&cur[i], &prev[i], p)
	case bpp == 3:
		paeth3SSE2(&cur[i], &prev[i], p)
	case useAVX:
		paeth4AVX(&cur[i], &prev[i], p)
	default:
		paeth4SSE2(&cur[i], &prev[i], p)
	}
	return i + bpp*p
}

// avgSIMD is paethSIMD for the Average filter.
func avgSIMD(cur, prev []byte, i, j, bpp int) int {
	p := simdPixels(i, j, len(cur), bpp)
	if p == 0 || len(prev) < len(cur) {
		return i
	}
	if bpp == 3 {
		avg3SSE2(&cur[i], &prev[i], p)
	} else {
		avg4SSE2(&cur[i], &prev[i], p)
	}
	return i + bpp*p
}

// subSIMD is paethSIMD for the Sub filter.
func subSIMD(cur []byte, i, j, bpp int) int {
	p := simdPixels(i, j, len(cur), bpp)
	if p == 0 {
		return i
	}
	if bpp == 3 {
		sub3SSE2(&cur[i], p)
	} else {
		sub4SSE2(&cur[i], p)
	}
	return i + bpp*p
}

// paethRun fills the flat run of a Paeth-filtered row from byte i, where
// the filtered bytes are zero and the bytes above equal w (eight bytes of
// one level, which the pixel to the left and the one above it hold too),
// eight bytes at a time, and returns where the run stopped.
func paethRun(cur, prev []byte, i int, w uint64) int {
	if n := len(cur) - i; n >= 8 && len(prev) >= len(cur) {
		return i + paethRunSSE2(&cur[i], &prev[i], n, w)
	}
	return i
}
