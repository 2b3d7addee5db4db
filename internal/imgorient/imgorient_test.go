package imgorient

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// specSides is the EXIF specification's table for tag 0x0112, word for word:
// where the stored image's 0th row and 0th column are shown.
var specSides = map[Orientation]struct{ row0, col0 string }{
	1: {"top", "left"},
	2: {"top", "right"},
	3: {"bottom", "right"},
	4: {"bottom", "left"},
	5: {"left", "top"},
	6: {"right", "top"},
	7: {"right", "bottom"},
	8: {"left", "bottom"},
}

// specDisplay places every stored pixel where the specification's table
// says, independently of Apply's own mapping: the display position of stored
// pixel (c, r) follows from the sides the 0th row and 0th column are on.
func specDisplay(stored [][]int, o Orientation) [][]int {
	h, w := len(stored), len(stored[0])
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	out := make([][]int, dh)
	for i := range out {
		out[i] = make([]int, dw)
	}
	s := specSides[o]
	for r := range h {
		for c := range w {
			var dx, dy int
			switch s.row0 { // row r is the r-th line from that side
			case "top":
				dy = r
			case "bottom":
				dy = dh - 1 - r
			case "left":
				dx = r
			case "right":
				dx = dw - 1 - r
			}
			switch s.col0 { // column c is the c-th line from that side
			case "left":
				dx = c
			case "right":
				dx = dw - 1 - c
			case "top":
				dy = c
			case "bottom":
				dy = dh - 1 - c
			}
			out[dy][dx] = stored[r][c]
		}
	}
	return out
}

// stored3x2 has six distinct values, so every one of the eight orientations
// gives a different picture.
var stored3x2 = [][]int{
	{10, 20, 30},
	{40, 50, 60},
}

func grid(img image.Image, val func(color.Color) int) [][]int {
	b := img.Bounds()
	out := make([][]int, b.Dy())
	for y := range b.Dy() {
		out[y] = make([]int, b.Dx())
		for x := range b.Dx() {
			out[y][x] = val(img.At(b.Min.X+x, b.Min.Y+y))
		}
	}
	return out
}

func grayOf(c color.Color) int { return int(color.GrayModel.Convert(c).(color.Gray).Y) }

// storedImages returns the 3x2 fixture in each image type Apply handles,
// offset from (0,0) to check that bounds are honoured.
func storedImages() map[string]image.Image {
	r := image.Rect(5, 7, 8, 9)
	set := func(m interface{ Set(x, y int, c color.Color) }) {
		for y, row := range stored3x2 {
			for x, v := range row {
				m.Set(r.Min.X+x, r.Min.Y+y, color.Gray{Y: uint8(v)})
			}
		}
	}
	out := map[string]image.Image{}
	for name, m := range map[string]interface {
		image.Image
		Set(x, y int, c color.Color)
	}{
		"Gray": image.NewGray(r), "Gray16": image.NewGray16(r), "RGBA": image.NewRGBA(r), "NRGBA": image.NewNRGBA(r),
		"RGBA64": image.NewRGBA64(r), "NRGBA64": image.NewNRGBA64(r), "CMYK": image.NewCMYK(r),
		"Paletted": image.NewPaletted(r, color.Palette{color.Gray{10}, color.Gray{20}, color.Gray{30}, color.Gray{40}, color.Gray{50}, color.Gray{60}}),
	} {
		set(m)
		out[name] = m
	}
	a := image.NewAlpha(r)
	for y, row := range stored3x2 {
		for x, v := range row {
			a.SetAlpha(r.Min.X+x, r.Min.Y+y, color.Alpha{A: uint8(v)})
		}
	}
	out["Alpha"] = a
	for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio420} {
		yc := image.NewYCbCr(r, ratio)
		for i := range yc.Cb {
			yc.Cb[i], yc.Cr[i] = 128, 128 // neutral chroma: gray = Y
		}
		for y, row := range stored3x2 {
			for x, v := range row {
				yc.Y[yc.YOffset(r.Min.X+x, r.Min.Y+y)] = uint8(v)
			}
		}
		out["YCbCr"+ratio.String()] = yc
	}
	out["other (NYCbCrA)"] = func() image.Image {
		m := image.NewNYCbCrA(r, image.YCbCrSubsampleRatio444)
		for i := range m.Cb {
			m.Cb[i], m.Cr[i], m.A[i] = 128, 128, 255
		}
		for y, row := range stored3x2 {
			for x, v := range row {
				m.Y[m.YOffset(r.Min.X+x, r.Min.Y+y)] = uint8(v)
			}
		}
		return m
	}()
	return out
}

