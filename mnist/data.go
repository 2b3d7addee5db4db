package mnist

import (
	"fmt"
	"image"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/mnist/internal/idx"
)

// LoadDataDir loads the four standard MNIST files from dir:
// train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte
// and t10k-labels-idx1-ubyte, each either gzip-compressed (name.gz) or raw
// (name); the .gz file wins when both exist. A missing file gives an error
// wrapping ErrDataNotFound that names it; malformed files an error wrapping
// ErrIDXFormat (see LoadIDX). Package mnistdata locates a folder holding the
// files without the user doing anything.
func LoadDataDir(dir string) (train, test *Dataset, err error) {
	var paths [4]string
	for i, name := range idx.StandardFiles() {
		p, found, err := idx.FindFile(dir, name)
		if err != nil {
			return nil, nil, fmt.Errorf("mnist: %w", err)
		}
		if !found {
			return nil, nil, fmt.Errorf("%w: neither %s.gz nor %s is a file in %s (point -data or the ADVSPACE_MNIST_DIR environment variable at a folder holding the four MNIST IDX files)",
				ErrDataNotFound, name, name, dir)
		}
		paths[i] = p
	}
	if train, err = LoadIDX(paths[0], paths[1]); err != nil {
		return nil, nil, err
	}
	if test, err = LoadIDX(paths[2], paths[3]); err != nil {
		return nil, nil, err
	}
	if train.Rows != test.Rows || train.Cols != test.Cols {
		return nil, nil, fmt.Errorf("%w: training images are %dx%d but test images are %dx%d", ErrIDXFormat, train.Rows, train.Cols, test.Rows, test.Cols)
	}
	return train, test, nil
}

// Examples converts d into labelled dadc examples; each input is a fresh
// Rows x Cols *image.Gray (28x28 for MNIST) in MNIST format, ink bright on dark.
func (d *Dataset) Examples() []dadc.Example[*image.Gray] {
	ex := make([]dadc.Example[*image.Gray], d.Len())
	for i := range ex {
		ex[i] = dadc.Example[*image.Gray]{Input: d.Gray(i), Label: int(d.Labels[i])}
	}
	return ex
}
