//go:build amd64 && !purego && !noavx512

package kernels

// useAVX512 selects the AVX-512 kernels where they exist; the noavx512
// build tag turns it off, so that an AVX-512 CPU runs (and benchmarks) the
// AVX2 kernels.
var useAVX512 = hasAVX512
