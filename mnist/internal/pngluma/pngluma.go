package pngluma

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"io"
	"sync"
)

// ErrUnsupported is wrapped by every error of the package: the file is not
// a PNG layout this package handles, or it is damaged. Decode it with
// image/png.
var ErrUnsupported = errors.New("pngluma: PNG layout not handled")

// PNG colour types (PNG specification, section 11.2.2).
const (
	colorGray      = 0
	colorRGB       = 2
	colorPalette   = 3
	colorGrayAlpha = 4
	colorRGBA      = 6
)

var signature = []byte("\x89PNG\r\n\x1a\n")

// maxPixels bounds the planes Luminance allocates (1 GiB).
const maxPixels = 1 << 30

// header is what Decode needs of a PNG file: its IHDR, its palette as
// luminance levels and the zlib stream, split over the IDAT chunks.
type header struct {
	width, height int
	colorType     byte
	bpp           int // bytes per pixel
	// palette is, for colour type 3, set by paletteLevels on a copy of
	// the header for one background.
	palette *paletteLuma
	plte    []byte
	trns    []byte
	idat    [][]byte
	idatOne [1][]byte // idat's room for the common single chunk
}

// paletteLuma holds each palette index's luminance over a background and
// whether it is translucent; indices past the palette are opaque black,
// as image/png makes them.
type paletteLuma struct {
	level       [256]uint8
	translucent [256]bool
}

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupported, fmt.Sprintf(format, args...))
}

// File is a PNG file whose chunks Parse has read and checked.
type File struct {
	h header
}

// Parse reads the chunks of the PNG file data and checks their CRC-32s,
// without inflating the pixels. Its error wraps ErrUnsupported.
func Parse(data []byte) (*File, error) {
	f := &File{}
	if err := f.h.parse(data); err != nil {
		return nil, err
	}
	return f, nil
}

// Size returns the image's width and height in pixels, from its header.
func (f *File) Size() (width, height int) { return f.h.width, f.h.height }

// parse fills h, which is zero, from the chunks of data, and checks their
// CRCs.
func (h *header) parse(data []byte) error {
	if !bytes.HasPrefix(data, signature) {
		return unsupported("no PNG signature")
	}
	h.idat = h.idatOne[:0]
	rest := data[len(signature):]
	first := true
	idatDone := false // IDATs were seen and another chunk followed them
	for {
		if len(rest) < 12 {
			return unsupported("truncated chunk")
		}
		n := binary.BigEndian.Uint32(rest)
		if uint64(n) > uint64(len(rest)-12) {
			return unsupported("truncated chunk")
		}
		typ, body := rest[4:8], rest[8:8+n]
		if crc32.ChecksumIEEE(rest[4:8+n]) != binary.BigEndian.Uint32(rest[8+n:]) {
			return unsupported("%s chunk CRC mismatch", typ)
		}
		rest = rest[12+n:]
		name := string(typ)
		if first != (name == "IHDR") {
			return unsupported("IHDR is not the first chunk")
		}
		first = false
		// The chunk order of the PNG specification (section 5.6), as
		// image/png enforces it: anything out of order goes to image/png,
		// which decides.
		if name != "IDAT" && len(h.idat) > 0 {
			idatDone = true
		}
		switch name {
		case "IHDR":
			if h.width != 0 {
				return unsupported("a second IHDR")
			}
			if err := h.parseIHDR(body); err != nil {
				return err
			}
		case "PLTE":
			if h.plte != nil || h.trns != nil || len(h.idat) > 0 {
				return unsupported("PLTE out of order")
			}
			if h.colorType == colorGray || h.colorType == colorGrayAlpha {
				return unsupported("PLTE in a greyscale image")
			}
			h.plte = body
		case "tRNS":
			if h.trns != nil || len(h.idat) > 0 || (h.colorType == colorPalette && h.plte == nil) {
				return unsupported("tRNS out of order")
			}
			h.trns = body
		case "IDAT":
			if idatDone {
				return unsupported("IDAT chunks not consecutive")
			}
			h.idat = append(h.idat, body)
		case "IEND":
			if len(h.idat) == 0 {
				return unsupported("no IDAT chunk")
			}
			if h.colorType == colorPalette && h.plte == nil {
				return unsupported("no PLTE chunk")
			}
			if h.trns != nil && h.colorType != colorPalette {
				return unsupported("transparency key on colour type %d", h.colorType)
			}
			return nil
		default:
			if typ[0]&0x20 == 0 { // an unknown critical chunk
				return unsupported("critical chunk %q", typ)
			}
		}
	}
}

