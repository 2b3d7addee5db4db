package mnist

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // registers the JPEG decoder for image.Decode
	_ "image/png"  // registers the PNG decoder for image.Decode
	"math"
	"math/bits"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/advspace/advspace/internal/imgorient"
	"github.com/advspace/advspace/internal/kernels"
	"github.com/advspace/advspace/mnist/internal/pngluma"
)

// Default limits of Preprocess.
const (
	DefaultMaxPixels = 4096 * 4096
	DefaultMaxBytes  = 10 << 20
)

// ImageTooLargeError reports an image refused by Preprocess's limits, before
// it was decoded. It wraps ErrImageTooLarge.
type ImageTooLargeError struct {
	// Bytes is the encoded size; Width and Height are the declared size (0
	// when the byte limit was hit first).
	Bytes         int64
	Width, Height int
	// MaxBytes and MaxPixels are the limits in force.
	MaxBytes  int64
	MaxPixels int
}

func (e *ImageTooLargeError) Error() string {
	if e.Width == 0 && e.Height == 0 {
		return fmt.Sprintf("mnist: image too large: %d bytes, the limit is %d bytes", e.Bytes, e.MaxBytes)
	}
	return fmt.Sprintf("mnist: image too large: %dx%d pixels, the limit is %d pixels (for instance %dx%d)",
		e.Width, e.Height, e.MaxPixels, int(math.Sqrt(float64(e.MaxPixels))), int(math.Sqrt(float64(e.MaxPixels))))
}

// Unwrap returns ErrImageTooLarge.
func (e *ImageTooLargeError) Unwrap() error { return ErrImageTooLarge }

// PreprocessOptions bounds the images Preprocess accepts. A nil pointer or a
// zero field means the default.
type PreprocessOptions struct {
	// MaxPixels caps width*height as declared in the image header (default
	// DefaultMaxPixels, 4096*4096).
	MaxPixels int
	// MaxBytes caps the encoded size (default DefaultMaxBytes, 10 MiB).
	MaxBytes int64
}

func (o *PreprocessOptions) limits() (maxPixels int, maxBytes int64) {
	maxPixels, maxBytes = DefaultMaxPixels, DefaultMaxBytes
	if o != nil && o.MaxPixels > 0 {
		maxPixels = o.MaxPixels
	}
	if o != nil && o.MaxBytes > 0 {
		maxBytes = o.MaxBytes
	}
	return maxPixels, maxBytes
}

// Preprocess decodes a PNG or JPEG drawing and returns the 28x28 MNIST-format
// input (bright ink on dark), the way MNIST itself was made; see
// PreprocessImage. The size is checked from the image header before decoding,
// so an oversized image costs no memory. Errors: *ImageTooLargeError
// (ErrImageTooLarge), ErrNotImage, ErrDamagedImage (which also matches
// ErrNotImage), ErrEmptyImage. It is safe for concurrent use.
func Preprocess(data []byte, opts *PreprocessOptions) (*image.Gray, error) {
	maxPixels, maxBytes := opts.limits()
	if int64(len(data)) > maxBytes {
		return nil, &ImageTooLargeError{Bytes: int64(len(data)), MaxBytes: maxBytes, MaxPixels: maxPixels}
	}
	if f, err := pngluma.Parse(data); err == nil {
		// The common case, a PNG that pngluma decodes straight to
		// luminance: the same bytes as image/png and converting, in a
		// fraction of the time and memory.
		w, h := f.Size()
		if w > maxPixels/h {
			return nil, &ImageTooLargeError{Bytes: int64(len(data)), Width: w, Height: h, MaxBytes: maxBytes, MaxPixels: maxPixels}
		}
		if out, ok, err := preprocessPNG(data, f); ok {
			return out, err
		}
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		if f := signatureFormat(data); f != "" {
			return nil, &damagedError{format: f, cause: err}
		}
		return nil, fmt.Errorf("%w: %v", ErrNotImage, err)
	}
	if format != "png" && format != "jpeg" {
		return nil, fmt.Errorf("%w: got %s", ErrNotImage, format)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, ErrEmptyImage
	}
	if cfg.Width > maxPixels/cfg.Height { // width*height > maxPixels, without overflow
		return nil, &ImageTooLargeError{Bytes: int64(len(data)), Width: cfg.Width, Height: cfg.Height, MaxBytes: maxBytes, MaxPixels: maxPixels}
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, &damagedError{format: format, cause: err}
	}
	return PreprocessImage(displayOriented(data, img))
}

