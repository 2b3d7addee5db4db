//go:build amd64 && !purego

package pngluma

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSIMDKernels calls each kernel directly, from the second pixel of a
// row of 2 to 70 pixels (and a long one), and compares it with the
// specification's unfiltering; the byte after the pixels it unfilters
// must stay as it was.
func TestSIMDKernels(t *testing.T) {
	type kernel struct {
		name string
		ft   byte
		bpp  int
		f    func(cur, prev *byte, n int)
	}
	kernels := []kernel{
		{"sub3SSE2", filterSub, 3, func(cur, _ *byte, n int) { sub3SSE2(cur, n) }},
		{"sub4SSE2", filterSub, 4, func(cur, _ *byte, n int) { sub4SSE2(cur, n) }},
		{"avg3SSE2", filterAverage, 3, avg3SSE2},
		{"avg4SSE2", filterAverage, 4, avg4SSE2},
		{"paeth3SSE2", filterPaeth, 3, paeth3SSE2},
		{"paeth4SSE2", filterPaeth, 4, paeth4SSE2},
	}
	if useAVX {
		kernels = append(kernels, kernel{"paeth3AVX", filterPaeth, 3, paeth3AVX}, kernel{"paeth4AVX", filterPaeth, 4, paeth4AVX})
	} else {
		t.Log("this CPU has no AVX: its Paeth kernels are not tested")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	pixels := []int{}
	for n := 2; n <= 70; n++ {
		pixels = append(pixels, n)
	}
	pixels = append(pixels, 4000)
	for _, k := range kernels {
		for kind, fill := range rowKinds {
			t.Run(fmt.Sprintf("%s, %s", k.name, kind), func(t *testing.T) {
				for _, w := range pixels {
					n := w * k.bpp
					// The row, then one byte the 3-byte kernels read.
					cur, prev := make([]byte, n+1), make([]byte, n+1)
					fill(rng, cur[:n], prev[:n])
					cur[n], prev[n] = 0x5a, 0xa5
					want := append([]byte{}, cur...)
					unfilterRef(k.ft, want[:n], prev[:n], k.bpp)
					// The first pixel as the caller does it, the rest by
					// the kernel.
					unfilterRef(k.ft, cur[:k.bpp], prev[:k.bpp], k.bpp)
					k.f(&cur[k.bpp], &prev[k.bpp], w-1)
					require.Equal(t, want, cur, "%d pixels", w)
				}
			})
		}
	}
}

// TestPaethRun checks the flat-run kernel against its definition: eight
// bytes at a time, while the filtered bytes are zero and those above are
// w, they become w; it stops at the first eight that are not so.
func TestPaethRun(t *testing.T) {
	const w = 0x3737373737373737
	rng := rand.New(rand.NewPCG(5, 6))
	for n := range 80 {
		for stop := range n + 1 {
			for _, which := range []string{"cur", "prev"} {
				cur, prev := make([]byte, n+8), make([]byte, n+8)
				for i := range prev {
					prev[i] = 0x37
				}
				cur[n], cur[n+1] = 9, 9 // past the row: never read as zero
				if stop < n {
					if which == "cur" {
						cur[stop] = uint8(1 + rng.IntN(255))
					} else {
						prev[stop] = 0x38
					}
				}
				got := paethRunSSE2(&cur[0], &prev[0], n, w)
				want := min(stop, n) / 8 * 8
				require.Equal(t, want, got, "%d bytes, stop at %d in %s", n, stop, which)
				for i := range got {
					require.Equal(t, uint8(0x37), cur[i])
				}
				if got < len(cur) && (got != stop || which != "cur") {
					require.NotEqual(t, uint8(0x37), cur[got], "nothing written past the run")
				}
			}
		}
	}
}

// BenchmarkPaethKernels times the Paeth kernels on rows of 4,000 pixels of
// random bytes (the kernels' speed does not depend on the values).
func BenchmarkPaethKernels(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, k := range []struct {
		name string
		bpp  int
		f    func(cur, prev *byte, n int)
	}{{"paeth3SSE2", 3, paeth3SSE2}, {"paeth3AVX", 3, paeth3AVX}, {"paeth4SSE2", 4, paeth4SSE2}, {"paeth4AVX", 4, paeth4AVX}} {
		if !useAVX && k.name[len(k.name)-3:] == "AVX" {
			continue
		}
		const w = 4000
		cur, prev := make([]byte, w*k.bpp+1), make([]byte, w*k.bpp+1)
		fillRandom(rng, cur)
		fillRandom(rng, prev)
		b.Run(k.name, func(b *testing.B) {
			b.SetBytes(w * int64(k.bpp))
			for b.Loop() {
				k.f(&cur[k.bpp], &prev[k.bpp], w-1)
			}
		})
	}
}
