package kernels

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// lessMaskNaive is LessMask's definition, a byte at a time.
func lessMaskNaive(src []byte, flip, limit byte) []uint64 {
	mask := make([]uint64, (len(src)+63)/64)
	for i, v := range src {
		if v^flip < limit {
			mask[i/64] |= 1 << (i % 64)
		}
	}
	return mask
}

func TestLessMask(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 300 {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(rng.IntN(256))
			if rng.IntN(3) == 0 { // runs and the extremes
				src[i] = []byte{0, 1, 127, 128, 129, 254, 255}[rng.IntN(7)]
			}
		}
		for _, c := range []struct{ flip, limit byte }{
			{0, 0}, {0, 1}, {0, 128}, {0, 129}, {0, 255}, {0xff, 1}, {0xff, 200}, {0x5a, 77}, {0, byte(rng.IntN(256))},
		} {
			want := lessMaskNaive(src, c.flip, c.limit)
			got := make([]uint64, len(want)+1)
			for i := range got {
				got[i] = ^uint64(0) // LessMask clears what it covers
			}
			LessMask(got, src, c.flip, c.limit)
			require.Equal(t, want, got[:len(want)], "n=%d flip=%#x limit=%d", n, c.flip, c.limit)
			require.Equal(t, ^uint64(0), got[len(want)], "n=%d: wrote past its words", n)
			generic := make([]uint64, len(want))
			if c.limit > 0 {
				lessMaskGeneric(generic, src, 0, c.flip, c.limit)
			}
			require.Equal(t, want, generic, fmt.Sprintf("generic, n=%d flip=%#x limit=%d", n, c.flip, c.limit))
		}
	}
	require.Panics(t, func() { LessMask(make([]uint64, 1), make([]byte, 65), 0, 1) })
}

func TestLessBytes(t *testing.T) {
	// Every pair of byte values, in every lane.
	for a := range 256 {
		for b := range 256 {
			lane := (a + b) % 8
			others := ^(uint64(0xff) << (8 * lane))
			got := lessBytes(0x1111111111111111&others|uint64(a)<<(8*lane), 0x2222222222222222&others|uint64(b)<<(8*lane))
			want := laneHighs & others // the other lanes: 0x11 < 0x22
			if a < b {
				want |= 0x80 << (8 * lane)
			}
			if got != want {
				t.Fatalf("lessBytes(%d, %d) in lane %d = %#x, want %#x", a, b, lane, got, want)
			}
		}
	}
	for m := range 256 {
		var lanes uint64
		for k := range 8 {
			if m&(1<<k) != 0 {
				lanes |= 0x80 << (8 * k)
			}
		}
		require.Equal(t, uint8(m), laneBits(lanes))
	}
}

func BenchmarkLessMask(b *testing.B) {
	src := make([]byte, 84)
	mask := make([]uint64, 2)
	for b.Loop() {
		LessMask(mask, src, 0, 200)
	}
}

func TestMinByte(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for n := 1; n < 300; n++ {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(128 + rng.IntN(128))
		}
		for _, flip := range []byte{0, 0xff, 0x33} {
			for _, at := range []int{0, n - 1, rng.IntN(n)} { // the smallest at either end or anywhere
				src := append([]byte(nil), src...)
				src[at] = flip ^ byte(rng.IntN(3))
				want := byte(0xff)
				for _, v := range src {
					want = min(want, v^flip)
				}
				require.Equal(t, want, MinByte(src, flip), "n=%d flip=%#x at=%d", n, flip, at)
				require.Equal(t, want, minByteGeneric(src, flip), "generic, n=%d flip=%#x at=%d", n, flip, at)
			}
		}
	}
	require.Panics(t, func() { MinByte(nil, 0) })
}

func TestScaleRowBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var table [256]uint16
	for v := range table {
		if v < 200 { // bytes from 200 are black
			table[v] = uint16(rng.IntN(65536))
		}
	}
	for _, width := range []int{8, 16, 24, 32} {
		for n := range 40 {
			src := make([]byte, n)
			for i := range src {
				src[i] = byte(rng.IntN(256))
			}
			w := make([]float32, n*width)
			for i := range w {
				if rng.IntN(2) == 0 {
					w[i] = rng.Float32()
				}
			}
			want := make([]float32, width) // the sums gathered by output
			for j := range want {
				var sum float32
				for i, v := range src {
					if l := table[v]; l != 0 {
						sum += float32(float32(l) * w[i*width+j])
					}
				}
				want[j] = sum
			}
			got, generic := make([]float32, width), make([]float32, width)
			ScaleRowBytes(got, w, src, &table)
			if n > 0 {
				scaleRowBytesGeneric(generic, w, src, &table)
			}
			require.Equal(t, want, got, "width %d, n %d", width, n)
			require.Equal(t, want, generic, "generic, width %d, n %d", width, n)
		}
	}
	require.Panics(t, func() { ScaleRowBytes(make([]float32, 40), make([]float32, 40), []byte{1}, &table) })
}

func TestScaleRowBytes2(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	var table [256]uint16
	for v := range table {
		if v < 200 {
			table[v] = uint16(rng.IntN(65536))
		}
	}
	for _, width := range []int{8, 16, 24, 32} {
		for n := range 30 {
			src0, src1 := make([]byte, n), make([]byte, n)
			for i := range src0 {
				src0[i], src1[i] = byte(rng.IntN(256)), byte(rng.IntN(256))
			}
			w := make([]float32, n*width)
			for i := range w {
				w[i] = rng.Float32()
			}
			want0, want1 := make([]float32, width), make([]float32, width)
			ScaleRowBytes(want0, w, src0, &table)
			ScaleRowBytes(want1, w, src1, &table)
			got0, got1 := make([]float32, width), make([]float32, width)
			ScaleRowBytes2(got0, got1, w, src0, src1, &table)
			require.Equal(t, want0, got0, "width %d, n %d", width, n)
			require.Equal(t, want1, got1, "width %d, n %d", width, n)
		}
	}
}

func TestAxpyRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{1, 7, 8, 16, 17, 24, 32, 40} {
		for taps := range 8 {
			src := randSlice(rng, 50*n)
			offs, ws := make([]int32, taps), make([]float32, taps)
			for k := range offs {
				offs[k], ws[k] = int32(rng.IntN(49)*n), rng.Float32()
			}
			want, got := randSlice(rng, n), make([]float32, n)
			copy(got, want)
			for k, off := range offs {
				for i := range want {
					want[i] += float32(ws[k] * src[int(off)+i])
				}
			}
			generic := slices.Clone(got)
			AxpyRows(got, src, offs, ws)
			require.Equal(t, want, got, "n %d, taps %d", n, taps)
			if taps > 0 {
				axpyRowsGeneric(generic, src, offs, ws)
			}
			require.Equal(t, want, generic, "generic, n %d, taps %d", n, taps)
		}
	}
	require.Panics(t, func() { AxpyRows(make([]float32, 8), make([]float32, 10), []int32{3}, []float32{1}) })
}

func TestRowMins(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for _, w := range []int{1, 7, 31, 32, 33, 64, 84, 100} {
		for _, rows := range []int{0, 1, 2, 7} {
			src := make([]byte, w*rows)
			for i := range src {
				src[i] = byte(100 + rng.IntN(156))
			}
			for y := range rows { // each row's smallest byte somewhere in it
				src[y*w+rng.IntN(w)] = byte(rng.IntN(100))
			}
			for _, flip := range []byte{0, 0xff} {
				want := make([]byte, rows)
				for y := range want {
					want[y] = MinByte(src[y*w:(y+1)*w], flip)
				}
				got := make([]byte, rows)
				RowMins(got, src, w, flip)
				require.Equal(t, want, got, "w %d, rows %d, flip %#x", w, rows, flip)
			}
		}
	}
	require.Panics(t, func() { RowMins(make([]byte, 2), make([]byte, 3), 2, 0) })
}
