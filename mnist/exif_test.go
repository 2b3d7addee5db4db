package mnist

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/image/draw"
)

// exifSides is the EXIF specification's table for the Orientation tag
// (0x0112): on which side of the displayed picture the stored image's 0th
// row and 0th column are.
var exifSides = [9]struct{ row0, col0 string }{
	1: {"top", "left"}, 2: {"top", "right"}, 3: {"bottom", "right"}, 4: {"bottom", "left"},
	5: {"left", "top"}, 6: {"right", "top"}, 7: {"right", "bottom"}, 8: {"left", "bottom"},
}

// storeAs returns how a camera stores the upright picture u when it records
// orientation o: the stored image that, turned as the specification's table
// says, shows u. (Orientation 6 is a phone held upright: the sensor's image
// is u turned a quarter to the left.)
func storeAs(u *image.Gray, o int) *image.Gray {
	dw, dh := u.Rect.Dx(), u.Rect.Dy()
	sw, sh := dw, dh
	if o >= 5 {
		sw, sh = dh, dw
	}
	s := image.NewGray(image.Rect(0, 0, sw, sh))
	side := exifSides[o]
	for r := range sh {
		for c := range sw {
			var dx, dy int
			switch side.row0 {
			case "top":
				dy = r
			case "bottom":
				dy = dh - 1 - r
			case "left":
				dx = r
			case "right":
				dx = dw - 1 - r
			}
			switch side.col0 {
			case "left":
				dx = c
			case "right":
				dx = dw - 1 - c
			case "top":
				dy = c
			case "bottom":
				dy = dh - 1 - c
			}
			s.Pix[r*s.Stride+c] = u.Pix[dy*u.Stride+dx]
		}
	}
	return s
}

// exifTIFF is a big-endian TIFF block whose IFD0 holds Orientation = o.
func exifTIFF(o int) []byte {
	b := []byte("MM\x00*\x00\x00\x00\x08")
	b = binary.BigEndian.AppendUint16(b, 1)
	b = binary.BigEndian.AppendUint16(b, 0x0112)
	b = binary.BigEndian.AppendUint16(b, 3) // SHORT
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint16(b, uint16(o))
	b = append(b, 0, 0)
	return binary.BigEndian.AppendUint32(b, 0)
}

// photoJPEG encodes img as a phone would: JPEG with an Exif APP1 segment
// carrying orientation o (none when o is 0).
func photoJPEG(t *testing.T, img image.Image, o int) []byte {
	t.Helper()
	var enc bytes.Buffer
	require.NoError(t, jpeg.Encode(&enc, img, &jpeg.Options{Quality: 95}))
	if o == 0 {
		return enc.Bytes()
	}
	tiff := exifTIFF(o)
	app1 := binary.BigEndian.AppendUint16([]byte{0xff, 0xe1}, uint16(2+6+len(tiff)))
	app1 = append(append(app1, "Exif\x00\x00"...), tiff...)
	j := enc.Bytes()
	return append(append(append([]byte{}, j[:2]...), app1...), j[2:]...)
}

// photoPNG encodes img as PNG with an eXIf chunk carrying orientation o (none
// when o is 0).
func photoPNG(t *testing.T, img image.Image, o int) []byte {
	t.Helper()
	var enc bytes.Buffer
	require.NoError(t, png.Encode(&enc, img))
	if o == 0 {
		return enc.Bytes()
	}
	tiff := exifTIFF(o)
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(tiff)))
	chunk = append(append(chunk, "eXIf"...), tiff...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	p := enc.Bytes()
	const afterIHDR = 8 + 25
	return append(append(append([]byte{}, p[:afterIHDR]...), chunk...), p[afterIHDR:]...)
}

