package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConvPoolArg2x8(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, tc := range []struct{ side, chans, y, x0 int }{{28, 1, 0, 0}, {28, 1, 22, 16}, {12, 10, 6, 0}, {12, 10, 0, 0}, {12, 0, 0, 0}} {
		plane := tc.side * tc.side
		in := randSlice(rng, max(tc.chans, 1)*plane)
		w := randSlice(rng, max(tc.chans, 1)*KernelArea)
		if tc.chans == 1 && tc.y == 0 {
			// Ties: equal values in every window, so the first corner must win.
			for i := range in {
				in[i] = 1
			}
		}
		off := tc.y*tc.side + tc.x0
		convSide := int32(tc.side - Kernel + 1)
		pos0 := int32(tc.y)*convSide + int32(tc.x0)
		for _, bias := range []float32{-0.5, 0, 0.7, -100, 100} {
			t.Run(fmt.Sprintf("side%d_c%d_y%d_x%d_b%v", tc.side, tc.chans, tc.y, tc.x0, bias), func(t *testing.T) {
				var blk [2 * BlockCols]float32
				Conv2x8(&blk, in, tc.side, plane, tc.chans, w, off)
				var got, gen [BlockCols / 2]float32
				var arg, genArg [BlockCols / 2]int32
				ConvPoolArg2x8(&got, &arg, in, tc.side, plane, tc.chans, w, off, bias, pos0, convSide)
				if tc.chans > 0 {
					convPoolArg2x8Generic(&gen, &genArg, in, tc.side, plane, tc.chans, w, off, bias, pos0, convSide)
				} else {
					gen, genArg = got, arg
				}
				for i := range got {
					corners := []float32{blk[2*i], blk[2*i+1], blk[BlockCols+2*i], blk[BlockCols+2*i+1]}
					at := []int32{0, 1, convSide, convSide + 1}
					m, k := corners[0], 0
					for j, v := range corners[1:] {
						if v > m {
							m, k = v, j+1
						}
					}
					want, wantArg := m+bias, pos0+int32(2*i)+at[k]
					if want <= 0 {
						want, wantArg = 0, -1
					}
					assert.Equal(t, want, got[i], "value %d", i)
					assert.Equal(t, wantArg, arg[i], "argmax %d", i)
					assert.InDelta(t, float64(gen[i]), float64(got[i]), 1e-5*math.Sqrt(float64(tc.chans*KernelArea+1)), "vs generic, value %d", i)
					if math.Abs(float64(m+bias)) > 1e-3 {
						assert.Equal(t, genArg[i], arg[i], "vs generic, argmax %d", i)
					}
				}
			})
		}
	}
	var dst [BlockCols / 2]float32
	var arg [BlockCols / 2]int32
	require.Panics(t, func() {
		ConvPoolArg2x8(&dst, &arg, make([]float32, 144), 12, 144, 1, make([]float32, KernelArea), 7*12, 0, 0, 8)
	}, "rows past the plane")
}

func TestPatchSum5x5(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, tc := range []struct{ side, chans, n int }{{28, 1, 1}, {28, 1, 7}, {12, 10, 40}, {12, 10, 41}, {12, 3, 0}} {
		plane := tc.side * tc.side
		images := 3
		src := randSlice(rng, images*tc.chans*plane)
		// Offsets of windows in channel 0 of some image: the last channel's
		// window must still fit.
		offs := make([]int32, tc.n)
		gs := randSlice(rng, tc.n)
		for j := range offs {
			img, y, x := rng.IntN(images), rng.IntN(tc.side-Kernel+1), rng.IntN(tc.side-Kernel+1)
			offs[j] = int32(img*tc.chans*plane + y*tc.side + x)
		}
		if tc.n > 1 {
			// The window that ends at src's last value.
			offs[0] = int32((images-1)*tc.chans*plane + (tc.side-Kernel)*(tc.side+1))
		}
		dst := randSlice(rng, tc.chans*KernelArea)
		want := make([]float64, len(dst))
		for k := range want {
			c, r := k/KernelArea, k%KernelArea
			want[k] = float64(dst[k])
			for j, o := range offs {
				want[k] += float64(gs[j]) * float64(src[int(o)+c*plane+r/Kernel*tc.side+r%Kernel])
			}
		}
		gen := append([]float32(nil), dst...)
		PatchSum5x5(dst, src, tc.side, plane, tc.chans, offs, gs)
		patchSum5x5Generic(gen, src, tc.side, plane, tc.chans, offs, gs)
		tol := 1e-5 * math.Sqrt(float64(tc.n)+1)
		for k := range want {
			assert.InDelta(t, want[k], float64(dst[k]), tol, "%+v value %d", tc, k)
			assert.InDelta(t, want[k], float64(gen[k]), tol, "generic, %+v value %d", tc, k)
		}
	}
	require.Panics(t, func() {
		PatchSum5x5(make([]float32, KernelArea), make([]float32, 100), 10, 100, 1, []int32{56}, []float32{1})
	}, "window past the end")
	require.Panics(t, func() {
		PatchSum5x5(make([]float32, 2*KernelArea), make([]float32, 200), 10, 100, 2, []int32{0, 56}, []float32{1, 1})
	}, "second channel's window past the end")
	require.Panics(t, func() {
		PatchSum5x5(make([]float32, KernelArea), make([]float32, 100), 10, 100, 1, []int32{-1}, []float32{1})
	}, "negative offset")
}

