package mnist

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/image/draw"
)

// testDigits returns the first ten MNIST test digits (bright ink on dark)
// from testdata, and their labels (7 2 1 0 4 1 4 9 5 9).
func testDigits(t *testing.T) ([]*image.Gray, []uint8) {
	t.Helper()
	_, test, err := LoadDataDir(testdataDir)
	require.NoError(t, err)
	var out []*image.Gray
	for i := range 10 {
		out = append(out, test.Gray(i))
	}
	return out, test.Labels[:10]
}

// meanAbsDiff is the mean absolute pixel difference of two 28x28 images, in gray levels.
func meanAbsDiff(a, b *image.Gray) float64 {
	var s float64
	for i := range a.Pix {
		s += math.Abs(float64(a.Pix[i]) - float64(b.Pix[i]))
	}
	return s / float64(len(a.Pix))
}

func centerOfMass(g *image.Gray) (float64, float64) {
	var sum, sx, sy float64
	for y := range 28 {
		for x := range 28 {
			v := float64(g.Pix[y*g.Stride+x])
			sum += v
			sx += v * float64(x)
			sy += v * float64(y)
		}
	}
	return sx / sum, sy / sum
}

// rendering describes how to draw an MNIST digit as a user might upload it.
type rendering struct {
	size          int         // the 28x28 digit is scaled to size x size
	canvasW       int         // canvas size
	canvasH       int         //
	at            image.Point // top-left of the digit on the canvas
	darkOnLight   bool        // black ink on white paper
	transparentBg bool        // NRGBA: opaque black ink, transparent background
	lightOnAlpha  bool        // NRGBA: opaque white ink, transparent background
	bgLevel       uint8       // background gray level for light-on-dark (default 0)
}

func render(d *image.Gray, r rendering) image.Image {
	big := image.NewGray(image.Rect(0, 0, r.size, r.size))
	draw.CatmullRom.Scale(big, big.Rect, d, d.Rect, draw.Src, nil)
	canvas := image.NewNRGBA(image.Rect(0, 0, r.canvasW, r.canvasH))
	for y := range r.canvasH {
		for x := range r.canvasW {
			var v uint8
			if p := image.Pt(x, y).Sub(r.at); p.In(big.Rect) {
				v = big.GrayAt(p.X, p.Y).Y
			}
			var c color.NRGBA
			switch {
			case r.transparentBg:
				c = color.NRGBA{0, 0, 0, v}
			case r.lightOnAlpha:
				c = color.NRGBA{255, 255, 255, v}
			case r.darkOnLight:
				c = color.NRGBA{255 - v, 255 - v, 255 - v, 255}
			default:
				l := uint8(int(r.bgLevel) + int(v)*(255-int(r.bgLevel))/255)
				c = color.NRGBA{l, l, l, 255}
			}
			canvas.SetNRGBA(x, y, c)
		}
	}
	return canvas
}

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	return b.Bytes()
}

func encodeJPEG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, jpeg.Encode(&b, img, &jpeg.Options{Quality: 75}))
	return b.Bytes()
}

// TestPreprocessMNISTDigitIsNearlyUnchanged: MNIST digits already are in the
// target format, so preprocessing one must give back almost the same image.
func TestPreprocessMNISTDigitIsNearlyUnchanged(t *testing.T) {
	digits, _ := testDigits(t)
	for i, d := range digits {
		got, err := PreprocessImage(d)
		require.NoError(t, err)
		require.Equal(t, image.Rect(0, 0, 28, 28), got.Rect)
		diff := meanAbsDiff(d, got)
		assert.Less(t, diff, 12.0, "digit %d", i)
	}
}

