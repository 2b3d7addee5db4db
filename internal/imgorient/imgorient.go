package imgorient

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
)

// Orientation is the value of the EXIF Orientation tag: how the stored image
// is to be turned for display. The names say what to do to the stored image.
type Orientation int

// The eight orientations of the EXIF specification (section 4.6.4, tag 0x0112).
const (
	// Upright: row 0 at the top, column 0 at the left; nothing to do.
	Upright Orientation = 1
	// FlipHorizontal: row 0 at the top, column 0 at the right.
	FlipHorizontal Orientation = 2
	// Rotate180: row 0 at the bottom, column 0 at the right.
	Rotate180 Orientation = 3
	// FlipVertical: row 0 at the bottom, column 0 at the left.
	FlipVertical Orientation = 4
	// Transpose: row 0 at the left, column 0 at the top (mirror about the
	// main diagonal).
	Transpose Orientation = 5
	// Rotate90: row 0 at the right, column 0 at the top (turn 90° clockwise).
	Rotate90 Orientation = 6
	// Transverse: row 0 at the right, column 0 at the bottom (mirror about
	// the anti-diagonal).
	Transverse Orientation = 7
	// Rotate270: row 0 at the left, column 0 at the bottom (turn 90°
	// counter-clockwise).
	Rotate270 Orientation = 8
)

// Valid reports whether o is one of the eight defined orientations.
func (o Orientation) Valid() bool { return o >= Upright && o <= Rotate270 }

// SwapsSides reports whether displaying the image swaps its width and height
// (orientations 5 to 8).
func (o Orientation) SwapsSides() bool { return o >= Transpose && o <= Rotate270 }

// exifTagOrientation is the TIFF tag number of Orientation.
const exifTagOrientation = 0x0112

var (
	jpegSOI      = []byte{0xff, 0xd8}
	pngSignature = []byte("\x89PNG\r\n\x1a\n")
	exifHeader   = []byte("Exif\x00\x00")
)

// Read returns the Orientation tag of an encoded JPEG or PNG file, or Upright
// when the file has none, or a value that is unreadable or reserved (see the
// package documentation). It reads only the metadata before the image data.
func Read(data []byte) Orientation {
	var tiff []byte
	switch {
	case bytes.HasPrefix(data, jpegSOI):
		tiff = jpegExif(data)
	case bytes.HasPrefix(data, pngSignature):
		tiff = pngExif(data)
	}
	if o := tiffOrientation(tiff); o.Valid() {
		return o
	}
	return Upright
}