func TestAddPatch5x5(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, tc := range []struct{ side, chans, y, x int }{{12, 10, 0, 0}, {12, 10, 7, 7}, {28, 1, 23, 23}, {12, 3, 2, 5}} {
		plane := tc.side * tc.side
		dst := randSlice(rng, tc.chans*plane)
		patch := randSlice(rng, tc.chans*KernelArea)
		off := tc.y*tc.side + tc.x
		want := make([]float64, len(dst))
		for i, v := range dst {
			want[i] = float64(v)
		}
		for c := range tc.chans {
			for k := range KernelArea {
				want[off+c*plane+k/Kernel*tc.side+k%Kernel] += float64(patch[c*KernelArea+k])
			}
		}
		gen := append([]float32(nil), dst...)
		AddPatch5x5(dst, tc.side, plane, tc.chans, patch, off)
		addPatch5x5Generic(gen, tc.side, plane, tc.chans, patch, off)
		for i := range want {
			assert.InDelta(t, want[i], float64(dst[i]), 1e-6, "%+v value %d", tc, i)
			assert.InDelta(t, want[i], float64(gen[i]), 1e-6, "generic %+v value %d", tc, i)
		}
	}
	require.Panics(t, func() { AddPatch5x5(make([]float32, 144), 12, 144, 1, make([]float32, KernelArea), 8*12) })
}

func TestConvPoolArgPlane(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for _, tc := range []struct{ side, chans, poolSide int }{{28, 1, 12}, {12, 10, 4}, {13, 2, 4}, {12, 0, 4}} {
		plane := tc.side * tc.side
		in := randSlice(rng, max(tc.chans, 1)*plane)
		w := randSlice(rng, max(tc.chans, 1)*KernelArea)
		for _, bias := range []float32{-0.3, 0.4} {
			n := tc.poolSide * tc.poolSide
			dst, arg := make([]float32, n), make([]int32, n)
			ConvPoolArgPlane(dst, arg, in, tc.side, plane, tc.chans, w, bias, tc.poolSide)
			convSide := 2 * tc.poolSide
			for py := range tc.poolSide {
				for x0 := 0; x0 < convSide; x0 += BlockCols {
					var want [BlockCols / 2]float32
					var wantArg [BlockCols / 2]int32
					ConvPoolArg2x8(&want, &wantArg, in, tc.side, plane, tc.chans, w, 2*py*tc.side+x0, bias, int32(2*py*convSide+x0), int32(convSide))
					base := py*tc.poolSide + x0/2
					assert.Equal(t, want[:], dst[base:base+BlockCols/2], "%+v bias %v row %d block %d", tc, bias, py, x0)
					assert.Equal(t, wantArg[:], arg[base:base+BlockCols/2], "%+v bias %v row %d block %d", tc, bias, py, x0)
				}
			}
		}
	}
	require.Panics(t, func() {
		ConvPoolArgPlane(make([]float32, 16), make([]int32, 16), make([]float32, 144), 11, 144, 1, make([]float32, KernelArea), 0, 4)
	}, "plane wider than the input allows")
	require.Panics(t, func() {
		ConvPoolArgPlane(make([]float32, 15), make([]int32, 16), make([]float32, 144), 12, 144, 1, make([]float32, KernelArea), 0, 4)
	}, "dst too short")
}
