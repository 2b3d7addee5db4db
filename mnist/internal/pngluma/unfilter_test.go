package pngluma

import (
	"fmt"
	"image/color"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// unfilterRef is the PNG specification's unfiltering (section 9), byte by
// byte and nothing else: what unfilter's fast paths and kernels must
// reproduce exactly.
func unfilterRef(ft byte, cur, prev []byte, bpp int) {
	for i := range cur {
		var a, c int
		if i >= bpp {
			a, c = int(cur[i-bpp]), int(prev[i-bpp])
		}
		b := int(prev[i])
		switch ft {
		case filterSub:
			cur[i] += uint8(a)
		case filterUp:
			cur[i] += uint8(b)
		case filterAverage:
			cur[i] += uint8((a + b) / 2)
		case filterPaeth:
			p := a + b - c
			pa, pb, pc := max(p-a, a-p), max(p-b, b-p), max(p-c, c-p)
			switch {
			case pa <= pb && pa <= pc:
				cur[i] += uint8(a)
			case pb <= pc:
				cur[i] += uint8(b)
			default:
				cur[i] += uint8(c)
			}
		}
	}
}

// rowKinds fills a filtered row and the unfiltered row above it in the
// ways that reach unfilter's different paths: random bytes everywhere,
// a flat row above with zero differences (a drawing's background), and
// the two mixed in stretches, flat ones of random length and level.
var rowKinds = map[string]func(rng *rand.Rand, cur, prev []byte){
	"random": func(rng *rand.Rand, cur, prev []byte) {
		fillRandom(rng, cur)
		fillRandom(rng, prev)
	},
	"flat": func(rng *rand.Rand, cur, prev []byte) {
		clear(cur)
		v := uint8(rng.IntN(256))
		for i := range prev {
			prev[i] = v
		}
		if len(cur) > 0 && rng.IntN(2) == 0 {
			cur[0] = v // the first pixel predicted from above: v again after Up
		}
	},
	"mixed": func(rng *rand.Rand, cur, prev []byte) {
		for i := 0; i < len(cur); {
			n := min(len(cur)-i, 1+rng.IntN(40))
			switch rng.IntN(4) {
			case 0: // random
				fillRandom(rng, cur[i:i+n])
				fillRandom(rng, prev[i:i+n])
			case 1: // flat above, zero differences
				v := uint8(rng.IntN(4) * 85)
				clear(cur[i : i+n])
				for k := range n {
					prev[i+k] = v
				}
			case 2: // zero differences under a ramp: a smooth drawing
				clear(cur[i : i+n])
				for k := range n {
					prev[i+k] = uint8(i + k)
				}
			default: // small differences
				for k := range n {
					cur[i+k] = uint8(rng.IntN(3) - 1)
					prev[i+k] = uint8(200 + rng.IntN(3))
				}
			}
			i += n
		}
	},
}

func fillRandom(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = uint8(rng.Uint32())
	}
}

// TestUnfilterMatchesReference compares unfilter (with the SIMD kernels
// where the build has them, the portable code with the purego tag) with
// the specification's byte-by-byte unfiltering, for every filter, 1 to 4
// bytes per pixel, every row length from 0 to 100 bytes and long rows.
func TestUnfilterMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	lengths := []int{}
	for n := range 101 {
		lengths = append(lengths, n)
	}
	lengths = append(lengths, 1000, 1001, 1002, 12000, 12003, 16000)
	for ft := range byte(5) {
		for bpp := 1; bpp <= 4; bpp++ {
			for kind, fill := range rowKinds {
				t.Run(fmt.Sprintf("filter %d, %d bytes per pixel, %s", ft, bpp, kind), func(t *testing.T) {
					for _, n := range lengths {
						for rep := range 4 {
							// One spare byte each side: the kernels must
							// neither read past the row nor write there.
							cur, prev := make([]byte, n+2), make([]byte, n+2)
							fill(rng, cur[1:n+1], prev[1:n+1])
							cur[0], cur[n+1] = 0xa5, 0x5a
							want := append([]byte{}, cur...)
							unfilterRef(ft, want[1:n+1], prev[1:n+1], bpp)
							require.NoError(t, unfilter(ft, cur[1:n+1], prev[1:n+1], bpp))
							require.Equal(t, want, cur, "%d bytes, repetition %d", n, rep)
						}
					}
				})
			}
		}
	}
}

func TestUnfilterUnknownType(t *testing.T) {
	for _, ft := range []byte{5, 7, 255} {
		require.ErrorIs(t, unfilter(ft, make([]byte, 12), make([]byte, 12), 3), ErrUnsupported)
	}
}

// TestToLumaRGB compares the conversion of RGB rows, with its shortcuts
// for flat and for grey pixels, with the formula pixel by pixel, on rows
// of every length up to 100 pixels where eight pixels in a row are often
// grey, often one grey, and sometimes grey but for one byte.
func TestToLumaRGB(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	h := &header{colorType: colorRGB, bpp: 3}
	for w := range 101 {
		for rep := range 50 {
			src := make([]byte, 3*w)
			for x := range w {
				v := uint8(rng.IntN(256))
				if rep%3 == 0 {
					v = 200
				}
				src[3*x], src[3*x+1], src[3*x+2] = v, v, v
			}
			if w > 0 && rep%2 == 1 { // one byte off grey
				src[rng.IntN(3*w)] ^= uint8(1 + rng.IntN(255))
			}
			want := make([]byte, w)
			for x := range w {
				want[x] = gray8(uint32(src[3*x]), uint32(src[3*x+1]), uint32(src[3*x+2]))
			}
			got := make([]byte, w)
			require.False(t, h.toLuma(got, src, 0xff))
			require.Equal(t, want, got, "%d pixels, repetition %d", w, rep)
		}
	}
}

// TestGray8IsGrayModel checks gray8 against image/color's GrayModel on every
// 8-bit colour.
func TestGray8IsGrayModel(t *testing.T) {
	for r := range 256 {
		for g := range 256 {
			for b := range 256 {
				want := color.GrayModel.Convert(color.RGBA{uint8(r), uint8(g), uint8(b), 0xff}).(color.Gray).Y
				if got := gray8(uint32(r), uint32(g), uint32(b)); got != want {
					t.Fatalf("gray8(%d, %d, %d) = %d, GrayModel gives %d", r, g, b, got, want)
				}
			}
		}
	}
}
