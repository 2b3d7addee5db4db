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

// ErrUnsupported is wrapped by every error of Decode: the file is not a PNG
// layout this package handles, or it is damaged. Decode it with image/png.
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

// header is what Decode needs of a PNG file: its IHDR, its palette as
// luminance levels and the zlib stream, split over the IDAT chunks.
type header struct {
	width, height int
	colorType     byte
	bpp           int // bytes per pixel
	// palette holds, for colour type 3, each index's luminance over the
	// background and whether it is translucent; indices past the palette
	// are opaque black, as image/png makes them.
	palette     [256]uint8
	paletteSeen bool
	translucent [256]bool
	plte        []byte
	trns        []byte
	idat        [][]byte
}

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupported, fmt.Sprintf(format, args...))
}

// File is a PNG file whose chunks Parse has read and checked.
type File struct {
	h *header
}

// Parse reads the chunks of the PNG file data and checks their CRC-32s,
// without inflating the pixels. Its error wraps ErrUnsupported.
func Parse(data []byte) (*File, error) {
	h, err := parse(data)
	if err != nil {
		return nil, err
	}
	return &File{h: h}, nil
}

// Size returns the image's width and height in pixels, from its header.
func (f *File) Size() (width, height int) { return f.h.width, f.h.height }

// parse walks the chunks of data and checks their CRCs.
func parse(data []byte) (*header, error) {
	if !bytes.HasPrefix(data, signature) {
		return nil, unsupported("no PNG signature")
	}
	h := &header{}
	rest := data[len(signature):]
	first := true
	for {
		if len(rest) < 12 {
			return nil, unsupported("truncated chunk")
		}
		n := binary.BigEndian.Uint32(rest)
		if uint64(n) > uint64(len(rest)-12) {
			return nil, unsupported("truncated chunk")
		}
		typ, body := rest[4:8], rest[8:8+n]
		if crc32.ChecksumIEEE(rest[4:8+n]) != binary.BigEndian.Uint32(rest[8+n:]) {
			return nil, unsupported("%s chunk CRC mismatch", typ)
		}
		rest = rest[12+n:]
		name := string(typ)
		if first != (name == "IHDR") {
			return nil, unsupported("IHDR is not the first chunk")
		}
		first = false
		switch name {
		case "IHDR":
			if err := h.parseIHDR(body); err != nil {
				return nil, err
			}
		case "PLTE":
			h.plte = body
		case "tRNS":
			h.trns = body
		case "IDAT":
			h.idat = append(h.idat, body)
		case "IEND":
			if len(h.idat) == 0 {
				return nil, unsupported("no IDAT chunk")
			}
			if h.colorType == colorPalette && h.plte == nil {
				return nil, unsupported("no PLTE chunk")
			}
			if h.trns != nil && h.colorType != colorPalette {
				return nil, unsupported("transparency key on colour type %d", h.colorType)
			}
			return h, nil
		default:
			if typ[0]&0x20 == 0 { // an unknown critical chunk
				return nil, unsupported("critical chunk %q", typ)
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
		h.translucent[i] = a != 0xffff
		r += bg16 * (0xffff - a) / 0xffff
		g += bg16 * (0xffff - a) / 0xffff
		b += bg16 * (0xffff - a) / 0xffff
		h.palette[i] = color.GrayModel.Convert(color.RGBA64{uint16(min(r, 0xffff)), uint16(min(g, 0xffff)), uint16(min(b, 0xffff)), 0xffff}).(color.Gray).Y
	}
	return nil
}

// inflaters recycles flate decompressors (about 40 KB of tables and window
// each) across calls; the pool holds no state a caller can observe.
var inflaters sync.Pool

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
	h := *f.h // a copy: the palette levels depend on bg
	if h.colorType == colorPalette {
		if err := h.paletteLevels(bg); err != nil {
			return nil, false, err
		}
	}
	// One bytes.Reader over the zlib stream: compress/flate reads it a
	// byte at a time through ReadByte, so it must be cheap.
	stream := h.idat[0]
	if len(h.idat) > 1 {
		stream = bytes.Join(h.idat, nil)
	}
	idat := bytes.NewReader(stream)
	// The zlib header (RFC 1950): deflate, no preset dictionary.
	var zh [2]byte
	if _, err := io.ReadFull(idat, zh[:]); err != nil {
		return nil, false, unsupported("zlib header: %v", err)
	}
	if zh[0]&0x0f != 8 || zh[0]>>4 > 7 || zh[1]&0x20 != 0 || (uint16(zh[0])<<8|uint16(zh[1]))%31 != 0 {
		return nil, false, unsupported("zlib header %x", zh)
	}
	w, ht := h.width, h.height
	if cap(buf) >= w*ht {
		buf = buf[:w*ht]
	} else {
		buf = make([]byte, w*ht)
	}
	img := &image.Gray{Pix: buf, Stride: w, Rect: image.Rect(0, 0, w, ht)}
	zr := inflater(idat)
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

// rows inflates, unfilters and converts every row.
func (h *header) rows(zr io.Reader, img *image.Gray, bg uint8) (bool, error) {
	rowLen := h.width * h.bpp
	cur, prev := make([]byte, 1+rowLen), make([]byte, 1+rowLen)
	translucent := false
	for y := range h.height {
		if _, err := io.ReadFull(zr, cur); err != nil {
			return false, unsupported("row %d: %v", y, err)
		}
		out := img.Pix[y*img.Stride : y*img.Stride+h.width]
		if cur[0] == filterUp && y > 0 && allZero(cur[1:]) {
			// The row repeats the one above (a drawing's background, or a
			// stroke that runs down): keep prev, copy the luminance.
			copy(out, img.Pix[(y-1)*img.Stride:])
			continue
		}
		if cur[0] == filterUp && y > 0 {
			// The filter most rows of a drawing use: fused with the
			// conversion, so that unchanged pixels are copied, not converted.
			if h.upRow(out, img.Pix[(y-1)*img.Stride:], cur[1:], prev[1:], bg) {
				translucent = true
			}
		} else {
			if err := unfilter(cur[0], cur[1:], prev[1:], h.bpp); err != nil {
				return false, err
			}
			if h.toLuma(out, cur[1:], bg) {
				translucent = true
			}
		}
		cur, prev = prev, cur
	}
	return translucent, nil
}