// jpegExif returns the TIFF payload of the first Exif APP1 segment before
// the start of scan, or nil.
func jpegExif(b []byte) []byte {
	i := 2
	for i+4 <= len(b) {
		if b[i] != 0xff {
			return nil
		}
		m := b[i+1]
		switch {
		case m == 0xff: // fill byte
			i++
			continue
		case m == 0xd8 || m == 0x01 || (m >= 0xd0 && m <= 0xd7): // no length
			i += 2
			continue
		case m == 0xda || m == 0xd9: // start of scan, end of image
			return nil
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 || i+2+n > len(b) {
			return nil
		}
		seg := b[i+4 : i+2+n]
		if m == 0xe1 && bytes.HasPrefix(seg, exifHeader) {
			return seg[len(exifHeader):]
		}
		i += 2 + n
	}
	return nil
}

// pngExif returns the payload of the eXIf chunk before the first IDAT, or nil.
func pngExif(b []byte) []byte {
	i := len(pngSignature)
	for i+8 <= len(b) {
		n := int(binary.BigEndian.Uint32(b[i:]))
		typ := string(b[i+4 : i+8])
		if n > len(b)-i-12 {
			return nil
		}
		switch typ {
		case "eXIf":
			return b[i+8 : i+8+n]
		case "IDAT", "IEND":
			return nil
		}
		i += 12 + n
	}
	return nil
}

// tiffOrientation reads the Orientation entry of IFD0 of a TIFF structure
// (the body of an EXIF block), or returns 0.
func tiffOrientation(t []byte) Orientation {
	if len(t) < 8 {
		return 0
	}
	var bo binary.ByteOrder
	switch string(t[:4]) {
	case "II*\x00":
		bo = binary.LittleEndian
	case "MM\x00*":
		bo = binary.BigEndian
	default:
		return 0
	}
	ifd := bo.Uint32(t[4:])
	if ifd > uint32(len(t)-2) {
		return 0
	}
	p := int(ifd)
	count := int(bo.Uint16(t[p:]))
	p += 2
	for range count {
		if p+12 > len(t) {
			return 0
		}
		e := t[p : p+12]
		p += 12
		if bo.Uint16(e) != exifTagOrientation {
			continue
		}
		if bo.Uint32(e[4:]) < 1 {
			return 0
		}
		switch bo.Uint16(e[2:]) {
		case 3: // SHORT, left-justified in the value field
			return Orientation(bo.Uint16(e[8:]))
		case 4: // LONG
			v := bo.Uint32(e[8:])
			if v > 8 {
				return 0
			}
			return Orientation(v)
		default:
			return 0
		}
	}
	return 0
}

// Apply returns img turned for display as o says, with bounds starting at
// (0, 0); for orientations 5 to 8 the width and height are swapped. Upright
// and invalid values return img itself. The result is a new image of the
// same type for the standard library's image types (a *image.YCbCr comes
// back as a 4:4:4 *image.YCbCr, so chroma is not resampled), and an
// *image.RGBA64 for other types; img is not changed.
func Apply(img image.Image, o Orientation) image.Image {
	if !o.Valid() || o == Upright {
		return img
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	dst := image.Rect(0, 0, w, h)
	if o.SwapsSides() {
		dst = image.Rect(0, 0, h, w)
	}
	// src maps a display position to the stored position it shows.
	src := func(dx, dy int) (int, int) {
		var sx, sy int
		switch o {
		case FlipHorizontal:
			sx, sy = w-1-dx, dy
		case Rotate180:
			sx, sy = w-1-dx, h-1-dy
		case FlipVertical:
			sx, sy = dx, h-1-dy
		case Transpose:
			sx, sy = dy, dx
		case Rotate90:
			sx, sy = dy, h-1-dx
		case Transverse:
			sx, sy = w-1-dy, h-1-dx
		case Rotate270:
			sx, sy = w-1-dy, dx
		}
		return b.Min.X + sx, b.Min.Y + sy
	}
	switch m := img.(type) {
	case *image.Gray:
		out := image.NewGray(dst)
		permute(out.Pix, out.Stride, m.Pix, 1, dst, func(x, y int) int { return m.PixOffset(src(x, y)) })
		return out
	case *image.Gray16:
		out := image.NewGray16(dst)
		permute(out.Pix, out.Stride, m.Pix, 2, dst, func(x, y int) int { return m.PixOffset(src(x, y)) })
		return out
	case *image.Alpha:
		out := image.NewAlpha(dst)
		permute(out.Pix, out.Stride, m.Pix, 1, dst, func(x, y int) int { return m.PixOffset(src(x, y)) })
		return out
	case *image.RGBA:
		out := image.NewRGBA(dst)
		permute(out.Pix, out.Stride, m.Pix, 4, dst, func(x, y int) int { return m.PixOffset(src(x, y)) })
		return out
	case *image.NRGBA:
		out := image.NewNRGBA(dst)
		permute(out.Pix, out.Stride, m.Pix, 4, dst, func(x, y int) int { return m.PixOffset(src(x, y)) })
		return out
	case *image.CMYK:
		out := image.NewCMYK(dst)
		permute(out.Pix, out.Stride, m.Pix, 4, dst, func(x, y int) int { return m.PixOffset(src(x, y)) })
		return out
	case *image.RGBA64:
		out := image.NewRGBA64(dst)
		permute(out.Pix, out.Stride, m.Pix, 8, dst, func(x, y int) int { return m.PixOffset(src(x, y)) })
		return out
	case *image.NRGBA64:
		out := image.NewNRGBA64(dst)
		permute(out.Pix, out.Stride, m.Pix, 8, dst, func(x, y int) int { return m.PixOffset(src(x, y)) })
		return out
	case *image.Paletted:
		out := image.NewPaletted(dst, append(color.Palette(nil), m.Palette...))
		permute(out.Pix, out.Stride, m.Pix, 1, dst, func(x, y int) int { return m.PixOffset(src(x, y)) })
		return out
	case *image.YCbCr:
		out := image.NewYCbCr(dst, image.YCbCrSubsampleRatio444)
		for y := range dst.Dy() {
			for x := range dst.Dx() {
				sx, sy := src(x, y)
				out.Y[y*out.YStride+x] = m.Y[m.YOffset(sx, sy)]
				ci := m.COffset(sx, sy)
				out.Cb[y*out.CStride+x] = m.Cb[ci]
				out.Cr[y*out.CStride+x] = m.Cr[ci]
			}
		}
		return out
	default:
		out := image.NewRGBA64(dst)
		for y := range dst.Dy() {
			for x := range dst.Dx() {
				out.Set(x, y, img.At(src(x, y)))
			}
		}
		return out
	}
}

// permute fills dst (bounds r, starting at 0,0) pixel by pixel, each of size
// bytes, from the src offset that at gives for each display position.
func permute(dst []byte, dstStride int, src []byte, size int, r image.Rectangle, at func(x, y int) int) {
	for y := range r.Dy() {
		row := dst[y*dstStride:]
		for x := range r.Dx() {
			o := at(x, y)
			copy(row[x*size:(x+1)*size], src[o:o+size])
		}
	}
}
