//go:build amd64 && !purego

package pngluma

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSIMDKernels calls each SSE2 kernel directly, from the second pixel
// of a row of 1 to 70 pixels (and a long one), and compares it with the
// specification's unfiltering; the bytes around the pixels it unfilters
// must stay as they were.
func TestSIMDKernels(t *testing.T) {
	require.True(t, simdUnfilter)
	kernels := map[byte][2]func(cur, prev *byte, n int){
		filterSub:     {func(cur, _ *byte, n int) { sub3SSE2(cur, n) }, func(cur, _ *byte, n int) { sub4SSE2(cur, n) }},
		filterAverage: {avg3SSE2, avg4SSE2},
		filterPaeth:   {paeth3SSE2, paeth4SSE2},
	}
	rng := rand.New(rand.NewPCG(3, 4))
	pixels := []int{}
	for n := 2; n <= 70; n++ {
		pixels = append(pixels, n)
	}
	pixels = append(pixels, 4000)
	for ft, k := range kernels {
		for bpp := 3; bpp <= 4; bpp++ {
			kernel := k[bpp-3]
			for kind, fill := range rowKinds {
				t.Run(fmt.Sprintf("filter %d, %d bytes per pixel, %s", ft, bpp, kind), func(t *testing.T) {
					for _, w := range pixels {
						n := w * bpp
						// The row, then one byte the 3-byte kernels read.
						cur, prev := make([]byte, n+1), make([]byte, n+1)
						fill(rng, cur[:n], prev[:n])
						cur[n], prev[n] = 0x5a, 0xa5
						want := append([]byte{}, cur...)
						unfilterRef(ft, want[:n], prev[:n], bpp)
						// The first pixel as the caller does it, the rest
						// by the kernel.
						unfilterRef(ft, cur[:bpp], prev[:bpp], bpp)
						kernel(&cur[bpp], &prev[bpp], w-1)
						require.Equal(t, want, cur, "%d pixels", w)
					}
				})
			}
		}
	}
}