// uprightPhoto draws the 28x28 MNIST digit in file as dark ink, six times
// larger, on a white page that is wider than high (so a swapped width and
// height shows).
func uprightPhoto(t *testing.T, file string) *image.Gray {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "digits", file))
	require.NoError(t, err)
	d, err := png.Decode(bytes.NewReader(b))
	require.NoError(t, err)
	page := image.NewGray(image.Rect(0, 0, 260, 200))
	draw.Draw(page, page.Rect, image.NewUniform(color.White), image.Point{}, draw.Src)
	ink := image.NewGray(image.Rect(0, 0, 168, 168))
	draw.CatmullRom.Scale(ink, ink.Rect, d, d.Bounds(), draw.Src, nil)
	for y := range 168 {
		for x := range 168 {
			page.SetGray(50+x, 16+y, color.Gray{Y: 255 - ink.GrayAt(x, y).Y})
		}
	}
	return page
}

func meanGrayDiff(a, b *image.Gray) float64 {
	var s float64
	for i := range a.Pix {
		s += math.Abs(float64(a.Pix[i]) - float64(b.Pix[i]))
	}
	return s / float64(len(a.Pix))
}

// TestImagesThatSayHowToDisplayThem is the field report's kind: a phone
// stores an upright digit sideways and says so in the EXIF Orientation tag;
// browsers show it upright, so the model must read it upright too. For each
// of the eight orientations, in JPEG (APP1 Exif) and PNG (eXIf), a stored
// image carrying the tag must preprocess to the same 28x28 input as the
// upright picture (exactly, for lossless PNG) and be predicted as its digit.
// The upright "1" stored with tag 6 was read as a horizontal bar and
// predicted 2 before.
func TestImagesThatSayHowToDisplayThem(t *testing.T) {
	m, err := NewModel(pretrainedWeights(t), nil)
	require.NoError(t, err)
	ctx := context.Background()
	for _, digit := range []struct {
		file  string
		label int
	}{{"1-2.png", 1}, {"7-0.png", 7}, {"3-18.png", 3}} {
		upright := uprightPhoto(t, digit.file)
		for _, format := range []struct {
			name   string
			encode func(*testing.T, image.Image, int) []byte
			maxErr float64 // gray levels, mean over the 28x28 input
		}{{"PNG", photoPNG, 0}, {"JPEG", photoJPEG, 1}} {
			want, err := Preprocess(format.encode(t, upright, 0), nil)
			require.NoError(t, err)
			p, err := m.Predict(ctx, want)
			require.NoError(t, err)
			require.Equal(t, digit.label, p.Label, "the upright %s is read right", format.name)

			for o := 1; o <= 8; o++ {
				t.Run(fmt.Sprintf("%d/%s/orientation-%d", digit.label, format.name, o), func(t *testing.T) {
					stored := storeAs(upright, o)
					got, err := Preprocess(format.encode(t, stored, o), nil)
					require.NoError(t, err)
					diff := meanGrayDiff(want, got)
					assert.LessOrEqual(t, diff, format.maxErr, "the stored image, turned as its tag says, is the upright digit")
					p, err := m.Predict(ctx, got)
					require.NoError(t, err)
					assert.Equal(t, digit.label, p.Label, "predicted digit")
				})
			}
		}
	}
}

// TestImagesThatSayHowToDisplayThemFixtureIsNotSymmetric proves the test
// above can fail: the sideways images read as stored (no tag) are far from
// the upright digit.
func TestImagesThatSayHowToDisplayThemFixtureIsNotSymmetric(t *testing.T) {
	for _, file := range []string{"1-2.png", "7-0.png", "3-18.png"} {
		upright := uprightPhoto(t, file)
		want, err := Preprocess(photoPNG(t, upright, 0), nil)
		require.NoError(t, err)
		for o := 2; o <= 8; o++ {
			if file == "1-2.png" && o < 5 {
				continue // a "1" looks much the same mirrored or upside down
			}
			asStored, err := Preprocess(photoPNG(t, storeAs(upright, o), 0), nil)
			require.NoError(t, err)
			assert.Greater(t, meanGrayDiff(want, asStored), 15.0, "%s orientation %d", file, o)
		}
	}
}
