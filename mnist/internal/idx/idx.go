package idx

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// IDX magic numbers: two zero bytes, the element type (0x08 = unsigned byte)
// and the number of dimensions.
const (
	idxImagesMagic = 0x00000803
	idxLabelsMagic = 0x00000801
)

// MaxBytes caps the data section an IDX file may declare (100 MB). The
// full MNIST training set is 47 MB; a larger claim means a corrupt or hostile
// header, and is refused before anything is allocated.
const MaxBytes = 100 << 20

// source returns a reader of the uncompressed IDX bytes of r, sniffing the
// gzip magic (1f 8b). The caller must call the returned check after reading
// everything: it reports trailing bytes and, for gzip, verifies the checksum
// (gzip only checks its CRC when the stream is read to the end).
func source(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(2)
	if err != nil && len(head) < 2 {
		if errors.Is(err, io.EOF) {
			return nil, formatErr(io.ErrUnexpectedEOF, "empty or truncated header")
		}
		return nil, fmt.Errorf("idx: read: %w", err)
	}
	if head[0] != 0x1f || head[1] != 0x8b {
		return br, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, formatErr(err, "corrupt gzip stream")
	}
	return zr, nil
}

// readHeader reads the magic number and the dims of an IDX stream.
func readHeader(r io.Reader, wantMagic uint32, what string) ([]int, error) {
	var magic uint32
	if err := binary.Read(r, binary.BigEndian, &magic); err != nil {
		return nil, readErr(err, "truncated header (magic number)")
	}
	if magic != wantMagic {
		hint := ""
		switch magic {
		case idxImagesMagic:
			hint = " (this is an images file)"
		case idxLabelsMagic:
			hint = " (this is a labels file)"
		}
		return nil, formatErr(nil, "magic number 0x%08x, want 0x%08x for an %s file%s", magic, wantMagic, what, hint)
	}
	ndims := int(wantMagic & 0xff)
	dims := make([]int, ndims)
	for i := range dims {
		var d uint32
		if err := binary.Read(r, binary.BigEndian, &d); err != nil {
			return nil, readErr(err, "truncated header (dimension %d of %d)", i+1, ndims)
		}
		if d > MaxBytes {
			return nil, formatErr(nil, "dimension %d is %d, larger than the %d-byte limit", i+1, d, MaxBytes)
		}
		dims[i] = int(d)
	}
	return dims, nil
}

// idxReadErr classifies a read error: running out of data is malformed input;
// anything else (an I/O failure, a gzip checksum) is passed on wrapped.
func readErr(err error, format string, args ...any) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return formatErr(err, format, args...)
}

// readData reads exactly size bytes, growing the buffer as data arrives so
// that a header claiming much more than the stream holds costs no big
// allocation, then checks that the stream ends there.
func readData(r io.Reader, size int) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(min(size, 1<<20))
	n, err := io.CopyN(&buf, r, int64(size))
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, formatErr(io.ErrUnexpectedEOF, "truncated data: got %d of %d bytes", n, size)
		}
		return nil, readErr(err, "reading data")
	}
	var one [1]byte
	m, err := io.ReadFull(r, one[:])
	if m > 0 {
		return nil, formatErr(nil, "unexpected bytes after the %d data bytes", size)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		// For gzip this is where a bad checksum shows.
		return nil, readErr(err, "reading the end of the stream")
	}
	return buf.Bytes(), nil
}

// ReadImages reads an IDX images file (magic 0x00000803: n images of rows x
// cols unsigned bytes), gzip-compressed or raw (the gzip magic 1f 8b is
// sniffed). pixels holds n*rows*cols bytes, image after image, row-major.
// Malformed data gives an error wrapping ErrFormat.
func ReadImages(r io.Reader) (n, rows, cols int, pixels []uint8, err error) {
	src, err := source(r)
	if err != nil {
		return 0, 0, 0, nil, err
	}
	dims, err := readHeader(src, idxImagesMagic, "images")
	if err != nil {
		return 0, 0, 0, nil, err
	}
	n, rows, cols = dims[0], dims[1], dims[2]
	if rows == 0 || cols == 0 {
		return 0, 0, 0, nil, formatErr(nil, "image size %dx%d has a zero dimension", rows, cols)
	}
	// Each factor is at most MaxBytes (< 2^27), so multiplying two at a time
	// and checking in between cannot overflow int64.
	if rc := rows * cols; rc > MaxBytes || n*rc > MaxBytes {
		return 0, 0, 0, nil, formatErr(nil, "%d images of %dx%d exceed the %d-byte limit", n, rows, cols, MaxBytes)
	}
	pixels, err = readData(src, n*rows*cols)
	if err != nil {
		return 0, 0, 0, nil, err
	}
	return n, rows, cols, pixels, nil
}