func (h *header) parseIHDR(b []byte) error {
	if len(b) != 13 {
		return unsupported("IHDR of %d bytes", len(b))
	}
	w, ht := binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:])
	depth, ct, comp, filt, interlace := b[8], b[9], b[10], b[11], b[12]
	if w == 0 || ht == 0 || w > 1<<24 || ht > 1<<24 {
		return unsupported("size %dx%d", w, ht)
	}
	if depth != 8 || comp != 0 || filt != 0 || interlace != 0 {
		return unsupported("bit depth %d, compression %d, filter %d, interlace %d", depth, comp, filt, interlace)
	}
	switch ct {
	case colorGray, colorPalette:
		h.bpp = 1
	case colorGrayAlpha:
		h.bpp = 2
	case colorRGB:
		h.bpp = 3
	case colorRGBA:
		h.bpp = 4
	default:
		return unsupported("colour type %d", ct)
	}
	h.width, h.height, h.colorType = int(w), int(ht), ct
	return nil
}

// paletteLevels fills h.palette for the background bg the way converting
// image/png's Paletted image does: its colours' premultiplied 16-bit RGBA,
// composited onto bg, through color.GrayModel.
func (h *header) paletteLevels(bg uint8) error {
	if len(h.plte)%3 != 0 || len(h.plte) == 0 || len(h.plte) > 3*256 {
		return unsupported("PLTE of %d bytes", len(h.plte))
	}
	if len(h.trns) > len(h.plte)/3 {
		return unsupported("tRNS longer than the palette")
	}
	bg16 := uint32(bg) * 0x101
	h.palette = &paletteLuma{}
	for i := range 256 {
		var c color.Color = color.RGBA{0, 0, 0, 0xff}
		if i < len(h.plte)/3 {
			r, g, b := h.plte[3*i], h.plte[3*i+1], h.plte[3*i+2]
			c = color.RGBA{r, g, b, 0xff}
			if i < len(h.trns) {
				c = color.NRGBA{r, g, b, h.trns[i]}
			}
		}
		r, g, b, a := c.RGBA()
		h.palette.translucent[i] = a != 0xffff
		r += bg16 * (0xffff - a) / 0xffff
		g += bg16 * (0xffff - a) / 0xffff
		b += bg16 * (0xffff - a) / 0xffff
		h.palette.level[i] = color.GrayModel.Convert(color.RGBA64{uint16(min(r, 0xffff)), uint16(min(g, 0xffff)), uint16(min(b, 0xffff)), 0xffff}).(color.Gray).Y
	}
	return nil
}

// inflaters recycles flate decompressors (about 40 KB of tables and window
// each) across calls; the pool holds no state a caller can observe.
var inflaters sync.Pool

// inflated recycles the buffers images are inflated into: whole for small
// images, blocks of rows for large ones.
var inflated sync.Pool

// inflatedBuffer returns a recycled buffer of at least n bytes, for
// inflated.Put when done.
func inflatedBuffer(n int) *[]byte {
	if p, _ := inflated.Get().(*[]byte); p != nil && cap(*p) >= n {
		return p
	}
	b := make([]byte, n)
	return &b
}

func inflater(r io.Reader) io.ReadCloser {
	if f, ok := inflaters.Get().(io.ReadCloser); ok {
		if err := f.(flate.Resetter).Reset(r, nil); err == nil {
			return f
		}
	}
	return flate.NewReader(r)
}

// Decode decodes the PNG file data into its luminance plane; see
// File.Luminance.
func Decode(data []byte, bg uint8, buf []byte) (*image.Gray, bool, error) {
	f, err := Parse(data)
	if err != nil {
		return nil, false, err
	}
	return f.Luminance(bg, buf)
}

