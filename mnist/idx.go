package mnist

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/advspace/advspace/mnist/internal/idx"
)

// LoadIDX reads an IDX images file (magic 0x00000803: n images of rows x cols
// unsigned bytes) and an IDX labels file (magic 0x00000801: n unsigned bytes),
// each gzip-compressed or raw (the gzip magic 1f 8b is sniffed), into a
// Dataset. The counts must match, there must be at least one image, and every
// label must be 0-9. A claim of more than 100 MB of data is refused before
// anything is allocated. Malformed files give an error wrapping ErrIDXFormat
// that names the file; a file that cannot be opened gives the os error.
func LoadIDX(imagesPath, labelsPath string) (*Dataset, error) {
	var (
		n, rows, cols  int
		pixels, labels []uint8
	)
	if err := readIDXFile(imagesPath, func(r io.Reader) (err error) {
		n, rows, cols, pixels, err = idx.ReadImages(r)
		return err
	}); err != nil {
		return nil, err
	}
	if err := readIDXFile(labelsPath, func(r io.Reader) (err error) {
		labels, err = idx.ReadLabels(r)
		return err
	}); err != nil {
		return nil, err
	}
	if len(labels) != n {
		return nil, &idx.Error{Path: labelsPath, Msg: fmt.Sprintf("%d labels for %d images in %s", len(labels), n, imagesPath)}
	}
	if n == 0 {
		return nil, &idx.Error{Path: imagesPath, Msg: "no images"}
	}
	for i, l := range labels {
		if l > 9 {
			return nil, &idx.Error{Path: labelsPath, Msg: fmt.Sprintf("label %d of image %d is outside 0-9", l, i)}
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
		var ie *idx.Error
		if errors.As(err, &ie) {
			ie.Path = path
			return ie
		}
		return fmt.Errorf("mnist: read %s: %w", path, err)
	}
	return nil
}
