package mnist

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// IDX magic numbers: two zero bytes, the element type (0x08 = unsigned byte)
// and the number of dimensions.
const (
	idxImagesMagic = 0x00000803
	idxLabelsMagic = 0x00000801
)

// MaxIDXBytes caps the data section an IDX file may declare (100 MB). The
// full MNIST training set is 47 MB; a larger claim means a corrupt or hostile
// header, and is refused before anything is allocated.
const MaxIDXBytes = 100 << 20

// ErrIDXFormat is wrapped by every error about malformed IDX data (bad magic,
// truncated header or data, absurd sizes, labels outside 0-9, mismatched
// counts, corrupt gzip). Match it with errors.Is; *IDXError carries details.
var ErrIDXFormat = errors.New("mnist: malformed IDX data")

// IDXError describes malformed IDX data. It wraps ErrIDXFormat and, when
// there is one, the underlying cause (for instance io.ErrUnexpectedEOF or a
// gzip error).
type IDXError struct {
	// Path is the file, when known (empty for readers).
	Path string
	// Msg says what is wrong, for a person.
	Msg string
	// Err is the underlying cause, or nil.
	Err error
}

func (e *IDXError) Error() string {
	s := "mnist: IDX"
	if e.Path != "" {
		s += " file " + e.Path
	}
	s += ": " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns ErrIDXFormat and the cause, so errors.Is matches both.
func (e *IDXError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrIDXFormat}
	}
	return []error{ErrIDXFormat, e.Err}
}

func idxErr(err error, format string, args ...any) *IDXError {
	return &IDXError{Msg: fmt.Sprintf(format, args...), Err: err}
}

// idxSource returns a reader of the uncompressed IDX bytes of r, sniffing the
// gzip magic (1f 8b). The caller must call the returned check after reading
// everything: it reports trailing bytes and, for gzip, verifies the checksum
// (gzip only checks its CRC when the stream is read to the end).
func idxSource(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(2)
	if err != nil && len(head) < 2 {
		if errors.Is(err, io.EOF) {
			return nil, idxErr(io.ErrUnexpectedEOF, "empty or truncated header")
		}
		return nil, fmt.Errorf("mnist: read IDX: %w", err)
	}
	if head[0] != 0x1f || head[1] != 0x8b {
		return br, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, idxErr(err, "corrupt gzip stream")
	}
	return zr, nil
}

// readIDXHeader reads the magic number and the dims of an IDX stream.
func readIDXHeader(r io.Reader, wantMagic uint32, what string) ([]int, error) {
	var magic uint32
	if err := binary.Read(r, binary.BigEndian, &magic); err != nil {
		return nil, idxReadErr(err, "truncated header (magic number)")
	}
	if magic != wantMagic {
		hint := ""
		switch magic {
		case idxImagesMagic:
			hint = " (this is an images file)"
		case idxLabelsMagic:
			hint = " (this is a labels file)"
		}
		return nil, idxErr(nil, "magic number 0x%08x, want 0x%08x for an %s file%s", magic, wantMagic, what, hint)
	}
	ndims := int(wantMagic & 0xff)
	dims := make([]int, ndims)
	for i := range dims {
		var d uint32
		if err := binary.Read(r, binary.BigEndian, &d); err != nil {
			return nil, idxReadErr(err, "truncated header (dimension %d of %d)", i+1, ndims)
		}
		if d > MaxIDXBytes {
			return nil, idxErr(nil, "dimension %d is %d, larger than the %d-byte limit", i+1, d, MaxIDXBytes)
		}
		dims[i] = int(d)
	}
	return dims, nil
}

// idxReadErr classifies a read error: running out of data is malformed input;
// anything else (an I/O failure, a gzip checksum) is passed on wrapped.
func idxReadErr(err error, format string, args ...any) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return idxErr(err, format, args...)
}

// readIDXData reads exactly size bytes, growing the buffer as data arrives so
// that a header claiming much more than the stream holds costs no big
// allocation, then checks that the stream ends there.
func readIDXData(r io.Reader, size int) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(min(size, 1<<20))
	n, err := io.CopyN(&buf, r, int64(size))
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, idxErr(io.ErrUnexpectedEOF, "truncated data: got %d of %d bytes", n, size)
		}
		return nil, idxReadErr(err, "reading data")
	}
	var one [1]byte
	m, err := io.ReadFull(r, one[:])
	if m > 0 {
		return nil, idxErr(nil, "unexpected bytes after the %d data bytes", size)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		// For gzip this is where a bad checksum shows.
		return nil, idxReadErr(err, "reading the end of the stream")
	}
	return buf.Bytes(), nil
}