// Luminance inflates the image into its luminance plane (origin 0,0,
// Stride equal to the width), with transparent parts composited onto the
// grey level bg, and reports whether any pixel is not fully opaque. The
// plane's pixels are buf's when it has room for them (they are
// overwritten), a new slice otherwise. Every error wraps ErrUnsupported.
// It may be called again, with another background; it is safe for
// concurrent use.
func (f *File) Luminance(bg uint8, buf []byte) (*image.Gray, bool, error) {
	h := &f.h
	if h.colorType == colorPalette {
		c := *h // a copy: the palette levels depend on bg
		if err := c.paletteLevels(bg); err != nil {
			return nil, false, err
		}
		h = &c
	}
	// The zlib header (RFC 1950): deflate, no preset dictionary.
	stream := chunkCursor{chunks: h.idat}
	var zh [2]byte
	if stream.take(zh[:]) < len(zh) {
		return nil, false, unsupported("zlib header: %v", io.ErrUnexpectedEOF)
	}
	if zh[0]&0x0f != 8 || zh[0]>>4 > 7 || zh[1]&0x20 != 0 || (uint16(zh[0])<<8|uint16(zh[1]))%31 != 0 {
		return nil, false, unsupported("zlib header %x", zh)
	}
	w, ht := h.width, h.height
	if w > maxPixels/ht {
		// Callers check the size against their own, smaller limit first;
		// this only keeps an absurd header from reaching make.
		return nil, false, unsupported("%dx%d pixels is more than %d", w, ht, maxPixels)
	}
	if cap(buf) >= w*ht {
		buf = buf[:w*ht]
	} else {
		buf = make([]byte, w*ht)
	}
	img := &image.Gray{Pix: buf, Stride: w, Rect: image.Rect(0, 0, w, ht)}
	if storedOnly(stream) {
		// Uncompressed data (a small snapshot written at compression
		// level 0): copied, not inflated.
		if h.height*(1+w*h.bpp) < parallelBytes {
			translucent, err := h.storedRows(storedReader{c: stream}, img, bg)
			if err != nil {
				return nil, false, err
			}
			return img, translucent, nil
		}
		r := &storedReader{c: stream}
		translucent, err := h.rows(r, img, bg)
		if err == nil && !r.atEOF() {
			err = unsupported("data after the last row")
		}
		if err != nil {
			return nil, false, err
		}
		return img, translucent, nil
	}
	// One bytes.Reader over the deflate stream: compress/flate reads it a
	// byte at a time through ReadByte, so it must be cheap.
	data := h.idat[0]
	if len(h.idat) > 1 {
		data = bytes.Join(h.idat, nil)
	}
	zr := inflater(bytes.NewReader(data[len(zh):]))
	translucent, err := h.rows(zr, img, bg)
	if err == nil {
		// The stream must end with the last row, as image/png requires.
		var one [1]byte
		if n, rerr := io.ReadFull(zr, one[:]); n != 0 || rerr != io.EOF {
			err = unsupported("data after the last row")
		}
	}
	inflaters.Put(zr)
	if err != nil {
		return nil, false, err
	}
	return img, translucent, nil
}

// parallelBytes is the inflated size from which rows inflates on one
// goroutine while it unfilters on another: a 4000x4000 RGB image (48 MB)
// takes about as long to inflate as to unfilter, and a small one is done
// before a goroutine would be worth starting.
const parallelBytes = 4 << 20