func TestApplyAllEightOrientations(t *testing.T) {
	for name, img := range storedImages() {
		val := grayOf
		if name == "Alpha" {
			val = func(c color.Color) int { _, _, _, a := c.RGBA(); return int(a >> 8) }
		}
		require.Equal(t, stored3x2, grid(img, val), "%s fixture", name)
		for o := Orientation(1); o <= 8; o++ {
			t.Run(fmt.Sprintf("%s/%d", name, o), func(t *testing.T) {
				got := Apply(img, o)
				want := specDisplay(stored3x2, o)
				if o == Upright {
					assert.Same(t, img, got)
					return
				}
				assert.Equal(t, image.Pt(0, 0), got.Bounds().Min)
				assert.Equal(t, want, grid(got, val))
				assert.Equal(t, stored3x2, grid(img, val), "the stored image is not changed")
			})
		}
	}
}

// TestApplyEveryPixelWhereTheSpecSays checks every pixel's full colour on
// random images of every type and chroma subsampling, with even and odd
// sizes and origins: the displayed pixel is the stored pixel that the
// specification's table puts there.
func TestApplyEveryPixelWhereTheSpecSays(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fill := func(bs ...[]byte) {
		for _, b := range bs {
			for i := range b {
				b[i] = byte(rng.IntN(256))
			}
		}
	}
	var imgs []image.Image
	for _, r := range []image.Rectangle{image.Rect(0, 0, 8, 6), image.Rect(2, 4, 12, 10), image.Rect(1, 3, 8, 8), image.Rect(0, 0, 1, 5)} {
		for _, ratio := range []image.YCbCrSubsampleRatio{
			image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420,
			image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410,
		} {
			m := image.NewYCbCr(r, ratio)
			fill(m.Y, m.Cb, m.Cr)
			imgs = append(imgs, m)
		}
		rgba, n64 := image.NewRGBA(r), image.NewNRGBA64(r)
		fill(rgba.Pix, n64.Pix)
		imgs = append(imgs, rgba, n64)
	}
	for _, img := range imgs {
		b := img.Bounds()
		w, h := b.Dx(), b.Dy()
		index := make([][]int, h)
		for y := range index {
			index[y] = make([]int, w)
			for x := range index[y] {
				index[y][x] = y*w + x
			}
		}
		for o := Orientation(2); o <= 8; o++ {
			got := Apply(img, o)
			want := specDisplay(index, o)
			require.Equal(t, image.Rect(0, 0, len(want[0]), len(want)), got.Bounds(), "%T %v %d", img, b, o)
			for dy, row := range want {
				for dx, i := range row {
					sr, sg, sb, sa := img.At(b.Min.X+i%w, b.Min.Y+i/w).RGBA()
					gr, gg, gb, ga := got.At(dx, dy).RGBA()
					if [4]uint32{sr, sg, sb, sa} != [4]uint32{gr, gg, gb, ga} {
						t.Fatalf("%T %v %s, orientation %d: display (%d,%d) has %v, want stored pixel %d's %v",
							img, b, subsampling(img), o, dx, dy, got.At(dx, dy), i, img.At(b.Min.X+i%w, b.Min.Y+i/w))
					}
				}
			}
		}
	}
}

func subsampling(img image.Image) string {
	if m, ok := img.(*image.YCbCr); ok {
		return m.SubsampleRatio.String()
	}
	return ""
}

func TestApplyInvalidIsIdentity(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 2, 1))
	for _, o := range []Orientation{0, 9, -1} {
		assert.Same(t, img, Apply(img, o), "%d", o)
	}
}

// tiffOrientationBlock is a minimal TIFF structure whose IFD0 holds one
// Orientation entry of the given type (3 SHORT, 4 LONG).
type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

func tiffOrientationBlock(bo byteOrder, typ uint16, v uint32) []byte {
	var b []byte
	if bo.String() == binary.LittleEndian.String() {
		b = append(b, "II*\x00"...)
	} else {
		b = append(b, "MM\x00*"...)
	}
	b = bo.AppendUint32(b, 8)
	b = bo.AppendUint16(b, 2) // two entries: an unrelated one, then Orientation
	b = bo.AppendUint16(b, 0x010f)
	b = bo.AppendUint16(b, 2)
	b = bo.AppendUint32(b, 4)
	b = append(b, "Cam\x00"...)
	b = bo.AppendUint16(b, exifTagOrientation)
	b = bo.AppendUint16(b, typ)
	b = bo.AppendUint32(b, 1)
	if typ == 3 {
		b = bo.AppendUint16(b, uint16(v))
		b = append(b, 0, 0)
	} else {
		b = bo.AppendUint32(b, v)
	}
	return bo.AppendUint32(b, 0) // no next IFD
}

