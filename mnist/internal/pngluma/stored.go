package pngluma

import (
	"encoding/binary"
	"image"
	"io"
	"slices"
)

// chunkCursor reads a stream split over chunks (the IDAT chunks' data)
// without joining them. It is a value: a copy reads on independently.
type chunkCursor struct {
	chunks [][]byte
	i, off int // the next byte is chunks[i][off]
}

// take copies the next bytes of the stream into dst, as many as there
// are up to len(dst), and returns how many.
func (c *chunkCursor) take(dst []byte) int {
	n := 0
	for n < len(dst) && c.i < len(c.chunks) {
		k := copy(dst[n:], c.chunks[c.i][c.off:])
		n += k
		c.off += k
		if c.off == len(c.chunks[c.i]) {
			c.i, c.off = c.i+1, 0
		}
	}
	return n
}

// skip passes over the next n bytes of the stream and reports whether
// there were that many.
func (c *chunkCursor) skip(n int) bool {
	for n > 0 && c.i < len(c.chunks) {
		k := min(n, len(c.chunks[c.i])-c.off)
		n -= k
		c.off += k
		if c.off == len(c.chunks[c.i]) {
			c.i, c.off = c.i+1, 0
		}
	}
	return n == 0
}

// storedHeader reads the header of a deflate block that starts on a byte
// boundary and, if it is a stored block (RFC 1951, section 3.2.4: BFINAL
// and BTYPE 00 in the first byte, whose other bits are padding, then LEN
// and its ones' complement NLEN, little-endian), returns its length and
// whether it is the last block.
func (c *chunkCursor) storedHeader() (n int, final, ok bool) {
	var h [5]byte
	if c.take(h[:]) < len(h) || h[0]&6 != 0 {
		return 0, false, false
	}
	l := binary.LittleEndian.Uint16(h[1:])
	if l != ^binary.LittleEndian.Uint16(h[3:]) {
		return 0, false, false
	}
	return int(l), h[0]&1 != 0, true
}

// storedOnly reports whether the deflate stream at c is made of stored
// blocks only, each whole and valid, up to one marked last: what encoders
// write at compression level 0, whose data is then copied rather than
// inflated. Anything else, damage included, is for compress/flate.
func storedOnly(c chunkCursor) bool {
	for {
		n, final, ok := c.storedHeader()
		if !ok || !c.skip(n) {
			return false
		}
		if final {
			return true
		}
	}
}

// storedReader reads the data of a deflate stream of stored blocks only,
// which storedOnly accepted, as an io.Reader: io.EOF after the last block.
// The zlib trailer after it (the Adler-32) is not read, as with the
// inflater.
type storedReader struct {
	c     chunkCursor
	left  int  // bytes left in the current block
	final bool // the current block is the last
}

func (r *storedReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if r.left == 0 {
			if r.final {
				if n == 0 {
					return 0, io.EOF
				}
				break
			}
			l, final, ok := r.c.storedHeader()
			if !ok { // storedOnly said otherwise
				return n, io.ErrUnexpectedEOF
			}
			r.left, r.final = l, final
			continue
		}
		k := r.c.take(p[n : n+min(len(p)-n, r.left)])
		if k == 0 {
			return n, io.ErrUnexpectedEOF
		}
		n += k
		r.left -= k
	}
	return n, nil
}

// rowSpan returns the next whole rows of rowLen bytes of the stream, at
// most maxRows, that lie in one block of one chunk, and passes over them:
// a slice of the chunk, not a copy. It returns nil when not even one row
// does, and the data is then still to be read.
func (r *storedReader) rowSpan(rowLen, maxRows int) []byte {
	for r.left == 0 && !r.final {
		l, final, ok := r.c.storedHeader()
		if !ok {
			return nil
		}
		r.left, r.final = l, final
	}
	if r.c.i >= len(r.c.chunks) {
		return nil
	}
	chunk := r.c.chunks[r.c.i][r.c.off:]
	n := min(r.left, len(chunk)) / rowLen
	if n == 0 {
		return nil
	}
	s := chunk[:min(n, maxRows)*rowLen]
	r.left -= len(s)
	if r.c.off += len(s); r.c.off == len(r.c.chunks[r.c.i]) {
		r.c.i, r.c.off = r.c.i+1, 0
	}
	return s
}

// readFull fills p from the stream and reports whether there was enough.
func (r *storedReader) readFull(p []byte) bool {
	n, _ := r.Read(p)
	return n == len(p)
}

// atEOF reports whether the stream's data is all read, as the last row
// must end it.
func (r *storedReader) atEOF() bool {
	var one [1]byte
	n, err := r.Read(one[:])
	return n == 0 && err == io.EOF
}

// storedRows is rows for a stream of stored blocks that is small: a
// greyscale image whose rows are all filtered None (what the web page
// sends) is copied straight into img; anything else is copied into one
// buffer and unfiltered there.
func (h *header) storedRows(r storedReader, img *image.Gray, bg uint8) (bool, error) {
	if h.colorType == colorGray {
		direct := r // a copy: r stays at the start for the general way
		var ft [1]byte
		y := 0
	rows:
		for y < h.height {
			if span := direct.rowSpan(1+h.width, h.height-y); span != nil {
				// The common case: rows that lie whole in one block of
				// one IDAT chunk.
				for row := range slices.Chunk(span, 1+h.width) {
					if row[0] != filterNone {
						break rows
					}
					copy(img.Pix[y*img.Stride:y*img.Stride+h.width], row[1:])
					y++
				}
				continue
			}
			if !direct.readFull(ft[:]) || ft[0] != filterNone {
				break
			}
			if !direct.readFull(img.Pix[y*img.Stride : y*img.Stride+h.width]) {
				return false, unsupported("pixel data: %v", io.ErrUnexpectedEOF)
			}
			y++
		}
		if y == h.height {
			if !direct.atEOF() {
				return false, unsupported("data after the last row")
			}
			return false, nil
		}
	}
	rowLen := 1 + h.width*h.bpp
	p := inflatedBuffer(h.height * rowLen)
	defer inflated.Put(p)
	buf := (*p)[:h.height*rowLen]
	if !r.readFull(buf) {
		return false, unsupported("pixel data: %v", io.ErrUnexpectedEOF)
	}
	if !r.atEOF() {
		return false, unsupported("data after the last row")
	}
	t, _, err := h.block(buf, 0, nil, img, bg, false)
	return t, err
}