// rows inflates, unfilters and converts every row.
func (h *header) rows(zr io.Reader, img *image.Gray, bg uint8) (bool, error) {
	rowLen := 1 + h.width*h.bpp
	if h.height*rowLen < parallelBytes {
		p := inflatedBuffer(h.height * rowLen)
		defer inflated.Put(p)
		buf := (*p)[:h.height*rowLen]
		if _, err := io.ReadFull(zr, buf); err != nil {
			return false, unsupported("pixel data: %v", err)
		}
		t, _, err := h.block(buf, 0, nil, img, bg, false)
		return t, err
	}

	// Blocks of rows go from the inflating goroutine to this one and back.
	type block struct {
		buf []byte
		n   int
		err error
	}
	per := max(1, (1<<20)/rowLen)
	const blocks = 4
	free, full := make(chan []byte, blocks), make(chan block, blocks)
	for range blocks {
		p := inflatedBuffer(per * rowLen)
		defer inflated.Put(p)
		free <- (*p)[:per*rowLen]
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(full)
		for y := 0; y < h.height; y += per {
			var buf []byte
			select {
			case buf = <-free:
			case <-done:
				return
			}
			n := min(per, h.height-y)
			_, err := io.ReadFull(zr, buf[:n*rowLen])
			if err == nil {
				err = markRepeats(buf[:n*rowLen], rowLen, y)
			}
			select {
			case full <- block{buf, n, err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	// The inflater goes back to the pool only after the goroutine stopped.
	defer func() {
		close(done)
		wg.Wait()
	}()

	above := make([]byte, rowLen) // the last unfiltered row of the previous block
	var prev []byte
	translucent, y := false, 0
	for b := range full {
		if errors.Is(b.err, ErrUnsupported) {
			return false, b.err
		}
		if b.err != nil {
			return false, unsupported("pixel data: %v", b.err)
		}
		t, last, err := h.block(b.buf[:b.n*rowLen], y, prev, img, bg, true)
		if err != nil {
			return false, err
		}
		translucent = translucent || t
		copy(above, last)
		prev = above
		y += b.n
		free <- b.buf
	}
	return translucent, nil
}

// filterRepeat marks, in place of its filter type, a row that repeats the
// one above: filtered Up with zero differences, not the first row. Only
// markRepeats writes it; a file's own byte of that value is refused first.
const filterRepeat = 0xff

// markRepeats checks the filter types of the rows in buf (each rowLen
// bytes, a filter type first), rows y0, y0+1, ... of the image, and marks
// those that repeat the row above with filterRepeat. The goroutine that
// inflates the rows calls it, while they are in its cache: the one that
// unfilters them then copies the luminance of the row above and need not
// read them at all.
func markRepeats(buf []byte, rowLen, y0 int) error {
	for r := 0; r*rowLen < len(buf); r++ {
		row := buf[r*rowLen : (r+1)*rowLen]
		switch {
		case row[0] > filterPaeth:
			return unsupported("filter type %d", row[0])
		case row[0] == filterUp && y0+r > 0 && allZero(row[1:]):
			row[0] = filterRepeat
		}
	}
	return nil
}

// block unfilters and converts the rows in buf (each 1+width*bpp bytes, a
// filter type first), which are rows y0, y0+1, ... of the image, given
// the unfiltered row above them (nil for the first row of the image). It
// returns the last unfiltered row, which may be prev itself. Rows are
// marked by markRepeats when marked is true.
func (h *header) block(buf []byte, y0 int, prev []byte, img *image.Gray, bg uint8, marked bool) (translucent bool, last []byte, err error) {
	rowLen := 1 + h.width*h.bpp
	if prev == nil { // above the first row: zeros, only read
		if rowLen <= len(zeros) {
			prev = zeros[:rowLen]
		} else {
			prev = make([]byte, rowLen)
		}
	}
	for r := 0; r*rowLen < len(buf); r++ {
		y := y0 + r
		cur := buf[r*rowLen : (r+1)*rowLen]
		out := img.Pix[y*img.Stride : y*img.Stride+h.width]
		switch {
		case marked && cur[0] == filterRepeat, !marked && cur[0] == filterUp && y > 0 && allZero(cur[1:]):
			// The row repeats the one above (a drawing's background, or a
			// stroke that runs down): prev stays, the luminance is copied.
			copy(out, img.Pix[(y-1)*img.Stride:])
			continue
		case cur[0] == filterUp && y > 0:
			// The filter most rows of a drawing use: fused with the
			// conversion, so that unchanged pixels are copied, not converted.
			if h.upRow(out, img.Pix[(y-1)*img.Stride:], cur[1:], prev[1:], bg) {
				translucent = true
			}
		default:
			if err := unfilter(cur[0], cur[1:], prev[1:], h.bpp); err != nil {
				return false, nil, err
			}
			if h.toLuma(out, cur[1:], bg) {
				translucent = true
			}
		}
		prev = cur
	}
	return translucent, prev, nil
}