func withJPEGExif(t *testing.T, tiff []byte) []byte {
	var enc bytes.Buffer
	require.NoError(t, jpeg.Encode(&enc, image.NewGray(image.Rect(0, 0, 8, 8)), nil))
	j := enc.Bytes()
	app1 := []byte{0xff, 0xe1}
	app1 = binary.BigEndian.AppendUint16(app1, uint16(2+len(exifHeader)+len(tiff)))
	app1 = append(append(app1, exifHeader...), tiff...)
	// An APP0 segment first, as cameras write JFIF+EXIF files.
	app0 := []byte{0xff, 0xe0, 0, 7, 'J', 'F', 'I', 'F', 0}
	return append(append(append(append([]byte{}, j[:2]...), app0...), app1...), j[2:]...)
}

func withPNGExif(t *testing.T, tiff []byte, afterIDAT bool) []byte {
	var enc bytes.Buffer
	require.NoError(t, png.Encode(&enc, image.NewGray(image.Rect(0, 0, 8, 8))))
	p := enc.Bytes()
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(tiff)))
	chunk = append(chunk, "eXIf"...)
	chunk = append(chunk, tiff...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	at := 8 + 25 // signature + IHDR chunk
	if afterIDAT {
		at = len(p) - 12 // before IEND
	}
	return append(append(append([]byte{}, p[:at]...), chunk...), p[at:]...)
}

func TestReadOrientation(t *testing.T) {
	le, be := binary.LittleEndian, binary.BigEndian
	for o := uint32(1); o <= 8; o++ {
		for _, bo := range []byteOrder{le, be} {
			for _, typ := range []uint16{3, 4} {
				tiff := tiffOrientationBlock(bo, typ, o)
				assert.Equal(t, Orientation(o), Read(withJPEGExif(t, tiff)), "JPEG %v type %d", bo, typ)
				assert.Equal(t, Orientation(o), Read(withPNGExif(t, tiff, false)), "PNG %v type %d", bo, typ)
			}
		}
	}
	six := tiffOrientationBlock(be, 3, 6)
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"not an image", []byte("hello")},
		{"JPEG without EXIF", withJPEGExif(t, nil)[:2]},
		{"reserved value 0", withJPEGExif(t, tiffOrientationBlock(le, 3, 0))},
		{"reserved value 9", withJPEGExif(t, tiffOrientationBlock(le, 3, 9))},
		{"huge LONG", withJPEGExif(t, tiffOrientationBlock(le, 4, 1<<31))},
		{"bad TIFF magic", withJPEGExif(t, append([]byte("XX*\x00"), six[4:]...))},
		{"IFD offset past the end", withJPEGExif(t, append(append([]byte{}, six[:4]...), 0xff, 0xff, 0xff, 0xf0))},
		{"truncated IFD", withJPEGExif(t, six[:20])},
		{"PNG eXIf after IDAT", withPNGExif(t, six, true)},
		{"truncated JPEG segment", withJPEGExif(t, six)[:12]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, Upright, Read(tt.data))
		})
	}
}

// FuzzRead: no input makes Read panic or return an undefined orientation.
func FuzzRead(f *testing.F) {
	f.Add(tiffOrientationBlock(binary.BigEndian, 3, 6))
	f.Add([]byte{0xff, 0xd8, 0xff, 0xe1, 0, 8, 'E', 'x', 'i', 'f', 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, data := range [][]byte{append([]byte{0xff, 0xd8}, b...), append(append([]byte{}, pngSignature...), b...), b} {
			if o := Read(data); !o.Valid() {
				t.Fatalf("Read gave %d", o)
			}
		}
	})
}

// BenchmarkRead measures the cost Preprocess pays on every upload to look
// for the tag (a few segment or chunk headers; no tag here).
func BenchmarkRead(b *testing.B) {
	img := image.NewGray(image.Rect(0, 0, 280, 280))
	var pngBuf, jpegBuf bytes.Buffer
	if err := png.Encode(&pngBuf, img); err != nil {
		b.Fatal(err)
	}
	if err := jpeg.Encode(&jpegBuf, img, nil); err != nil {
		b.Fatal(err)
	}
	for name, data := range map[string][]byte{"PNG": pngBuf.Bytes(), "JPEG": jpegBuf.Bytes()} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if Read(data) != Upright {
					b.Fatal("tag found")
				}
			}
		})
	}
}

// BenchmarkApplyPhoto turns a 12-megapixel phone JPEG (4:2:0) stored
// sideways (orientation 6).
func BenchmarkApplyPhoto(b *testing.B) {
	img := image.NewYCbCr(image.Rect(0, 0, 4000, 3000), image.YCbCrSubsampleRatio420)
	for b.Loop() {
		_ = Apply(img, Rotate90)
	}
}
