package mnist

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
)

// preprocessPinned is the SHA-256 of the 28x28 outputs (and error texts)
// of TestPreprocessOutputPinned's 132 drawings (the error texts of those
// it refuses count too), and how many it accepted. It was
// taken from the preprocessing as it was before its speed-up (the decoder
// straight to luminance, skipped repeated rows, tables for the stretch),
// which left every byte as it was; it is the same with the SIMD and the
// portable kernels. A deliberate change to the preprocessing updates it
// (the failure prints the new value).
const preprocessPinned = "453ae960ac37948657efc0b51f29b9bdc604d3d1eb23f96659723a642179e91a 96"

// TestPreprocessOutputPinned runs digits rendered several ways and strokes
// of many widths on canvases of many sizes through Preprocess.
func TestPreprocessOutputPinned(t *testing.T) {
	digits, _ := testDigits(t)
	h := sha256.New()
	n := 0
	for i, d := range digits {
		for _, r := range []rendering{
			{size: 60, canvasW: 84, canvasH: 84, at: image.Pt(12, 12), darkOnLight: true},
			{size: 200, canvasW: 280, canvasH: 280, at: image.Pt(30, 50), darkOnLight: true},
			{size: 150, canvasW: 400, canvasH: 300, at: image.Pt(200, 100), transparentBg: true},
			{size: 150, canvasW: 300, canvasH: 300, at: image.Pt(10, 100), lightOnAlpha: true},
			{size: 100 + i*20, canvasW: 1000, canvasH: 1000, at: image.Pt(50, 50), bgLevel: 60},
			{size: 20, canvasW: 500, canvasH: 500, at: image.Pt(250, 50), darkOnLight: true},
		} {
			var buf bytes.Buffer
			png.Encode(&buf, render(d, r))
			out, err := Preprocess(buf.Bytes(), nil)
			if err != nil {
				fmt.Fprintln(h, err)
				continue
			}
			h.Write(out.Pix)
			n++
		}
	}
	seven := [][4]float64{{0.25, 0.2, 0.75, 0.2}, {0.75, 0.2, 0.45, 0.8}}
	for _, size := range []int{50, 84, 150, 280, 600, 1500} {
		for _, width := range []float64{0.5, 1, 2, 4, 8, 20} {
			var buf bytes.Buffer
			png.Encode(&buf, strokeImage(size, size, width*float64(size)/280, seven))
			out, err := Preprocess(buf.Bytes(), nil)
			if err != nil {
				fmt.Fprintln(h, err)
				continue
			}
			h.Write(out.Pix)
			n++
		}
	}
	got := fmt.Sprintf("%x %d", h.Sum(nil), n)
	assert.Equal(t, preprocessPinned, got, "the preprocessing's output changed")
}

// preprocessSmallPinned is TestPreprocessSmallCanvasesPinned's hash and
// count, taken from the preprocessing before the passes after decoding were
// rewritten for small images (scratch buffers, zero runs skipped), which
// left every byte as it was.
const preprocessSmallPinned = "251d39ee426057ee7920dd1f280f73976286f6dcad02a53911b85607d28179e4 878"

// TestPreprocessSmallCanvasesPinned runs canvas-sized drawings (the web
// page sends 84x84) through Preprocess: two real Chromium canvas snapshots,
// MNIST digits at every size on small canvases, dark on light and light on
// grey, with and without grain, and strokes of many widths (the thinnest
// get thickened).
func TestPreprocessSmallCanvasesPinned(t *testing.T) {
	h := sha256.New()
	n := 0
	add := func(data []byte) {
		out, err := Preprocess(data, nil)
		if err != nil {
			fmt.Fprintln(h, err)
			return
		}
		h.Write(out.Pix)
		n++
	}
	for _, name := range []string{"chromium-canvas-seven-84.png", "chromium-canvas-ring-transparent-84.png"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if !assert.NoError(t, err) {
			return
		}
		add(data)
	}
	digits, _ := testDigits(t)
	seed := uint32(1)
	grain := func(img image.Image, amount int) image.Image {
		c := img.(*image.NRGBA)
		for i := 0; i < len(c.Pix); i += 4 {
			seed = seed*1664525 + 1013904223
			d := int(seed>>24)%(2*amount+1) - amount
			for k := range 3 {
				c.Pix[i+k] = uint8(min(255, max(0, int(c.Pix[i+k])+d)))
			}
		}
		return c
	}
	for i, d := range digits {
		for size := 12; size <= 84; size += 6 {
			for _, canvas := range []int{56, 84} {
				if size > canvas {
					continue
				}
				at := image.Pt((canvas-size)*(i%3)/2, (canvas-size)*((i+1)%3)/2)
				for _, r := range []rendering{
					{size: size, canvasW: canvas, canvasH: canvas, at: at, darkOnLight: true},
					{size: size, canvasW: canvas, canvasH: canvas, at: at, bgLevel: uint8(10 * i)},
				} {
					var buf bytes.Buffer
					png.Encode(&buf, render(d, r))
					add(buf.Bytes())
					buf.Reset()
					png.Encode(&buf, grain(render(d, r), 6+2*i))
					add(buf.Bytes())
				}
			}
		}
	}
	seven := [][4]float64{{0.25, 0.2, 0.75, 0.2}, {0.75, 0.2, 0.45, 0.8}}
	for _, size := range []int{28, 56, 84, 100} {
		for _, width := range []float64{0.3, 0.6, 1, 1.5, 2, 3, 5, 8, 13} {
			var buf bytes.Buffer
			png.Encode(&buf, strokeImage(size, size, width*float64(size)/84, seven))
			add(buf.Bytes())
		}
	}
	got := fmt.Sprintf("%x %d", h.Sum(nil), n)
	assert.Equal(t, preprocessSmallPinned, got, "the preprocessing's output changed")
}

// preprocessFMAPinned is TestPreprocessSameOnEveryBuild's hash and count,
// taken from the portable build (-tags purego) of the code before the
// scaling's sums were made to round every product.
const preprocessFMAPinned = "0c7f58fc30a6973e69d1a40c5614986881c67dbd97fb6f8d2d9377dd19d0fafa 22"

// TestPreprocessSameOnEveryBuild runs drawings whose output a fused
// multiply-add in the scaling's sums used to change (found by comparing the
// SIMD and the portable builds, and the code before and after its speed-up,
// on thousands of generated drawings: narrow digits, bars, thin lines on
// grey): every build must give the portable code's bytes.
func TestPreprocessSameOnEveryBuild(t *testing.T) {
	dir := filepath.Join("testdata", "fma")
	entries, err := os.ReadDir(dir)
	if !assert.NoError(t, err) {
		return
	}
	h := sha256.New()
	n := 0
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if !assert.NoError(t, err) {
			return
		}
		out, err := Preprocess(data, nil)
		if err != nil {
			fmt.Fprintln(h, e.Name(), err)
			continue
		}
		fmt.Fprintln(h, e.Name())
		h.Write(out.Pix)
		n++
	}
	got := fmt.Sprintf("%x %d", h.Sum(nil), n)
	assert.Equal(t, preprocessFMAPinned, got, "the preprocessing's output changed")
}
