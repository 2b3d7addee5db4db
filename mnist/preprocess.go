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
	if w, h, ok := pngSize(data); ok && w > maxPixels/h {
		// image/png refuses sizes past its own bound as damage ("dimension
		// overflow"); they are too large first.
		return nil, &ImageTooLargeError{Bytes: int64(len(data)), Width: w, Height: h, MaxBytes: maxBytes, MaxPixels: maxPixels}
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

// pngSize returns the width and height in a PNG file's header (both
// positive), ok false when data does not start with one.
func pngSize(data []byte) (w, h int, ok bool) {
	if signatureFormat(data) != "png" || len(data) < 24 || string(data[12:16]) != "IHDR" {
		return 0, 0, false
	}
	w, h = int(binary.BigEndian.Uint32(data[16:])), int(binary.BigEndian.Uint32(data[20:]))
	return w, h, w > 0 && h > 0
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
	// The pool holds *[]byte, the same pointer each time round, so that
	// putting it back allocates nothing.
	buf, _ := planes.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	defer planes.Put(buf)
	lum, translucent, err := f.Luminance(0xff, *buf)
	if err != nil {
		return nil, false, nil
	}
	*buf = lum.Pix
	out, err = preprocessLuminance(lum)
	if errors.Is(err, ErrEmptyImage) && translucent {
		// As PreprocessImage: light ink on a transparent background.
		if lum, _, err2 := f.Luminance(0, *buf); err2 == nil {
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
	// gray8 is color.GrayModel on 8-bit channels, exactly: GrayModel works on
	// 16-bit ones (v*257) and shifts by 24 (the weights sum to 65536).
	gray8 := func(r, g, b uint32) uint8 { return uint8((257*(19595*r+38470*g+7471*b) + 1<<15) >> 24) }
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

// preprocessLuminance runs the steps after grayscale conversion on lum.
func preprocessLuminance(lum *image.Gray) (*image.Gray, error) {
	s := scratches.Get().(*scratch)
	defer scratches.Put(s)
	ink := lum.Pix // origin (0,0) and Stride == width: see luminance
	w, h := lum.Rect.Dx(), lum.Rect.Dy()

	// The background is the border's median; a light one means dark ink.
	// With the bytes flipped (v^flip) so that more ink is a smaller byte,
	// the ink level of a byte (its distance above the background, stretched
	// to 255; inverting, subtracting and stretching are one monotonic map)
	// falls as the flipped byte grows.
	s.border = borderPixels(s.border[:0], lum)
	invert, bg := background(s.border)
	if bg > 255-minInkContrast {
		return nil, ErrEmptyImage
	}
	var flip uint8
	if !invert {
		flip = 0xff
	}
	levels := newInkLevels(bg)
	scan := scanInk(s, ink, w, h, flip)
	maxInk := int(levels.of(scan.min))
	if maxInk < minInkContrast {
		return nil, fmt.Errorf("%w (the strokes are too faint to read)", ErrEmptyImage)
	}
	// Levels up to the noise floor are no ink: the ink is the pixels whose
	// flipped byte is below limit.
	floor := uint8(maxInk / noiseFloorDivisor)
	limit := levels.limit(floor)
	box := scan.box(ink, flip, limit)
	var level [256]uint8 // byte -> ink level, for the bytes of the ink; 0 for the rest
	inks := s.inks[:0]   // the bytes of the ink that occur, by falling level
	mass := 0
	for f := range limit {
		v := f ^ flip
		if n := scan.hist[v]; n != 0 {
			level[v] = levels.of(f)
			mass += n * int(level[v])
			inks = append(inks, inkByte{v: v, level: level[v], n: n})
		}
	}
	s.inks = inks
	if mass < minInkMass*255 {
		return nil, fmt.Errorf("%w (there is only a speck of ink)", ErrEmptyImage)
	}
	crop := &s.crop
	*crop = image.Gray{Pix: lum.Pix[lum.PixOffset(box.Min.X, box.Min.Y):], Stride: lum.Stride, Rect: box}

	var mid rowSource // the digit before its scaling to 20 pixels
	cw, ch := box.Dx(), box.Dy()
	if long := max(cw, ch); long > midSide {
		// A large drawing goes through the intermediate resolution.
		table := &s.table // byte -> 16-bit level, as color.Gray's RGBA
		for v, l := range level {
			table[v] = uint16(l) * 0x101
		}
		plane := &s.planes[0]
		var hist [256]int // of the high bytes, for the stretch
		n := scaleTent(s, plane, scaledSide(cw, long, midSide), scaledSide(ch, long, midSide), cw, ch, s.byteRows(crop, table, flip, limit, 0), &hist)
		if !stretch16(s, plane, &hist, n, nil) {
			return nil, fmt.Errorf("%w (the strokes are too small to read)", ErrEmptyImage)
		}
		sum := strokeBits(s, plane)
		mid = thickenThinStrokes(s, plane, sum, &s.planes[1])
	} else {
		// A small one is read through a table that also stretches it.
		table := &s.table
		sum, ref := stretchTable(table, inks)
		// The strokes, at least half bright, are the flipped bytes below
		// stroke (the stretched levels fall as the flipped byte grows).
		stroke, hi := uint8(0), limit
		for stroke < hi {
			if f := stroke + (hi-stroke)/2; stretched(levels.of(f), ref) < 0x8000 {
				hi = f
			} else {
				stroke = f + 1
			}
		}
		rows := s.byteRows(crop, table, flip, limit, stroke)
		rows.strokeBits(s)
		mid = rows
		if wide := strokesTooThin(s, cw, ch, sum); wide > 0 {
			plane := &s.planes[0]
			rows.copyTo(plane)
			mid = dilate(plane, wide, &s.planes[1])
		}
	}

	// Scale the longer side to 20 pixels.
	mw, mh := mid.size()
	long := max(mw, mh)
	digit := &s.planes[2]
	var hist [256]int // of the digit's high bytes, for its stretch
	n := scaleTent(s, digit, scaledSide(mw, long, boxSide), scaledSide(mh, long, boxSide), mw, mh, mid, &hist)
	var center massCenter
	if !stretch16(s, digit, &hist, n, &center) {
		return nil, fmt.Errorf("%w (the strokes are too small to read)", ErrEmptyImage)
	}
	return centerOfMassPlace(digit, center), nil
}

// scratch is the working memory of one preprocessing run, recycled through
// scratches so that preprocessing a canvas snapshot allocates nothing but
// its result. Nothing in it outlives the run that took it from the pool.
type scratch struct {
	border  []uint8     // the border pixels
	planes  [3]plane16  // the intermediate, thickened and 20-pixel digit images
	table   [256]uint16 // byte -> level, for the byteRows
	crop    image.Gray  // the ink's bounding box
	rows    byteRows
	scan    inkScan
	rowBuf  []float32  // scaleTent: one source row
	reach   []int32    // scaleTent: the first output reaching each source column
	matrix  []float32  // scaleTent: the weights by source pixel, for few outputs
	hf      hfilter    // scaleTent: the horizontal filter
	tmp     []float32  // scaleTent: the horizontally scaled rows
	inked   []bool     // scaleTent: which of tmp's rows have ink
	acc     []float32  // scaleTent: one output row
	offs    []int32    // scaleTent: one output row's taps: offsets in tmp
	ws      []float32  // scaleTent: and weights
	taps    []tentTaps // scaleTent: both filters' taps
	weights []float32  // scaleTent: the taps' weights
	bucket  []uint16   // stretch16: the pixels of the percentile's bucket
	on      []uint64   // strokesTooThin: the stroke pixels, a bit each
	inks    []inkByte  // the bytes of the ink
}

// scratches recycles scratch values; the pool holds no state a caller can
// observe.
var scratches = sync.Pool{New: func() any { return new(scratch) }}

// grown returns b resliced to n elements, reallocated when it is too short;
// the elements' values are whatever they were.
func grown[T any](b []T, n int) []T {
	if cap(b) < n {
		return make([]T, n)
	}
	return b[:n]
}

// parallelPixels is the image size from which the row passes of
// preprocessing split their rows over the cores: a 4000x4000 drawing's
// passes take several milliseconds each, a canvas snapshot's microseconds.
const parallelPixels = 1 << 20

// rowParts returns how many contiguous parts the row passes of
// preprocessing split the rows of a w x h image into: one per core (at most
// maxParts) for a large image, 1 otherwise. With 1, the callers run the
// pass directly: handing a closure to inParts makes what it captures escape
// to the heap.
func rowParts(w, h int) int {
	if w*h < parallelPixels {
		return 1
	}
	return min(runtime.GOMAXPROCS(0), h, maxParts)
}

// inParts splits rows [0, h) into parts contiguous parts, runs fn on each
// on its own goroutine and returns when all are done. fn gets its part's
// index and rows [y0, y1).
func inParts(parts, h int, fn func(part, y0, y1 int)) {
	var wg sync.WaitGroup
	for p := range parts {
		wg.Go(func() { fn(p, p*h/parts, (p+1)*h/parts) })
	}
	wg.Wait()
}

// maxParts bounds rowParts' parts where results are kept per part.
const maxParts = 64

// inkScan is what the passes over the whole image learn of it.
type inkScan struct {
	w, h int
	min  uint8 // the smallest flipped byte
	// rowMin is the smallest flipped byte of each row; repeat[y] reports row
	// y known to equal row y-1 (false may also mean not compared).
	rowMin []uint8
	repeat []bool
	// spans[y] is the first pixel with ink of row y and the one after the
	// last (box's, for the rows it reads; x0 >= x1 for none).
	spans []inkSpan
	// hist counts the bytes of each ink row from its first pixel with ink to
	// its last (box's; see histRows).
	hist [256]int
}

// scanInk reads the w x h image px (stride w), with its bytes XORed with
// flip so that more ink is a smaller byte, for the smallest flipped byte of
// every row (kernels.MinByte, in SIMD). In an image of repeatPixels or more,
// a row equal to the one above is not read again, and the rows are split
// over the cores for a large one.
func scanInk(s *scratch, px []uint8, w, h int, flip uint8) *inkScan {
	scan := &s.scan
	scan.w, scan.h = w, h
	scan.rowMin, scan.repeat = grown(scan.rowMin, h), grown(scan.repeat, h)
	if w*h < repeatPixels {
		// A snapshot: all rows' minima in one call; rows that repeat are few
		// and cheap to read again.
		kernels.RowMins(scan.rowMin, px, w, flip)
		clear(scan.repeat)
	} else if parts := rowParts(w, h); parts == 1 {
		scanInkRows(px, w, 0, h, flip, scan.rowMin, scan.repeat)
	} else {
		rowMin, repeat := scan.rowMin, scan.repeat
		inParts(parts, h, func(_, y0, y1 int) {
			scanInkRows(px, w, y0, y1, flip, rowMin, repeat)
		})
	}
	scan.min = slices.Min(scan.rowMin)
	return scan
}

// repeatPixels is the image size from which scanInk looks for rows that
// repeat the row above (a drawing scaled up by repeating pixels has many),
// so that the passes after it skip them.
const repeatPixels = 1 << 16

// scanInkRows is scanInk over rows [y0, y1), writing rowMin[y0:y1] and
// repeat[y0:y1].
func scanInkRows(px []uint8, w, y0, y1 int, flip uint8, rowMin []uint8, repeat []bool) {
	for y := y0; y < y1; y++ {
		row := px[y*w : (y+1)*w]
		if repeat[y] = y > y0 && bytes.Equal(row, px[(y-1)*w:y*w]); repeat[y] {
			rowMin[y] = rowMin[y-1]
			continue
		}
		rowMin[y] = kernels.MinByte(row, flip)
	}
}

// inkSpan is a row's pixels from the first with ink to the last: [x0, x1).
type inkSpan struct{ x0, x1 int32 }

// box returns the bounding box of the ink, the pixels whose flipped byte is
// below limit, and fills scan.hist (see histRows). The rows with ink come
// from the scan; in them, the pixels with ink from SIMD compares
// (kernels.LessMask), whose union gives the columns.
func (scan *inkScan) box(px []uint8, flip, limit uint8) (box image.Rectangle) {
	clear(scan.hist[:])
	first, last := span(scan.rowMin, limit)
	if first < 0 {
		return image.Rectangle{}
	}
	w := scan.w
	box.Min.Y, box.Max.Y = first, last+1
	var small [maskWords]uint64
	cols := rowMask(small[:], w) // the columns with ink
	scan.spans = grown(scan.spans, scan.h)
	if parts := rowParts(w, last+1-first); parts == 1 {
		histRows(px, w, first, last+1, flip, limit, scan.repeat, scan.spans, &scan.hist, cols)
	} else {
		hists := make([][256]int, parts)
		colss := make([][]uint64, parts)
		words := len(cols)
		inParts(parts, last+1-first, func(part, y0, y1 int) {
			colss[part] = make([]uint64, words)
			histRows(px, w, first+y0, first+y1, flip, limit, scan.repeat, scan.spans, &hists[part], colss[part])
		})
		for p := range parts {
			for v, n := range hists[p] {
				scan.hist[v] += n
			}
			for i, m := range colss[p] {
				cols[i] |= m
			}
		}
	}
	box.Min.X, box.Max.X = maskSpan(cols, w)
	return box
}

// histRows adds to hist the bytes of rows [y0, y1) (not empty) of px (rows
// w bytes long) from the first pixel with ink (flipped byte below limit) of
// each row to its last, and the columns with ink to cols. The bytes in
// between that are not ink count too, all bytes alike, without a branch:
// their level is 0, so they change none of the sums over the histogram. A
// run of rows equal to its first is read once and counted as many times as
// it has rows (repeat is the scan's). The spans go into spans.
func histRows(px []uint8, w, y0, y1 int, flip, limit uint8, repeat []bool, spans []inkSpan, hist *[256]int, cols []uint64) {
	var more [3][256]int
	var small [maskWords]uint64
	mask := rowMask(small[:], w)
	for y := y0; y < y1; {
		row := px[y*w : (y+1)*w]
		n := 1 // the rows equal to this one, it included
		for y+n < y1 && repeat[y+n] {
			n++
		}
		y += n
		kernels.LessMask(mask, row, flip, limit)
		for i, set := range mask {
			cols[i] |= set
		}
		x0, x1 := maskSpan(mask, w)
		for k := y - n; k < y; k++ {
			spans[k] = inkSpan{int32(x0), int32(x1)}
		}
		if x0 >= x1 {
			continue
		}
		// Four pixels in a row into four histograms, so that a run of equal
		// bytes is not one chain of dependent additions.
		span := row[x0:x1]
		for ; len(span) >= 4; span = span[4:] {
			four := span[:4:4]
			hist[four[0]] += n
			more[0][four[1]] += n
			more[1][four[2]] += n
			more[2][four[3]] += n
		}
		for _, v := range span {
			hist[v] += n
		}
	}
	for v := range hist {
		hist[v] += more[0][v] + more[1][v] + more[2][v]
	}
}

// maskSpan returns the first set bit of mask and the one after the last, or
// w, 0 for none.
func maskSpan(mask []uint64, w int) (x0, x1 int) {
	x0, x1 = w, 0
	for i, set := range mask {
		// Without a branch: a word with no bit set leaves both as they are.
		first, last := i*64+bits.TrailingZeros64(set), i*64+64-bits.LeadingZeros64(set)
		if set == 0 {
			first, last = x0, x1
		}
		x0, x1 = min(x0, first), last
	}
	return x0, x1
}

// maskWords is the row masks' size that lives on the stack: rows of up to
// 4096 pixels.
const maskWords = 64

// rowMask returns a zeroed mask for a row of w pixels: small when it is
// large enough, else a new one.
func rowMask(small []uint64, w int) []uint64 {
	if words := (w + 63) / 64; words <= len(small) {
		return small[:words]
	}
	return make([]uint64, (w+63)/64)
}

// span returns the first and last index of a byte of b below limit, -1 for
// none.
func span(b []uint8, limit uint8) (first, last int) {
	first, last = -1, -1
	for i, v := range b {
		if v < limit {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	return first, last
}

// scaledSide returns side*target/long rounded, at least 1.
func scaledSide(side, long, target int) int {
	return max(1, (side*target+long/2)/long)
}

// borderPixels appends the pixels on the border of g to px.
func borderPixels(px []uint8, g *image.Gray) []uint8 {
	w, h := g.Rect.Dx(), g.Rect.Dy()
	for x := range w {
		px = append(px, g.Pix[x], g.Pix[(h-1)*g.Stride+x])
	}
	for y := 1; y < h-1; y++ {
		px = append(px, g.Pix[y*g.Stride], g.Pix[y*g.Stride+w-1])
	}
	return px
}

// allEqual reports whether every byte of px equals the first.
func allEqual(px []uint8) bool {
	for _, v := range px {
		if v != px[0] {
			return false
		}
	}
	return true
}

// background returns the background level of an image from its border
// pixels (not empty): their median, the lower one of an even count; when
// that is light (the ink is dark), invert is true and bg is the median of
// the inverted pixels (255-v).
func background(border []uint8) (invert bool, bg int) {
	if allEqual(border) { // a canvas's border, typically
		v := int(border[0])
		if v > 127 {
			return true, 255 - v
		}
		return false, v
	}
	var hist [256]int
	for _, v := range border {
		hist[v]++
	}
	n, seen := len(border), 0
	for v, c := range hist {
		if seen += c; 2*seen >= n {
			if v <= 127 {
				return false, v
			}
			break
		}
	}
	// The inverted pixels' lower median is 255 minus the pixels' upper one.
	seen = 0
	for v := 255; v >= 0; v-- {
		if seen += hist[v]; 2*seen >= n {
			return true, 255 - v
		}
	}
	return true, 0 // not reached: the counts add up to n
}

// inkLevels maps a flipped byte f (more ink is smaller) to its ink level:
// u = 255-f is the unflipped distance from the ink's far end, and the level
// is (u-bg)*255/(255-bg), rounded down, for u above the background bg, 0
// for the rest.
type inkLevels struct {
	bg, span uint32
	inv      float64 // 1/span
}

func newInkLevels(bg int) inkLevels {
	return inkLevels{bg: uint32(bg), span: uint32(255 - bg), inv: 1 / float64(255-bg)}
}

// of returns the level of flipped byte f.
func (l inkLevels) of(f uint8) uint8 {
	u := 255 - uint32(f)
	if u <= l.bg {
		return 0
	}
	// By the reciprocal with an exact correction: a division by a variable
	// costs more.
	num := (u - l.bg) * 255
	q := uint32(float64(num) * l.inv)
	if q*l.span > num {
		q--
	} else if (q+1)*l.span <= num {
		q++
	}
	return uint8(q)
}

// limit returns the smallest flipped byte whose level is at most floor (the
// levels fall as f grows, and f = 255 has level 0).
func (l inkLevels) limit(floor uint8) uint8 {
	lo, hi := 0, 255 // the answer is in [lo, hi]
	for lo < hi {
		if mid := (lo + hi) / 2; l.of(uint8(mid)) <= floor {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return uint8(lo)
}

// stretch16 scales g so that its ink reaches full white, as MNIST digits do
// (and a thin stroke averaged down during scaling gets its contrast back). The
// reference level is the 90th percentile of the non-black pixels rather than
// the maximum, so that one bright spot, such as two strokes crossing, does not
// leave the rest of the digit dim; brighter pixels are clipped. hist is the
// histogram of the high bytes of g's n non-black pixels (see scaleTent), and
// when c is not nil, the stretched pixels' sums for their centre of mass are
// added to it (see stretchBy). It reports false if g is black.
func stretch16(s *scratch, g *plane16, hist *[256]int, n int, c *massCenter) bool {
	ref, ok := stretchRef(s, g.px, hist, n)
	if ok {
		stretchBy(g.px, g.w, ref, c)
	}
	return ok
}

// stretchRef returns stretch16's reference level for the pixels px, of which
// n are not black, hist the histogram of their high bytes, or false for no
// ink. The 90th percentile is found by the histogram and a sort of the one
// bucket that holds it (the same value as sorting all).
func stretchRef(s *scratch, px []uint16, hist *[256]int, n int) (ref uint32, ok bool) {
	if n == 0 {
		return 0, false
	}
	rank, seen, hiByte := n*9/10, 0, 0
	for b, c := range hist {
		if seen+c > rank {
			hiByte = b
			break
		}
		seen += c
	}
	bucket := s.bucket[:0]
	for _, v := range px {
		if int(v>>8) == hiByte && v != 0 {
			bucket = append(bucket, v)
		}
	}
	slices.Sort(bucket)
	s.bucket = bucket
	return uint32(bucket[rank-seen]), true
}

// massCenter is the sums of a centre of mass: the pixels' sum and their sum
// weighted by x and by y.
type massCenter struct{ sum, sx, sy float64 }

// stretchBy replaces every pixel v of px (rows w long) by v*0xffff/ref,
// clipped to 0xffff, and when c is not nil adds the results to its sums, in
// row-major order, skipping black pixels (which add nothing).
func stretchBy(px []uint16, w int, ref uint32, c *massCenter) {
	// By a multiplication with the reciprocal and a correction of at most
	// one, which is exact (v*0xffff < 2^32) and several times cheaper than
	// dividing.
	inv := 1 / float64(ref)
	for y := 0; y*w < len(px); y++ {
		row, fy := px[y*w:(y+1)*w], float64(y)
		for x, v := range row {
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
			q = min(q, 0xffff)
			row[x] = uint16(q)
			if c != nil {
				f := float64(q)
				c.sum += f
				// The conversions round each product, which rules out a
				// fused multiply-add (Go may fuse on some architectures):
				// the same sums on every machine.
				c.sx += float64(f * float64(x))
				c.sy += float64(f * fy)
			}
		}
	}
}

// inkByte is a byte of the ink, its level and how many pixels have it.
type inkByte struct {
	v, level uint8
	n        int
}

// stretchTable fills table with the 16-bit level (l*0x101, as color.Gray's
// RGBA) of the bytes of the ink (inks, by falling level; the other bytes
// get 0), stretched as stretch16 does: the same values as stretch16 on the
// levels (with only 256 levels, the percentile comes from their counts). It
// returns the sum of the stretched levels of the pixels of the ink, and the
// reference level for stretched. There is ink (scan.box found some).
func stretchTable(table *[256]uint16, inks []inkByte) (sum uint64, ref uint32) {
	n := 0
	for _, b := range inks {
		n += b.n
	}
	// stretch16's reference: the high byte of l*0x101 is l, so its bucket
	// holds one value. Bytes of one level are next to each other in inks.
	rank, seen := n*9/10, 0
	for i := len(inks) - 1; i >= 0; i-- { // by rising level
		if seen += inks[i].n; seen > rank {
			ref = uint32(inks[i].level) * 0x101
			break
		}
	}
	clear(table[:])
	for _, b := range inks {
		table[b.v] = stretched(b.level, ref)
		sum += uint64(b.n) * uint64(table[b.v])
	}
	return sum, ref
}

// stretched returns level l as a 16-bit level stretched for the reference
// ref (see stretchTable).
func stretched(l uint8, ref uint32) uint16 {
	return uint16(min(0xffff, uint32(l)*0x101*0xffff/ref))
}

// strokeBits marks the stroke pixels of g (at least half bright) in s.on,
// one bit a pixel, rows of (g.w+63)/64 words with an empty row above and
// below, for strokesTooThin, and returns the sum of g's pixels.
func strokeBits(s *scratch, g *plane16) (sum uint64) {
	w, h := g.w, g.h
	words := (w + 63) / 64
	s.on = grown(s.on, (h+2)*words)
	clear(s.on)
	for y := range h {
		row := s.on[(y+1)*words : (y+2)*words]
		for x, v := range g.px[y*w : (y+1)*w] {
			sum += uint64(v)
			if v >= 0x8000 {
				row[x/64] |= 1 << (x % 64)
			}
		}
	}
	return sum
}

// thickenThinStrokes returns g, or g dilated into dilated when its strokes
// are much thinner than MNIST's relative to the digit size (see
// strokesTooThin; sum is the sum of g's pixels, s.on its stroke pixels).
func thickenThinStrokes(s *scratch, g *plane16, sum uint64, dilated *plane16) *plane16 {
	if r := strokesTooThin(s, g.w, g.h, sum); r > 0 {
		return dilate(g, r, dilated)
	}
	return g
}

// strokesTooThin returns by how many pixels to widen the strokes of a w x h
// image, 0 when they are wide enough. The stroke width is estimated as
// 2*ink area/ink perimeter, which is exact for long thin strokes: the area
// is sum, the sum of the pixels, in full-white pixels; the perimeter, the
// sides of stroke pixels (at least half bright) that face a non-stroke
// pixel or the frame, is counted on s.on, the stroke pixels a bit each (see
// strokeBits), a row at a time.
func strokesTooThin(s *scratch, w, h int, sum uint64) (radius int) {
	words := (w + 63) / 64
	on := s.on
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
		return 0
	}
	width := 2 * area / float64(perimeter)
	target := mnistStrokeWidth * float64(max(w, h)) / boxSide
	if width >= thinStrokeFactor*target {
		return 0
	}
	return max(0, int(math.Round((thickenedWidth*target-width)/2)))
}

// dilate writes into out g dilated with a disc of radius r, in a frame r
// pixels larger on every side, as if drawn with a thicker pen (whose strokes
// stick out of the thin pen's bounding box too), and returns out.
func dilate(g *plane16, r int, out *plane16) *plane16 {
	w, h := g.w, g.h
	var disc []image.Point
	for dy := -r; dy <= r; dy++ {
		for dx := -r; dx <= r; dx++ {
			if dx*dx+dy*dy <= r*r+r { // r*r+r rounds the disc's edge outwards
				disc = append(disc, image.Pt(dx, dy))
			}
		}
	}
	out.resize(w+2*r, h+2*r)
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
// shifting by whole pixels and staying inside the frame. c is digit's sums
// (see stretchBy).
func centerOfMassPlace(digit *plane16, c massCenter) *image.Gray {
	w, h := digit.w, digit.h
	sum, sx, sy := c.sum, c.sx, c.sy
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

// tentFilter appends to taps the taps that scale sw source pixels to dw
// with the bilinear (tent) kernel, widened by the scale factor when
// shrinking so that every source pixel counts: the filter of
// golang.org/x/image/draw's BiLinear, which this replaces for speed. The
// taps' weights are appended to weights, which is returned too.
func tentFilter(taps []tentTaps, weights []float32, dw, sw int) ([]tentTaps, []float32) {
	scale := float64(sw) / float64(dw)
	half, argScale := 1.0, 1.0
	if scale > 1 {
		half, argScale = scale, 1/scale
	}
	// Room for every weight first (at most int(2*half)+1 an output): the
	// taps keep slices of it.
	n := len(weights)
	all := slices.Grow(weights, dw*(int(2*half)+2))
	all = all[:cap(all)]
	for x := range dw {
		center := float64((float64(x)+0.5)*scale) - 0.5 // rounded product: no fused multiply-add
		// The source pixels within half of the centre, from a range that
		// holds them: int truncates, which is the floor from 0 up, and the
		// one past the ceiling has a weight of 0 and ends the loop.
		i := max(0, int(center-half))
		j := min(sw, int(center+half)+1)
		first, start, total := -1, n, 0.0
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
			all[n] = float32(1 - t)
			n++
			total += 1 - t
		}
		ws := all[start:n:n]
		for k, wt := range ws {
			ws[k] = float32(float64(wt) / total)
		}
		taps = append(taps, tentTaps{first: max(first, 0), weights: ws})
	}
	return taps, all[:n]
}

// rowSource is an image scaleTent reads, a row at a time.
type rowSource interface {
	size() (w, h int)
	// row writes row y's levels (0-65535, as float32) into buf[x0:x1] and
	// returns x0 and x1: the row is black outside [x0, x1), and x0 == x1
	// for a black row.
	row(y int, buf []float32) (x0, x1 int)
	// same reports whether row y (> 0) is known to equal row y-1.
	same(y int) bool
}

// scaleTent scales src (sw x sh) into dst, dw x dh, with the tent filter of
// tentFilter: horizontally row by row, then vertically. Black pixels at
// either end of a row and black rows are skipped (adding a weight times zero
// to a sum of non-negative terms leaves it as it was, so the result is the
// same), and a row src reports equal to the one above has its horizontal
// result copied. When hist is not nil, the histogram of the high bytes of
// dst's non-black pixels is added to it, and their count returned.
func scaleTent(s *scratch, dst *plane16, dw, dh, sw, sh int, src rowSource, hist *[256]int) (lit int) {
	s.taps, s.weights = tentFilter(s.taps[:0], s.weights[:0], dw, sw)
	s.taps, s.weights = tentFilter(s.taps, s.weights, dh, sh)
	hx, hy := s.taps[:dw], s.taps[dw:]
	f := &s.hf
	f.taps, f.stride, f.matrix = hx, dw, nil
	if _, bytes := src.(*byteRows); bytes && dw <= matrixOutputs {
		// A few outputs from bytes: the weights by source pixel, a row of
		// stride each, for kernels.ScaleRowBytes.
		f.stride = (dw + 7) &^ 7
		s.matrix = grown(s.matrix, sw*f.stride)
		clear(s.matrix)
		for x, t := range hx {
			for k, wt := range t.weights {
				s.matrix[(t.first+k)*f.stride+x] = wt
			}
		}
		f.matrix = s.matrix
	} else {
		// reach[c] is the first output whose taps reach source column c or
		// beyond (taps move right as the output does).
		s.reach = grown(s.reach, sw)
		x := 0
		for c := range s.reach {
			for x < dw && hx[x].first+len(hx[x].weights) <= c {
				x++
			}
			s.reach[c] = int32(x)
		}
		f.reach = s.reach
	}
	stride := f.stride
	s.tmp, s.inked = grown(s.tmp, sh*stride), grown(s.inked, sh)
	tmp, inked := s.tmp, s.inked // horizontally scaled rows; which have ink
	if parts := rowParts(sw, sh); parts == 1 {
		s.rowBuf = grown(s.rowBuf, sw)
		scaleRows(src, f, s.rowBuf, tmp, inked, 0, sh)
	} else {
		inParts(parts, sh, func(_, y0, y1 int) {
			scaleRows(src, f, make([]float32, sw), tmp, inked, y0, y1)
		})
	}
	dst.resize(dw, dh)
	s.acc = grown(s.acc, stride)
	acc := s.acc // a whole row of tmp: the SIMD kernel keeps it in registers
	for y, t := range hy {
		clear(acc)
		offs, ws := s.offs[:0], s.ws[:0] // the taps on rows with ink
		for k, wt := range t.weights {
			if r := t.first + k; inked[r] {
				offs, ws = append(offs, int32(r*stride)), append(ws, wt)
			}
		}
		kernels.AxpyRows(acc, tmp, offs, ws)
		s.offs, s.ws = offs, ws
		out := dst.px[y*dw : (y+1)*dw]
		for x, v := range acc[:len(out)] {
			// Rounded and clamped to 0-65535 (comparisons, not min and
			// max, which must also handle NaN).
			v += 0.5
			if v < 0 {
				v = 0
			} else if v > 0xffff {
				v = 0xffff
			}
			out[x] = uint16(v)
		}
		if hist != nil {
			for _, v := range out {
				if v != 0 {
					hist[v>>8]++
					lit++
				}
			}
		}
	}
	return lit
}

// matrixOutputs is the most outputs a row of which scaleTent computes with
// kernels.ScaleRowBytes: the weights of every source pixel for every output, most
// of them zero, are fewer multiplications than they save in overhead only
// for a few outputs (the final 20 pixels).
const matrixOutputs = 32

// hfilter is scaleTent's horizontal filter: its taps and, for scaleRows, the
// first output reaching each source column, or for a few outputs read from
// bytes the matrix of the weights by source pixel, stride floats each.
// stride is also the row stride of scaleRows' results.
type hfilter struct {
	taps   []tentTaps
	reach  []int32
	matrix []float32
	stride int
}

// scaleRows is scaleTent's horizontal pass over rows [y0, y1) of src with
// the filter f, with buf to read a row into, writing tmp's rows
// (f.stride apart) and inked. Its first row is always computed: the row
// above may be another part's, not written yet.
func scaleRows(src rowSource, f *hfilter, buf, tmp []float32, inked []bool, y0, y1 int) {
	hx, stride := f.taps, f.stride
	for y := y0; y < y1; y++ {
		out := tmp[y*stride : (y+1)*stride]
		if y > y0 && src.same(y) {
			copy(out, tmp[(y-1)*stride:y*stride])
			inked[y] = inked[y-1]
			continue
		}
		clear(out)
		if f.matrix != nil { // src is a *byteRows: straight from its bytes
			b := src.(*byteRows)
			x0, x1 := b.inkSpan(y)
			inked[y] = x0 < x1
			if y+1 == y1 || src.same(y+1) {
				b.scale(out, f, y, x0, x1)
				continue
			}
			// Two rows at once: their sums overlap in the CPU.
			y++
			next := tmp[y*stride : (y+1)*stride]
			clear(next)
			n0, n1 := b.inkSpan(y)
			inked[y] = n0 < n1
			if !inked[y-1] || !inked[y] {
				b.scale(out, f, y-1, x0, x1)
				b.scale(next, f, y, n0, n1)
				continue
			}
			x0, x1 = min(x0, n0), max(x1, n1) // the pixels between are black in either row
			kernels.ScaleRowBytes2(out, next, f.matrix[x0*stride:], b.bytes(y - 1)[x0:x1], b.bytes(y)[x0:x1], b.table)
			continue
		}
		x0, x1 := src.row(y, buf)
		if inked[y] = x0 < x1; !inked[y] {
			continue
		}
		// The outputs whose taps reach into [x0, x1).
		for x := int(f.reach[x0]); x < len(hx) && hx[x].first < x1; x++ {
			t := hx[x]
			lo, hi := max(t.first, x0), min(t.first+len(t.weights), x1)
			ws, px := t.weights[lo-t.first:hi-t.first], buf[lo:hi]
			px = px[:len(ws)]
			var sum float32
			for k, wt := range ws {
				sum += float32(wt * px[k]) // rounded product: no fused multiply-add
			}
			out[x] = sum
		}
	}
}

// byteRows is a crop of an 8-bit image read through a table of 16-bit
// levels, as a rowSource. The levels fall as the flipped byte (v^flip)
// grows: they are 0 from the flipped byte inkBelow, and below half bright
// (0x8000), not stroke, from strokeBelow.
type byteRows struct {
	g                     *image.Gray
	table                 *[256]uint16
	flip                  uint8
	inkBelow, strokeBelow uint8
	repeat                []bool    // the scan's, from the crop's first row
	spans                 []inkSpan // the scan's, from the crop's first row
	x                     int32     // the crop's first column
}

// byteRows returns s's byteRows, set to read g through table.
func (s *scratch) byteRows(g *image.Gray, table *[256]uint16, flip, inkBelow, strokeBelow uint8) *byteRows {
	y := g.Rect.Min.Y
	s.rows = byteRows{g, table, flip, inkBelow, strokeBelow, s.scan.repeat[y:], s.scan.spans[y:], int32(g.Rect.Min.X)}
	return &s.rows
}

func (r *byteRows) size() (w, h int) { return r.g.Rect.Dx(), r.g.Rect.Dy() }

// bytes returns row y's bytes.
func (r *byteRows) bytes(y int) []uint8 {
	off := y * r.g.Stride
	return r.g.Pix[off : off+r.g.Rect.Dx()]
}

// scale adds row y's pixels [x0, x1) (none when x0 >= x1) through f's
// weight matrix to out.
func (r *byteRows) scale(out []float32, f *hfilter, y, x0, x1 int) {
	if x0 < x1 {
		kernels.ScaleRowBytes(out, f.matrix[x0*f.stride:], r.bytes(y)[x0:x1], r.table)
	}
}

func (r *byteRows) row(y int, buf []float32) (x0, x1 int) {
	x0, x1 = r.inkSpan(y)
	if x0 >= x1 {
		return 0, 0
	}
	dst, table := buf[x0:x1], r.table
	for x, v := range r.bytes(y)[x0:x1] {
		dst[x] = float32(table[v])
	}
	return x0, x1
}

// inkSpan returns the first pixel with ink of row y and the one after the
// last (x0 >= x1 for none), as box found them.
func (r *byteRows) inkSpan(y int) (x0, x1 int) {
	sp := r.spans[y]
	return int(sp.x0 - r.x), int(sp.x1 - r.x)
}

// same reports the whole rows equal, as the scan found them.
func (r *byteRows) same(y int) bool { return r.repeat[y] }

// strokeBits marks the stroke pixels (at least half bright) in s.on as the
// function strokeBits does for a plane16.
func (r *byteRows) strokeBits(s *scratch) {
	w, h := r.size()
	words := (w + 63) / 64
	s.on = grown(s.on, (h+2)*words)
	clear(s.on[:words]) // rows -1 and h stay empty
	clear(s.on[(h+1)*words:])
	for y := range h {
		kernels.LessMask(s.on[(y+1)*words:(y+2)*words], r.bytes(y), r.flip, r.strokeBelow)
	}
}

// copyTo writes the image's levels into p.
func (r *byteRows) copyTo(p *plane16) {
	w, h := r.size()
	p.resize(w, h)
	for y := range h {
		out := p.px[y*w : (y+1)*w]
		for x, v := range r.bytes(y) {
			out[x] = r.table[v]
		}
	}
}

// plane16 is a w x h image of 16-bit levels (0-65535), row-major, in
// native uint16s: the intermediate images of preprocessing.
type plane16 struct {
	w, h int
	px   []uint16
}

// resize makes p w x h, reusing its memory; the pixels' values are
// whatever they were.
func (p *plane16) resize(w, h int) { p.w, p.h, p.px = w, h, grown(p.px, w*h) }

func (p *plane16) size() (w, h int) { return p.w, p.h }

func (p *plane16) row(y int, buf []float32) (x0, x1 int) {
	px := p.px[y*p.w : (y+1)*p.w]
	for x0 < len(px) && px[x0] == 0 {
		x0++
	}
	if x0 == len(px) {
		return 0, 0
	}
	x1 = len(px)
	for px[x1-1] == 0 {
		x1--
	}
	dst := buf[x0:x1]
	for x, v := range px[x0:x1] {
		dst[x] = float32(v)
	}
	return x0, x1
}

func (p *plane16) same(int) bool { return false }