// signatureFormat returns "png" or "jpeg" when data starts as such a file
// does, "" otherwise.
func signatureFormat(data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(data, []byte{0xff, 0xd8, 0xff}):
		return "jpeg"
	}
	return ""
}

// damagedError is a PNG or JPEG file that its decoder refused; it matches
// ErrDamagedImage and ErrNotImage.
type damagedError struct {
	format string // "png" or "jpeg"
	cause  error
}

func (e *damagedError) Error() string {
	return fmt.Sprintf("mnist: the %s file is damaged or cut short (%v)", strings.ToUpper(e.format), e.cause)
}

func (e *damagedError) Is(target error) bool {
	return target == ErrDamagedImage || target == ErrNotImage
}

func (e *damagedError) Unwrap() error { return e.cause }

// planes recycles the luminance planes of preprocessPNG (a 4000x4000
// drawing's is 16 MB); the pool holds no state a caller can observe.
var planes sync.Pool

// preprocessPNG is Preprocess for the PNG layouts pngluma decodes straight
// to luminance, the same bytes as decoding with image/png and converting,
// in a fraction of the time and memory. ok is false when the file needs
// image/png (damage found while inflating, or an EXIF orientation to apply).
func preprocessPNG(data []byte, f *pngluma.File) (out *image.Gray, ok bool, err error) {
	if imgorient.Read(data) != imgorient.Upright {
		return nil, false, nil
	}
	var buf []byte
	if p, _ := planes.Get().(*[]byte); p != nil {
		buf = *p
	}
	defer func() {
		if buf != nil {
			planes.Put(&buf)
		}
	}()
	lum, translucent, err := f.Luminance(0xff, buf)
	if err != nil {
		return nil, false, nil
	}
	buf = lum.Pix
	out, err = preprocessLuminance(lum)
	if errors.Is(err, ErrEmptyImage) && translucent {
		// As PreprocessImage: light ink on a transparent background.
		if lum, _, err2 := f.Luminance(0, buf); err2 == nil {
			if out2, err2 := preprocessLuminance(lum); err2 == nil {
				return out2, true, nil
			}
		}
	}
	return out, true, err
}

// Tuning of the preprocessing. mnistStrokeWidth is MNIST's typical pen width
// in the 20-pixel box: the 2*ink/perimeter estimate has a median of 1.9 pixels
// on the 28x28 training images, and that estimate reads a stroke drawn at high
// resolution and scaled down as about 0.7 of its true width.
const (
	boxSide           = 20  // the digit's longer side in the output, as in MNIST
	midSide           = 80  // intermediate resolution for large drawings
	minInkContrast    = 48  // ink fainter than this above the background is no ink
	minInkMass        = 3   // less ink than 3 full pixels is a speck, not a drawing
	mnistStrokeWidth  = 2.6 // MNIST pen width in the 20-pixel box
	thinStrokeFactor  = 0.4 // strokes thinner than this fraction of it are thickened...
	thickenedWidth    = 0.8 // ...to this fraction of it
	noiseFloorDivisor = 8   // pixels below max/8 are noise (JPEG artefacts, paper grain)
)

// PreprocessImage turns a decoded drawing into the 28x28 MNIST-format input:
//
//   - transparent parts are composited onto white; then the image is made
//     grayscale;
//   - the background is read from the border pixels; a light background is
//     inverted so that the ink is bright on dark, and the background level is
//     subtracted, so grey paper or a dark-grey canvas work too;
//   - faint noise is dropped and the image is cropped to the ink's bounding box;
//   - the longer side is scaled to 20 pixels keeping the aspect ratio, with an
//     antialiasing filter (large drawings through an 80-pixel intermediate,
//     where strokes much thinner than MNIST's are thickened, so that a fine
//     pen on a big canvas still reads as a digit), and the ink is stretched to
//     full brightness;
//   - the result is placed in 28x28 with its centre of mass at (14,14).
//
// If compositing onto white leaves nothing (light ink on a transparent
// background), the image is composited onto black instead. A blank or
// uniform image gives ErrEmptyImage. It is safe for concurrent use.
func PreprocessImage(img image.Image) (*image.Gray, error) {
	if img == nil {
		return nil, fmt.Errorf("%w: no image", ErrNotImage)
	}
	if img.Bounds().Empty() {
		return nil, ErrEmptyImage
	}
	lum, translucent := luminance(img, 0xff)
	out, err := preprocessLuminance(lum)
	if errors.Is(err, ErrEmptyImage) && translucent {
		lum, _ = luminance(img, 0)
		if out2, err2 := preprocessLuminance(lum); err2 == nil {
			return out2, nil
		}
	}
	return out, err
}

