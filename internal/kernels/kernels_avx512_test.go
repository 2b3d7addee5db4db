//go:build amd64 && !purego

package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requireAVX512 skips the test unless the CPU runs both the AVX2 and the
// AVX-512 kernels (whatever the build tags: the test calls both directly).
func requireAVX512(t *testing.T) {
	t.Helper()
	if !useAVX2 {
		t.Skip("the CPU lacks AVX2 or FMA: no assembly kernels to compare")
	}
	if !hasAVX512 {
		t.Skip("the CPU lacks AVX-512F or AVX-512VL: no AVX-512 kernels to compare with AVX2")
	}
}

// bits returns the IEEE 754 encodings of s, for exact comparisons that tell
// -0 from +0.
func bits(s []float32) []uint32 {
	b := make([]uint32, len(s))
	for i, v := range s {
		b[i] = math.Float32bits(v)
	}
	return b
}

func TestDotAVX512MatchesAVX2(t *testing.T) {
	requireAVX512(t)
	rng := rand.New(rand.NewPCG(21, 22))
	// The network's lengths (10 and 50 outputs, 320 inputs) and every path
	// through the blocks of 64, 32 and 8 and the scalar tail.
	ns := []int{16, 17, 23, 24, 31, 32, 33, 40, 47, 48, 50, 63, 64, 65, 71, 95, 96, 97, 100, 127, 128, 129, 250, 320, 321, 1000}
	for n := 16; n < 140; n++ {
		ns = append(ns, n)
	}
	for _, n := range ns {
		for range 4 {
			a, b := randSlice(rng, n), randSlice(rng, n)
			got, want := dotAVX512(&a[0], &b[0], n), dotAVX2(&a[0], &b[0], n)
			require.Equal(t, math.Float32bits(want), math.Float32bits(got), "n=%d: avx512 %v, avx2 %v", n, got, want)
		}
	}
}

func TestAxpyAVX512MatchesAVX2(t *testing.T) {
	requireAVX512(t)
	rng := rand.New(rand.NewPCG(23, 24))
	ns := []int{8, 9, 10, 15, 16, 17, 25, 31, 32, 33, 50, 63, 64, 65, 79, 80, 250, 257, 320}
	for n := 8; n < 140; n++ {
		ns = append(ns, n)
	}
	for _, n := range ns {
		// One value past dst in both copies: the masked tail must leave it.
		dst, src := randSlice(rng, n+1), randSlice(rng, n)
		a := float32(rng.NormFloat64())
		got, want := append([]float32(nil), dst...), append([]float32(nil), dst...)
		axpyAVX512(&got[0], &src[0], n, a)
		axpyAVX2(&want[0], &src[0], n, a)
		require.Equal(t, bits(want), bits(got), "n=%d", n)
		require.Equal(t, math.Float32bits(dst[n]), math.Float32bits(got[n]), "n=%d: the value past dst changed", n)
	}
}

// convLayerCase is a convolution layer shape: the network's two layers and
// others that exercise more column blocks, groups of rows and padding.
type convLayerCase struct{ side, inChans, outChans, poolSide int }

var convLayerCases = []convLayerCase{
	{28, 1, 10, 12}, // conv1
	{12, 10, 20, 4}, // conv2
	{13, 3, 2, 4},   // input wider than the convolution needs
	{20, 2, 3, 8},   // two column blocks, two groups of rows
	{12, 1, 1, 4},
}

func TestConvPoolLayerAVX512MatchesAVX2(t *testing.T) {
	requireAVX512(t)
	rng := rand.New(rand.NewPCG(25, 26))
	for _, tc := range convLayerCases {
		for _, fill := range []string{"random", "ties", "relu-heavy"} {
			for _, withArg := range []bool{false, true} {
				t.Run(fmt.Sprintf("%+v_%s_arg%v", tc, fill, withArg), func(t *testing.T) {
					in := randSlice(rng, tc.inChans*tc.side*tc.side)
					w := randSlice(rng, tc.outChans*tc.inChans*KernelArea)
					b := randSlice(rng, tc.outChans)
					switch fill {
					case "ties":
						for i := range in {
							in[i] = float32(rng.IntN(3))
						}
						for i := range w {
							w[i] = float32(rng.IntN(3) - 1)
						}
					case "relu-heavy":
						for i := range b {
							b[i] -= 3
						}
					}
					n := tc.outChans * tc.poolSide * tc.poolSide
					got, want := make([]float32, n), make([]float32, n)
					var gotArg, wantArg []int32
					if withArg {
						gotArg, wantArg = make([]int32, n), make([]int32, n)
					}
					require.True(t, convPoolLayerAVX512(got, gotArg, in, tc.side, tc.inChans, w, b, tc.poolSide), "the AVX-512 kernels take this shape")
					convPoolLayerBlocks(want, wantArg, in, tc.side, tc.inChans, w, b, tc.poolSide)
					require.Equal(t, bits(want), bits(got))
					require.Equal(t, wantArg, gotArg)
				})
			}
		}
	}
}

func TestConvPoolLayerAVX512DeclinesOtherShapes(t *testing.T) {
	requireAVX512(t)
	// poolSide 8 with 40 channels needs a copy larger than qCap.
	in := make([]float32, 40*20*20)
	w := make([]float32, 40*KernelArea)
	assert.False(t, convPoolLayerAVX512(make([]float32, 64), nil, in, 20, 40, w, []float32{0}, 8))
	// poolSide 10 is not a whole number of groups of four pooled rows.
	assert.False(t, convPoolLayerAVX512(make([]float32, 100), nil, make([]float32, 24*24), 24, 1, w, []float32{0}, 10))
}