func TestPreprocessRenderingsAgree(t *testing.T) {
	renderings := map[string]rendering{
		"same size":                       {size: 28, canvasW: 28, canvasH: 28},
		"small (14px) light on dark":      {size: 14, canvasW: 40, canvasH: 30, at: image.Pt(20, 10)},
		"large dark on light":             {size: 280, canvasW: 280, canvasH: 280, darkOnLight: true},
		"huge off-centre on a big canvas": {size: 600, canvasW: 1600, canvasH: 900, at: image.Pt(950, 250), darkOnLight: true},
		"transparent background":          {size: 200, canvasW: 300, canvasH: 260, at: image.Pt(10, 50), transparentBg: true},
		"white ink on transparent":        {size: 200, canvasW: 260, canvasH: 300, at: image.Pt(40, 40), lightOnAlpha: true},
		"light ink on dark-gray":          {size: 112, canvasW: 200, canvasH: 200, at: image.Pt(30, 60), bgLevel: 60},
		"wide canvas, digit at the edge":  {size: 140, canvasW: 500, canvasH: 140, at: image.Pt(0, 0), darkOnLight: true},
	}
	digits, labels := testDigits(t)
	refs := make([]*image.Gray, len(digits))
	for i, d := range digits {
		var err error
		refs[i], err = PreprocessImage(d)
		require.NoError(t, err)
	}
	for i, d := range digits[:5] {
		ref := refs[i]
		for name, r := range renderings {
			// A digit drawn smaller than MNIST's own 20-pixel box has lost
			// detail that upscaling cannot bring back.
			tolerance := 14.0
			if r.size < 28 {
				tolerance = 25
			}
			img := render(d, r)
			for _, enc := range []string{"png", "jpeg"} {
				var data []byte
				if enc == "png" {
					data = encodePNG(t, img)
				} else {
					if r.transparentBg || r.lightOnAlpha {
						continue // JPEG has no alpha
					}
					data = encodeJPEG(t, img)
				}
				got, err := Preprocess(data, nil)
				require.NoError(t, err, "digit %d %s %s", i, name, enc)
				diff := meanAbsDiff(ref, got)
				cx, cy := centerOfMass(got)
				assert.Less(t, diff, tolerance, "digit %d %s %s", i, name, enc)
				// It must still look more like itself than like any other digit.
				for j, other := range refs {
					if labels[j] != labels[i] {
						assert.Less(t, diff, meanAbsDiff(other, got), "digit %d %s %s looks like test digit %d, a %d", i, name, enc, j, labels[j])
					}
				}
				assert.InDelta(t, 14, cx, 0.75, "digit %d %s %s", i, name, enc)
				assert.InDelta(t, 14, cy, 0.75, "digit %d %s %s", i, name, enc)
			}
		}
	}
}

// alignedDiff is meanAbsDiff after the best shift of b by up to one pixel
// each way: placing by the rounded centre of mass (as MNIST does) may put two
// renderings of one digit a pixel apart.
func alignedDiff(a, b *image.Gray) float64 {
	best := math.Inf(1)
	for dy := -1; dy <= 1; dy++ {
		for dx := -1; dx <= 1; dx++ {
			var s float64
			for y := range 28 {
				for x := range 28 {
					var v float64
					if sx, sy := x+dx, y+dy; sx >= 0 && sy >= 0 && sx < 28 && sy < 28 {
						v = float64(b.Pix[sy*b.Stride+sx])
					}
					s += math.Abs(float64(a.Pix[y*a.Stride+x]) - v)
				}
			}
			best = math.Min(best, s/784)
		}
	}
	return best
}

// strokeImage draws polyline strokes (in unit coordinates of a w x h canvas)
// of the given width, antialiased, black on white.
func strokeImage(w, h int, width float64, lines [][4]float64) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			px, py := float64(x)+0.5, float64(y)+0.5
			best := math.Inf(1)
			for _, l := range lines {
				ax, ay, bx, by := l[0]*float64(w), l[1]*float64(h), l[2]*float64(w), l[3]*float64(h)
				dx, dy := bx-ax, by-ay
				tt := math.Max(0, math.Min(1, ((px-ax)*dx+(py-ay)*dy)/(dx*dx+dy*dy)))
				best = math.Min(best, math.Hypot(px-ax-tt*dx, py-ay-tt*dy))
			}
			cover := math.Max(0, math.Min(1, width/2-best+0.5))
			g.Pix[y*g.Stride+x] = uint8(math.Round(255 * (1 - cover)))
		}
	}
	return g
}