// luminance returns img as a grayscale image at origin (0,0), with
// transparency composited onto a background of gray level bg (0 or 255), and
// whether any pixel was not fully opaque.
func luminance(img image.Image, bg uint8) (*image.Gray, bool) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := image.NewGray(image.Rect(0, 0, w, h))
	translucent := false
	// gray8 is color.GrayModel's formula on 8-bit channels (the weights sum
	// to 65536).
	gray8 := func(r, g, b uint32) uint8 { return uint8((19595*r + 38470*g + 7471*b + 1<<15) >> 16) }
	bgc := uint32(bg)
	switch src := img.(type) {
	case *image.Gray:
		for y := range h {
			copy(out.Pix[y*out.Stride:y*out.Stride+w], src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):])
		}
	case *image.YCbCr:
		// Opaque; the Y plane is the luma.
		for y := range h {
			copy(out.Pix[y*out.Stride:y*out.Stride+w], src.Y[src.YOffset(b.Min.X, b.Min.Y+y):])
		}
	case *image.NRGBA:
		for y := range h {
			row := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range w {
				p := row[4*x : 4*x+4 : 4*x+4]
				a := uint32(p[3])
				if a == 0xff { // opaque: no compositing
					out.Pix[y*out.Stride+x] = gray8(uint32(p[0]), uint32(p[1]), uint32(p[2]))
					continue
				}
				translucent = true
				// Non-premultiplied: c*a + bg*(1-a).
				mix := func(c uint8) uint32 { return (uint32(c)*a + bgc*(0xff-a) + 0x7f) / 0xff }
				out.Pix[y*out.Stride+x] = gray8(mix(p[0]), mix(p[1]), mix(p[2]))
			}
		}
	case *image.RGBA:
		for y := range h {
			row := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range w {
				p := row[4*x : 4*x+4 : 4*x+4]
				a := uint32(p[3])
				if a != 0xff {
					translucent = true
				}
				// Premultiplied: c + bg*(1-a).
				mix := func(c uint8) uint32 { return min(0xff, uint32(c)+(bgc*(0xff-a)+0x7f)/0xff) }
				out.Pix[y*out.Stride+x] = gray8(mix(p[0]), mix(p[1]), mix(p[2]))
			}
		}
	default:
		bg16 := bgc * 0x101
		for y := range h {
			for x := range w {
				r, g, bl, a := src.At(b.Min.X+x, b.Min.Y+y).RGBA()
				if a != 0xffff {
					translucent = true
				}
				r += bg16 * (0xffff - a) / 0xffff
				g += bg16 * (0xffff - a) / 0xffff
				bl += bg16 * (0xffff - a) / 0xffff
				out.Pix[y*out.Stride+x] = color.GrayModel.Convert(color.RGBA64{uint16(min(r, 0xffff)), uint16(min(g, 0xffff)), uint16(min(bl, 0xffff)), 0xffff}).(color.Gray).Y
			}
		}
	}
	return out, translucent
}

