package pngluma

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/internal/cputime"
)

// smoothDrawing returns a PNG (opaque, so image/png writes 8-bit RGB) of
// a dark blob pattern on white, scaled bilinearly from 28x28 to 70% of a
// side x side canvas: the kind of large upload that leaves few rows equal
// to the one above and few flat runs inside the figure, so that Paeth and
// Sub rows are unfiltered the general way.
func smoothDrawing(t testing.TB, side int) []byte {
	var small [28 * 28]float64
	for y := range 28 {
		for x := range 28 {
			dx, dy := float64(x)-13.5, float64(y)-13.5
			d := math.Sqrt(dx*dx + dy*dy)
			small[y*28+x] = math.Max(0, 255-math.Abs(d-8)*90)
		}
	}
	at := func(x, y int) float64 {
		if x < 0 || y < 0 || x >= 28 || y >= 28 {
			return 0
		}
		return small[y*28+x]
	}
	img := image.NewNRGBA(image.Rect(0, 0, side, side))
	digit := side * 7 / 10
	off := (side - digit) / 2
	for y := range side {
		for x := range side {
			v := uint8(0)
			if dx, dy := x-off, y-off; dx >= 0 && dy >= 0 && dx < digit && dy < digit {
				fx := (float64(dx)+0.5)*28/float64(digit) - 0.5
				fy := (float64(dy)+0.5)*28/float64(digit) - 0.5
				x0, y0 := int(math.Floor(fx)), int(math.Floor(fy))
				ax, ay := fx-float64(x0), fy-float64(y0)
				top := at(x0, y0)*(1-ax) + at(x0+1, y0)*ax
				bottom := at(x0, y0+1)*(1-ax) + at(x0+1, y0+1)*ax
				v = uint8(math.Round(top*(1-ay) + bottom*ay))
			}
			img.SetNRGBA(x, y, color.NRGBA{255 - v, 255 - v, 255 - v, 255})
		}
	}
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	return buf.Bytes()
}

// BenchmarkDecode decodes canvas-like snapshots by size: "ring" images
// (image/png's RGB, mostly flat), the smooth drawing, and the web page's
// kind (84x84 greyscale, filter None, stored deflate blocks).
func BenchmarkDecode(b *testing.B) {
	type input struct {
		name string
		data []byte
		side int
	}
	var inputs []input
	for _, side := range []int{84, 280, 4000} {
		inputs = append(inputs, input{fmt.Sprint("ring-", side), ring(b, side, false), side})
	}
	inputs = append(inputs, input{"smooth-4000", smoothDrawing(b, 4000), 4000})
	if name := os.Getenv("PNGLUMA_BENCH_FILE"); name != "" {
		// Any further PNG file to time, such as a benchmark's drawing.
		data, err := os.ReadFile(name)
		require.NoError(b, err)
		f, err := Parse(data)
		require.NoError(b, err)
		w, h := f.Size()
		inputs = append(inputs, input{"file", data, w * h / max(w, h)})
	}
	for _, in := range inputs {
		buf := make([]byte, in.side*in.side)
		b.Run(in.name, func(b *testing.B) {
			b.SetBytes(int64(in.side * in.side))
			b.ReportAllocs()
			c0, _ := cputime.Process() // 0 where not measured, and so is the metric
			for b.Loop() {
				if _, _, err := Decode(in.data, 0xff, buf); err != nil {
					b.Fatal(err)
				}
			}
			c1, _ := cputime.Process()
			b.ReportMetric(float64(c1-c0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// filteredRows inflates the image data of the PNG file data: its rows,
// each a filter type and then the filtered bytes.
func filteredRows(t testing.TB, data []byte) (h *header, rows []byte) {
	f, err := Parse(data)
	require.NoError(t, err)
	h = &f.h
	zr, err := zlib.NewReader(bytes.NewReader(bytes.Join(h.idat, nil)))
	require.NoError(t, err)
	rows, err = io.ReadAll(zr)
	require.NoError(t, err)
	require.Len(t, rows, h.height*(1+h.width*h.bpp))
	return h, rows
}

// BenchmarkUnfilter times unfilter alone on the rows of large images, on
// one goroutine, in order: each row is copied to one of two scratch rows
// and unfiltered there, given the other, the row above it unfiltered.
func BenchmarkUnfilter(b *testing.B) {
	inputs := map[string][]byte{"ring-4000": ring(b, 4000, false), "smooth-4000": smoothDrawing(b, 4000)}
	if name := os.Getenv("PNGLUMA_BENCH_FILE"); name != "" {
		data, err := os.ReadFile(name)
		require.NoError(b, err)
		inputs["file"] = data
	}
	for _, name := range []string{"ring-4000", "smooth-4000", "file"} {
		data, ok := inputs[name]
		if !ok {
			continue
		}
		h, rows := filteredRows(b, data)
		rowLen := 1 + h.width*h.bpp
		scratch := [2][]byte{make([]byte, rowLen), make([]byte, rowLen)}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(rows)))
			for b.Loop() {
				clear(scratch[1])
				for y := range h.height {
					cur, prev := scratch[y%2], scratch[1-y%2]
					copy(cur, rows[y*rowLen:(y+1)*rowLen])
					if err := unfilter(cur[0], cur[1:], prev[1:], h.bpp); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