// ReadIDXImages reads an IDX images file (magic 0x00000803: n images of rows x
// cols unsigned bytes), gzip-compressed or raw (the gzip magic 1f 8b is
// sniffed). pixels holds n*rows*cols bytes, image after image, row-major.
// Malformed data gives an error wrapping ErrIDXFormat.
func ReadIDXImages(r io.Reader) (n, rows, cols int, pixels []uint8, err error) {
	src, err := idxSource(r)
	if err != nil {
		return 0, 0, 0, nil, err
	}
	dims, err := readIDXHeader(src, idxImagesMagic, "images")
	if err != nil {
		return 0, 0, 0, nil, err
	}
	n, rows, cols = dims[0], dims[1], dims[2]
	if rows == 0 || cols == 0 {
		return 0, 0, 0, nil, idxErr(nil, "image size %dx%d has a zero dimension", rows, cols)
	}
	// Each factor is at most MaxIDXBytes (< 2^27), so multiplying two at a time
	// and checking in between cannot overflow int64.
	if rc := rows * cols; rc > MaxIDXBytes || n*rc > MaxIDXBytes {
		return 0, 0, 0, nil, idxErr(nil, "%d images of %dx%d exceed the %d-byte limit", n, rows, cols, MaxIDXBytes)
	}
	pixels, err = readIDXData(src, n*rows*cols)
	if err != nil {
		return 0, 0, 0, nil, err
	}
	return n, rows, cols, pixels, nil
}

// ReadIDXLabels reads an IDX labels file (magic 0x00000801: n unsigned
// bytes), gzip-compressed or raw. It does not check the label range (LoadIDX
// does). Malformed data gives an error wrapping ErrIDXFormat.
func ReadIDXLabels(r io.Reader) (labels []uint8, err error) {
	src, err := idxSource(r)
	if err != nil {
		return nil, err
	}
	dims, err := readIDXHeader(src, idxLabelsMagic, "labels")
	if err != nil {
		return nil, err
	}
	return readIDXData(src, dims[0])
}

// WriteIDXImages writes n images of rows x cols bytes as a raw IDX images
// file (wrap w in a gzip.Writer for .gz).
func WriteIDXImages(w io.Writer, n, rows, cols int, pixels []uint8) error {
	if n < 0 || rows <= 0 || cols <= 0 || n*rows*cols > MaxIDXBytes {
		return fmt.Errorf("mnist: write IDX images: bad size %d images of %dx%d", n, rows, cols)
	}
	if len(pixels) != n*rows*cols {
		return fmt.Errorf("mnist: write IDX images: have %d pixel bytes, want %d images of %dx%d = %d", len(pixels), n, rows, cols, n*rows*cols)
	}
	hdr := binary.BigEndian.AppendUint32(nil, idxImagesMagic)
	for _, d := range []int{n, rows, cols} {
		hdr = binary.BigEndian.AppendUint32(hdr, uint32(d))
	}
	if _, err := w.Write(hdr); err != nil {
		return fmt.Errorf("mnist: write IDX images: %w", err)
	}
	if _, err := w.Write(pixels); err != nil {
		return fmt.Errorf("mnist: write IDX images: %w", err)
	}
	return nil
}

// WriteIDXLabels writes labels as a raw IDX labels file.
func WriteIDXLabels(w io.Writer, labels []uint8) error {
	if len(labels) > MaxIDXBytes {
		return fmt.Errorf("mnist: write IDX labels: %d labels exceed the %d limit", len(labels), MaxIDXBytes)
	}
	hdr := binary.BigEndian.AppendUint32(nil, idxLabelsMagic)
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(len(labels)))
	if _, err := w.Write(hdr); err != nil {
		return fmt.Errorf("mnist: write IDX labels: %w", err)
	}
	if _, err := w.Write(labels); err != nil {
		return fmt.Errorf("mnist: write IDX labels: %w", err)
	}
	return nil
}

// LoadIDX reads an images file and a labels file (each gzip or raw) into a
// Dataset. The counts must match, there must be at least one image, and every
// label must be 0-9.
func LoadIDX(imagesPath, labelsPath string) (*Dataset, error) {
	var (
		n, rows, cols  int
		pixels, labels []uint8
	)
	if err := readIDXFile(imagesPath, func(r io.Reader) (err error) {
		n, rows, cols, pixels, err = ReadIDXImages(r)
		return err
	}); err != nil {
		return nil, err
	}
	if err := readIDXFile(labelsPath, func(r io.Reader) (err error) {
		labels, err = ReadIDXLabels(r)
		return err
	}); err != nil {
		return nil, err
	}
	if len(labels) != n {
		return nil, &IDXError{Path: labelsPath, Msg: fmt.Sprintf("%d labels for %d images in %s", len(labels), n, imagesPath)}
	}
	if n == 0 {
		return nil, &IDXError{Path: imagesPath, Msg: "no images"}
	}
	for i, l := range labels {
		if l > 9 {
			return nil, &IDXError{Path: labelsPath, Msg: fmt.Sprintf("label %d of image %d is outside 0-9", l, i)}
		}
	}
	return &Dataset{Rows: rows, Cols: cols, Images: pixels, Labels: labels}, nil
}

// readIDXFile opens path and runs read on it, naming path in the error.
func readIDXFile(path string, read func(io.Reader) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("mnist: %w", err)
	}
	defer f.Close()
	if err := read(f); err != nil {
		var ie *IDXError
		if errors.As(err, &ie) {
			ie.Path = path
			return ie
		}
		return fmt.Errorf("mnist: read %s: %w", path, err)
	}
	return nil
}