// preprocessLuminance runs the steps after grayscale conversion on lum, which
// it may modify.
func preprocessLuminance(lum *image.Gray) (*image.Gray, error) {
	ink := lum.Pix // origin (0,0) and Stride == width: see luminance
	w, h := lum.Rect.Dx(), lum.Rect.Dy()

	// The background is the border's median; a light one means dark ink.
	// Inverting, subtracting the background, stretching to 255 and dropping
	// the noise floor are each a monotonic map of the raw byte, so they are
	// composed into one 256-entry table and applied in a single pass.
	border := borderPixels(lum)
	invert := median(border) > 127
	if invert {
		for i, v := range border {
			border[i] = 255 - v
		}
	}
	bg := int(median(border))
	if bg > 255-minInkContrast {
		return nil, ErrEmptyImage
	}
	var level [256]uint8 // raw byte -> ink level before the noise floor
	span := uint32(255 - bg)
	inv := 1 / float64(span)
	for v := range level {
		u := v
		if invert {
			u = 255 - v
		}
		if u > bg {
			// (u-bg)*255/span, by the reciprocal with an exact correction
			// (256 divisions by a variable cost more than the rest of a
			// small drawing's levels).
			num := uint32(u-bg) * 255
			q := uint32(float64(num) * inv)
			if q*span > num {
				q--
			} else if (q+1)*span <= num {
				q++
			}
			level[v] = uint8(q)
		}
	}
	lo, hi := byteRange(ink, w)
	maxInk := int(max(level[lo], level[hi])) // level is monotonic in the raw byte
	if maxInk < minInkContrast {
		return nil, fmt.Errorf("%w (the strokes are too faint to read)", ErrEmptyImage)
	}
	floor := uint8(maxInk / noiseFloorDivisor)
	for v, l := range level {
		if l <= floor {
			level[v] = 0
		}
	}
	box, mass := applyInkLevels(ink, w, h, &level)
	if mass < minInkMass*255 {
		return nil, fmt.Errorf("%w (there is only a speck of ink)", ErrEmptyImage)
	}
	crop := lum.SubImage(box).(*image.Gray)

	// Scale to the intermediate resolution when the drawing is large.
	var mid *plane16
	cw, ch := box.Dx(), box.Dy()
	if long := max(cw, ch); long > midSide {
		mid = scaleTent(scaledSide(cw, long, midSide), scaledSide(ch, long, midSide), cw, ch, grayRows(crop), sameGrayRows(crop))
		if !stretch16(mid) {
			return nil, fmt.Errorf("%w (the strokes are too small to read)", ErrEmptyImage)
		}
	} else {
		mid = stretchedCopy(crop)
	}
	mid = thickenThinStrokes(mid)

	// Scale the longer side to 20 pixels.
	mw, mh := mid.w, mid.h
	long := max(mw, mh)
	digit := scaleTent(scaledSide(mw, long, boxSide), scaledSide(mh, long, boxSide), mw, mh, mid.rows, nil)
	if !stretch16(digit) {
		return nil, fmt.Errorf("%w (the strokes are too small to read)", ErrEmptyImage)
	}
	return centerOfMassPlace(digit), nil
}

// parallelPixels is the image size from which the row passes of
// preprocessing split their rows over the cores: a 4000x4000 drawing's
// passes take several milliseconds each, a canvas snapshot's microseconds.
const parallelPixels = 1 << 20

// rowParts splits rows [0, h) of an image w pixels wide into contiguous
// parts, one per core for a large image and one otherwise, runs fn on each
// part on its own goroutine and returns when all are done. fn gets its
// part's index and rows [y0, y1).
func rowParts(w, h int, fn func(part, y0, y1 int)) (parts int) {
	parts = 1
	if w*h >= parallelPixels {
		parts = min(runtime.GOMAXPROCS(0), h)
	}
	if parts == 1 {
		fn(0, 0, h)
		return 1
	}
	var wg sync.WaitGroup
	for p := range parts {
		wg.Go(func() { fn(p, p*h/parts, (p+1)*h/parts) })
	}
	wg.Wait()
	return parts
}

// byteRange returns the smallest and the largest byte of px (not empty), an
// image of rows w bytes long. A row equal to the one above (a drawing's
// background, a stroke running down) adds nothing and is skipped.
func byteRange(px []uint8, w int) (lo, hi uint8) {
	h := len(px) / w
	var los, his [maxParts]uint8
	parts := rowParts(w, h, func(part, y0, y1 int) {
		los[part], his[part] = byteRangeRows(px, w, y0, y1)
	})
	lo, hi = los[0], his[0]
	for p := 1; p < parts; p++ {
		lo, hi = min(lo, los[p]), max(hi, his[p])
	}
	return lo, hi
}

// maxParts bounds rowParts' parts where results are kept per part.
const maxParts = 64