// strokeWidth28 estimates the stroke width of a 28x28 input as 2*ink/perimeter.
func strokeWidth28(g *image.Gray) float64 {
	on := func(x, y int) bool { return x >= 0 && y >= 0 && x < 28 && y < 28 && g.Pix[y*g.Stride+x] >= 128 }
	var area float64
	perimeter := 0
	for y := range 28 {
		for x := range 28 {
			area += float64(g.Pix[y*g.Stride+x]) / 255
			if on(x, y) {
				for _, d := range [4][2]int{{1, 0}, {-1, 0}, {0, 1}, {0, -1}} {
					if !on(x+d[0], y+d[1]) {
						perimeter++
					}
				}
			}
		}
	}
	return 2 * area / float64(perimeter)
}

// TestPreprocessThinStrokesSurvive draws a 7 with a fine 2-pixel pen on a
// 1200-pixel canvas: scaled down 36 times, the stroke would average away to a
// faint 0.06-pixel line; it must come out as an MNIST-like stroke, close to
// the same 7 drawn with a thick brush.
func TestPreprocessThinStrokesSurvive(t *testing.T) {
	seven := [][4]float64{{0.25, 0.2, 0.75, 0.2}, {0.75, 0.2, 0.45, 0.8}}
	thin, err := PreprocessImage(strokeImage(1200, 1200, 2, seven))
	require.NoError(t, err)
	thick, err := PreprocessImage(strokeImage(1200, 1200, 85, seven))
	require.NoError(t, err)
	web, err := PreprocessImage(strokeImage(280, 280, 18, seven)) // a typical web canvas and brush
	require.NoError(t, err)
	for name, g := range map[string]*image.Gray{"thin": thin, "thick": thick, "web": web} {
		w := strokeWidth28(g)
		cx, cy := centerOfMass(g)
		t.Logf("%s: stroke width %.2f px, CoM (%.2f, %.2f), aligned diff to thick %.2f", name, w, cx, cy, alignedDiff(g, thick))
		assert.InDelta(t, 1.9, w, 0.6, name) // the MNIST median of this estimate
		assert.InDelta(t, 14, cx, 0.75, name)
		assert.InDelta(t, 14, cy, 0.75, name)
	}
	assert.Less(t, alignedDiff(thin, thick), 12.0)
	assert.Less(t, alignedDiff(web, thick), 12.0)
}

func uniform(w, h int, c color.Color) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Rect, image.NewUniform(c), image.Point{}, draw.Src)
	return img
}

func TestPreprocessEmpty(t *testing.T) {
	specks := image.NewGray(image.Rect(0, 0, 300, 300))
	for i := range specks.Pix {
		specks.Pix[i] = 255
	}
	specks.Pix[150*300+40] = 0 // a speck of dust on white paper
	specks.Pix[10*300+200] = 180
	faint := strokeImage(200, 200, 12, [][4]float64{{0.5, 0.2, 0.5, 0.8}})
	for i, v := range faint.Pix {
		faint.Pix[i] = 255 - (255-v)/10 // a 1 drawn in 10% gray
	}
	tests := map[string]image.Image{
		"all white":           uniform(100, 80, color.White),
		"all black":           uniform(100, 80, color.Black),
		"mid gray":            uniform(50, 50, color.Gray{128}),
		"fully transparent":   uniform(64, 64, color.NRGBA{0, 0, 0, 0}),
		"transparent colored": uniform(64, 64, color.NRGBA{255, 0, 0, 0}),
		"one pixel":           uniform(1, 1, color.Black),
		"zero size":           image.NewGray(image.Rect(0, 0, 0, 0)),
		"specks":              specks,
		"faint strokes":       faint,
	}
	for name, img := range tests {
		t.Run(name, func(t *testing.T) {
			g, err := PreprocessImage(img)
			require.ErrorIs(t, err, ErrEmptyImage)
			assert.Nil(t, g)
			if !img.Bounds().Empty() {
				_, err = Preprocess(encodePNG(t, img), nil)
				require.ErrorIs(t, err, ErrEmptyImage)
			}
		})
	}
	// A blank page photographed as JPEG: compression noise only.
	_, err := Preprocess(encodeJPEG(t, uniform(300, 200, color.Gray{235})), nil)
	require.ErrorIs(t, err, ErrEmptyImage)
}

