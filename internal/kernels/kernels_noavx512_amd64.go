//go:build amd64 && !purego && noavx512

package kernels

// useAVX512 is false: the noavx512 build tag keeps AVX-512 CPUs on the AVX2
// kernels.
const useAVX512 = false
