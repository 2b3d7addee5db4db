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
	want := "go"
	switch {
	case useAVX512:
		want = "avx512"
	case useAVX2:
		want = "avx2+fma"
	}
	assert.Equal(t, want, Features())
	assert.False(t, useAVX512 && !useAVX2, "AVX-512 kernels without AVX2 ones")
}

// naiveConvPool is the definition of ConvPoolLayer's values, in float64.
func naiveConvPool(in []float32, side, inChans int, w, b []float32, poolSide int) []float64 {
	var out []float64
	plane := side * side
	for o := range b {
		for py := range poolSide {
			for px := range poolSide {
				m := math.Inf(-1)
				for dy := range 2 {
					for dx := range 2 {
						var s float64
						for c := range inChans {
							for k := range KernelArea {
								s += float64(w[(o*inChans+c)*KernelArea+k]) *
									float64(in[c*plane+(2*py+dy+k/Kernel)*side+2*px+dx+k%Kernel])
							}
						}
						m = max(m, s)
					}
				}
				out = append(out, max(0, m+float64(b[o])))
			}
		}
	}
	return out
}

func TestConvPoolLayer(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	for _, tc := range []struct{ side, inChans, outChans, poolSide int }{
		{28, 1, 10, 12}, {12, 10, 20, 4}, {13, 3, 2, 4}, {20, 2, 3, 8}, {12, 0, 2, 4},
	} {
		t.Run(fmt.Sprintf("%+v", tc), func(t *testing.T) {
			in := randSlice(rng, tc.inChans*tc.side*tc.side)
			w := randSlice(rng, tc.outChans*tc.inChans*KernelArea)
			b := randSlice(rng, tc.outChans)
			n := tc.outChans * tc.poolSide * tc.poolSide
			want := naiveConvPool(in, tc.side, tc.inChans, w, b, tc.poolSide)
			tol := 1e-5 * math.Sqrt(float64(tc.inChans*KernelArea+1))
			for _, withArg := range []bool{false, true} {
				got, blocks := make([]float32, n), make([]float32, n)
				var arg, blocksArg []int32
				if withArg {
					arg, blocksArg = make([]int32, n), make([]int32, n)
				}
				ConvPoolLayer(got, arg, in, tc.side, tc.inChans, w, b, tc.poolSide)
				convPoolLayerBlocks(blocks, blocksArg, in, tc.side, tc.inChans, w, b, tc.poolSide)
				// Every instruction set computes exactly what its blocks do.
				assert.Equal(t, blocks, got, "arg %v: ConvPoolLayer vs ConvPool2x8/ConvPoolArgPlane", withArg)
				assert.Equal(t, blocksArg, arg, "arg %v: positions", withArg)
				for i := range want {
					assert.InDelta(t, want[i], float64(got[i]), tol, "arg %v: value %d", withArg, i)
				}
			}
		})
	}
	assert.NotPanics(t, func() {
		ConvPoolLayer(nil, nil, make([]float32, 144), 12, 1, nil, nil, 4)
	}, "no output channels")
	assert.Panics(t, func() {
		ConvPoolLayer(make([]float32, 16), nil, make([]float32, 144), 11, 1, make([]float32, KernelArea), []float32{0}, 4)
	}, "plane wider than the input allows")
	assert.Panics(t, func() {
		ConvPoolLayer(make([]float32, 31), nil, make([]float32, 144), 12, 1, make([]float32, 2*KernelArea), []float32{0, 0}, 4)
	}, "dst too short")
	assert.Panics(t, func() {
		ConvPoolLayer(make([]float32, 16), nil, make([]float32, 143), 12, 1, make([]float32, KernelArea), []float32{0}, 4)
	}, "input too short")
	assert.Panics(t, func() {
		ConvPoolLayer(make([]float32, 16), make([]int32, 15), make([]float32, 144), 12, 1, make([]float32, KernelArea), []float32{0}, 4)
	}, "arg too short")
}

func BenchmarkConvPoolLayer(b *testing.B) {
	for _, tc := range []struct {
		name                              string
		side, inChans, outChans, poolSide int
	}{{"conv1", 28, 1, 10, 12}, {"conv2", 12, 10, 20, 4}} {
		rng := rand.New(rand.NewPCG(1, 2))
		in := randSlice(rng, tc.inChans*tc.side*tc.side)
		w := randSlice(rng, tc.outChans*tc.inChans*KernelArea)
		bias := randSlice(rng, tc.outChans)
		n := tc.outChans * tc.poolSide * tc.poolSide
		dst, arg := make([]float32, n), make([]int32, n)
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				ConvPoolLayer(dst, nil, in, tc.side, tc.inChans, w, bias, tc.poolSide)
			}
		})
		b.Run(tc.name+"Arg", func(b *testing.B) {
			for b.Loop() {
				ConvPoolLayer(dst, arg, in, tc.side, tc.inChans, w, bias, tc.poolSide)
			}
		})
	}
}

func BenchmarkDot(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{50, 320} {
		x, y := randSlice(rng, n), randSlice(rng, n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var s float32
			for b.Loop() {
				s += Dot(x, y)
			}
			_ = s
		})
	}
}

func BenchmarkAxpy(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{10, 25, 50, 250} {
		x, y := randSlice(rng, n), randSlice(rng, n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				Axpy(x, y, 1e-3)
			}
		})
	}
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