// pngHeaderClaiming returns a PNG signature and a valid IHDR chunk declaring
// w x h pixels, and nothing else.
func pngHeaderClaiming(w, h uint32) []byte {
	b := []byte("\x89PNG\r\n\x1a\n")
	ihdr := []byte("IHDR")
	ihdr = binary.BigEndian.AppendUint32(ihdr, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 0, 0, 0, 0) // 8-bit grayscale, no interlace
	b = binary.BigEndian.AppendUint32(b, 13)
	b = append(b, ihdr...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(ihdr))
}

func TestPreprocessTooLarge(t *testing.T) {
	// The header claims 100000x100000 (10 G pixels): refused from the header
	// alone, without decoding or allocating.
	claim := pngHeaderClaiming(100000, 100000)
	allocs := testing.AllocsPerRun(1, func() {
		_, err := Preprocess(claim, nil)
		require.ErrorIs(t, err, ErrImageTooLarge)
	})
	assert.Less(t, allocs, 100.0)
	_, err := Preprocess(claim, nil)
	var tl *ImageTooLargeError
	require.ErrorAs(t, err, &tl)
	assert.Equal(t, 100000, tl.Width)
	assert.Equal(t, DefaultMaxPixels, tl.MaxPixels)
	assert.Contains(t, err.Error(), "100000x100000 pixels, the limit is 16777216 pixels (for instance 4096x4096)")

	// A long thin strip is judged by its pixel count too.
	_, err = Preprocess(pngHeaderClaiming(20_000_000, 1), nil)
	require.ErrorIs(t, err, ErrImageTooLarge)

	// Past image/png's own bound ("dimension overflow"): too large, not damaged.
	_, err = Preprocess(pngHeaderClaiming(1<<31-1, 1<<31-1), nil)
	require.ErrorAs(t, err, &tl)
	assert.Equal(t, 1<<31-1, tl.Height)
	assert.NotErrorIs(t, err, ErrDamagedImage)

	small := encodePNG(t, render(must(testDigits(t))[0], rendering{size: 100, canvasW: 100, canvasH: 100}))
	_, err = Preprocess(small, &PreprocessOptions{MaxPixels: 99 * 99})
	require.ErrorAs(t, err, &tl)
	assert.Equal(t, 100, tl.Height)
	_, err = Preprocess(small, &PreprocessOptions{MaxBytes: int64(len(small) - 1)})
	require.ErrorIs(t, err, ErrImageTooLarge)
	assert.Contains(t, err.Error(), "the limit is")
	_, err = Preprocess(small, &PreprocessOptions{MaxPixels: 100 * 100, MaxBytes: int64(len(small))})
	require.NoError(t, err, "limits are inclusive")
}

func must[T, U any](v T, _ U) T { return v }

