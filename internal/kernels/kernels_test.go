package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

// naiveConv is the definition of Conv2x8, in float64.
func naiveConv(in []float32, side, plane, inChans int, w []float32, y, x0 int) [2 * BlockCols]float64 {
	var out [2 * BlockCols]float64
	for r := 0; r < 2; r++ {
		for i := 0; i < BlockCols; i++ {
			var s float64
			for c := 0; c < inChans; c++ {
				for ky := 0; ky < Kernel; ky++ {
					for kx := 0; kx < Kernel; kx++ {
						s += float64(w[c*KernelArea+ky*Kernel+kx]) * float64(in[c*plane+(y+r+ky)*side+x0+i+kx])
					}
				}
			}
			out[r*BlockCols+i] = s
		}
	}
	return out
}

func TestConv2x8(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		side, chans, y, x0 int
	}{
		{28, 1, 0, 0}, {28, 1, 22, 16}, {28, 1, 10, 8},
		{12, 10, 0, 0}, {12, 10, 6, 0}, {12, 3, 2, 0},
		{20, 7, 14, 8},
	} {
		t.Run(fmt.Sprintf("side%d_c%d_y%d_x%d", tc.side, tc.chans, tc.y, tc.x0), func(t *testing.T) {
			plane := tc.side * tc.side
			in := randSlice(rng, tc.chans*plane)
			w := randSlice(rng, tc.chans*KernelArea)
			want := naiveConv(in, tc.side, plane, tc.chans, w, tc.y, tc.x0)
			var got, gen [2 * BlockCols]float32
			Conv2x8(&got, in, tc.side, plane, tc.chans, w, tc.y*tc.side+tc.x0)
			conv2x8Generic(&gen, in, tc.side, plane, tc.chans, w, tc.y*tc.side+tc.x0)
			scale := math.Sqrt(float64(tc.chans * KernelArea))
			for i := range want {
				assert.InDelta(t, want[i], float64(got[i]), 1e-5*scale, "dispatched, output %d", i)
				assert.InDelta(t, want[i], float64(gen[i]), 1e-5*scale, "generic, output %d", i)
				assert.InDelta(t, float64(gen[i]), float64(got[i]), 1e-5*scale, "dispatched vs generic, output %d", i)
			}
		})
	}
}

func TestConvPool2x8(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []struct{ side, chans, y, x0 int }{{28, 1, 0, 0}, {28, 1, 22, 16}, {12, 10, 6, 0}, {12, 10, 0, 0}} {
		plane := tc.side * tc.side
		in := randSlice(rng, tc.chans*plane)
		w := randSlice(rng, tc.chans*KernelArea)
		off := tc.y*tc.side + tc.x0
		for _, bias := range []float32{-0.5, 0, 0.7, -100} {
			var blk [2 * BlockCols]float32
			Conv2x8(&blk, in, tc.side, plane, tc.chans, w, off)
			var got, gen [BlockCols / 2]float32
			ConvPool2x8(&got, in, tc.side, plane, tc.chans, w, off, bias)
			convPool2x8Generic(&gen, in, tc.side, plane, tc.chans, w, off, bias)
			for i := range got {
				want := max(0, max(blk[2*i], blk[2*i+1], blk[BlockCols+2*i], blk[BlockCols+2*i+1])+bias)
				assert.Equal(t, want, got[i], "same sums, same pooling: exact (%+v bias %v, output %d)", tc, bias, i)
				assert.InDelta(t, float64(gen[i]), float64(got[i]), 1e-5*math.Sqrt(float64(tc.chans*KernelArea)), "vs generic")
			}
		}
	}
}

func TestConv2x8OutOfBoundsPanics(t *testing.T) {
	in := make([]float32, 12*12)
	w := make([]float32, KernelArea)
	var dst [2 * BlockCols]float32
	assert.Panics(t, func() { Conv2x8(&dst, in, 12, 144, 1, w, 7*12) }, "rows past the plane")
	assert.Panics(t, func() { Conv2x8(&dst, in, 12, 144, 2, w, 0) }, "kernels too short")
	assert.NotPanics(t, func() { Conv2x8(&dst, in, 12, 144, 1, w, 6*12) })
}

func TestDot(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 7, 15, 16, 17, 31, 32, 33, 50, 64, 320, 321} {
		a, b := randSlice(rng, n), randSlice(rng, n+3)
		var want float64
		for i := range a {
			want += float64(a[i]) * float64(b[i])
		}
		tol := 1e-5 * math.Sqrt(float64(n)+1)
		assert.InDelta(t, want, float64(Dot(a, b)), tol, "n=%d", n)
		assert.InDelta(t, want, float64(dotGeneric(a, b[:n])), tol, "generic n=%d", n)
	}
	require.Panics(t, func() { Dot(make([]float32, 4), make([]float32, 3)) })
}

func TestAxpy(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{0, 1, 7, 8, 9, 25, 31, 32, 33, 250, 257} {
		dst, src := randSlice(rng, n), randSlice(rng, n+2)
		want := make([]float64, n)
		for i := range want {
			want[i] = float64(dst[i]) + 0.37*float64(src[i])
		}
		gen := append([]float32(nil), dst...)
		Axpy(dst, src, 0.37)
		axpyGeneric(gen, src, 0.37)
		for i := range want {
			assert.InDelta(t, want[i], float64(dst[i]), 1e-6, "n=%d i=%d", n, i)
			assert.InDelta(t, want[i], float64(gen[i]), 1e-6, "generic n=%d i=%d", n, i)
		}
	}
	require.Panics(t, func() { Axpy(make([]float32, 4), make([]float32, 3), 1) })
}

func TestFeatures(t *testing.T) {
	f := Features()
	assert.Contains(t, []string{"avx2+fma", "generic"}, f)
	assert.Equal(t, useAVX2, f == "avx2+fma")
}

func BenchmarkConv2x8(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	in := randSlice(rng, 10*144)
	w := randSlice(rng, 10*KernelArea)
	var dst [2 * BlockCols]float32
	for b.Loop() {
		Conv2x8(&dst, in, 12, 144, 10, w, 0)
	}
	b.ReportMetric(float64(b.N)*2*2*BlockCols*10*KernelArea/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
