// Command mnist-predict classifies digit images with the MNIST network.
//
//	go run ./examples/mnist-predict [-weights FILE] [-raw] IMAGE...
//
// It prints one JSON line per image: {"file", "label", "probabilities"}.
// Images are drawings (PNG or JPEG, any size, dark ink on light or light on
// dark) and go through mnist.Preprocess, unless -raw says they already are
// 28x28 MNIST-format inputs (ink bright on dark), used as they are. Either
// way an image is read the way a browser shows it: an EXIF Orientation tag
// (a phone photo stored sideways) is applied. Flags may come before or after
// the images; "--" ends them. Errors are reported per file on stderr and make
// the exit status 1.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	_ "image/jpeg" // decode JPEG inputs in -raw mode
	_ "image/png"  // decode PNG inputs in -raw mode
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"

	"github.com/advspace/advspace/internal/imgorient"
	"github.com/advspace/advspace/mnist"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type answer struct {
	File          string    `json:"file"`
	Label         int       `json:"label"`
	Probabilities []float64 `json:"probabilities"`
}

// run is the whole program; it returns the exit code (2 for usage errors).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mnist-predict", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mnist-predict [-weights FILE] [-raw] IMAGE...")
		fs.PrintDefaults()
	}
	weightsPath := fs.String("weights", "", "safetensors weights file (default: the embedded pretrained weights)")
	raw := fs.Bool("raw", false, "images already are 28x28 MNIST-format inputs (ink bright on dark): no preprocessing")
	files, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "mnist-predict: no images given")
		fs.Usage()
		return 2
	}
	var w *mnist.Weights
	if *weightsPath != "" {
		w, err = mnist.LoadWeightsFile(*weightsPath)
	} else {
		w, err = mnist.Pretrained()
	}
	if err != nil {
		fmt.Fprintln(stderr, "mnist-predict:", err)
		return 1
	}
	m, err := mnist.NewModel(w, nil)
	if err != nil {
		fmt.Fprintln(stderr, "mnist-predict:", err)
		return 1
	}
	enc := json.NewEncoder(stdout)
	code := 0
	for _, file := range files {
		p, err := predictFile(ctx, m, file, *raw)
		if err != nil {
			fmt.Fprintf(stderr, "mnist-predict: %s: %v\n", file, err)
			code = 1
			if ctx.Err() != nil {
				return 130
			}
			continue
		}
		if err := enc.Encode(p); err != nil {
			fmt.Fprintln(stderr, "mnist-predict:", err)
			return 1
		}
	}
	return code
}

// parseInterleaved parses args with fs, accepting flags after the images as
// well as before ("a.png -raw b.png"), and returns the images in order.
// Everything after "--" is an image, even if it starts with "-".
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var files, after []string
	if i := slices.Index(args, "--"); i >= 0 {
		args, after = args[:i], args[i+1:]
	}
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return append(files, after...), nil
		}
		files = append(files, args[0])
		args = args[1:]
	}
}

func predictFile(ctx context.Context, m *mnist.Model, file string, raw bool) (answer, error) {
	if st, err := os.Stat(file); err == nil && st.IsDir() {
		return answer{}, errors.New("is a folder, not an image: give the image files in it (for example " + filepath.Join(file, "*.png") + ")")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return answer{}, err
	}
	var in *image.Gray
	if raw {
		in, err = decodeRaw(data)
	} else {
		in, err = mnist.Preprocess(data, nil)
	}
	if err != nil {
		return answer{}, err
	}
	p, err := m.Predict(ctx, in)
	if err != nil {
		return answer{}, err
	}
	return answer{File: file, Label: p.Label, Probabilities: p.Probabilities}, nil
}

// decodeRaw decodes an image that must already be a 28x28 MNIST-format input,
// turned as its EXIF Orientation tag says (as mnist.Preprocess does).
func decodeRaw(data []byte) (*image.Gray, error) {
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not a PNG or JPEG image: %w", err)
	}
	img = imgorient.Apply(img, imgorient.Read(data))
	b := img.Bounds()
	if b.Dx() != mnist.Side || b.Dy() != mnist.Side {
		return nil, fmt.Errorf("-raw needs a 28x28 image, this one is %dx%d (drop -raw to preprocess it)", b.Dx(), b.Dy())
	}
	if g, ok := img.(*image.Gray); ok {
		return g, nil
	}
	g := image.NewGray(image.Rect(0, 0, mnist.Side, mnist.Side))
	draw.Draw(g, g.Bounds(), &grayOf{img}, b.Min, draw.Src)
	return g, nil
}

// grayOf presents an image in the gray color model.
type grayOf struct{ image.Image }

func (g *grayOf) ColorModel() color.Model { return color.GrayModel }
func (g *grayOf) At(x, y int) color.Color { return color.GrayModel.Convert(g.Image.At(x, y)) }