func TestPreprocessNotImage(t *testing.T) {
	var gifData bytes.Buffer
	require.NoError(t, gif.Encode(&gifData, image.NewPaletted(image.Rect(0, 0, 8, 8), palette.Plan9), nil))
	good := encodePNG(t, uniform(40, 40, color.White))
	tests := map[string][]byte{
		"empty":           nil,
		"garbage":         []byte("this is not an image at all, just some text"),
		"GIF":             gifData.Bytes(),
		"truncated PNG":   good[:len(good)/2],
		"PNG header only": pngHeaderClaiming(10, 10),
		"corrupt IHDR CRC": func() []byte {
			b := pngHeaderClaiming(10, 10)
			b[len(b)-1] ^= 0xff
			return b
		}(),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			g, err := Preprocess(data, nil)
			require.ErrorIs(t, err, ErrNotImage)
			assert.Nil(t, g)
			// A file that starts as a PNG but is not whole says so.
			damaged := bytes.HasPrefix(data, []byte("\x89PNG"))
			assert.Equal(t, damaged, errors.Is(err, ErrDamagedImage), "%v", err)
			if damaged {
				assert.ErrorContains(t, err, "the PNG file is damaged or cut short")
			}
		})
	}
	_, err := PreprocessImage(nil)
	require.ErrorIs(t, err, ErrNotImage)
}

// TestPreprocessImageTypes feeds the same drawing as each image type (the
// fast paths and the generic one) and expects the same result.
func TestPreprocessImageTypes(t *testing.T) {
	digits, _ := testDigits(t)
	src := render(digits[3], rendering{size: 120, canvasW: 150, canvasH: 140, at: image.Pt(10, 12), darkOnLight: true}).(*image.NRGBA)
	want, err := PreprocessImage(src)
	require.NoError(t, err)
	b := src.Bounds()
	convert := func(dst draw.Image) image.Image { draw.Draw(dst, b, src, b.Min, draw.Src); return dst }
	offset := image.NewGray(image.Rect(-5, -7, 200, 200)) // non-zero origin, sub-image
	draw.Draw(offset, b.Add(image.Pt(20, 30)), src, b.Min, draw.Src)
	jpegImg, err := jpeg.Decode(bytes.NewReader(encodeJPEG(t, src)))
	require.NoError(t, err)
	require.IsType(t, &image.YCbCr{}, jpegImg)
	for name, img := range map[string]image.Image{
		"Gray":          convert(image.NewGray(b)),
		"RGBA":          convert(image.NewRGBA(b)),
		"Gray16":        convert(image.NewGray16(b)),
		"Paletted":      convert(image.NewPaletted(b, palette.WebSafe)),
		"CMYK":          convert(image.NewCMYK(b)),
		"Gray subimage": offset.SubImage(b.Add(image.Pt(20, 30))),
		"YCbCr (JPEG)":  jpegImg,
	} {
		t.Run(name, func(t *testing.T) {
			got, err := PreprocessImage(img)
			require.NoError(t, err)
			assert.Less(t, meanAbsDiff(want, got), 3.0)
		})
	}
}