func TestPatchSum5x5AVX512MatchesAVX2(t *testing.T) {
	requireAVX512(t)
	rng := rand.New(rand.NewPCG(27, 28))
	// conv1's and conv2's weight gradients (1 channel of 28x28, 10 of
	// 12x12), window lists of every parity, windows at the buffer's ends.
	for _, tc := range []struct{ side, chans, n int }{
		{28, 1, 1}, {28, 1, 2}, {28, 1, 7}, {28, 1, 300}, {12, 10, 1}, {12, 10, 40}, {12, 10, 41}, {12, 3, 5},
	} {
		plane, images := tc.side*tc.side, 3
		src := randSlice(rng, images*tc.chans*plane)
		offs, gs := make([]int32, tc.n), randSlice(rng, tc.n)
		for j := range offs {
			img, y, x := rng.IntN(images), rng.IntN(tc.side-Kernel+1), rng.IntN(tc.side-Kernel+1)
			offs[j] = int32(img*tc.chans*plane + y*tc.side + x)
		}
		offs[0] = int32((images-1)*tc.chans*plane + (tc.side-Kernel)*(tc.side+1)) // ends at src's last value
		if tc.n > 1 {
			offs[1] = 0 // starts at src's first value
		}
		// One value past the kernels in both copies: it must not change.
		dst := randSlice(rng, tc.chans*KernelArea+1)
		got, want := append([]float32(nil), dst...), append([]float32(nil), dst...)
		patchSum5x5AVX512(&got[0], &src[0], tc.side, plane, tc.chans, &offs[0], &gs[0], tc.n)
		patchSum5x5AVX2(&want[0], &src[0], tc.side, plane, tc.chans, &offs[0], &gs[0], tc.n)
		require.Equal(t, bits(want), bits(got), "%+v", tc)
	}
}

// BenchmarkAVX512VsAVX2 times each kernel's two implementations in the
// same run, on the network's shapes, so that their ratio survives a busy
// machine better than two separate runs.
func BenchmarkAVX512VsAVX2(b *testing.B) {
	if !useAVX2 || !hasAVX512 {
		b.Skip("the CPU lacks AVX2+FMA or AVX-512F/VL")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{50, 320} {
		x, y := randSlice(rng, n), randSlice(rng, n)
		var s float32
		b.Run(fmt.Sprintf("dot%d/avx2", n), func(b *testing.B) {
			for b.Loop() {
				s += dotAVX2(&x[0], &y[0], n)
			}
		})
		b.Run(fmt.Sprintf("dot%d/avx512", n), func(b *testing.B) {
			for b.Loop() {
				s += dotAVX512(&x[0], &y[0], n)
			}
		})
	}
	for _, n := range []int{10, 25, 50, 250} {
		x, y := randSlice(rng, n), randSlice(rng, n)
		b.Run(fmt.Sprintf("axpy%d/avx2", n), func(b *testing.B) {
			for b.Loop() {
				axpyAVX2(&x[0], &y[0], n, 1e-3)
			}
		})
		b.Run(fmt.Sprintf("axpy%d/avx512", n), func(b *testing.B) {
			for b.Loop() {
				axpyAVX512(&x[0], &y[0], n, 1e-3)
			}
		})
	}
	for _, tc := range []struct {
		name              string
		side, chans, n, m int
	}{{"patchSum_conv1", 28, 1, 300, 8}, {"patchSum_conv2", 12, 10, 40, 8}} {
		plane := tc.side * tc.side
		src := randSlice(rng, tc.m*tc.chans*plane)
		offs, gs := make([]int32, tc.n), randSlice(rng, tc.n)
		for j := range offs {
			offs[j] = int32(rng.IntN(tc.m)*tc.chans*plane + rng.IntN(tc.side-Kernel+1)*tc.side + rng.IntN(tc.side-Kernel+1))
		}
		dst := make([]float32, tc.chans*KernelArea)
		b.Run(tc.name+"/avx2", func(b *testing.B) {
			for b.Loop() {
				patchSum5x5AVX2(&dst[0], &src[0], tc.side, plane, tc.chans, &offs[0], &gs[0], tc.n)
			}
		})
		b.Run(tc.name+"/avx512", func(b *testing.B) {
			for b.Loop() {
				patchSum5x5AVX512(&dst[0], &src[0], tc.side, plane, tc.chans, &offs[0], &gs[0], tc.n)
			}
		})
	}
	for _, tc := range []convLayerCase{convLayerCases[0], convLayerCases[1]} {
		in := randSlice(rng, tc.inChans*tc.side*tc.side)
		w := randSlice(rng, tc.outChans*tc.inChans*KernelArea)
		bias := randSlice(rng, tc.outChans)
		n := tc.outChans * tc.poolSide * tc.poolSide
		dst, arg := make([]float32, n), make([]int32, n)
		for _, a := range [][]int32{nil, arg} {
			name := fmt.Sprintf("layer_in%d_arg%v", tc.inChans, a != nil)
			b.Run(name+"/avx2", func(b *testing.B) {
				for b.Loop() {
					convPoolLayerBlocks(dst, a, in, tc.side, tc.inChans, w, bias, tc.poolSide)
				}
			})
			b.Run(name+"/avx512", func(b *testing.B) {
				for b.Loop() {
					convPoolLayerAVX512(dst, a, in, tc.side, tc.inChans, w, bias, tc.poolSide)
				}
			})
		}
	}
}
