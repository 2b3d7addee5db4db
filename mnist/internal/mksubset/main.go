// Command mksubset writes the small MNIST fixtures under testdata/: the first
// 2,000 training and 1,000 test images of the full MNIST set as gzip IDX files
// (testdata/mnist/), and one 28x28 test digit per class as PNG
// (testdata/digits/<label>-<index>.png, ink bright on dark, the MNIST format).
// It was run once, from the repository root:
//
//	go run ./mnist/internal/mksubset -out testdata
//
// The output is deterministic (gzip without timestamps), so running it again
// reproduces the committed files byte for byte.
package main

import (
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"image/png"
	"log"
	"os"
	"path/filepath"

	"github.com/advspace/advspace/mnist"
	"github.com/advspace/advspace/mnist/internal/idx"
	"github.com/advspace/advspace/mnist/mnistdata"
)

func main() {
	out := flag.String("out", "testdata", "folder to write mnist/ and digits/ into")
	nTrain := flag.Int("train", 2000, "number of training images to keep")
	nTest := flag.Int("test", 1000, "number of test images to keep")
	flag.Parse()
	if err := run(*out, *nTrain, *nTest); err != nil {
		log.Fatal(err)
	}
}

func run(out string, nTrain, nTest int) error {
	dir, err := mnistdata.Dir(context.Background())
	if err != nil {
		return err
	}
	train, test, err := mnist.LoadDataDir(dir)
	if err != nil {
		return err
	}
	if nTrain > train.Len() || nTest > test.Len() {
		return fmt.Errorf("asked for %d/%d images, the full set has %d/%d", nTrain, nTest, train.Len(), test.Len())
	}
	if err := os.MkdirAll(filepath.Join(out, "mnist"), 0o755); err != nil {
		return err
	}
	for _, s := range []struct {
		prefix string
		d      *mnist.Dataset
		n      int
	}{{"train", train, nTrain}, {"t10k", test, nTest}} {
		keep := make([]int, s.n)
		for i := range keep {
			keep[i] = i
		}
		sub := s.d.Subset(keep)
		if err := writeGz(filepath.Join(out, "mnist", s.prefix+"-images-idx3-ubyte.gz"), func(z *gzip.Writer) error {
			return idx.WriteImages(z, sub.Len(), sub.Rows, sub.Cols, sub.Images)
		}); err != nil {
			return err
		}
		if err := writeGz(filepath.Join(out, "mnist", s.prefix+"-labels-idx1-ubyte.gz"), func(z *gzip.Writer) error {
			return idx.WriteLabels(z, sub.Labels)
		}); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(out, "digits"), 0o755); err != nil {
		return err
	}
	seen := map[uint8]bool{}
	for i := 0; i < test.Len() && len(seen) < 10; i++ {
		l := test.Labels[i]
		if seen[l] {
			continue
		}
		seen[l] = true
		f, err := os.Create(filepath.Join(out, "digits", fmt.Sprintf("%d-%d.png", l, i)))
		if err != nil {
			return err
		}
		if err := png.Encode(f, test.Gray(i)); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

func writeGz(path string, write func(*gzip.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	z, err := gzip.NewWriterLevel(f, gzip.BestCompression)
	if err != nil {
		f.Close()
		return err
	}
	if err := write(z); err != nil {
		f.Close()
		return err
	}
	if err := z.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