func TestPreprocessConcurrent(t *testing.T) {
	digits, _ := testDigits(t)
	data := encodePNG(t, render(digits[0], rendering{size: 90, canvasW: 120, canvasH: 120, darkOnLight: true}))
	want, err := Preprocess(data, nil)
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for range 5 {
				got, err := Preprocess(data, nil)
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got.Pix, want.Pix) {
					errs <- errors.New("different result under concurrency")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestNormalize(t *testing.T) {
	g := image.NewGray(image.Rect(0, 0, 28, 28))
	g.Pix[0], g.Pix[27], g.Pix[28], g.Pix[783] = 0, 255, 128, 51
	dst := make([]float32, 784)
	require.NoError(t, Normalize(g, dst))
	assert.InDelta(t, -0.1307/0.3081, dst[0], 1e-6)
	assert.InDelta(t, (1-0.1307)/0.3081, dst[27], 1e-6)
	assert.InDelta(t, (128.0/255-0.1307)/0.3081, dst[28], 1e-6)
	assert.InDelta(t, (51.0/255-0.1307)/0.3081, dst[783], 1e-6)

	// A 28x28 sub-image of a larger image (non-zero origin, wider stride).
	big := image.NewGray(image.Rect(0, 0, 40, 40))
	big.SetGray(5, 6, color.Gray{255})
	sub := big.SubImage(image.Rect(5, 6, 33, 34)).(*image.Gray)
	require.NoError(t, Normalize(sub, dst))
	assert.InDelta(t, (1-0.1307)/0.3081, dst[0], 1e-6)
	assert.InDelta(t, -0.1307/0.3081, dst[1], 1e-6)

	assert.ErrorContains(t, Normalize(image.NewGray(image.Rect(0, 0, 28, 27)), dst), "is 28x27, want 28x28")
	assert.ErrorContains(t, Normalize(g, make([]float32, 783)), "holds 783 floats, want 784")
	assert.Error(t, Normalize(nil, dst))
}

// BenchmarkPreprocess measures whole uploads: decode, preprocess, per size,
// and the web page's snapshot (84x84, the grey PNG with stored blocks that
// the page writes, captured from Chromium).
func BenchmarkPreprocess(b *testing.B) {
	page, err := os.ReadFile(filepath.Join("testdata", "page-snapshot-84.png"))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("page-snapshot-84", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Preprocess(page, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	seven := [][4]float64{{0.25, 0.2, 0.75, 0.2}, {0.75, 0.2, 0.45, 0.8}}
	for _, size := range []int{280, 1000, 4000} {
		var buf bytes.Buffer
		if err := png.Encode(&buf, strokeImage(size, size, float64(size)/15, seven)); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("png-%dx%d", size, size), func(b *testing.B) {
			for b.Loop() {
				if _, err := Preprocess(buf.Bytes(), nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestBackground checks background against its definition: the median of
// the border (the lower of an even count), and when that is light, the
// median of the inverted border.
func TestBackground(t *testing.T) {
	median := func(px []uint8) int {
		s := slices.Clone(px)
		slices.Sort(s)
		return int(s[(len(s)-1)/2])
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		border := make([]uint8, 1+rng.IntN(30))
		base := rng.IntN(256)
		for i := range border {
			border[i] = uint8(min(255, max(0, base+rng.IntN(41)-20)))
		}
		wantInvert, wantBG := median(border) > 127, median(border)
		if wantInvert {
			inverted := make([]uint8, len(border))
			for i, v := range border {
				inverted[i] = 255 - v
			}
			wantBG = median(inverted)
		}
		invert, bg := background(border)
		require.Equal(t, wantInvert, invert, "%v", border)
		require.Equal(t, wantBG, bg, "%v", border)
	}
}

// TestInkLevels checks the level of every flipped byte against the formula,
// and limit against a walk over the levels, for every background.
func TestInkLevels(t *testing.T) {
	for bg := range 256 - minInkContrast {
		l := newInkLevels(bg)
		for f := range 256 {
			want := 0
			if u := 255 - f; u > bg {
				want = (u - bg) * 255 / (255 - bg)
			}
			require.Equal(t, uint8(want), l.of(uint8(f)), "bg %d, f %d", bg, f)
		}
		for _, floor := range []uint8{0, 1, 5, 31, 100, 254, 255} {
			want := 0
			for l.of(uint8(want)) > floor {
				want++
			}
			require.Equal(t, uint8(want), l.limit(floor), "bg %d, floor %d", bg, floor)
		}
	}
}

// TestPreprocessWideCanvas puts one drawing on canvases of different widths:
// the output does not depend on how much background surrounds the ink, so
// it is the same on a 6000-pixel-wide canvas (row masks too long for the
// stack, rows split over the cores) as on a narrow one.
func TestPreprocessWideCanvas(t *testing.T) {
	digits, _ := testDigits(t)
	var want []uint8
	for _, width := range []int{400, 4096, 6000} {
		img := render(digits[0], rendering{size: 200, canvasW: width, canvasH: 260, at: image.Pt(width-230, 30), darkOnLight: true})
		out, err := Preprocess(encodePNG(t, img), nil)
		require.NoError(t, err, "width %d", width)
		if want == nil {
			want = out.Pix
			continue
		}
		assert.Equal(t, want, out.Pix, "width %d", width)
	}
}