// byteRangeRows is byteRange over rows [y0, y1) (not empty).
func byteRangeRows(px []uint8, w, y0, y1 int) (lo, hi uint8) {
	lo, hi = px[y0*w], px[y0*w]
	for y := y0; y < y1; y++ {
		row := px[y*w : (y+1)*w]
		if y > 0 && bytes.Equal(row, px[(y-1)*w:y*w]) {
			continue
		}
		for len(row) >= 8 {
			// Eight equal bytes count as one.
			word := binary.LittleEndian.Uint64(row)
			if b := uint8(word); word == uint64(b)*0x0101010101010101 {
				lo, hi = min(lo, b), max(hi, b)
			} else {
				for _, v := range row[:8] {
					lo, hi = min(lo, v), max(hi, v)
				}
			}
			row = row[8:]
		}
		for _, v := range row {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	return lo, hi
}

// applyInkLevels replaces every byte v of the w x h image ink (stride w) by
// level[v] and returns the bounding box of the non-zero result and its sum.
// Runs of eight equal bytes are mapped eight at a time, and a row equal to
// the one above is copied from the one above's result.
func applyInkLevels(ink []uint8, w, h int, level *[256]uint8) (box image.Rectangle, mass int) {
	var boxes [maxParts]image.Rectangle
	var masses [maxParts]int
	parts := rowParts(w, h, func(part, y0, y1 int) {
		boxes[part], masses[part] = applyInkLevelsRows(ink, w, h, y0, y1, level)
	})
	box, mass = boxes[0], masses[0]
	for p := 1; p < parts; p++ {
		b := boxes[p]
		box.Min.X, box.Max.X = min(box.Min.X, b.Min.X), max(box.Max.X, b.Max.X)
		box.Min.Y, box.Max.Y = min(box.Min.Y, b.Min.Y), max(box.Max.Y, b.Max.Y)
		mass += masses[p]
	}
	return box, mass
}

// applyInkLevelsRows is applyInkLevels over rows [y0, y1). Its first row is
// always mapped: the row above may be another part's, mapped meanwhile.
func applyInkLevelsRows(ink []uint8, w, h, y0, y1 int, level *[256]uint8) (box image.Rectangle, mass int) {
	box = image.Rectangle{Min: image.Pt(w, h)}
	above := make([]uint8, w) // the row above, before mapping
	first, last, rowMass := -1, -1, 0
	for y := y0; y < y1; y++ {
		row := ink[y*w : (y+1)*w]
		if y > y0 && bytes.Equal(row, above) {
			copy(row, ink[(y-1)*w:y*w])
		} else {
			copy(above, row)
			first, last, rowMass = mapInkRow(row, level)
		}
		if first >= 0 {
			mass += rowMass
			box.Min.X, box.Max.X = min(box.Min.X, first), max(box.Max.X, last+1)
			box.Min.Y, box.Max.Y = min(box.Min.Y, y), y+1
		}
	}
	return box, mass
}

// mapInkRow maps row through level in place and returns the first and last
// non-zero positions (-1 for none) and the sum of the result.
func mapInkRow(row []uint8, level *[256]uint8) (first, last, mass int) {
	first, last = -1, -1
	for x := 0; x < len(row); {
		if x+8 <= len(row) {
			word := binary.LittleEndian.Uint64(row[x:])
			if b := uint8(word); word == uint64(b)*0x0101010101010101 {
				l := level[b]
				binary.LittleEndian.PutUint64(row[x:], uint64(l)*0x0101010101010101)
				if l != 0 {
					if first < 0 {
						first = x
					}
					last = x + 7
					mass += 8 * int(l)
				}
				x += 8
				continue
			}
		}
		for end := min(x+8, len(row)); x < end; x++ {
			l := level[row[x]]
			row[x] = l
			if l != 0 {
				if first < 0 {
					first = x
				}
				last = x
				mass += int(l)
			}
		}
	}
	return first, last, mass
}

// scaledSide returns side*target/long rounded, at least 1.
func scaledSide(side, long, target int) int {
	return max(1, (side*target+long/2)/long)
}

func borderPixels(g *image.Gray) []uint8 {
	w, h := g.Rect.Dx(), g.Rect.Dy()
	px := make([]uint8, 0, 2*w+2*h)
	for x := range w {
		px = append(px, g.Pix[x], g.Pix[(h-1)*g.Stride+x])
	}
	for y := 1; y < h-1; y++ {
		px = append(px, g.Pix[y*g.Stride], g.Pix[y*g.Stride+w-1])
	}
	return px
}

func median(px []uint8) uint8 {
	var hist [256]int
	for _, v := range px {
		hist[v]++
	}
	seen := 0
	for v, n := range hist {
		seen += n
		if 2*seen >= len(px) {
			return uint8(v)
		}
	}
	return 0
}

// stretch16 scales g so that its ink reaches full white, as MNIST digits do
// (and a thin stroke averaged down during scaling gets its contrast back). The
// reference level is the 90th percentile of the non-black pixels rather than
// the maximum, so that one bright spot, such as two strokes crossing, does not
// leave the rest of the digit dim; brighter pixels are clipped. It reports
// false if g is black.
func stretch16(g *plane16) bool {
	// The 90th percentile, found by a histogram of the high bytes and a
	// sort of the one bucket that holds it (the same value as sorting all).
	var hist [256]int
	n := 0
	for _, v := range g.px {
		if v != 0 {
			hist[v>>8]++
			n++
		}
	}
	if n == 0 {
		return false
	}
	rank, seen, hiByte := n*9/10, 0, 0
	for b, c := range hist {
		if seen+c > rank {
			hiByte = b
			break
		}
		seen += c
	}
	bucket := make([]uint16, 0, hist[hiByte])
	for _, v := range g.px {
		if int(v>>8) == hiByte && v != 0 {
			bucket = append(bucket, v)
		}
	}
	slices.Sort(bucket)
	ref := uint32(bucket[rank-seen])
	// v*0xffff/ref for every pixel, by a multiplication with the reciprocal
	// and a correction of at most one, which is exact (v*0xffff < 2^32)
	// and several times cheaper than dividing.
	inv := 1 / float64(ref)
	for i, v := range g.px {
		if v == 0 {
			continue
		}
		num := uint32(v) * 0xffff
		q := uint32(float64(num) * inv)
		if q*ref > num {
			q--
		} else if (q+1)*ref <= num {
			q++
		}
		g.px[i] = uint16(min(q, 0xffff))
	}
	return true
}

// stretchedCopy returns the 8-bit levels of g as 16-bit ones (v*0x101, as
// color.Gray's RGBA) stretched as stretch16 does, the same values in two
// passes: with only 256 levels, the percentile comes from a histogram and
// the stretch is a table. g has ink (applyInkLevels found some).
func stretchedCopy(g *image.Gray) *plane16 {
	w, h := g.Rect.Dx(), g.Rect.Dy()
	var hist [256]int
	for y := range h {
		for _, v := range g.Pix[y*g.Stride : y*g.Stride+w] {
			hist[v]++
		}
	}
	n := w*h - hist[0]
	// stretch16's reference: the high byte of v*0x101 is v, so its bucket
	// holds one value.
	rank, seen, ref := n*9/10, 0, uint32(0)
	for v := 1; v < 256; v++ {
		if seen+hist[v] > rank {
			ref = uint32(v) * 0x101
			break
		}
		seen += hist[v]
	}
	var table [256]uint16
	for v := 1; v < 256 && ref > 0; v++ {
		table[v] = uint16(min(0xffff, uint32(v)*0x101*0xffff/ref))
	}
	out := newPlane16(w, h)
	for y := range h {
		dst := out.px[y*w : (y+1)*w]
		for x, v := range g.Pix[y*g.Stride : y*g.Stride+w] {
			dst[x] = table[v]
		}
	}
	return out
}

// thickenThinStrokes returns g, or a dilated copy of g when its strokes are much thinner than MNIST's
// relative to the digit size. The stroke width is estimated as
// 2*ink area/ink perimeter, which is exact for long thin strokes.
func thickenThinStrokes(g *plane16) *plane16 {
	w, h := g.w, g.h
	// The ink area in full-white pixels, and the perimeter: the sides of
	// stroke pixels (at least half bright) that face a non-stroke pixel or
	// the frame, counted with one bit a pixel, a row at a time.
	words := (w + 63) / 64
	on := make([]uint64, (h+2)*words) // rows -1 and h stay empty
	var sum uint64
	for y := range h {
		row := on[(y+1)*words : (y+2)*words]
		for x, v := range g.px[y*w : (y+1)*w] {
			sum += uint64(v)
			if v >= 0x8000 {
				row[x/64] |= 1 << (x % 64)
			}
		}
	}
	area := float64(sum) / 0xffff
	perimeter := 0
	for y := range h {
		above, row, below := on[y*words:(y+1)*words], on[(y+1)*words:(y+2)*words], on[(y+2)*words:(y+3)*words]
		for k, b := range row {
			var left, right uint64 // the neighbours' bits, shifted into place
			left = b << 1
			if k > 0 {
				left |= row[k-1] >> 63
			}
			right = b >> 1
			if k+1 < words {
				right |= row[k+1] << 63
			}
			perimeter += bits.OnesCount64(b&^left) + bits.OnesCount64(b&^right) +
				bits.OnesCount64(b&^above[k]) + bits.OnesCount64(b&^below[k])
		}
	}
	if perimeter == 0 {
		return g
	}
	width := 2 * area / float64(perimeter)
	target := mnistStrokeWidth * float64(max(w, h)) / boxSide
	if width >= thinStrokeFactor*target {
		return g
	}
	r := int(math.Round((thickenedWidth*target - width) / 2))
	if r < 1 {
		return g
	}
	// Dilate with a disc of radius r into a frame r pixels larger on every
	// side, as if drawn with a thicker pen (whose strokes stick out of the
	// thin pen's bounding box too).
	var disc []image.Point
	for dy := -r; dy <= r; dy++ {
		for dx := -r; dx <= r; dx++ {
			if dx*dx+dy*dy <= r*r+r { // r*r+r rounds the disc's edge outwards
				disc = append(disc, image.Pt(dx, dy))
			}
		}
	}
	out := newPlane16(w+2*r, h+2*r)
	for y := range out.h {
		for x := range out.w {
			var m uint16
			for _, d := range disc {
				sx, sy := x-r+d.X, y-r+d.Y
				if sx >= 0 && sy >= 0 && sx < w && sy < h {
					m = max(m, g.px[sy*w+sx])
				}
			}
			out.px[y*out.w+x] = m
		}
	}
	return out
}

// centerOfMassPlace puts digit (at most 20x20) into a black 28x28 image so
// that its intensity-weighted centre of mass, in pixel-index coordinates, is
// at (14,14) as in MNIST (the MNIST training set's mean is 14.0, 14.0),
// shifting by whole pixels and staying inside the frame.
func centerOfMassPlace(digit *plane16) *image.Gray {
	w, h := digit.w, digit.h
	var sum, sx, sy float64
	for y := range h {
		fy, fx := float64(y), 0.0
		for _, p := range digit.px[y*w : (y+1)*w] {
			v := float64(p)
			sum += v
			sx += v * fx
			sy += v * fy
			fx++
		}
	}
	// sum > 0: the callers stretched digit to full white.
	ox := min(max(int(math.Round(Side/2-sx/sum)), 0), Side-w)
	oy := min(max(int(math.Round(Side/2-sy/sum)), 0), Side-h)
	out := image.NewGray(image.Rect(0, 0, Side, Side))
	for y := range h {
		dst := out.Pix[(oy+y)*out.Stride+ox : (oy+y)*out.Stride+ox+w]
		for x, p := range digit.px[y*w : (y+1)*w] {
			dst[x] = uint8((uint32(p)*0xff + 0x7fff) / 0xffff)
		}
	}
	return out
}

// Normalize maps a 28x28 MNIST-format image to the model input,
// dst[y*28+x] = (p/255 - 0.1307) / 0.3081, row-major. dst must hold exactly
// 784 floats, for instance one row of a batch.
func Normalize(g *image.Gray, dst []float32) error {
	if g == nil {
		return errors.New("mnist: normalize: no image")
	}
	if g.Rect.Dx() != Side || g.Rect.Dy() != Side {
		return fmt.Errorf("mnist: normalize: image is %dx%d, want %dx%d (run Preprocess first)", g.Rect.Dx(), g.Rect.Dy(), Side, Side)
	}
	if len(dst) != InputSize {
		return fmt.Errorf("mnist: normalize: dst holds %d floats, want %d", len(dst), InputSize)
	}
	for y := range Side {
		normalizeInto(dst[y*Side:(y+1)*Side], g.Pix[y*g.Stride:y*g.Stride+Side])
	}
	return nil
}

// tentTaps is one output coordinate's share of a separable scaling: the
// source coordinates [first, first+len(weights)) with normalised weights.
type tentTaps struct {
	first   int
	weights []float32
}

// tentFilter returns the taps that scale sw source pixels to dw with the
// bilinear (tent) kernel, widened by the scale factor when shrinking so that
// every source pixel counts: the filter of golang.org/x/image/draw's
// BiLinear, which this replaces for speed. The taps' weights share one
// allocation.
func tentFilter(dw, sw int) []tentTaps {
	scale := float64(sw) / float64(dw)
	half, argScale := 1.0, 1.0
	if scale > 1 {
		half, argScale = scale, 1/scale
	}
	taps := make([]tentTaps, dw)
	all := make([]float32, 0, dw*(int(2*half)+2))
	for x := range taps {
		center := (float64(x)+0.5)*scale - 0.5
		i := max(0, int(math.Floor(center-half)))
		j := min(sw, int(math.Ceil(center+half)))
		first, start, total := -1, len(all), 0.0
		for c := i; c < j; c++ {
			t := math.Abs((center - float64(c)) * argScale)
			if t >= 1 {
				if first >= 0 {
					break
				}
				continue
			}
			if first < 0 {
				first = c
			}
			all = append(all, float32(1-t))
			total += 1 - t
		}
		ws := all[start:len(all):len(all)]
		for k := range ws {
			ws[k] = float32(float64(ws[k]) / total)
		}
		taps[x] = tentTaps{first: max(first, 0), weights: ws}
	}
	return taps
}

// scaleTent scales the sw x sh image whose rows row(y, buf) writes into buf
// (as 16-bit levels, 0-65535, in float32) to a new dw x dh plane16 with the
// tent filter of tentFilter: horizontally row by row, then vertically. When
// same is not nil and same(y) reports row y equal to row y-1, row y's
// horizontal result is copied rather than computed again.
func scaleTent(dw, dh, sw, sh int, row func(y int, buf []float32), same func(y int) bool) *plane16 {
	hx, hy := tentFilter(dw, sw), tentFilter(dh, sh)
	tmp := make([]float32, sh*dw) // horizontally scaled rows
	rowParts(sw, sh, func(_, y0, y1 int) {
		buf := make([]float32, sw)
		for y := y0; y < y1; y++ {
			out := tmp[y*dw : (y+1)*dw]
			// A part's first row is always computed: the row above may be
			// another part's, not written yet.
			if y > y0 && same != nil && same(y) {
				copy(out, tmp[(y-1)*dw:y*dw])
				continue
			}
			row(y, buf)
			for x, t := range hx {
				var s float32
				src := buf[t.first : t.first+len(t.weights)]
				for k, wt := range t.weights {
					s += wt * src[k]
				}
				out[x] = s
			}
		}
	})
	dst := newPlane16(dw, dh)
	acc := make([]float32, dw)
	for y, t := range hy {
		clear(acc)
		for k, wt := range t.weights {
			kernels.Axpy(acc, tmp[(t.first+k)*dw:(t.first+k+1)*dw], wt)
		}
		for x, v := range acc {
			// Rounded and clamped to 0-65535 (comparisons, not min and
			// max, which must also handle NaN).
			v += 0.5
			if v < 0 {
				v = 0
			} else if v > 0xffff {
				v = 0xffff
			}
			dst.px[y*dw+x] = uint16(v)
		}
	}
	return dst
}

// grayRows returns a row reader of g for scaleTent (8-bit levels v become
// v*0x101, as color.Gray's RGBA does).
func grayRows(g *image.Gray) func(y int, buf []float32) {
	return func(y int, buf []float32) {
		off := g.PixOffset(g.Rect.Min.X, g.Rect.Min.Y+y)
		for x, v := range g.Pix[off : off+len(buf)] {
			buf[x] = float32(uint32(v) * 0x101)
		}
	}
}

// sameGrayRows returns a reporter for scaleTent of whether row y of g
// equals row y-1.
func sameGrayRows(g *image.Gray) func(y int) bool {
	w := g.Rect.Dx()
	return func(y int) bool {
		a := g.PixOffset(g.Rect.Min.X, g.Rect.Min.Y+y)
		return bytes.Equal(g.Pix[a:a+w], g.Pix[a-g.Stride:a-g.Stride+w])
	}
}

// plane16 is a w x h image of 16-bit levels (0-65535), row-major, in
// native uint16s: the intermediate images of preprocessing.
type plane16 struct {
	w, h int
	px   []uint16
}

func newPlane16(w, h int) *plane16 { return &plane16{w: w, h: h, px: make([]uint16, w*h)} }

// rows is the row reader of p for scaleTent.
func (p *plane16) rows(y int, buf []float32) {
	for x, v := range p.px[y*p.w : (y+1)*p.w] {
		buf[x] = float32(v)
	}
}