// ReadLabels reads an IDX labels file (magic 0x00000801: n unsigned
// bytes), gzip-compressed or raw. It does not check the label range (the caller
// does). Malformed data gives an error wrapping ErrFormat.
func ReadLabels(r io.Reader) (labels []uint8, err error) {
	src, err := source(r)
	if err != nil {
		return nil, err
	}
	dims, err := readHeader(src, idxLabelsMagic, "labels")
	if err != nil {
		return nil, err
	}
	return readData(src, dims[0])
}

// WriteImages writes n images of rows x cols bytes as a raw IDX images
// file (wrap w in a gzip.Writer for .gz).
func WriteImages(w io.Writer, n, rows, cols int, pixels []uint8) error {
	if n < 0 || rows <= 0 || cols <= 0 || n*rows*cols > MaxBytes {
		return fmt.Errorf("idx: write images: bad size %d images of %dx%d", n, rows, cols)
	}
	if len(pixels) != n*rows*cols {
		return fmt.Errorf("idx: write images: have %d pixel bytes, want %d images of %dx%d = %d", len(pixels), n, rows, cols, n*rows*cols)
	}
	hdr := binary.BigEndian.AppendUint32(nil, idxImagesMagic)
	for _, d := range []int{n, rows, cols} {
		hdr = binary.BigEndian.AppendUint32(hdr, uint32(d))
	}
	if _, err := w.Write(hdr); err != nil {
		return fmt.Errorf("idx: write images: %w", err)
	}
	if _, err := w.Write(pixels); err != nil {
		return fmt.Errorf("idx: write images: %w", err)
	}
	return nil
}

// WriteLabels writes labels as a raw IDX labels file.
func WriteLabels(w io.Writer, labels []uint8) error {
	if len(labels) > MaxBytes {
		return fmt.Errorf("idx: write labels: %d labels exceed the %d limit", len(labels), MaxBytes)
	}
	hdr := binary.BigEndian.AppendUint32(nil, idxLabelsMagic)
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(len(labels)))
	if _, err := w.Write(hdr); err != nil {
		return fmt.Errorf("idx: write labels: %w", err)
	}
	if _, err := w.Write(labels); err != nil {
		return fmt.Errorf("idx: write labels: %w", err)
	}
	return nil
}

// The standard MNIST file names, without the optional .gz suffix.
const (
	TrainImagesFile = "train-images-idx3-ubyte"
	TrainLabelsFile = "train-labels-idx1-ubyte"
	TestImagesFile  = "t10k-images-idx3-ubyte"
	TestLabelsFile  = "t10k-labels-idx1-ubyte"
)

// StandardFiles lists the four standard MNIST files in the order training
// images, training labels, test images, test labels.
func StandardFiles() [4]string {
	return [4]string{TrainImagesFile, TrainLabelsFile, TestImagesFile, TestLabelsFile}
}

// FindFile returns the path of name in dir, gzip-compressed (name.gz) or raw
// (name); the .gz file wins when both exist. It returns found == false, and
// no error, when neither is a regular file; err reports other failures (a
// folder that cannot be read).
func FindFile(dir, name string) (path string, found bool, err error) {
	for _, p := range []string{filepath.Join(dir, name+".gz"), filepath.Join(dir, name)} {
		st, err := os.Stat(p)
		if err == nil && st.Mode().IsRegular() {
			return p, true, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", false, err
		}
	}
	return "", false, nil
}
